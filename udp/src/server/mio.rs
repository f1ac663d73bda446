//! The mio backend, for kernels without the io_uring features riptide uses:
//! the same workers, sharding and steering, with recvmmsg/sendmmsg batches,
//! epoll through mio, and a mio `Waker` to signal mesh messages.

use super::{ServerState, WorkerSockets};
use crate::metrics::DESCS;
use crate::tracker::{Io, MeshMsg, Tracker};
use anyhow::Context;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use riptide_common::metrics::RuntimeMetric;
use riptide_common::swarm::WARM_BATCH;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uring_rt::mesh::{Mesh, MeshEnd};
use uring_rt::signals::SignalReader;
use uring_rt::socket::{RecvBatch, SendBatch};
use uring_rt::Signal;

const V4: Token = Token(0);
const V6: Token = Token(1);
const WAKE: Token = Token(2);
const SIGNALS: Token = Token(3);

/// Datagrams per recvmmsg call.
const RECV_BATCH: usize = 64;
/// Datagrams per sendmmsg call.
const SEND_BATCH: usize = 256;
/// Bytes per datagram buffer.
const DATAGRAM: usize = 2048;
/// Poll timeout while answers wait for room in a full send buffer.
const RETRY_SEND: Duration = Duration::from_millis(1);

struct FamilySocket {
    socket: UdpSocket,
    /// The send-only twin answers leave through, when the group is steered
    /// (not registered with epoll: nobody waits on it, so a sent datagram
    /// wakes nobody; see `super::bind_senders`).
    sender: Option<UdpSocket>,
    batch: SendBatch,
}

impl FamilySocket {
    fn flush(&mut self) {
        match self
            .batch
            .flush(self.sender.as_ref().unwrap_or(&self.socket))
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => log::debug!("sendmmsg: {e}"),
        }
    }
}

struct MioIo<'a> {
    v4: Option<&'a mut FamilySocket>,
    v6: Option<&'a mut FamilySocket>,
    mesh: &'a mut MeshEnd<MeshMsg>,
    wake: &'a mut [bool],
}

impl Io for MioIo<'_> {
    fn send(
        &mut self,
        to: SocketAddr,
        from: Option<IpAddr>,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> bool {
        let family = if to.is_ipv4() {
            self.v4.as_deref_mut()
        } else {
            self.v6.as_deref_mut()
        };
        let Some(family) = family else {
            return false;
        };
        if family.batch.len() >= SEND_BATCH {
            family.flush();
            if family.batch.len() >= SEND_BATCH {
                return false; // the socket is full even after a flush
            }
        }
        family.batch.push(to, from, fill)
    }

    fn forward(&mut self, to: usize, msg: MeshMsg) -> bool {
        match self.mesh.push(to, msg) {
            Ok(was_empty) => {
                if was_empty {
                    self.wake[to] = true;
                }
                true
            }
            Err(_) => false,
        }
    }
}

struct MioDriver {
    id: usize,
    tracker: Tracker,
    shared: ServerState,
    poll: Poll,
    v4: Option<FamilySocket>,
    v6: Option<FamilySocket>,
    mesh: MeshEnd<MeshMsg>,
    wakers: Arc<Vec<Waker>>,
    stop: Arc<AtomicBool>,
    signals: Option<SignalReader>,
    core: Option<usize>,
}

impl MioDriver {
    fn run(mut self) {
        if let Some(core) = self.core {
            if let Err(e) = riptide_common::pinning::pin_current_thread(core) {
                log::warn!("worker {}: cannot pin to core {core}: {e}", self.id);
            }
        }
        let mut events = Events::with_capacity(64);
        let mut recv = RecvBatch::new(RECV_BATCH, DATAGRAM);
        let workers = self.wakers.len();
        let mut wake = vec![false; workers];
        let mut inbox: Vec<(usize, MeshMsg)> =
            Vec::with_capacity(self.shared.config.udp.mesh_capacity * workers);
        let clean_every = self.shared.clean_interval;
        let stats_every = Duration::from_secs(1);
        let mut next_clean = Instant::now() + clean_every;
        let mut next_stats = Instant::now() + stats_every;

        loop {
            let mut timeout = next_clean
                .min(next_stats)
                .saturating_duration_since(Instant::now());
            let unsent = [self.v4.as_ref(), self.v6.as_ref()]
                .into_iter()
                .flatten()
                .any(|f| !f.batch.is_empty());
            if unsent {
                // A full send buffer left answers queued; nobody polls the
                // send-only socket, so look again soon.
                timeout = timeout.min(RETRY_SEND);
            }
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::error!("worker {}: poll failed: {e}", self.id);
                    break;
                }
            }
            let now_instant = Instant::now();
            let now = self.shared.seconds_since_start(now_instant);
            for event in &events {
                match event.token() {
                    V4 | V6 => {
                        let is_v4 = event.token() == V4;
                        self.drain_socket(is_v4, &mut recv, &mut wake, now);
                    }
                    SIGNALS => self.read_signals(),
                    _ => {}
                }
            }
            inbox.clear();
            self.mesh.drain(|from, msg| inbox.push((from, msg)));
            {
                let mut io = MioIo {
                    v4: self.v4.as_mut(),
                    v6: self.v6.as_mut(),
                    mesh: &mut self.mesh,
                    wake: &mut wake,
                };
                for &(from, msg) in &inbox {
                    self.tracker.on_mesh(&mut io, from, msg, now);
                }
            }
            for family in [self.v4.as_mut(), self.v6.as_mut()].into_iter().flatten() {
                family.flush();
            }
            for (to, flag) in wake.iter_mut().enumerate() {
                if std::mem::take(flag) {
                    let _ = self.wakers[to].wake();
                    self.tracker
                        .metrics()
                        .add(DESCS.len() + RuntimeMetric::MeshWakeups.index(), 1);
                }
            }
            if now_instant >= next_clean {
                self.tracker.on_clean_tick(now);
                next_clean = now_instant + clean_every;
            }
            if now_instant >= next_stats {
                self.tracker.update_gauges();
                next_stats = now_instant + stats_every;
            }
            if self.stop.load(Ordering::Relaxed) {
                for family in [self.v4.as_mut(), self.v6.as_mut()].into_iter().flatten() {
                    family.flush();
                }
                break;
            }
        }
    }

    /// Reads the socket until it would block, answering each datagram.
    fn drain_socket(&mut self, is_v4: bool, recv: &mut RecvBatch, wake: &mut [bool], now: u32) {
        loop {
            let socket = if is_v4 {
                self.v4.as_ref()
            } else {
                self.v6.as_ref()
            };
            let Some(family) = socket else {
                return;
            };
            let n = match recv.recv(&family.socket) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("recvmmsg: {e}");
                    return;
                }
            };
            let mut io = MioIo {
                v4: self.v4.as_mut(),
                v6: self.v6.as_mut(),
                mesh: &mut self.mesh,
                wake,
            };
            for i in 0..n {
                // Look ahead in windows, each just before its own datagrams.
                if i % WARM_BATCH == 0 && n - i > 1 {
                    self.tracker.look_ahead(
                        (i..n.min(i + WARM_BATCH))
                            .filter_map(|j| recv.get(j))
                            .filter(|d| !d.truncated)
                            .map(|d| (d.src, d.payload)),
                    );
                }
                if let Some(d) = recv.get(i) {
                    if !d.truncated {
                        self.tracker
                            .on_datagram(&mut io, d.src, d.dst, d.payload, now);
                    }
                }
            }
            if n < RECV_BATCH {
                return;
            }
        }
    }

    fn read_signals(&mut self) {
        let Some(reader) = self.signals.as_mut() else {
            return;
        };
        while let Some(signal) = reader.read() {
            match signal {
                Signal::Reload => self.shared.access_list.reload_and_log(),
                Signal::Terminate => {
                    log::info!("stopping on signal");
                    self.stop.store(true, Ordering::Relaxed);
                    for w in self.wakers.iter() {
                        let _ = w.wake();
                    }
                }
            }
        }
    }
}

/// Runs the workers on mio until SIGTERM/SIGINT.
pub fn run(
    shared: &ServerState,
    trackers: Vec<Tracker>,
    sockets: Vec<WorkerSockets>,
) -> anyhow::Result<()> {
    let n = trackers.len();
    let polls: Vec<Poll> = (0..n)
        .map(|_| Poll::new())
        .collect::<Result<_, _>>()
        .context("create epoll")?;
    let wakers: Arc<Vec<Waker>> = Arc::new(
        polls
            .iter()
            .map(|p| Waker::new(p.registry(), WAKE))
            .collect::<Result<_, _>>()
            .context("create waker")?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let cores = riptide_common::pinning::worker_cores(&shared.config.cpu_pinning);
    let mut signals = Some(SignalReader::new().context("open signalfd")?);
    let meshes = Mesh::<MeshMsg>::new(n, shared.config.udp.mesh_capacity);

    let mut threads = Vec::with_capacity(n);
    for (i, (((tracker, poll), socks), mesh)) in trackers
        .into_iter()
        .zip(polls)
        .zip(sockets)
        .zip(meshes)
        .enumerate()
    {
        let family = |s: Option<UdpSocket>,
                      sender: Option<UdpSocket>,
                      token: Token|
         -> anyhow::Result<Option<FamilySocket>> {
            let Some(socket) = s else { return Ok(None) };
            poll.registry()
                .register(
                    &mut SourceFd(&socket.as_raw_fd()),
                    token,
                    Interest::READABLE | Interest::WRITABLE,
                )
                .context("register socket")?;
            Ok(Some(FamilySocket {
                socket,
                sender,
                batch: SendBatch::new(SEND_BATCH, DATAGRAM),
            }))
        };
        let v4 = family(socks.v4, socks.v4_sender, V4)?;
        let v6 = family(socks.v6, socks.v6_sender, V6)?;
        let signals = if i == 0 { signals.take() } else { None };
        if let Some(reader) = &signals {
            poll.registry()
                .register(
                    &mut SourceFd(&reader.as_fd().as_raw_fd()),
                    SIGNALS,
                    Interest::READABLE,
                )
                .context("register signalfd")?;
        }
        let w = MioDriver {
            id: i,
            tracker,
            shared: shared.clone(),
            poll,
            v4,
            v6,
            mesh,
            wakers: Arc::clone(&wakers),
            stop: Arc::clone(&stop),
            signals,
            core: cores.as_ref().map(|c| c[i % c.len()]),
        };
        threads.push(
            std::thread::Builder::new()
                .name(format!("riptide-udp-{i}"))
                .spawn(move || w.run())?,
        );
    }
    for t in threads {
        if t.join().is_err() {
            anyhow::bail!("a worker thread panicked");
        }
    }
    Ok(())
}
