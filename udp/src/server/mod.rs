//! The UDP tracker's I/O: socket set-up, backend choice, and the two
//! backends (drivers) that run the same [`crate::tracker::Tracker`] logic.
//!
//! [`UdpService`] plugs into the shared start-up
//! (`riptide_common::startup`); its own part of it: probe → bind every
//! socket (one per worker per family, in worker order, so reuseport index i
//! is worker i) → attach the steering program → bind each socket's
//! send-only twin behind them; then, once privileges are dropped, run the
//! chosen backend.

pub mod mio;
pub mod uring;

use crate::config::{Backend, UdpConfig};
use crate::connection_id::ConnectionIds;
use crate::metrics::{Metric, TABLES};
use crate::tracker::{Settings, Tracker};
use anyhow::{bail, Context};
use riptide_common::access_list::SharedAccessList;
use riptide_common::metrics::Desc;
use riptide_common::startup::{BoundAddrs, Service, Started};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Timer token: a cleaning slice.
pub const TIMER_CLEAN: u64 = 1;
/// Timer token: copy statistics into the metrics.
pub const TIMER_STATS: u64 = 2;

/// What every worker shares (read-only, or swapped atomically).
#[derive(Clone)]
pub struct ServerState {
    /// The config the tracker runs with.
    pub config: Arc<UdpConfig>,
    /// The access list, reloaded on SIGUSR1.
    pub access_list: SharedAccessList,
    /// Process start: the epoch of the coarse seconds the swarm and the
    /// connection ids use.
    pub start: Instant,
    /// Time between cleaning slices.
    pub clean_interval: Duration,
}

impl ServerState {
    /// Coarse seconds since start.
    pub fn seconds_since_start(&self, at: Instant) -> u32 {
        u32::try_from(at.saturating_duration_since(self.start).as_secs()).unwrap_or(u32::MAX)
    }
}

/// One worker's sockets, at most one per family.
#[derive(Default)]
pub struct WorkerSockets {
    /// IPv4 socket.
    pub v4: Option<UdpSocket>,
    /// IPv6 socket (IPV6_V6ONLY).
    pub v6: Option<UdpSocket>,
    /// Send-only twin of `v4` the answers leave through, on a steered group
    /// (see `uring_rt::Ctx::add_udp_with_sender`).
    pub v4_sender: Option<UdpSocket>,
    /// Send-only twin of `v6`.
    pub v6_sender: Option<UdpSocket>,
}

/// Whether nobody else holds `addr`: a plain bind (no `SO_REUSEPORT`)
/// succeeds, then is closed. Port 0 is always free. False when, say, a
/// previous instance is still running on the port: its sockets share our
/// reuseport group, and when they close the kernel fills their indices with
/// the group's last sockets, which could be our send-only ones.
fn port_is_ours(addr: SocketAddr) -> bool {
    if addr.port() == 0 {
        return true;
    }
    Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .and_then(|s| {
            if addr.is_ipv6() {
                s.set_only_v6(true)?;
            }
            s.bind(&addr.into())
        })
        .is_ok()
}

/// Binds a reuseport group of `workers` sockets on `addr`; with port 0 on
/// a port no other socket holds.
fn bind_group(
    addr: SocketAddr,
    workers: usize,
    recv_buffer: usize,
) -> anyhow::Result<Vec<UdpSocket>> {
    let mut group = Vec::with_capacity(workers);
    let mut addr = uring_rt::socket::reuseport_addr(addr)
        .with_context(|| format!("find a free UDP port on {}", addr.ip()))?;
    for _ in 0..workers {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
            .context("create UDP socket")?;
        if addr.is_ipv6() {
            socket.set_only_v6(true).context("set IPV6_V6ONLY")?;
        }
        socket.set_reuse_port(true).context("set SO_REUSEPORT")?;
        if recv_buffer > 0 {
            // Before bind, so the kernel sizes the queue from the start.
            if let Err(e) = socket.set_recv_buffer_size(recv_buffer) {
                log::warn!("cannot set SO_RCVBUF to {recv_buffer}: {e}");
            }
        }
        socket.set_nonblocking(true).context("set O_NONBLOCK")?;
        socket
            .bind(&addr.into())
            .with_context(|| format!("bind UDP {addr}"))?;
        let socket: UdpSocket = socket.into();
        if addr.ip().is_unspecified() {
            // On a wildcard bind, learn each request's destination so the
            // answer leaves from the address that was asked (multi-homed hosts).
            uring_rt::socket::enable_pktinfo(&socket).context("enable pktinfo")?;
        }
        addr = socket.local_addr().context("local address")?;
        group.push(socket);
    }
    Ok(group)
}

/// Attaches the steering program to a group; false when the kernel refused it.
fn steer(group: &[UdpSocket], workers: usize) -> bool {
    let Some(first) = group.first() else {
        return true;
    };
    match uring_rt::socket::attach_reuseport_cbpf(first, &crate::steering::program(workers)) {
        Ok(()) => true,
        Err(e) => {
            log::warn!("kernel refused the steering BPF program ({e}); announces will cross cores through the mesh");
            false
        }
    }
}

/// The send-only twin of each socket of a steered group (bound behind all
/// of them, so the program never picks one); `None` for any the kernel
/// refused, which then answers from its receive socket.
fn bind_senders(group: &[UdpSocket]) -> Vec<Option<UdpSocket>> {
    group
        .iter()
        .map(|s| match uring_rt::socket::bind_sender(s) {
            Ok(t) => Some(t),
            Err(e) => {
                log::warn!(
                    "cannot bind a send-only socket ({e}); answering from the receive socket"
                );
                None
            }
        })
        .collect()
}

/// Which backend to run, from the config and the kernel probe.
fn choose_backend(config: &UdpConfig) -> anyhow::Result<Backend> {
    let probe = uring_rt::Probe::detect();
    log::info!("io_uring probe: {probe}");
    let missing = probe.missing_for_udp();
    match config.backend {
        Backend::Mio => {
            log::info!("backend: mio (configured)");
            Ok(Backend::Mio)
        }
        Backend::IoUring if missing.is_empty() => {
            log::info!("backend: io_uring (configured)");
            Ok(Backend::IoUring)
        }
        Backend::IoUring => bail!(
            "backend = \"io_uring\" but kernel {} lacks: {}; use backend = \"auto\" or \"mio\"",
            probe.kernel(),
            missing.join(", ")
        ),
        Backend::Auto if missing.is_empty() => {
            log::info!(
                "backend: io_uring (auto: kernel {} has every feature used)",
                probe.kernel()
            );
            Ok(Backend::IoUring)
        }
        Backend::Auto => {
            log::warn!(
                "backend: mio (auto: kernel {} lacks {})",
                probe.kernel(),
                missing.join(", ")
            );
            Ok(Backend::Mio)
        }
    }
}

/// riptide-udp for the shared start-up sequence.
pub struct UdpService;

/// What [`UdpService::bind`] hands to [`UdpService::serve`].
pub struct Bound {
    backend: Backend,
    sockets: Vec<WorkerSockets>,
}

impl Bound {
    /// Each worker's sockets (for a process that runs them itself).
    pub fn into_sockets(self) -> Vec<WorkerSockets> {
        self.sockets
    }
}

impl UdpService {
    /// The shared state and one tracker per worker, as `serve` runs them.
    pub fn trackers(config: UdpConfig, started: &Started) -> (ServerState, Vec<Tracker>) {
        let workers = started.workers;
        let shared = ServerState {
            clean_interval: Duration::from_secs(u64::from(config.cleaning.interval)),
            config: Arc::new(config),
            access_list: started.access_list.clone(),
            start: Instant::now(),
        };
        let max_age = shared.config.udp.connection_id_max_age;
        let ids = match shared.config.udp.key_bytes() {
            Some(key) => ConnectionIds::new(key, max_age),
            None => ConnectionIds::from_random(max_age),
        };
        // Connection ids carry Unix time, so with a fixed key they survive a restart.
        let unix_base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let settings = Settings::from_config(&shared.config);
        let trackers = started
            .metrics
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Tracker::new(
                    i,
                    workers,
                    settings,
                    ids.clone(),
                    unix_base,
                    shared.access_list.cache(),
                    Arc::clone(m),
                )
            })
            .collect();
        (shared, trackers)
    }
}

impl Service for UdpService {
    type Config = UdpConfig;
    type Bound = Bound;
    const METRICS: &'static [&'static [Desc]] = TABLES;

    fn probe_verdict(probe: &uring_rt::Probe) -> (Vec<&'static str>, &'static str) {
        (
            probe.missing_for_udp(),
            "riptide-udp will use its mio backend",
        )
    }

    fn bind(config: &UdpConfig, started: &Started) -> anyhow::Result<(Bound, BoundAddrs)> {
        let workers = started.workers;
        let backend = choose_backend(config)?;
        if config.network.kernel_steering.is_some() {
            log::warn!("[network] kernel_steering is deprecated: set [udp] kernel_steering instead (the old key still wins)");
        }
        let steering_wanted = config.udp.kernel_steering(&config.network);
        let mut sockets: Vec<WorkerSockets> =
            (0..workers).map(|_| WorkerSockets::default()).collect();
        let mut steering_refused = false;
        let mut addrs = Vec::new();
        for addr in [config.network.ipv4()?, config.network.ipv6()?]
            .into_iter()
            .flatten()
        {
            let alone = port_is_ours(addr);
            let group = bind_group(addr, workers, config.network.socket_recv_buffer)?;
            let bound = group[0].local_addr()?;
            // Also with one worker: the program is what keeps requests off the
            // send-only sockets.
            let steered = steering_wanted && steer(&group, workers);
            steering_refused |= steering_wanted && !steered;
            if steered && !alone {
                log::warn!("udp {addr} is also bound by another process (an instance still running?); answering from the receive sockets");
            }
            let senders = if steered && alone {
                bind_senders(&group)
            } else {
                group.iter().map(|_| None).collect()
            };
            for ((slot, socket), sender) in sockets.iter_mut().zip(group).zip(senders) {
                if bound.is_ipv4() {
                    (slot.v4, slot.v4_sender) = (Some(socket), sender);
                } else {
                    (slot.v6, slot.v6_sender) = (Some(socket), sender);
                }
            }
            addrs.push(("udp", bound));
        }
        let steering = steering_wanted && !steering_refused;
        log::info!(
            "{workers} workers, kernel steering {}",
            if steering { "on" } else { "off" }
        );
        if steering_refused {
            started.metrics[0].add(Metric::SteeringRefused.index(), 1);
        }
        Ok((Bound { backend, sockets }, addrs))
    }

    fn serve(config: UdpConfig, bound: Bound, started: Started) -> anyhow::Result<()> {
        let (shared, trackers) = UdpService::trackers(config, &started);
        match bound.backend {
            Backend::IoUring | Backend::Auto => uring::run(&shared, trackers, bound.sockets),
            Backend::Mio => mio::run(&shared, trackers, bound.sockets),
        }
    }
}
