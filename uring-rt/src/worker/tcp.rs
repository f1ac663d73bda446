//! The TCP part of a worker: turning each dirty listener and connection
//! slot into the SQEs it needs (`tcp::conn::Conn::next_op`), and handling
//! their completions: accepts, receives (with the carry), sends, the
//! SHUTDOWN and CLOSE of a graceful close, deadlines, `on_closed`.

use super::{push, Worker, TCP_BGID};
use crate::bufring::BufRing;
use crate::ctx::Ctx;
use crate::handler::{ConnId, Handler};
use crate::socket;
use crate::tcp::accept::{backs_off, ListenOp, ListenerId, ACCEPTS};
use crate::tcp::conn::{Op, Phase, ReadSide, TableEntry};
use crate::tcp::outbound::NextSend;
use crate::tcp::WAITING_MAX;
use crate::user_data::{Kind, UserData};
use io_uring::types::{Fd, Fixed};
use io_uring::{cqueue, opcode, squeue};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

impl<M: Copy + Send + 'static> Worker<M> {
    /// An ACCEPT completion of listener `ud.index()`, address slot
    /// `ud.generation()`.
    pub(super) fn accept<H: Handler<Msg = M>>(
        &mut self,
        h: &mut H,
        ud: UserData,
        res: i32,
        draining: bool,
    ) {
        let (index, k) = (ud.index(), ud.generation() as usize);
        // SAFETY: a successful ACCEPT returns a new fd that nothing else
        // owns; taken at once so that every early return below closes it.
        let fd = (res >= 0).then(|| unsafe { OwnedFd::from_raw_fd(res) });
        let Some(l) = self.ctx.tcp.listeners.get_mut(index) else {
            return;
        };
        if k >= ACCEPTS {
            return;
        }
        l.completed(k);
        // Re-arm (not while draining; a flag still set from a partly
        // refused flush stays set).
        self.ctx.tcp.listeners_dirty |= !draining;
        let Some(fd) = fd else {
            if res != -libc::ECANCELED {
                self.ctx.stats.accept_errors += 1;
                log::debug!(
                    "worker {}: accept: {}",
                    self.ctx.worker,
                    io::Error::from_raw_os_error(-res)
                );
                if backs_off(-res) {
                    l.backoff_due = true;
                    self.ctx.stats.accept_backoffs += 1;
                }
            }
            return;
        };
        if draining {
            return;
        }
        // Only slot `k`'s buffer is read: the kernel may be writing the others.
        let a = &l.addrs[k];
        // Unspecified if the kernel wrote no usable address.
        let peer = socket::sockaddr_to_std(&a.storage, a.len)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let was_paused = self.ctx.tcp.accept_paused;
        let id = self.ctx.tcp.insert(fd);
        if self.ctx.tcp.accept_paused && !was_paused {
            self.ctx.stats.accept_paused += 1;
        }
        let listener = ListenerId(index as u32);
        match id {
            Ok(id) => {
                self.ctx.stats.accepts += 1;
                h.on_accept(&mut self.ctx, listener, id, peer);
            }
            // Accepted before the pause took effect: it waits for a slot,
            // or (beyond WAITING_MAX) is closed here.
            Err(fd) if self.ctx.tcp.waiting.len() < WAITING_MAX => {
                self.ctx.tcp.waiting.push_back((fd, listener, peer));
            }
            Err(_) => self.ctx.stats.conns_refused += 1,
        }
    }

    /// Listener `index`'s back-off ended: accept again.
    pub(super) fn accept_retry(&mut self, index: usize) {
        if let Some(l) = self.ctx.tcp.listeners.get_mut(index) {
            l.backed_off();
            self.ctx.tcp.listeners_dirty = true;
        }
    }

    /// A RECV completion of a connection slot.
    pub(super) fn tcp_recv<H: Handler<Msg = M>>(
        &mut self,
        h: &mut H,
        ud: UserData,
        res: i32,
        flags: u32,
        draining: bool,
    ) {
        let index = ud.index();
        let bid = cqueue::buffer_select(flags);
        let Some(id) = self.ctx.tcp.id_for_completion(index, ud.generation()) else {
            // Never expected: a slot is reused only after its ops ended.
            if let (Some(bid), Some(bufs)) = (bid, self.tcp_bufs.as_mut()) {
                bufs.recycle(bid);
            }
            return;
        };
        if !cqueue::more(flags) {
            let c = &mut self.ctx.tcp.conns[index];
            c.recv_ended();
            if c.phase == Phase::Open && c.read == ReadSide::Open && !draining {
                self.ctx.stats.rearms += 1;
            }
            self.ctx.tcp.mark(index as u32);
        }
        if res == 0 {
            // EOF (tested first: whatever the flags say).
            if let (Some(bid), Some(bufs)) = (bid, self.tcp_bufs.as_mut()) {
                bufs.recycle(bid);
            }
            let c = &mut self.ctx.tcp.conns[index];
            let was = c.read;
            c.read = match was {
                ReadSide::Paused => ReadSide::PausedEof,
                _ => ReadSide::Eof,
            };
            let open = c.phase == Phase::Open;
            self.ctx.tcp.mark(index as u32);
            if open && draining {
                self.ctx.tcp.close(index as u32);
            } else if open && was == ReadSide::Open {
                h.on_peer_closed(&mut self.ctx, id);
            }
            // Paused: told once it resumes and saw what was kept.
        } else if let Some(bid) = bid {
            // A TCP_BGID buffer implies the ring exists (created before the
            // first ACCEPT, so before any RECV on the group).
            if let Some(bufs) = self.tcp_bufs.as_mut() {
                if res > 0 {
                    let data = bufs.get_mut(bid, res as usize);
                    received(&mut self.ctx, h, id, data, draining);
                }
                bufs.recycle(bid);
            }
        } else if res == -libc::ENOBUFS {
            self.ctx.stats.recv_buffers_exhausted += 1;
            if let Some(bufs) = self.tcp_bufs.as_mut() {
                bufs.ran_dry();
            }
        } else if res < 0 && res != -libc::ECANCELED {
            // Reset by the peer, or another error: the connection is gone.
            self.ctx.stats.recv_errors += 1;
            self.ctx.tcp.abort(index as u32, false);
        }
    }

    /// A SEND/SENDMSG completion of a connection slot.
    pub(super) fn tcp_send_done(&mut self, ud: UserData, res: i32) {
        if self
            .ctx
            .tcp
            .id_for_completion(ud.index(), ud.generation())
            .is_none()
        {
            return;
        }
        let (ok, partial) = self.ctx.tcp.send_done(ud.index(), res);
        if ok {
            self.ctx.stats.sends += 1;
        } else if res != -libc::ECANCELED {
            self.ctx.stats.send_errors += 1;
        }
        if partial {
            self.ctx.stats.send_partial += 1;
        }
    }

    /// A FILES_UPDATE or table-entry CLOSE of a slot failed (success posts
    /// nothing). A connection the table refused is aborted: its ops already
    /// submitted name the empty entry and fail; its close goes by descriptor.
    /// Later connections stay out of the table.
    pub(super) fn tcp_file_failed(&mut self, ud: UserData, res: i32) {
        if res >= 0 {
            return;
        }
        self.ctx.stats.conn_table_errors += 1;
        let err = io::Error::from_raw_os_error(-res);
        let tcp = &mut self.ctx.tcp;
        let index = ud.index();
        let refused = tcp.id_for_completion(index, ud.generation()).is_some()
            && tcp.conns[index].table == TableEntry::Held;
        if !refused {
            // A failed removal: the descriptor's CLOSE follows regardless.
            log::debug!("worker {}: file-table entry close: {err}", self.ctx.worker);
            return;
        }
        tcp.conns[index].table = TableEntry::Unused;
        tcp.abort(index as u32, false);
        if let Some(t) = tcp.table.as_mut().filter(|t| t.open) {
            t.open = false;
            log::warn!(
                "worker {}: connections named by descriptor from now on: \
                 the file table refused one ({err})",
                self.ctx.worker
            );
        }
    }

    /// The CLOSE of a slot completed: `on_closed` at the end of the turn.
    pub(super) fn tcp_close_done(&mut self, ud: UserData, res: i32) {
        if res < 0 {
            log::debug!(
                "worker {}: close: {}",
                self.ctx.worker,
                io::Error::from_raw_os_error(-res)
            );
        }
        if self
            .ctx
            .tcp
            .id_for_completion(ud.index(), ud.generation())
            .is_some()
        {
            self.ctx.tcp.close_done(ud.index());
        }
    }

    /// After the turn's completions: carried bytes of resumed connections
    /// (then `on_peer_closed` if EOF came while paused), and `on_writable`
    /// of connections whose queue drained; again until neither has work
    /// (a handler resumes from `on_writable`), within a bound: what is left
    /// keeps the next wait from blocking (`Worker::turn`).
    pub(super) fn tcp_callbacks<H: Handler<Msg = M>>(&mut self, h: &mut H, draining: bool) {
        let ctx = &mut self.ctx;
        for _ in 0..16 {
            if ctx.tcp.redeliver.is_empty() && ctx.tcp.writable.is_empty() {
                return;
            }
            for _ in 0..ctx.tcp.redeliver.len() {
                let Some(i) = ctx.tcp.redeliver.pop() else {
                    break;
                };
                let c = &mut ctx.tcp.conns[i as usize];
                c.redeliver = false;
                let id = ConnId {
                    index: i,
                    generation: c.generation,
                };
                let deliverable = matches!(c.read, ReadSide::Open | ReadSide::Eof);
                if c.phase != Phase::Open || !deliverable || draining {
                    continue;
                }
                deliver_carry(ctx, h, id);
                let c = &mut ctx.tcp.conns[i as usize];
                if c.eof_owed && c.carry.is_empty() && c.phase == Phase::Open {
                    c.eof_owed = false;
                    h.on_peer_closed(ctx, id);
                }
            }
            for _ in 0..ctx.tcp.writable.len() {
                let Some(id) = ctx.tcp.writable.pop() else {
                    break;
                };
                if ctx.tcp.open_conn(id).is_some() && !draining {
                    h.on_writable(ctx, id);
                }
            }
        }
    }

    /// Connections whose deadline passed: `on_deadline` for open ones (not
    /// while draining at stop); a close still sending or lingering is
    /// aborted.
    pub(super) fn expire_deadlines<H: Handler<Msg = M>>(&mut self, h: &mut H, draining: bool) {
        if self.ctx.deadlines.is_empty() {
            return;
        }
        let mut due = std::mem::take(&mut self.expired);
        self.ctx.deadlines.expire(self.ctx.now, &mut due);
        for &i in &due {
            // An earlier on_deadline of this turn may have moved or cleared it.
            if !self.ctx.deadlines.take_fired(i) {
                continue;
            }
            let c = &self.ctx.tcp.conns[i as usize];
            let id = ConnId {
                index: i,
                generation: c.generation,
            };
            match c.phase {
                Phase::Open if !draining => {
                    self.ctx.stats.deadlines_expired += 1;
                    h.on_deadline(&mut self.ctx, id);
                }
                Phase::Draining | Phase::Lingering => {
                    self.ctx.stats.deadlines_expired += 1;
                    if c.phase == Phase::Lingering {
                        self.ctx.stats.linger_timeouts += 1;
                    }
                    self.ctx.tcp.abort(i, false);
                }
                _ => {}
            }
        }
        due.clear();
        self.expired = due;
    }

    /// `on_closed` for every slot whose CLOSE completed; the slot is free
    /// after, and a connection waiting for one gets it (not while stopping).
    pub(super) fn closed_callbacks<H: Handler<Msg = M>>(&mut self, h: &mut H, draining: bool) {
        while let Some(i) = self.ctx.tcp.finished.pop() {
            self.ctx.deadlines.clear(i);
            let id = self.ctx.tcp.release(i);
            self.ctx.stats.conns_closed += 1;
            h.on_closed(&mut self.ctx, id);
        }
        while self.ctx.tcp.has_room() && !draining {
            let Some((fd, listener, peer)) = self.ctx.tcp.waiting.pop_front() else {
                break;
            };
            if let Ok(id) = self.ctx.tcp.insert(fd) {
                self.ctx.stats.accepts += 1;
                h.on_accept(&mut self.ctx, listener, id, peer);
            }
        }
        self.ctx.tcp.maybe_resume_accepting();
    }

    /// Push the SQEs every dirty listener and connection slot needs.
    /// `Ok(false)`: the kernel took no more; the rest waits for the next turn.
    pub(super) fn flush_tcp(&mut self) -> io::Result<bool> {
        let ring = &mut self.ring;
        let ctx = &mut self.ctx;
        let stats = &mut ctx.stats;
        let tcp = &mut ctx.tcp;
        let deadlines = &mut ctx.deadlines;
        let now = ctx.now;
        if tcp.listeners_dirty && !tcp.listeners.is_empty() && self.tcp_bufs.is_none() {
            // The first listener: map and register the TCP buffer group
            // before any ACCEPT (and so any RECV on TCP_BGID) is submitted.
            let (entries, size) = self.tcp_bufs_size;
            let bufs = BufRing::new(&ring.submitter(), TCP_BGID, entries, size)
                .map_err(|e| io::Error::new(e.kind(), format!("TCP buffer ring: {e}")))?;
            self.tcp_bufs = Some(bufs);
        }
        if tcp.listeners_dirty {
            let paused = tcp.accept_paused || ctx.stop_requested;
            for (i, l) in tcp.listeners.iter_mut().enumerate() {
                while let Some(op) = l.next_op(paused) {
                    let accept = |k: usize| UserData::conn(Kind::Accept, i, k as u32).0;
                    let e = match op {
                        ListenOp::Accept(k) => {
                            let a = &mut l.addrs[k];
                            // Before the SQE exists: the kernel reads it at
                            // submission.
                            a.len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                            opcode::Accept::new(
                                Fd(l.sock.as_raw_fd()),
                                (&raw mut a.storage).cast(),
                                &raw mut a.len,
                            )
                            .flags(libc::SOCK_CLOEXEC)
                            .build()
                            .user_data(accept(k))
                        }
                        ListenOp::Cancel(k) => opcode::AsyncCancel::new(accept(k))
                            .build()
                            .user_data(UserData::new(Kind::Cancel, i).0),
                        ListenOp::Backoff => opcode::Timeout::new(&raw const *l.backoff)
                            .build()
                            .user_data(UserData::new(Kind::AcceptRetry, i).0),
                    };
                    // SAFETY: an ACCEPT writes its slot's address buffer and
                    // the back-off TIMEOUT reads its Timespec; both are boxed
                    // in the listener, which lives (in the Ctx) as long as
                    // the ring, and a slot is re-armed only after its ACCEPT
                    // completed (`Listener::completed`). ASYNC_CANCEL
                    // references no user memory.
                    if !unsafe { push(ring, stats, &e)? } {
                        return Ok(false);
                    }
                    l.started(op);
                }
            }
            tcp.listeners_dirty = false;
        }
        while let Some(&i) = tcp.dirty.last() {
            let c = &mut tcp.conns[i as usize];
            let index = i as usize;
            let generation = c.generation;
            let ud = |kind| UserData::conn(kind, index, generation).0;
            let mut shutdown_failed = false;
            while let Some(op) = c.next_op() {
                let Some(fd) = c.fd.as_ref().map(AsRawFd::as_raw_fd) else {
                    break;
                };
                // The socket's file-table entry, once it is (going) in.
                let entry = tcp.table.as_ref().map(|t| t.base + i);
                let file = (entry.filter(|_| c.table == TableEntry::Held), fd);
                let e = match op {
                    Op::Register => {
                        let Some((entry, slot)) =
                            tcp.table.as_mut().and_then(|t| t.register(index))
                        else {
                            // The kernel refused an earlier one.
                            c.table = TableEntry::Unused;
                            continue;
                        };
                        *slot = fd;
                        opcode::FilesUpdate::new(&raw const *slot, 1)
                            .offset(entry as i32)
                            .build()
                            .flags(squeue::Flags::SKIP_SUCCESS)
                            .user_data(ud(Kind::TcpFile))
                    }
                    Op::Unregister => {
                        let Some(entry) = entry else {
                            // Not reached: only a worker with a table holds one.
                            c.table = TableEntry::Unused;
                            continue;
                        };
                        opcode::Close::new(Fixed(entry))
                            .build()
                            .flags(squeue::Flags::SKIP_SUCCESS)
                            .user_data(ud(Kind::TcpFile))
                    }
                    Op::ArmRecv => on_file!(file, |f| opcode::RecvMulti::new(f, TCP_BGID).build())
                        .user_data(ud(Kind::TcpRecv)),
                    Op::Send => match c.out.next_send(&mut tcp.hdrs) {
                        Some(NextSend::One(ptr, len)) => {
                            on_file!(file, |f| opcode::Send::new(f, ptr, len)
                                .flags(libc::MSG_NOSIGNAL)
                                .build())
                            .user_data(ud(Kind::TcpSend))
                        }
                        Some(NextSend::Many(msg)) => {
                            on_file!(file, |f| opcode::SendMsg::new(f, msg)
                                .flags(libc::MSG_NOSIGNAL as u32)
                                .build())
                            .user_data(ud(Kind::TcpSend))
                        }
                        None => break,
                    },
                    Op::CancelRecv => opcode::AsyncCancel::new(ud(Kind::TcpRecv))
                        .build()
                        .user_data(UserData::new(Kind::Cancel, index).0),
                    Op::CancelSend => opcode::AsyncCancel::new(ud(Kind::TcpSend))
                        .build()
                        .user_data(UserData::new(Kind::Cancel, index).0),
                    Op::Shutdown => {
                        // Inline: non-blocking for TCP, and the ring would
                        // run it on an io-wq thread (a context switch per
                        // close).
                        let shut = c
                            .fd
                            .as_ref()
                            .map(|f| socket2::SockRef::from(f).shutdown(std::net::Shutdown::Write));
                        c.started(op);
                        if matches!(shut, Some(Ok(()))) {
                            deadlines.set(i, now, tcp.limits.linger);
                            continue;
                        }
                        shutdown_failed = true;
                        break;
                    }
                    Op::Close => opcode::Close::new(Fd(fd))
                        .build()
                        .user_data(ud(Kind::TcpClose)),
                };
                // SAFETY: RECV takes buffers from group TCP_BGID (registered
                // above before the first ACCEPT; a RECV exists only for an
                // accepted fd). A SEND/SENDMSG names bytes of the slot's
                // queued chunks (and a boxed header) that are neither moved,
                // written nor freed until its completion (`Outbound`). The
                // FILES_UPDATE reads `fds[index]`, boxed in the Tcp (which
                // lives as long as the ring) and not written again before
                // the slot's next connection, long after this op completed.
                // The fd is closed only by the CLOSE, which `next_op` issues
                // once no other op on it is in flight (after the CLOSE of its
                // table entry, issued before it in order).
                if !unsafe { push(ring, stats, &e)? } {
                    if op == Op::Send {
                        c.out.unsend(&mut tcp.hdrs);
                    }
                    return Ok(false);
                }
                if op == Op::Close {
                    // The CLOSE owns the descriptor now.
                    let _ = c.fd.take().map(IntoRawFd::into_raw_fd);
                }
                c.started(op);
            }
            c.dirty = false;
            tcp.dirty.pop();
            if shutdown_failed {
                // The peer reset meanwhile: nothing left to linger for.
                tcp.abort(i, false);
            }
        }
        Ok(true)
    }
}

/// Received bytes `data` of connection `id` (the provided buffer, mutable).
fn received<M: Copy + Send + 'static, H: Handler<Msg = M>>(
    ctx: &mut Ctx<M>,
    h: &mut H,
    id: ConnId,
    data: &mut [u8],
    draining: bool,
) {
    let c = &ctx.tcp.conns[id.index()];
    let carried = !c.carry.is_empty();
    match (c.phase, c.read) {
        (Phase::Open, ReadSide::Open) if !draining => {}
        (Phase::Open, ReadSide::Paused) => {
            // Already on its way when the pause came: keep it.
            keep(ctx, h, id, data);
            return;
        }
        _ => {
            ctx.stats.bytes_discarded += data.len() as u64;
            return;
        }
    }
    if !carried {
        // The common case: straight from the provided buffer, no copy.
        let n = h.on_recv(ctx, id, data).min(data.len());
        if n < data.len() {
            keep(ctx, h, id, &data[n..]);
        }
        return;
    }
    // Top the carry up to the bound, let the handler consume, repeat: a
    // receive that straddles the end of one message and the start of the
    // next is not mistaken for one message over the bound.
    let mut rest: &[u8] = data;
    while !rest.is_empty() {
        let Some(c) = ctx.tcp.open_conn(id) else {
            return;
        };
        if c.read != ReadSide::Open {
            // Paused by the handler meanwhile: keep the rest for resume.
            keep(ctx, h, id, rest);
            return;
        }
        let room = ctx.tcp.limits.max_inbound.saturating_sub(c.carry.len());
        let take = room.min(rest.len()).max(1);
        if !keep(ctx, h, id, &rest[..take]) {
            return;
        }
        rest = &rest[take..];
        deliver_carry(ctx, h, id);
    }
}

/// Append `bytes` to `id`'s carry. Beyond `max_inbound_bytes` the handler
/// is told and the connection ends; returns whether the bytes were kept.
fn keep<M: Copy + Send + 'static, H: Handler<Msg = M>>(
    ctx: &mut Ctx<M>,
    h: &mut H,
    id: ConnId,
    bytes: &[u8],
) -> bool {
    if ctx.tcp.open_conn(id).is_none() {
        // The handler closed it meanwhile.
        return false;
    }
    let c = &mut ctx.tcp.conns[id.index()];
    if c.carry.len() + bytes.len() > ctx.tcp.limits.max_inbound {
        ctx.stats.inbound_full += 1;
        h.on_inbound_full(ctx, id);
        if ctx.tcp.open_conn(id).is_some() {
            ctx.tcp.abort(id.index, true);
        }
        return false;
    }
    if c.carry.is_empty() {
        ctx.stats.carries += 1;
        c.carry = ctx.tcp.carries.carry(bytes);
    } else {
        c.carry.extend(bytes);
    }
    true
}

/// Hand `id`'s carried bytes to `on_recv`; what it leaves stays carried.
fn deliver_carry<M: Copy + Send + 'static, H: Handler<Msg = M>>(
    ctx: &mut Ctx<M>,
    h: &mut H,
    id: ConnId,
) {
    let mut carry = std::mem::take(&mut ctx.tcp.conns[id.index()].carry);
    if carry.is_empty() {
        return;
    }
    let n = h.on_recv(ctx, id, carry.bytes_mut());
    carry.consume(n);
    // The handler may have closed or aborted it meanwhile.
    if !carry.is_empty() && ctx.tcp.open_conn(id).is_some() {
        ctx.tcp.conns[id.index()].carry = carry;
    } else {
        ctx.tcp.carries.give(carry);
    }
}
