//! `run`: spawn one pinned worker thread per handler, wire the mesh and the
//! wake-up table, run until every worker stopped, join, return the handlers.

use crate::handler::Handler;
use crate::mesh::bytes::{ByteMesh, ByteMeshConfig, ByteMeshEnd, MAX_RECORD_LIMIT};
use crate::mesh::Mesh;
use crate::probe::Probe;
use crate::signals;
use crate::worker::Worker;
use io_uring::{opcode, types::Fd, IoUring};
use std::io;
use std::os::fd::RawFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Sizes and placement of the runtime; every limit is allocated at start.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Number of workers (>= 1); must equal the number of handlers given to `run`.
    pub workers: usize,
    /// `Some`: pin worker i to `cores[i % len]`; `None`: no pinning.
    pub cores: Option<Vec<usize>>,
    /// SQ entries per ring (CQ gets twice as many).
    pub ring_entries: u32,
    /// Provided receive buffers per worker and protocol, at most (power of
    /// two <= 32768). A ring starts with 128 of them in play and doubles
    /// them each loop turn it ran dry (`RtStats::recv_buffers_grown`).
    pub recv_buffers: u16,
    /// Bytes per receive buffer. For UDP this includes a 108-byte header
    /// (recvmsg_out + address + pktinfo); longer datagrams are dropped and
    /// counted as truncated.
    pub recv_buffer_size: u32,
    /// UDP send slots per worker.
    pub send_slots: u32,
    /// Bytes per send slot (largest datagram `send_to` can send).
    pub send_slot_size: u32,
    /// Bounded overflow queue (entries) used when no send slot is free.
    pub send_queue: usize,
    /// Capacity of each SPSC mesh ring.
    pub mesh_capacity: usize,
    /// Bytes of each byte-mesh ring (one per lane and ordered pair of
    /// workers; `Ctx::mesh_push`); 0 = no byte mesh. Rounded up to a power
    /// of two of at least twice `byte_mesh_max_record`.
    pub byte_mesh_ring_bytes: usize,
    /// Longest byte-mesh record.
    pub byte_mesh_max_record: usize,
    /// Most TCP connections per worker: at the limit, accepting pauses
    /// (the kernel's backlog holds new ones) until a connection closes.
    pub max_connections: usize,
    /// Provided receive buffers for TCP per worker, at most (power of two
    /// <= 32768); grows like `recv_buffers`.
    pub tcp_recv_buffers: u16,
    /// Bytes per TCP receive buffer: the most one receive hands over
    /// without a copy.
    pub tcp_recv_buffer_size: u32,
    /// Bytes per outbound chunk: the most one `Ctx::send_with` can write
    /// at once. Chunks are pooled per worker and held only while queued.
    pub tcp_send_chunk: u32,
    /// Most received bytes kept for one connection while its handler has
    /// not consumed them (`Handler::on_inbound_full` beyond).
    pub max_inbound_bytes: usize,
    /// Most bytes queued for sending on one connection (`QueueFull` and
    /// `Handler::on_writable` beyond).
    pub max_outbound_bytes: usize,
    /// How long a graceful close reads and discards, waiting for the
    /// peer's EOF, before it gives up and closes anyway.
    pub tcp_linger: Duration,
    /// Block SIGUSR1/SIGTERM/SIGINT and read them through a signalfd on
    /// worker 0 (the mask is not restored when `run` returns).
    pub handle_signals: bool,
    /// Completion batching: once a worker has something to do, it waits up
    /// to this long (µs) for `batch_completions` completions before it
    /// runs, so at moderate load one wake-up serves several requests
    /// instead of one (IORING_ENTER_EXT_ARG `min_wait_usec`, Linux 6.12;
    /// ignored on older kernels). An idle worker still sleeps until work
    /// arrives. 0 = run as soon as anything completes.
    pub batch_wait_us: u32,
    /// Completions a batched wait gathers before it returns early.
    pub batch_completions: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            workers: 1,
            cores: None,
            ring_entries: 1024,
            recv_buffers: 4096,
            recv_buffer_size: 2048,
            send_slots: 1024,
            send_slot_size: 2048,
            send_queue: 1024,
            mesh_capacity: 4096,
            byte_mesh_ring_bytes: 0,
            byte_mesh_max_record: 16 * 1024,
            max_connections: 65536,
            tcp_recv_buffers: 1024,
            tcp_recv_buffer_size: 4096,
            tcp_send_chunk: 16 * 1024,
            max_inbound_bytes: 64 * 1024,
            max_outbound_bytes: 256 * 1024,
            tcp_linger: Duration::from_secs(2),
            handle_signals: true,
            batch_wait_us: 0,
            batch_completions: 32,
        }
    }
}

/// Why `run` failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A configuration value is out of range.
    #[error("invalid runtime config: {0}")]
    InvalidConfig(&'static str),
    /// io_uring cannot be used at all on this kernel/sandbox.
    #[error("io_uring unavailable: {0}")]
    Unavailable(String),
    /// Spawning a worker thread failed.
    #[error("spawning worker thread: {0}")]
    Spawn(#[source] io::Error),
    /// Creating a worker's ring, buffer rings or send slots failed.
    #[error("worker {worker} set-up: {source}")]
    Setup {
        /// The worker.
        worker: usize,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A worker's loop failed (submit error).
    #[error("worker {worker}: {source}")]
    Io {
        /// The worker.
        worker: usize,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Another worker failed to start, so this one did not run.
    #[error("worker {0} not started because another worker failed")]
    NotStarted(usize),
    /// A handler panicked on this worker.
    #[error("worker {0} panicked")]
    Panicked(usize),
}

/// What workers share: stop flag, wake-up table, start gate and stop latch.
pub(crate) struct Shared {
    pub(crate) terminate: AtomicBool,
    pub(crate) msg_ring: bool,
    ring_fds: Vec<AtomicI32>,
    event_fds: Vec<AtomicI32>,
    gate: Mutex<(usize, bool)>,
    gate_cv: Condvar,
    latch: Mutex<usize>,
    latch_cv: Condvar,
}

impl Shared {
    pub(crate) fn new(workers: usize, msg_ring: bool) -> Shared {
        Shared {
            terminate: AtomicBool::new(false),
            msg_ring,
            ring_fds: (0..workers).map(|_| AtomicI32::new(-1)).collect(),
            event_fds: (0..workers).map(|_| AtomicI32::new(-1)).collect(),
            gate: Mutex::new((0, false)),
            gate_cv: Condvar::new(),
            latch: Mutex::new(0),
            latch_cv: Condvar::new(),
        }
    }

    pub(crate) fn workers(&self) -> usize {
        self.ring_fds.len()
    }

    pub(crate) fn publish(&self, worker: usize, ring_fd: RawFd, event_fd: RawFd) {
        self.ring_fds[worker].store(ring_fd, Ordering::Release);
        self.event_fds[worker].store(event_fd, Ordering::Release);
    }

    pub(crate) fn ring_fd(&self, worker: usize) -> RawFd {
        self.ring_fds
            .get(worker)
            .map_or(-1, |a| a.load(Ordering::Acquire))
    }

    pub(crate) fn write_eventfd(&self, worker: usize) {
        let fd = self
            .event_fds
            .get(worker)
            .map_or(-1, |a| a.load(Ordering::Acquire));
        if fd >= 0 {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64; the eventfd stays open
            // until every worker passed the stop latch.
            unsafe { libc::write(fd, (&raw const one).cast(), 8) };
        }
    }

    /// Wait until every worker built its ring (true) or one failed (false).
    fn start_gate(&self, ok: bool) -> bool {
        let n = self.workers();
        let mut g = self
            .gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.0 += 1;
        if !ok {
            g.1 = true;
        }
        self.gate_cv.notify_all();
        while g.0 < n && !g.1 {
            g = self
                .gate_cv
                .wait(g)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        !g.1
    }

    fn fail_gate(&self) {
        let mut g = self
            .gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.1 = true;
        self.gate_cv.notify_all();
    }

    /// Wait until every worker has left its loop: only then may rings (MSG_RING
    /// targets) and eventfds be closed.
    fn stop_latch(&self) {
        let n = self.workers();
        let mut g = self
            .latch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *g += 1;
        self.latch_cv.notify_all();
        while *g < n {
            g = self
                .latch_cv
                .wait(g)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Wake every other worker from outside a loop (after a panic).
    fn wake_all_from_outside(&self, except: usize) {
        if !self.msg_ring {
            for w in (0..self.workers()).filter(|w| *w != except) {
                self.write_eventfd(w);
            }
            return;
        }
        let Ok(mut ring) = IoUring::new(self.workers().next_power_of_two().max(2) as u32) else {
            return;
        };
        let mut n = 0;
        for w in (0..self.workers()).filter(|w| *w != except) {
            let fd = self.ring_fd(w);
            if fd < 0 {
                continue;
            }
            let e = opcode::MsgRingData::new(
                Fd(fd),
                0,
                crate::user_data::UserData::new(crate::user_data::Kind::Wake, except).0,
                None,
            )
            .build();
            // SAFETY: MSG_RING references no user memory.
            if unsafe { ring.submission().push(&e) }.is_ok() {
                n += 1;
            }
        }
        let _ = ring.submit_and_wait(n);
    }
}

/// Every worker may hold `max_connections` sockets: make sure the process
/// may open that many (raising the soft limit), and say what was found.
fn check_fd_limit(cfg: &RuntimeConfig) {
    // Sockets, rings, eventfds, files of the tracker itself.
    let needed = (cfg.workers as u64)
        .saturating_mul(cfg.max_connections as u64)
        .saturating_add(256);
    match crate::socket::ensure_fd_limit(needed) {
        Ok(l) if l.soft < needed => log::warn!(
            "open files: hard limit {} is below workers x max_connections + 256 = {needed}; \
             accepting will back off when descriptors run out",
            l.hard
        ),
        Ok(l) if l.soft != l.soft_before => log::info!(
            "open files: soft limit raised from {} to {} (workers x max_connections + 256 = {needed})",
            l.soft_before,
            l.soft
        ),
        Ok(l) => log::debug!("open files: soft limit {} covers {needed}", l.soft),
        Err(e) => log::warn!("open files: cannot read or raise RLIMIT_NOFILE: {e}"),
    }
}

fn pin(worker: usize, cores: Option<&Vec<usize>>) {
    let Some(cores) = cores.filter(|c| !c.is_empty()) else {
        return;
    };
    let core = cores[worker % cores.len()];
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write inside it
    // (CPU_SET ignores cores beyond CPU_SETSIZE).
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw const set)
    };
    if r != 0 {
        log::warn!(
            "worker {worker}: pinning to core {core} failed: {}",
            io::Error::last_os_error()
        );
    }
}

/// Spawn one thread per handler (worker i runs `handlers[i]`, pinned per
/// `cfg`), run until every worker stopped (signal or `ctx.stop()`), join and
/// return the handlers in order.
///
/// With `cfg.handle_signals`, SIGUSR1/SIGTERM/SIGINT are blocked in the
/// calling thread before spawning and are not unblocked on return.
pub fn run<H: Handler>(cfg: &RuntimeConfig, handlers: Vec<H>) -> Result<Vec<H>, RuntimeError> {
    let n = handlers.len();
    if cfg.workers == 0 || n != cfg.workers {
        return Err(RuntimeError::InvalidConfig(
            "workers must be >= 1 and equal handlers.len()",
        ));
    }
    if !cfg.recv_buffers.is_power_of_two() || cfg.recv_buffers > 32768 {
        return Err(RuntimeError::InvalidConfig(
            "recv_buffers must be a power of two <= 32768",
        ));
    }
    if !cfg.tcp_recv_buffers.is_power_of_two() || cfg.tcp_recv_buffers > 32768 {
        return Err(RuntimeError::InvalidConfig(
            "tcp_recv_buffers must be a power of two <= 32768",
        ));
    }
    if cfg.tcp_recv_buffer_size == 0 || cfg.tcp_send_chunk == 0 || cfg.max_outbound_bytes == 0 {
        return Err(RuntimeError::InvalidConfig(
            "tcp_recv_buffer_size, tcp_send_chunk, max_outbound_bytes must be > 0",
        ));
    }
    if cfg.ring_entries == 0
        || cfg.send_slots == 0
        || cfg.send_slot_size == 0
        || cfg.mesh_capacity == 0
    {
        return Err(RuntimeError::InvalidConfig(
            "ring_entries, send_slots, send_slot_size, mesh_capacity must be > 0",
        ));
    }
    check_fd_limit(cfg);
    let probe = Probe::detect();
    if !probe.has_io_uring() {
        return Err(RuntimeError::Unavailable(probe.to_string()));
    }
    if cfg.handle_signals {
        if let Err(e) = signals::block_runtime_signals() {
            log::warn!("blocking signals failed ({e}); signals not handled");
        }
    }
    let shared = Arc::new(Shared::new(n, probe.has_msg_ring()));
    let meshes = Mesh::<H::Msg>::new(n, cfg.mesh_capacity);
    let mut byte_meshes: Vec<Option<ByteMeshEnd>> = if cfg.byte_mesh_ring_bytes > 0 {
        ByteMesh::new(&ByteMeshConfig {
            workers: n,
            request_ring_bytes: cfg.byte_mesh_ring_bytes,
            reply_ring_bytes: cfg.byte_mesh_ring_bytes,
            max_record_bytes: cfg.byte_mesh_max_record.min(MAX_RECORD_LIMIT),
        })
        .into_iter()
        .map(Some)
        .collect()
    } else {
        (0..n).map(|_| None).collect()
    };
    let mut threads = Vec::with_capacity(n);
    for (i, (mut handler, mesh)) in handlers.into_iter().zip(meshes).enumerate() {
        let bytes = byte_meshes[i].take();
        let cfg = cfg.clone();
        let probe = probe.clone();
        let shared_w = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name(format!("riptide-w{i}"))
            .spawn(move || -> (H, Result<(), RuntimeError>) {
                let shared = shared_w;
                pin(i, cfg.cores.as_ref());
                // A panic here must still reach the start gate, or the other
                // workers (and `run`) would wait there for ever.
                let worker = panic::catch_unwind(AssertUnwindSafe(|| {
                    Worker::new(i, &cfg, &probe, Arc::clone(&shared), mesh, bytes)
                }))
                .unwrap_or_else(|_| Err(io::Error::other("worker set-up panicked")));
                let ok = worker.is_ok();
                if !shared.start_gate(ok) {
                    return match worker {
                        Err(source) => (handler, Err(RuntimeError::Setup { worker: i, source })),
                        Ok(_) => (handler, Err(RuntimeError::NotStarted(i))),
                    };
                }
                let Ok(mut worker) = worker else {
                    return (handler, Err(RuntimeError::NotStarted(i)));
                };
                let result = panic::catch_unwind(AssertUnwindSafe(|| worker.run(&mut handler)));
                let result = match result {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(source)) => Err(RuntimeError::Io { worker: i, source }),
                    Err(_) => Err(RuntimeError::Panicked(i)),
                };
                if result.is_err() {
                    // Do not leave the others running forever.
                    shared.terminate.store(true, Ordering::Release);
                    shared.wake_all_from_outside(i);
                }
                shared.stop_latch();
                // On this thread (SINGLE_ISSUER): Worker's Drop cancels what is
                // in flight, then the ring goes first (field order), then the
                // memory it used.
                drop(worker);
                (handler, result)
            });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                shared.fail_gate();
                for t in threads {
                    let _ = t.join();
                }
                return Err(RuntimeError::Spawn(e));
            }
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut first_err = None;
    for (i, t) in threads.into_iter().enumerate() {
        match t.join() {
            Ok((h, r)) => {
                if let Err(e) = r {
                    first_err.get_or_insert(e);
                }
                out.push(h);
            }
            Err(_) => {
                first_err.get_or_insert(RuntimeError::Panicked(i));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
