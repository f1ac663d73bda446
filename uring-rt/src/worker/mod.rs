//! One worker: its ring, buffer rings, `Ctx` and the loop.
//!
//! Each turn: flush what the handlers queued (one SQE batch), one
//! `submit_and_wait(1)`, handle every ready completion, drain the mesh.
//! Dropping a worker with ops in flight is safe in two steps: `Drop`
//! first cancels every op synchronously (`IORING_REGISTER_SYNC_CANCEL`,
//! bounded wait), then the fields go in declaration order: the ring first,
//! then every piece of memory the kernel may still touch (buffer rings, send
//! slots, boxed headers).

use crate::bufring::BufRing;
use crate::ctx::Ctx;
use crate::deadline;
use crate::handler::{Handler, Signal, LOOK_AHEAD};
use crate::mesh::bytes::{ByteMeshEnd, ByteReceiver, Lane};
use crate::mesh::MeshEnd;
use crate::probe::Probe;
use crate::ring;
use crate::runtime::{RuntimeConfig, Shared};
use crate::send::SendPool;
use crate::signals::SignalFd;
use crate::stats::RtStats;
use crate::tcp::{ConnTable, Limits, Tcp};
use crate::user_data::{Kind, UserData};
use io_uring::types::{CancelBuilder, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Buffer group of UDP receives.
const UDP_BGID: u16 = 0;
/// Buffer group of TCP receives.
const TCP_BGID: u16 = 1;
/// How long a stopping worker waits for in-flight sends.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);
/// How long `Drop` waits for the kernel to cancel what is still in flight.
const CANCEL_LIMIT: Duration = Duration::from_millis(500);
/// Name space of a UDP receive: `sizeof(struct sockaddr_in6)`, enough for
/// either family.
const RECV_NAME_LEN: u32 = std::mem::size_of::<libc::sockaddr_in6>() as u32;
/// Control space of a UDP receive: one pktinfo cmsg of either family, with
/// room to spare.
const RECV_CONTROL_LEN: u32 = 64;
/// UDP sockets (by index) that get file-table slots: the socket at slot
/// `i`, its sender at `UDP_FILE_SLOTS + i`; sockets beyond it are named by
/// plain descriptor.
const UDP_FILE_SLOTS: u32 = 64;

/// Build an op on a [`crate::ctx::File`]: through its file-table slot when
/// it has one, else through its descriptor. (The io-uring builders take the
/// file as a sealed trait, so one function cannot pass either kind.)
macro_rules! on_file {
    ($file:expr, |$t:ident| $op:expr) => {
        match $file {
            (Some(slot), _) => {
                let $t = Fixed(slot);
                $op
            }
            (None, fd) => {
                let $t = Fd(fd);
                $op
            }
        }
    };
}

// After `on_file!`: the macro is visible in these by textual order.
mod tcp;
mod timers;
mod udp;

/// The eventfd a worker is woken through when MSG_RING is missing.
struct WakeFd {
    fd: OwnedFd,
    buf: Box<u64>,
    armed: bool,
}

#[allow(clippy::struct_excessive_bools)]
pub(crate) struct Worker<M> {
    /// Declared first: dropped before everything the kernel may touch.
    ring: IoUring,
    /// Enters `ring` through its registered index.
    enter: ring::Enter,
    udp_bufs: BufRing,
    /// Created by the flush that arms the first ACCEPT (UDP-only workers
    /// never map it); only connections accepted after that use group TCP_BGID.
    tcp_bufs: Option<BufRing>,
    /// `(entries, bytes each)` of the TCP buffer ring, for its lazy creation.
    tcp_bufs_size: (u16, u32),
    pub(crate) ctx: Ctx<M>,
    /// The msghdr template of multishot RECVMSG (name + control lengths).
    recv_hdr: Box<libc::msghdr>,
    signal: Option<SignalFd>,
    signal_armed: bool,
    wake_fd: Option<WakeFd>,
    tick: Box<Timespec>,
    tick_armed: bool,
    /// One deadline tick: the TIMEOUT armed while any deadline is set.
    deadline_tick: Box<Timespec>,
    deadline_armed: bool,
    /// Slots whose deadline passed this turn (reused).
    expired: Vec<u32>,
    cqes: Vec<cqueue::Entry>,
    inbox: Vec<(usize, M)>,
    /// The receiving half of the byte mesh (the sending half is the Ctx's).
    bytes_rx: Option<ByteReceiver>,
    shared: Arc<Shared>,
    multishot_timer: bool,
    terminate_seen: bool,
    /// `(min_wait_usec, completions)` of a batched wait; `None` when off or
    /// when the kernel lacks IORING_FEAT_MIN_TIMEOUT.
    batch: Option<(u32, u32)>,
    /// Completions pile up faster than batched waits return (see `turn`).
    behind: bool,
    /// The sparse file table was sized and registered, at the first flush
    /// (`register_file_table`), or that failed and was logged.
    file_table_sized: bool,
    /// A sparse file table is registered: UDP sockets and their senders go
    /// in its first `2 * UDP_FILE_SLOTS` entries, connections (if the
    /// handler added a listener before the first turn) in one entry per
    /// slot after them, so their SQEs skip the file lookup and reference
    /// count. Unregistered at drop.
    file_table: bool,
    /// UDP sockets still go into the file table (false after a failed update).
    file_table_open: bool,
    /// The kernel lets go of a closed entry's file at once, so connections
    /// may go into the table (`Probe::frees_table_entries_on_close`).
    conn_table_ok: bool,
}

impl<M: Copy + Send + 'static> Worker<M> {
    /// Build on the worker's own thread (SINGLE_ISSUER binds the ring to
    /// its creating task) and publish the ring fd / eventfd for wake-ups.
    pub(crate) fn new(
        index: usize,
        cfg: &RuntimeConfig,
        probe: &Probe,
        shared: Arc<Shared>,
        mesh: MeshEnd<M>,
        bytes: Option<ByteMeshEnd>,
    ) -> io::Result<Worker<M>> {
        let (ring, _flags) = ring::build(cfg.ring_entries, probe.setup_flags())?;
        let udp_bufs = BufRing::new(
            &ring.submitter(),
            UDP_BGID,
            cfg.recv_buffers,
            cfg.recv_buffer_size,
        )?;
        let sends = SendPool::new(cfg.send_slots, cfg.send_slot_size, cfg.send_queue)?;
        let limits = Limits {
            max_conns: cfg.max_connections.max(1),
            max_inbound: cfg.max_inbound_bytes,
            max_outbound: cfg.max_outbound_bytes,
            linger: cfg.tcp_linger,
        };
        let tcp = Tcp::new(
            limits,
            cfg.tcp_send_chunk,
            cfg.tcp_recv_buffer_size as usize,
        );
        let workers = shared.workers();
        let (bytes_tx, bytes_rx) = bytes.map(ByteMeshEnd::split).unzip();
        let ctx = Ctx::new(index, workers, mesh, bytes_tx, sends, tcp);
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_namelen = RECV_NAME_LEN;
        hdr.msg_controllen = RECV_CONTROL_LEN as _;
        let signal = if index == 0 && cfg.handle_signals {
            match SignalFd::new() {
                Ok(s) => Some(s),
                Err(e) => {
                    log::warn!("signalfd failed ({e}); signals not handled");
                    None
                }
            }
        } else {
            None
        };
        let wake_fd = if shared.msg_ring {
            None
        } else {
            // SAFETY: eventfd has no memory preconditions; result checked.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fd was just created and is owned by nobody else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            Some(WakeFd {
                fd,
                buf: Box::new(0),
                armed: false,
            })
        };
        shared.publish(
            index,
            ring.as_raw_fd(),
            wake_fd.as_ref().map_or(-1, |w| w.fd.as_raw_fd()),
        );
        let cq = ring.params().cq_entries() as usize;
        let batch = (cfg.batch_wait_us > 0
            && cfg.batch_completions > 1
            && ring.params().is_feature_min_timeout())
        .then_some((cfg.batch_wait_us, cfg.batch_completions));
        if cfg.batch_wait_us > 0 && batch.is_none() && index == 0 {
            log::info!("completion batching off: the kernel lacks IORING_FEAT_MIN_TIMEOUT (6.12)");
        }
        let enter = ring::Enter::new(&ring);
        if index == 0 && !enter.is_registered() {
            log::info!(
                "ring fds not registered (Linux 5.18+): every io_uring_enter looks the ring up"
            );
        }
        Ok(Worker {
            ring,
            enter,
            udp_bufs,
            tcp_bufs: None,
            tcp_bufs_size: (cfg.tcp_recv_buffers, cfg.tcp_recv_buffer_size),
            ctx,
            recv_hdr: Box::new(hdr),
            signal,
            signal_armed: false,
            wake_fd,
            tick: Box::new(Timespec::from(Duration::from_millis(10))),
            tick_armed: false,
            deadline_tick: Box::new(Timespec::from(deadline::TICK)),
            deadline_armed: false,
            expired: Vec::new(),
            cqes: Vec::with_capacity(cq),
            inbox: Vec::with_capacity(cfg.mesh_capacity.saturating_mul(2 * workers)),
            bytes_rx,
            shared,
            multishot_timer: probe.has_multishot_timeout(),
            terminate_seen: false,
            batch,
            behind: false,
            file_table_sized: false,
            file_table: false,
            file_table_open: false,
            conn_table_ok: probe.frees_table_entries_on_close(),
        })
    }

    /// Register the sparse file table, once, before the first SQE that could
    /// use it: UDP entries always; an entry per connection slot as well if
    /// the handler added a listener by now (its `on_start`), so a UDP-only
    /// worker does not hold kernel memory for connections, capped where the
    /// kernel would refuse the table ([`conn_entries`]). A refused table, or
    /// a kernel before 6.13, leaves connections named by descriptor; without
    /// any table, UDP sockets are too.
    fn register_file_table(&mut self) {
        self.file_table_sized = true;
        let udp = 2 * UDP_FILE_SLOTS;
        let conns = if self.ctx.tcp.listeners.is_empty() {
            0
        } else if !self.conn_table_ok {
            log::info!(
                "worker {}: connections named by descriptor: before Linux 6.13 a closed \
                 file-table entry can hold its socket open",
                self.ctx.worker
            );
            0
        } else {
            let nofile = crate::socket::nofile_limit().map_or(u64::MAX, |l| l.rlim_cur);
            let n = conn_entries(self.ctx.tcp.limits.max_conns, nofile, udp);
            if (n as usize) < self.ctx.tcp.limits.max_conns {
                log::info!(
                    "worker {}: file-table entries for the first {n} of {} connection slots \
                     (RLIMIT_NOFILE {nofile}); later slots go by descriptor",
                    self.ctx.worker,
                    self.ctx.tcp.limits.max_conns
                );
            }
            n
        };
        let submitter = self.ring.submitter();
        if conns > 0 {
            match submitter.register_files_sparse(udp.saturating_add(conns)) {
                Ok(()) => {
                    self.ctx.tcp.table = Some(ConnTable {
                        base: udp,
                        // Zeroed: calloc'd, so only entries in use are touched.
                        fds: vec![0; conns as usize].into_boxed_slice(),
                        open: true,
                    });
                }
                Err(e) => log::info!(
                    "worker {}: connections named by descriptor: a file table of {} entries \
                     was refused: {e}",
                    self.ctx.worker,
                    udp.saturating_add(conns),
                ),
            }
        }
        if self.ctx.tcp.table.is_none() {
            if let Err(e) = submitter.register_files_sparse(udp) {
                log::debug!(
                    "worker {}: no file table ({e}); sockets named by descriptor",
                    self.ctx.worker
                );
                return;
            }
        }
        self.file_table = true;
        self.file_table_open = true;
    }

    /// Run `h` until stopped (ctx.stop(), Terminate), then drain sends.
    pub(crate) fn run<H: Handler<Msg = M>>(&mut self, h: &mut H) -> io::Result<()> {
        self.ctx.now = Instant::now();
        h.on_start(&mut self.ctx);
        loop {
            self.turn(h, false)?;
            if !self.terminate_seen && self.shared.terminate.load(Ordering::Acquire) {
                self.terminate_seen = true;
                h.on_signal(&mut self.ctx, Signal::Terminate);
                self.ctx.stop_requested = true;
            }
            if self.ctx.stop_all_requested && !self.terminate_seen {
                self.terminate_seen = true;
                self.terminate_all();
            }
            if self.ctx.stop_requested {
                break;
            }
        }
        h.on_stop(&mut self.ctx);
        // Cancel the ACCEPTs (a stopping worker takes no new connection).
        self.ctx.tcp.listeners_dirty = true;
        let deadline = Instant::now() + DRAIN_LIMIT;
        self.flush()?;
        self.enter.submit(&mut self.ring, 0, 0)?;
        while (self.ctx.sends.outstanding() > 0 || self.ctx.tcp.sending() > 0)
            && Instant::now() < deadline
        {
            self.tick_armed_or_arm();
            self.turn(h, true)?;
        }
        Ok(())
    }

    /// Tell every other worker to terminate (they see the flag when woken)
    /// and stop this one.
    fn terminate_all(&mut self) {
        self.shared.terminate.store(true, Ordering::Release);
        for w in 0..self.ctx.workers {
            if w != self.ctx.worker {
                self.ctx.wake(w);
            }
        }
        self.ctx.stop_requested = true;
    }

    fn tick_armed_or_arm(&mut self) {
        if !self.tick_armed {
            self.tick_armed = true;
            let e = opcode::Timeout::new(&raw const *self.tick)
                .build()
                .user_data(UserData::new(Kind::Tick, 0).0);
            // SAFETY: the Timespec is boxed in the Worker, which outlives the ring.
            let pushed = unsafe { push(&mut self.ring, &mut self.ctx.stats, &e) };
            if !matches!(pushed, Ok(true)) {
                self.tick_armed = false;
            }
        }
    }

    fn turn<H: Handler<Msg = M>>(&mut self, h: &mut H, draining: bool) -> io::Result<()> {
        self.flush()?;
        // A mesh drain that hit its budget left messages queued: do not block.
        let backlog = self.ctx.mesh.has_backlog()
            || self
                .bytes_rx
                .as_ref()
                .is_some_and(ByteReceiver::has_backlog)
            || !self.ctx.tcp.redeliver.is_empty()
            || !self.ctx.tcp.writable.is_empty();
        let want = u32::from(!backlog);
        let entered = match self.batch {
            // Sleep until the first completion, then gather up to `n` for
            // at most `us` µs: one wake-up for several requests. Not while
            // the worker is behind (`behind`, below): then the completions
            // are there already, and a gathering wait that sleeps anyway
            // (a moment with fewer than `n` ready) only lets the socket
            // queue grow into turns of hundreds, which spill the send
            // slots and the cached part of the buffer ring (0.93× → 0.96×
            // of the `poll` loop at saturation, README).
            Some((us, n)) if want == 1 && !draining => {
                if self.behind {
                    self.ctx.stats.busy_turns += 1;
                    self.enter.submit(&mut self.ring, 1, 0)
                } else {
                    self.enter.submit(&mut self.ring, n, us)
                }
            }
            _ => self.enter.submit(&mut self.ring, want, 0),
        };
        self.ctx.stats.submit_batches += 1;
        match entered {
            Ok(n) => self.ctx.stats.submitted_sqes += n as u64,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EAGAIN | libc::EBUSY | libc::ETIME)
                ) => {}
            Err(e) => return Err(e),
        }
        self.ctx.now = Instant::now();
        self.cqes.clear();
        let cap = self.cqes.capacity();
        self.cqes.extend(self.ring.completion().take(cap));
        if let Some((_, n)) = self.batch {
            // Behind from a turn of 4× what a wait gathers (receives and
            // the sends they answered count alike) until one of fewer than
            // 1×: a burst at moderate load is one or two turns without the
            // wait, a saturated worker (turns of ~130) stays behind.
            let n = n as usize;
            if self.cqes.len() >= 4 * n {
                self.behind = true;
            } else if self.cqes.len() < n {
                self.behind = false;
            }
        }
        for i in 0..self.cqes.len() {
            if !draining && i % LOOK_AHEAD == 0 {
                self.look_ahead(h, i);
            }
            let c = self.cqes[i].clone();
            self.dispatch(h, c.user_data(), c.result(), c.flags(), draining);
        }
        if !draining {
            self.inbox.clear();
            let inbox = &mut self.inbox;
            self.ctx.mesh.drain(|from, m| inbox.push((from, m)));
            for i in 0..self.inbox.len() {
                let (from, m) = self.inbox[i];
                self.ctx.stats.mesh_received += 1;
                h.on_mesh(&mut self.ctx, from, m);
            }
            self.drain_byte_mesh(h);
        }
        self.tcp_callbacks(h, draining);
        self.expire_deadlines(h, draining);
        self.closed_callbacks(h, draining);
        // A handler may have resumed a connection from a deadline or a
        // close: hand over its kept bytes now, not after the next wait.
        self.tcp_callbacks(h, draining);
        self.grow_dry_rings();
        Ok(())
    }

    /// Hand the byte mesh's records to the handler, wake the workers it
    /// freed ring space for, and tell the handler which of its own refused
    /// pushes may now be retried.
    fn drain_byte_mesh<H: Handler<Msg = M>>(&mut self, h: &mut H) {
        if let Some(rx) = self.bytes_rx.as_mut() {
            let ctx = &mut self.ctx;
            rx.drain(|from, lane, record| {
                ctx.stats.mesh_records_received += 1;
                h.on_mesh_record(ctx, from, lane, record);
            });
            for &w in rx.space_freed() {
                ctx.wake(w);
            }
        }
        if self.ctx.bytes.is_none() {
            return;
        }
        for to in 0..self.ctx.workers {
            for lane in [Lane::Reply, Lane::Request] {
                let need = self.ctx.mesh_refused[to][lane as usize];
                if need > 0 && self.ctx.mesh_space(to, lane) >= need {
                    self.ctx.mesh_refused[to][lane as usize] = 0;
                    h.on_mesh_space(&mut self.ctx, to, lane);
                }
            }
        }
    }

    /// Give a buffer ring that ran dry this turn more buffers.
    fn grow_dry_rings(&mut self) {
        if let Some(n) = self.udp_bufs.grow_if_dry() {
            self.ctx.stats.recv_buffers_grown += 1;
            log::debug!(
                "worker {}: UDP receive buffers in play: {n}",
                self.ctx.worker
            );
        }
        if let Some(n) = self.tcp_bufs.as_mut().and_then(BufRing::grow_if_dry) {
            self.ctx.stats.recv_buffers_grown += 1;
            log::debug!(
                "worker {}: TCP receive buffers in play: {n}",
                self.ctx.worker
            );
        }
    }

    fn dispatch<H: Handler<Msg = M>>(
        &mut self,
        h: &mut H,
        user_data: u64,
        res: i32,
        flags: u32,
        draining: bool,
    ) {
        let ud = UserData(user_data);
        let index = ud.index();
        self.ctx.stats.completions += 1;
        let more = cqueue::more(flags);
        match ud.kind() {
            Some(Kind::UdpRecv) => self.udp_recv(h, index, res, flags, draining),
            Some(Kind::UdpSend) => self.udp_send_done(index, res),
            Some(Kind::Accept) => self.accept(h, ud, res, draining),
            Some(Kind::AcceptRetry) => self.accept_retry(index),
            Some(Kind::TcpRecv) => self.tcp_recv(h, ud, res, flags, draining),
            Some(Kind::TcpSend) => self.tcp_send_done(ud, res),
            Some(Kind::TcpClose) => self.tcp_close_done(ud, res),
            Some(Kind::TcpFile) => self.tcp_file_failed(ud, res),
            Some(Kind::Timer) => self.timer_fired(h, index, res, more, draining),
            Some(Kind::Signal) => self.signal_read(h, res, draining),
            Some(Kind::Wake) => {
                if let Some(w) = self.wake_fd.as_mut() {
                    w.armed = false;
                }
            }
            Some(Kind::MsgRingSent) => {
                if res < 0 {
                    log::debug!(
                        "worker {}: msg_ring to {index}: {}",
                        self.ctx.worker,
                        io::Error::from_raw_os_error(-res)
                    );
                }
            }
            Some(Kind::Cancel) => {}
            Some(Kind::Tick) => self.tick_armed = false,
            Some(Kind::Deadline) => self.deadline_armed = false,
            None => log::debug!(
                "worker {}: completion with unknown user_data {user_data:#x}",
                self.ctx.worker
            ),
        }
    }

    /// Turn everything the handlers queued into SQEs. Stops early (leaving
    /// the rest queued for the next turn) only when the kernel refuses more
    /// submissions right now (CQ overflow back-pressure).
    fn flush(&mut self) -> io::Result<()> {
        if !self.file_table_sized {
            self.register_file_table();
        }
        let _ = self.flush_udp()? && self.flush_tcp()? && self.flush_timers()?;
        Ok(())
    }
}

impl<M> Drop for Worker<M> {
    /// Cancel every op still in flight and wait (at most CANCEL_LIMIT) until
    /// the kernel has let go of them, so the memory they point at is no
    /// longer used when the fields drop. Closing the ring alone does not
    /// promise that: the kernel tears a ring down asynchronously (exit work
    /// in a kworker), and on kernels without DEFER_TASKRUN a multishot
    /// receive's task work can still run on this thread (on return from the
    /// close or a munmap) and fill a provided buffer. If the kernel lacks
    /// SYNC_CANCEL (Linux < 6.0) or the wait times out, the field order is
    /// the remaining defence: ring before memory. SINGLE_ISSUER rings accept
    /// this only from their own thread, which is where workers are dropped.
    fn drop(&mut self) {
        let limit = Timespec::from(CANCEL_LIMIT);
        match self
            .ring
            .submitter()
            .register_sync_cancel(Some(limit), CancelBuilder::any())
        {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => log::debug!("worker {}: sync cancel at drop: {e}", self.ctx.worker),
        }
        // One more enter runs the deferred work of the cancelled operations,
        // which frees them and the socket references they hold.
        let _ = self.enter.submit(&mut self.ring, 0, 0);
        // The file table holds its own reference to each UDP socket, which
        // the kernel drops only when it tears the ring down, some time after
        // the fd closes: release it now, so the ports are free when the
        // runtime returns.
        if self.file_table {
            if let Err(e) = self.ring.submitter().unregister_files() {
                log::debug!("worker {}: unregister files at drop: {e}", self.ctx.worker);
            }
        }
        self.enter.unregister(&self.ring);
    }
}

/// Connection entries of a worker's file table, after its `udp` ones: one
/// per connection slot, capped where the kernel would refuse the table
/// (more than `RLIMIT_NOFILE` or 2^20 entries in all). Every connection
/// also holds a descriptor under that limit, so at most a few slots past
/// the cap can ever be in use; they go by descriptor.
fn conn_entries(max_conns: usize, nofile: u64, udp: u32) -> u32 {
    const MAX_TABLE: u64 = 1 << 20;
    let room = nofile.min(MAX_TABLE).saturating_sub(u64::from(udp));
    u32::try_from((max_conns as u64).min(room)).unwrap_or(0)
}

/// Push one SQE, submitting first when the SQ is full. `Ok(false)`: the
/// kernel cannot take more right now (EBUSY/EAGAIN); try next turn.
///
/// # Safety
/// Every buffer `e` points at must stay valid (and, for buffers the kernel
/// writes, unaliased) until the operation's final completion.
unsafe fn push(ring: &mut IoUring, stats: &mut RtStats, e: &squeue::Entry) -> io::Result<bool> {
    // SAFETY: forwarded from the caller's contract.
    if unsafe { ring.submission().push(e) }.is_ok() {
        return Ok(true);
    }
    match ring.submit() {
        Ok(n) => {
            stats.sq_full_submits += 1;
            stats.submitted_sqes += n as u64;
        }
        Err(err)
            if matches!(
                err.raw_os_error(),
                Some(libc::EBUSY | libc::EAGAIN | libc::EINTR)
            ) =>
        {
            return Ok(false)
        }
        Err(err) => return Err(err),
    }
    // SAFETY: forwarded from the caller's contract.
    Ok(unsafe { ring.submission().push(e) }.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::Mesh;
    use crate::tcp::conn::TableEntry;
    use crate::{Datagram, SocketId};
    use io_uring::IoUring;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};

    /// Echoes TCP bytes back; ignores datagrams.
    struct Echo;
    impl Handler for Echo {
        type Msg = ();
        fn on_datagram(&mut self, ctx: &mut Ctx<()>, d: Datagram<'_>) {
            let p = d.payload;
            let _ = ctx.send_to(d.socket, d.src, None, |b| {
                b[..p.len()].copy_from_slice(p);
                p.len()
            });
        }
        fn on_recv(&mut self, ctx: &mut Ctx<()>, conn: crate::ConnId, data: &mut [u8]) -> usize {
            let _ = ctx.send(conn, data);
            data.len()
        }
    }

    /// The kernel's probe, or `None` (after printing why) when the UDP
    /// path, or with `tcp` also the TCP path, cannot run here.
    fn probe_or_skip(tcp: bool) -> Option<Probe> {
        let probe = Probe::detect();
        let mut missing = probe.missing_for_udp();
        if tcp {
            missing.extend(probe.missing_for_tcp());
        }
        if missing.is_empty() {
            return Some(probe);
        }
        eprintln!(
            "SKIP: io_uring path unavailable on {}: missing {missing:?}",
            probe.kernel()
        );
        None
    }

    fn test_worker(probe: &Probe) -> Worker<()> {
        test_worker_with(probe, 16)
    }

    fn test_worker_with(probe: &Probe, max_connections: usize) -> Worker<()> {
        let cfg = RuntimeConfig {
            ring_entries: 64,
            recv_buffers: 64,
            send_slots: 16,
            send_queue: 16,
            mesh_capacity: 16,
            max_connections,
            max_outbound_bytes: 4096,
            handle_signals: false,
            ..RuntimeConfig::default()
        };
        let shared = Arc::new(Shared::new(1, probe.has_msg_ring()));
        let mesh = Mesh::<()>::new(1, cfg.mesh_capacity).pop().unwrap();
        Worker::new(0, &cfg, probe, shared, mesh, None).unwrap()
    }

    #[test]
    fn an_enter_that_does_not_wait_still_posts_receives() {
        let Some(probe) = probe_or_skip(false) else {
            return;
        };
        // With DEFER_TASKRUN a receive completion is posted by deferred work
        // that only an enter asking for events runs. The loop enters without
        // waiting while the mesh has a backlog; receives must still come in.
        let mut wk = test_worker(&probe);
        let id = wk
            .ctx
            .add_udp(UdpSocket::bind("127.0.0.1:0").unwrap())
            .unwrap();
        let addr = wk.ctx.udp_local_addr(id).unwrap();
        wk.flush().unwrap();
        wk.enter.submit(&mut wk.ring, 0, 0).unwrap();
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .send_to(b"x", addr)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        let received = loop {
            wk.enter.submit(&mut wk.ring, 0, 0).unwrap();
            let received = wk
                .ring
                .completion()
                .any(|c| UserData(c.user_data()).kind() == Some(Kind::UdpRecv) && c.result() > 0);
            if received || Instant::now() > deadline {
                break received;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(
            received,
            "no receive completion from enters that do not wait"
        );
    }

    #[test]
    fn ring_fd_registration_is_released_with_the_worker() {
        let Some(probe) = probe_or_skip(false) else {
            return;
        };
        // A thread may register at most 16 ring fds at once: 40 workers in
        // a row on one thread are all registered only if each one's
        // registration goes with it. Each also answers a datagram.
        for _ in 0..40 {
            let mut wk = test_worker(&probe);
            assert!(wk.enter.is_registered(), "ring fd not registered");
            let id = wk
                .ctx
                .add_udp(UdpSocket::bind("127.0.0.1:0").unwrap())
                .unwrap();
            let addr = wk.ctx.udp_local_addr(id).unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            client.send_to(b"ping", addr).unwrap();
            let mut buf = [0u8; 16];
            let deadline = Instant::now() + Duration::from_secs(5);
            let n = loop {
                wk.tick_armed_or_arm();
                wk.turn(&mut Echo, false).unwrap();
                if let Ok(n) = client.recv(&mut buf) {
                    break n;
                }
                assert!(Instant::now() < deadline, "no echo");
            };
            assert_eq!(&buf[..n], b"ping");
            assert!(wk.file_table, "no file table");
            assert!(
                wk.ctx.tcp.table.is_none(),
                "a worker without listeners has no connection entries"
            );
            assert!(
                wk.ctx.udp[0].fixed.is_some(),
                "socket not in the file table"
            );
        }
    }

    /// The file-table entries the kernel lists for `ring` (its fdinfo):
    /// `(entry, "socket:[inode]")`.
    fn table_entries(ring: &IoUring) -> Vec<(u32, String)> {
        let info =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", ring.as_raw_fd())).unwrap();
        let mut lines = info.lines().skip_while(|l| !l.starts_with("UserFiles:"));
        let n: usize = lines.next().unwrap()["UserFiles:".len()..]
            .trim()
            .parse()
            .unwrap();
        lines
            .take_while(|l| !l.starts_with("UserBufs:"))
            .filter_map(|l| {
                let (i, name) = l.split_once(": ")?;
                Some((i.trim().parse().ok()?, name.trim().to_owned()))
            })
            .inspect(|(i, _)| assert!((*i as usize) < n))
            .collect()
    }

    /// What the kernel calls the socket behind `fd` in its tables.
    fn socket_name(fd: &OwnedFd) -> String {
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    /// Echo `msg` over `client` through the worker.
    fn echo_through(wk: &mut Worker<()>, client: &mut TcpStream, msg: &[u8]) {
        client
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        client.write_all(msg).unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < msg.len() && Instant::now() < deadline {
            wk.tick_armed_or_arm();
            wk.turn(&mut Echo, false).unwrap();
            let mut buf = [0u8; 64];
            if let Ok(n) = client.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(got, msg);
    }

    #[test]
    fn connections_go_into_the_file_table_and_out_before_their_close() {
        let Some(probe) = probe_or_skip(true) else {
            return;
        };
        let mut wk = test_worker(&probe);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        wk.ctx.add_listener(listener).unwrap();
        let base = 2 * UDP_FILE_SLOTS;
        for round in 0..3 {
            // `a` first: in round 0 it takes slot 0.
            let mut a = TcpStream::connect(addr).unwrap();
            echo_through(&mut wk, &mut a, b"ping");
            let mut b = TcpStream::connect(addr).unwrap();
            echo_through(&mut wk, &mut b, b"ping");
            // A connection goes in once it answered once and stays open;
            // the second answers go through the table.
            echo_through(&mut wk, &mut a, b"pong");
            echo_through(&mut wk, &mut b, b"pong");
            let table = wk.ctx.tcp.table.as_ref().expect("no connection entries");
            assert_eq!(table.base, base);
            // Both sockets are in the kernel's table at their slots' entries.
            let mut want: Vec<(u32, String)> = (0..2)
                .map(|i| {
                    let c = &wk.ctx.tcp.conns[i];
                    assert_eq!(c.table, TableEntry::Held, "round {round}");
                    (base + i as u32, socket_name(c.fd.as_ref().unwrap()))
                })
                .collect();
            want.sort();
            assert_eq!(table_entries(&wk.ring), want, "round {round}");
            if round == 0 {
                // Answers go through the entry, not the descriptor: with
                // /dev/null behind `a`'s descriptor one by descriptor would
                // fail. (The receive armed before holds the socket itself.)
                let null = std::fs::File::open("/dev/null").unwrap();
                let fd = wk.ctx.tcp.conns[0].fd.as_ref().unwrap().as_raw_fd();
                // SAFETY: dup2 onto a descriptor the slot owns; it stays
                // open (naming /dev/null now) until the slot's CLOSE.
                assert_eq!(unsafe { libc::dup2(null.as_raw_fd(), fd) }, fd);
                echo_through(&mut wk, &mut a, b"through the table");
            }
            // Closed: out of the table, then closed; the slots are reused
            // (with new generations) in the next round.
            for i in 0..2 {
                let generation = wk.ctx.tcp.conns[i].generation;
                let id = wk.ctx.tcp.id_for_completion(i, generation).unwrap();
                wk.ctx.close(id);
            }
            drop((a, b));
            let deadline = Instant::now() + Duration::from_secs(5);
            while wk.ctx.tcp.open() > 0 && Instant::now() < deadline {
                wk.tick_armed_or_arm();
                wk.turn(&mut Echo, false).unwrap();
            }
            assert_eq!(wk.ctx.tcp.open(), 0, "round {round}: not closed");
            assert_eq!(table_entries(&wk.ring), vec![], "round {round}");
        }
        assert_eq!(wk.ctx.stats.conn_table_errors, 0);
        assert_eq!(wk.ctx.stats.accepts, 6);
    }

    #[test]
    fn the_connection_entries_are_capped_where_the_kernel_would_refuse_them() {
        assert_eq!(conn_entries(16, 20_000, 128), 16);
        assert_eq!(conn_entries(65_536, 20_000, 128), 19_872);
        assert_eq!(conn_entries(1 << 21, u64::MAX, 128), (1 << 20) - 128);
        assert_eq!(conn_entries(16, 100, 128), 0);
        let Some(probe) = probe_or_skip(true) else {
            return;
        };
        // More slots than the kernel allows entries (2^20): the table
        // covers the first ones.
        let mut wk = test_worker_with(&probe, 1 << 21);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        wk.ctx.add_listener(listener).unwrap();
        let mut a = TcpStream::connect(addr).unwrap();
        echo_through(&mut wk, &mut a, b"ping");
        echo_through(&mut wk, &mut a, b"pong");
        let n = wk.ctx.tcp.table.as_ref().map(|t| t.fds.len()).unwrap();
        assert!(n > 0 && n < 1 << 20, "{n} entries");
        assert_eq!(wk.ctx.tcp.conns[0].table, TableEntry::Held);
        // A slot past the table goes by descriptor.
        wk.ctx.tcp.table.as_mut().unwrap().fds = vec![0; 1].into_boxed_slice();
        let mut b = TcpStream::connect(addr).unwrap();
        echo_through(&mut wk, &mut b, b"ping");
        echo_through(&mut wk, &mut b, b"pong");
        assert_eq!(wk.ctx.tcp.conns[1].table, TableEntry::Unused);
        assert_eq!(wk.ctx.stats.conn_table_errors, 0);
    }

    #[test]
    fn tcp_buffer_ring_is_lazy_and_drop_cancel_stops_receives() {
        let Some(probe) = probe_or_skip(true) else {
            return;
        };
        let mut wk = test_worker(&probe);
        let mut handler = Echo;
        // UDP only: no TCP buffer ring, however many turns.
        wk.ctx
            .add_udp(UdpSocket::bind("127.0.0.1:0").unwrap())
            .unwrap();
        wk.flush().unwrap();
        wk.ring.submit().unwrap();
        assert!(wk.tcp_bufs.is_none());
        // The first listener maps and registers it before its ACCEPT.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        wk.ctx.add_listener(listener).unwrap();
        wk.flush().unwrap();
        assert!(wk.tcp_bufs.is_some());
        // A second listener keeps the same ring.
        let first = wk.tcp_bufs.as_ref().map(|b| std::ptr::from_ref(b) as usize);
        wk.ctx
            .add_listener(TcpListener::bind("127.0.0.1:0").unwrap())
            .unwrap();
        wk.flush().unwrap();
        assert_eq!(
            first,
            wk.tcp_bufs.as_ref().map(|b| std::ptr::from_ref(b) as usize)
        );
        // And multishot RECV on the lazily registered group works.
        let mut client = TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        client.write_all(b"ping").unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < 4 && Instant::now() < deadline {
            wk.tick_armed_or_arm();
            wk.turn(&mut handler, false).unwrap();
            let mut buf = [0u8; 16];
            if let Ok(n) = client.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(got, b"ping");
        // What Drop relies on: after one sync cancel no multishot receive
        // fills a buffer any more, even when data arrives right after it.
        let udp = wk.ctx.udp_local_addr(SocketId(0)).unwrap();
        let limit = Timespec::from(CANCEL_LIMIT);
        wk.ring
            .submitter()
            .register_sync_cancel(Some(limit), CancelBuilder::any())
            .unwrap();
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .send_to(b"late", udp)
            .unwrap();
        client.write_all(b"late").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let wait = Timespec::from(Duration::from_millis(50));
        let args = io_uring::types::SubmitArgs::new().timespec(&wait);
        let mut ended = 0;
        while wk.ring.submitter().submit_with_args(1, &args).is_ok() {
            for cqe in wk.ring.completion() {
                let kind = UserData(cqe.user_data()).kind();
                if matches!(kind, Some(Kind::UdpRecv | Kind::TcpRecv | Kind::Accept)) {
                    assert!(
                        cqe.result() <= 0,
                        "{kind:?} completed {} after cancel",
                        cqe.result()
                    );
                    assert!(
                        !cqueue::more(cqe.flags()),
                        "{kind:?} still armed after cancel"
                    );
                    ended += 1;
                }
            }
        }
        // One RECVMSG, two listeners' ACCEPTs and one RECV ended (some may
        // have been reaped by the last turn already).
        assert!(ended <= 2 + 2 * crate::tcp::accept::ACCEPTS);
    }
}
