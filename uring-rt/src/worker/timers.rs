//! Timers, signals and wake-ups of a worker: the TIMEOUTs of `add_timer`
//! and of the deadline tick, the signalfd read, MSG_RING (or eventfd)
//! wake-ups of other workers and this worker's wake eventfd.

use super::{push, Worker};
use crate::handler::{Handler, Signal};
use crate::signals::SIGINFO_LEN;
use crate::user_data::{Kind, UserData};
use io_uring::types::{Fd, TimeoutFlags, Timespec};
use io_uring::{opcode, squeue};
use std::io;
use std::os::fd::AsRawFd;

impl<M: Copy + Send + 'static> Worker<M> {
    /// A TIMEOUT of timer `index` completed: `on_timer`, and re-arm it when
    /// it was one-shot (kernels without multishot timeouts) or ended.
    pub(super) fn timer_fired<H: Handler<Msg = M>>(
        &mut self,
        h: &mut H,
        index: usize,
        res: i32,
        more: bool,
        draining: bool,
    ) {
        if res == -libc::ETIME && !draining {
            if let Some(t) = self.ctx.timers.get(index) {
                let token = t.token;
                self.ctx.stats.timer_fires += 1;
                h.on_timer(&mut self.ctx, token);
            }
        }
        if !more && !draining && res != -libc::ECANCELED && index < self.ctx.timers.len() {
            if self.multishot_timer {
                self.ctx.stats.rearms += 1;
            }
            self.ctx.arm_timers.push(index as u32);
        }
    }

    /// The signalfd read completed: `Reload` to this handler, `Terminate`
    /// to every worker.
    pub(super) fn signal_read<H: Handler<Msg = M>>(&mut self, h: &mut H, res: i32, draining: bool) {
        self.signal_armed = false;
        let sig = self.signal.as_ref().and_then(|s| s.signal(res));
        match sig {
            Some(Signal::Reload) if !draining => h.on_signal(&mut self.ctx, Signal::Reload),
            Some(Signal::Terminate) if !self.terminate_seen => {
                self.terminate_seen = true;
                h.on_signal(&mut self.ctx, Signal::Terminate);
                self.terminate_all();
            }
            _ => {}
        }
    }

    /// Push the TIMEOUTs, wake-ups and reads queued this turn. `Ok(false)`:
    /// the kernel took no more SQEs; the rest waits for the next turn.
    pub(super) fn flush_timers(&mut self) -> io::Result<bool> {
        let ring = &mut self.ring;
        let ctx = &mut self.ctx;
        let stats = &mut ctx.stats;
        while let Some(&i) = ctx.arm_timers.last() {
            let ts: *const Timespec = &raw const *ctx.timers[i as usize].ts;
            let flags = if self.multishot_timer {
                TimeoutFlags::MULTISHOT
            } else {
                TimeoutFlags::empty()
            };
            let e = opcode::Timeout::new(ts)
                .flags(flags)
                .build()
                .user_data(UserData::new(Kind::Timer, i as usize).0);
            // SAFETY: the Timespec is boxed in the timer table, which only
            // grows and outlives the ring.
            if !unsafe { push(ring, stats, &e)? } {
                return Ok(false);
            }
            ctx.arm_timers.pop();
        }
        if !self.deadline_armed && !ctx.deadlines.is_empty() && !ctx.stop_requested {
            let e = opcode::Timeout::new(&raw const *self.deadline_tick)
                .build()
                .user_data(UserData::new(Kind::Deadline, 0).0);
            // SAFETY: the Timespec is boxed in the Worker, which outlives the ring.
            if !unsafe { push(ring, stats, &e)? } {
                return Ok(false);
            }
            self.deadline_armed = true;
        }
        while let Some(&to) = ctx.wake_list.last() {
            if self.shared.msg_ring {
                let fd = self.shared.ring_fd(to);
                if fd >= 0 {
                    let e = opcode::MsgRingData::new(
                        Fd(fd),
                        0,
                        UserData::new(Kind::Wake, ctx.worker).0,
                        None,
                    )
                    .build()
                    // No sender CQE on success: MSG_RING completes inline,
                    // so that CQE would end this turn's wait at once and
                    // cost one more loop turn per wake-up. Failures still
                    // post one (Kind::MsgRingSent, logged). CQE_SKIP_SUCCESS
                    // (5.17) predates MSG_RING (5.18).
                    .flags(squeue::Flags::SKIP_SUCCESS)
                    .user_data(UserData::new(Kind::MsgRingSent, to).0);
                    // SAFETY: MSG_RING references no user memory; the target
                    // ring stays open until every worker passed the stop latch.
                    if !unsafe { push(ring, stats, &e)? } {
                        return Ok(false);
                    }
                }
            } else {
                self.shared.write_eventfd(to);
            }
            stats.mesh_wakeups += 1;
            ctx.wake_list.pop();
            if let Some(m) = ctx.wake_marked.get_mut(to) {
                *m = false;
            }
        }
        if let Some(s) = self.signal.as_mut() {
            if !self.signal_armed && !ctx.stop_requested {
                let e =
                    opcode::Read::new(Fd(s.fd.as_raw_fd()), s.buf.as_mut_ptr(), SIGINFO_LEN as u32)
                        .build()
                        .user_data(UserData::new(Kind::Signal, 0).0);
                // SAFETY: the siginfo buffer is boxed in the Worker and
                // outlives the ring; the signalfd is owned by the Worker.
                if !unsafe { push(ring, stats, &e)? } {
                    return Ok(false);
                }
                self.signal_armed = true;
            }
        }
        if let Some(w) = self.wake_fd.as_mut() {
            if !w.armed {
                let e = opcode::Read::new(Fd(w.fd.as_raw_fd()), (&raw mut *w.buf).cast::<u8>(), 8)
                    .build()
                    .user_data(UserData::new(Kind::Wake, 0).0);
                // SAFETY: the 8-byte buffer is boxed in the Worker and
                // outlives the ring; the eventfd is owned by the Worker.
                if !unsafe { push(ring, stats, &e)? } {
                    return Ok(false);
                }
                w.armed = true;
            }
        }
        Ok(true)
    }
}
