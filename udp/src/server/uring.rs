//! The io_uring backend: each worker is a [`uring_rt::Handler`] that owns
//! its sockets and feeds datagrams and mesh messages to its [`Tracker`].

use super::{ServerState, WorkerSockets, TIMER_CLEAN, TIMER_STATS};
use crate::metrics::DESCS;
use crate::tracker::{Io, MeshMsg, Tracker};
use riptide_common::metrics::WorkerMetrics;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Instant;
use uring_rt::{Ctx, Datagram, Handler, RuntimeConfig, Signal, SocketId};

/// A worker on the io_uring runtime.
pub struct UringDriver {
    tracker: Tracker,
    shared: ServerState,
    pending_sockets: Option<WorkerSockets>,
    v4: Option<SocketId>,
    v6: Option<SocketId>,
    /// A socket could not be armed: the whole server stops with an error
    /// (its closed socket leaves a gap in the reuseport group that another
    /// worker's send-only socket may fill, which would lose requests).
    failed: bool,
}

struct UringIo<'a> {
    ctx: &'a mut Ctx<MeshMsg>,
    v4: Option<SocketId>,
    v6: Option<SocketId>,
}

impl Io for UringIo<'_> {
    fn send(
        &mut self,
        to: SocketAddr,
        from: Option<IpAddr>,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> bool {
        let socket = if to.is_ipv4() { self.v4 } else { self.v6 };
        socket.is_some_and(|s| self.ctx.send_to(s, to, from, fill).is_ok())
    }

    fn forward(&mut self, to: usize, msg: MeshMsg) -> bool {
        self.ctx.mesh_send(to, msg).is_ok()
    }
}

impl UringDriver {
    fn now(&self, at: Instant) -> u32 {
        self.shared.seconds_since_start(at)
    }

    fn io<'a>(&self, ctx: &'a mut Ctx<MeshMsg>) -> UringIo<'a> {
        UringIo {
            ctx,
            v4: self.v4,
            v6: self.v6,
        }
    }

    fn copy_runtime_stats(&self, ctx: &Ctx<MeshMsg>) {
        let m: &WorkerMetrics = self.tracker.metrics();
        riptide_common::metrics::fill_runtime(ctx.stats(), ctx.connections(), m, DESCS.len());
    }
}

impl Handler for UringDriver {
    type Msg = MeshMsg;

    fn on_start(&mut self, ctx: &mut Ctx<MeshMsg>) {
        let sockets = self.pending_sockets.take().unwrap_or_default();
        let add = |ctx: &mut Ctx<MeshMsg>,
                   s: Option<UdpSocket>,
                   sender: Option<UdpSocket>|
         -> Option<SocketId> {
            let s = s?;
            let added = match sender {
                Some(sender) => ctx.add_udp_with_sender(s, sender),
                None => ctx.add_udp(s),
            };
            match added {
                Ok(id) => Some(id),
                Err(e) => {
                    log::error!(
                        "worker {}: cannot arm receive on its socket: {e}",
                        ctx.worker()
                    );
                    ctx.stop_all();
                    None
                }
            }
        };
        let wanted = (sockets.v4.is_some(), sockets.v6.is_some());
        self.v4 = add(ctx, sockets.v4, sockets.v4_sender);
        self.v6 = add(ctx, sockets.v6, sockets.v6_sender);
        self.failed = wanted != (self.v4.is_some(), self.v6.is_some());
        ctx.add_timer(self.shared.clean_interval, TIMER_CLEAN);
        ctx.add_timer(std::time::Duration::from_secs(1), TIMER_STATS);
    }

    fn on_datagram(&mut self, ctx: &mut Ctx<MeshMsg>, dgram: Datagram<'_>) {
        let now = self.now(ctx.now());
        let mut io = UringIo {
            ctx,
            v4: self.v4,
            v6: self.v6,
        };
        self.tracker
            .on_datagram(&mut io, dgram.src, dgram.dst, dgram.payload, now);
    }

    fn look_ahead<'a>(&mut self, batch: impl Iterator<Item = Datagram<'a>>) {
        self.tracker.look_ahead(batch.map(|d| (d.src, d.payload)));
    }

    fn on_mesh(&mut self, ctx: &mut Ctx<MeshMsg>, from: usize, msg: MeshMsg) {
        let now = self.now(ctx.now());
        let mut io = self.io(ctx);
        self.tracker.on_mesh(&mut io, from, msg, now);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<MeshMsg>, token: u64) {
        let now = self.now(ctx.now());
        if token == TIMER_CLEAN {
            self.tracker.on_clean_tick(now);
        } else {
            self.tracker.update_gauges();
            self.copy_runtime_stats(ctx);
        }
    }

    fn on_signal(&mut self, _ctx: &mut Ctx<MeshMsg>, signal: Signal) {
        match signal {
            Signal::Reload => self.shared.access_list.reload_and_log(),
            Signal::Terminate => log::debug!("worker stopping on signal"),
        }
    }

    fn on_stop(&mut self, ctx: &mut Ctx<MeshMsg>) {
        self.copy_runtime_stats(ctx);
    }
}

impl UringDriver {
    /// A worker that will serve `sockets` with `tracker`.
    pub fn new(tracker: Tracker, shared: ServerState, sockets: WorkerSockets) -> UringDriver {
        UringDriver {
            tracker,
            shared,
            pending_sockets: Some(sockets),
            v4: None,
            v6: None,
            failed: false,
        }
    }

    /// Its tracker (a process serving more protocols shares its shard).
    pub fn tracker_mut(&mut self) -> &mut Tracker {
        &mut self.tracker
    }

    /// A socket could not be armed: the server must stop with an error.
    pub fn failed(&self) -> bool {
        self.failed
    }
}

/// The runtime's configuration for riptide-udp's settings.
pub fn runtime_config(shared: &ServerState, workers: usize) -> RuntimeConfig {
    let config = &shared.config;
    RuntimeConfig {
        workers,
        cores: riptide_common::pinning::worker_cores(&config.cpu_pinning),
        ring_entries: config.udp.ring_entries,
        recv_buffers: config.udp.recv_buffers,
        recv_buffer_size: 2048,
        send_slots: config.udp.send_slots,
        send_slot_size: 2048,
        send_queue: 1024,
        mesh_capacity: config.udp.mesh_capacity,
        handle_signals: true,
        batch_wait_us: config.udp.batch_wait_us,
        ..RuntimeConfig::default()
    }
}

/// Runs the workers on io_uring until a signal stops them.
pub fn run(
    shared: &ServerState,
    trackers: Vec<Tracker>,
    sockets: Vec<WorkerSockets>,
) -> anyhow::Result<()> {
    let rt = runtime_config(shared, trackers.len());
    let handlers = trackers
        .into_iter()
        .zip(sockets)
        .map(|(tracker, s)| UringDriver::new(tracker, shared.clone(), s))
        .collect();
    let stopped = uring_rt::run(&rt, handlers)?;
    if stopped.iter().any(UringDriver::failed) {
        anyhow::bail!("a worker could not arm its socket (logged above); stopped every worker");
    }
    Ok(())
}
