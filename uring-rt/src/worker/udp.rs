//! The UDP part of a worker: multishot RECVMSG on each socket, the send
//! slots' SENDs, and the look-ahead over a turn's datagrams.

use super::{push, Worker, UDP_BGID, UDP_FILE_SLOTS};
use crate::handler::{Datagram, Handler, SocketId, LOOK_AHEAD};
use crate::socket;
use crate::user_data::{Kind, UserData};
use io_uring::types::{Fd, Fixed, RecvMsgOut};
use io_uring::{cqueue, opcode};
use std::io;
use std::os::fd::AsRawFd;

impl<M: Copy + Send + 'static> Worker<M> {
    /// Hand the datagrams received among the turn's completions
    /// `from..from + LOOK_AHEAD` to `Handler::look_ahead` when there are
    /// two or more.
    pub(super) fn look_ahead<H: Handler<Msg = M>>(&self, h: &mut H, from: usize) {
        let received = |c: &&cqueue::Entry| {
            UserData(c.user_data()).kind() == Some(Kind::UdpRecv)
                && c.result() > 0
                && cqueue::buffer_select(c.flags()).is_some()
        };
        let window = &self.cqes[from..self.cqes.len().min(from + LOOK_AHEAD)];
        if window.iter().filter(received).take(2).count() < 2 {
            return;
        }
        let (bufs, hdr) = (&self.udp_bufs, &*self.recv_hdr);
        h.look_ahead(window.iter().filter(received).filter_map(|c| {
            let bid = cqueue::buffer_select(c.flags())?;
            let buf = bufs.get(bid, c.result() as usize);
            let out = RecvMsgOut::parse(buf, hdr).ok()?;
            if out.is_payload_truncated() {
                return None;
            }
            // The payload ends the completion's bytes (`RecvMsgOut` lends
            // it only for its own lifetime).
            let payload = &buf[buf.len() - out.payload_data().len()..];
            Some(Datagram {
                socket: SocketId(UserData(c.user_data()).index() as u32),
                src: socket::sockaddr_bytes_to_std(out.name_data())?,
                dst: None,
                payload,
            })
        }));
    }

    pub(super) fn udp_recv<H: Handler<Msg = M>>(
        &mut self,
        h: &mut H,
        index: usize,
        res: i32,
        flags: u32,
        draining: bool,
    ) {
        if let Some(bid) = cqueue::buffer_select(flags) {
            if res > 0 && !draining {
                let buf = self.udp_bufs.get(bid, res as usize);
                match RecvMsgOut::parse(buf, &self.recv_hdr) {
                    Ok(out) if out.is_payload_truncated() => {
                        self.ctx.stats.datagrams_truncated += 1;
                    }
                    // Name and control sit unaligned in the provided buffer:
                    // parse them as bytes.
                    Ok(out) => match socket::sockaddr_bytes_to_std(out.name_data()) {
                        Some(src) => {
                            self.ctx.stats.datagrams += 1;
                            let dgram = Datagram {
                                socket: SocketId(index as u32),
                                src,
                                dst: socket::pktinfo_dst(out.control_data()),
                                payload: out.payload_data(),
                            };
                            h.on_datagram(&mut self.ctx, dgram);
                        }
                        None => self.ctx.stats.recv_malformed += 1,
                    },
                    Err(()) => self.ctx.stats.recv_malformed += 1,
                }
            }
            self.udp_bufs.recycle(bid);
        } else if res == -libc::ENOBUFS {
            self.ctx.stats.recv_buffers_exhausted += 1;
            self.udp_bufs.ran_dry();
        } else if res < 0 && res != -libc::ECANCELED {
            self.ctx.stats.recv_errors += 1;
            log::debug!(
                "worker {}: recvmsg: {}",
                self.ctx.worker,
                io::Error::from_raw_os_error(-res)
            );
        }
        if !cqueue::more(flags) && !draining && index < self.ctx.udp.len() {
            self.ctx.stats.rearms += 1;
            self.ctx.arm_udp.push(index as u32);
        }
    }

    /// A SEND of send slot `index` completed.
    pub(super) fn udp_send_done(&mut self, index: usize, res: i32) {
        if res >= 0 {
            self.ctx.stats.sends += 1;
        } else {
            self.ctx.stats.send_errors += 1;
            log::debug!(
                "worker {}: sendmsg: {}",
                self.ctx.worker,
                io::Error::from_raw_os_error(-res)
            );
        }
        self.ctx.sends.complete(index);
    }

    /// Arm the receives and push the sends queued this turn. `Ok(false)`:
    /// the kernel took no more SQEs; the rest waits for the next turn.
    pub(super) fn flush_udp(&mut self) -> io::Result<bool> {
        let ring = &mut self.ring;
        let ctx = &mut self.ctx;
        let stats = &mut ctx.stats;
        while let Some(&i) = ctx.arm_udp.last() {
            let s = &mut ctx.udp[i as usize];
            if self.file_table_open && s.fixed.is_none() && i < UDP_FILE_SLOTS {
                let sender = s.sender.as_ref().map(AsRawFd::as_raw_fd);
                let mut register =
                    |slot: u32, fd| match ring.submitter().register_files_update(slot, &[fd]) {
                        Ok(_) => Some(slot),
                        Err(e) => {
                            // Not expected; stop trying (one syscall per re-arm).
                            log::debug!("worker {}: file table update: {e}", ctx.worker);
                            self.file_table_open = false;
                            None
                        }
                    };
                s.fixed = register(i, s.sock.as_raw_fd());
                if let (Some(_), Some(fd)) = (s.fixed, sender) {
                    s.sender_fixed = register(UDP_FILE_SLOTS + i, fd);
                }
            }
            let hdr = &raw const *self.recv_hdr;
            let e = on_file!(s.recv_file(), |t| opcode::RecvMsgMulti::new(
                t, hdr, UDP_BGID
            ))
            .build()
            .user_data(UserData::new(Kind::UdpRecv, i as usize).0);
            // SAFETY: recv_hdr is boxed in the Worker (outlives the ring);
            // buffers come from group UDP_BGID, registered in `new`; the
            // socket stays open as long as the Ctx.
            if !unsafe { push(ring, stats, &e)? } {
                return Ok(false);
            }
            ctx.arm_udp.pop();
        }
        while let Some((i, socket, hdr)) = ctx.sends.take_ready() {
            // `Ctx::send_to` checked the index; sockets are never removed.
            let s = &ctx.udp[socket as usize];
            // SAFETY: `hdr` points at slot i's msghdr, fully written by
            // `SendPool::prepare` and not in flight yet; reading it by value.
            let h = unsafe { hdr.read() };
            // Without a source address (no cmsg) a SEND with a destination
            // does the same and spares the kernel the msghdr copy.
            let e = if h.msg_controllen == 0 {
                // SAFETY: msg_iov points at slot i's iovec (see above).
                let iov = unsafe { h.msg_iov.read() };
                let (buf, len) = (iov.iov_base.cast::<u8>(), iov.iov_len as u32);
                on_file!(s.send_file(), |t| opcode::Send::new(t, buf, len))
                    .dest_addr(h.msg_name.cast::<libc::sockaddr>())
                    .dest_addr_len(h.msg_namelen)
                    .build()
            } else {
                on_file!(s.send_file(), |t| opcode::SendMsg::new(t, hdr)).build()
            }
            .user_data(UserData::new(Kind::UdpSend, i as usize).0);
            // SAFETY: slot i (msghdr, iovec, name, cmsg, bytes) stays
            // allocated and untouched until its own completion calls
            // `SendPool::complete(i)`; the pool outlives the ring.
            if !unsafe { push(ring, stats, &e)? } {
                ctx.sends.unready(i);
                return Ok(false);
            }
        }
        Ok(true)
    }
}
