//! UDP send slots: `msghdr`, `iovec`, `sockaddr_storage`, pktinfo cmsg and
//! payload bytes, all allocated at start. A slot is freed only by its own
//! SENDMSG completion. With every slot busy, datagrams wait in a small
//! bounded queue (a copy of bytes + addresses in preallocated memory) and
//! move into the next slot that completes; beyond that they are refused and
//! counted.

use crate::region::Region;
use crate::socket::{self, PKTINFO_SPACE};
use std::io;
use std::net::{IpAddr, SocketAddr};

/// Everything one SENDMSG points at. Lives in a `Region` and is touched only
/// through raw pointers, never through a reference while in flight.
#[repr(C)]
struct Slot {
    hdr: libc::msghdr,
    iov: libc::iovec,
    name: libc::sockaddr_storage,
    cmsg: CmsgSpace,
    /// Index of the worker's UDP socket to send from.
    socket: u32,
}

/// Room for one pktinfo cmsg, aligned like `struct cmsghdr`.
#[repr(C, align(8))]
struct CmsgSpace([u8; PKTINFO_SPACE]);

/// A datagram parked in the overflow queue.
#[derive(Clone, Copy)]
struct Parked {
    socket: u32,
    to: SocketAddr,
    from: Option<IpAddr>,
    len: usize,
}

/// What `SendPool::send_to` did.
pub(crate) enum Queued {
    /// Put in a slot (or parked, or `fill` returned 0).
    Ok,
    /// Slots and queue are full.
    Full,
}

/// The pool of one worker.
pub(crate) struct SendPool {
    slots: Region,
    bytes: Region,
    slot_count: u32,
    slot_size: usize,
    free: Vec<u32>,
    /// Filled slots waiting for the end-of-turn flush.
    ready: std::collections::VecDeque<u32>,
    in_flight: usize,
    parked: Vec<Parked>,
    parked_bytes: Region,
    parked_head: usize,
    parked_len: usize,
}

impl SendPool {
    /// Allocate `slots` slots of `slot_size` bytes and a queue of `queue` entries.
    pub(crate) fn new(slots: u32, slot_size: u32, queue: usize) -> io::Result<SendPool> {
        if slots == 0 || slot_size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "send_slots and send_slot_size must be > 0",
            ));
        }
        let slot_size = slot_size as usize;
        let n = slots as usize;
        let unused = Parked {
            socket: 0,
            to: SocketAddr::from(([0, 0, 0, 0], 0)),
            from: None,
            len: 0,
        };
        // Checked: a wrapped product would map less than the slices index.
        let size = |count: usize, each: usize| {
            count
                .checked_mul(each)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "send pool too large"))
        };
        Ok(SendPool {
            slots: Region::new(size(n, std::mem::size_of::<Slot>())?)?,
            bytes: Region::new(size(n, slot_size)?)?,
            slot_count: slots,
            slot_size,
            free: (0..slots).rev().collect(),
            ready: std::collections::VecDeque::with_capacity(n),
            in_flight: 0,
            parked: vec![unused; queue],
            parked_bytes: Region::new(size(queue.max(1), slot_size)?)?,
            parked_head: 0,
            parked_len: 0,
        })
    }

    /// Sends submitted and not yet completed, plus ready and parked ones.
    pub(crate) fn outstanding(&self) -> usize {
        self.in_flight + self.ready.len() + self.parked_len
    }

    /// Fill a slot (or a queue entry) with `fill` and mark it for the flush.
    pub(crate) fn send_to(
        &mut self,
        socket: u32,
        to: SocketAddr,
        from: Option<IpAddr>,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> (Queued, bool) {
        if let Some(i) = self.free.pop() {
            let n = fill(self.slot_bytes(i)).min(self.slot_size);
            if n == 0 {
                self.free.push(i);
            } else {
                self.prepare(i, socket, to, from, n);
                self.ready.push_back(i);
            }
            return (Queued::Ok, false);
        }
        if self.parked_len == self.parked.len() {
            return (Queued::Full, false);
        }
        let pos = (self.parked_head + self.parked_len) % self.parked.len();
        let n = fill(self.parked_bytes(pos)).min(self.slot_size);
        if n > 0 {
            self.parked[pos] = Parked {
                socket,
                to,
                from,
                len: n,
            };
            self.parked_len += 1;
        }
        (Queued::Ok, n > 0)
    }

    /// Slots filled this turn; the flush submits each and calls `submitted`.
    /// Returns the slot, its socket index and its header.
    pub(crate) fn take_ready(&mut self) -> Option<(u32, u32, *const libc::msghdr)> {
        let i = self.ready.pop_front()?;
        self.in_flight += 1;
        let s = self.slot_ptr(i);
        // SAFETY: i < slot_count, and slot i was fully written by `prepare`;
        // reading its socket and taking the header's address through the raw
        // pointer creates no reference.
        let (socket, hdr) = unsafe { ((*s).socket, &raw const (*s).hdr) };
        Some((i, socket, hdr))
    }

    /// Put a ready slot back (the SQE could not be pushed).
    pub(crate) fn unready(&mut self, i: u32) {
        self.in_flight -= 1;
        self.ready.push_front(i);
    }

    /// The SENDMSG of slot `i` completed: reuse it for the oldest parked
    /// datagram or free it. Unknown ids are ignored.
    pub(crate) fn complete(&mut self, i: usize) {
        let Ok(i) = u32::try_from(i) else { return };
        if i >= self.slot_count || self.in_flight == 0 {
            return;
        }
        self.in_flight -= 1;
        if self.parked_len == 0 {
            self.free.push(i);
            return;
        }
        let p = self.parked[self.parked_head];
        let src = self.parked_bytes(self.parked_head).as_ptr();
        let dst = self.slot_bytes(i).as_mut_ptr();
        // SAFETY: both ranges are `p.len <= slot_size` bytes inside their own
        // Regions (queue entry vs. slot), so they do not overlap; slot i is
        // not in flight (its completion is being handled now).
        unsafe { std::ptr::copy_nonoverlapping(src, dst, p.len) };
        self.parked_head = (self.parked_head + 1) % self.parked.len();
        self.parked_len -= 1;
        self.prepare(i, p.socket, p.to, p.from, p.len);
        self.ready.push_back(i);
    }

    // The Region is page-aligned and Slot's size is a multiple of its alignment.
    #[allow(clippy::cast_ptr_alignment)]
    fn slot_ptr(&self, i: u32) -> *mut Slot {
        self.slots.ptr().cast::<Slot>().wrapping_add(i as usize)
    }

    fn slot_bytes(&mut self, i: u32) -> &mut [u8] {
        // SAFETY: i < slot_count so the range is inside `bytes`; callers pass
        // only slots that are not in flight (just popped from `free`, or
        // whose completion is being handled), so the kernel does not read
        // them and `&mut self` makes this the only reference.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.bytes.ptr().add(i as usize * self.slot_size),
                self.slot_size,
            )
        }
    }

    fn parked_bytes(&mut self, pos: usize) -> &mut [u8] {
        // SAFETY: pos < parked.len(), and parked_bytes holds that many
        // entries of slot_size; the kernel never sees this memory.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.parked_bytes.ptr().add(pos * self.slot_size),
                self.slot_size,
            )
        }
    }

    /// Write msghdr/iovec/name/cmsg of slot `i` for `len` payload bytes.
    fn prepare(&mut self, i: u32, socket: u32, to: SocketAddr, from: Option<IpAddr>, len: usize) {
        let from = source_for(to, from);
        let s = self.slot_ptr(i);
        let payload = self.slot_bytes(i).as_mut_ptr();
        // SAFETY: slot i is not in flight (see callers), so nobody else reads
        // or writes it; the Region is zero-initialised, page-aligned and
        // holds slot_count Slots, all plain old data; the pointers stored in
        // the msghdr point into this same slot and the same-index payload,
        // which live as long as the pool (dropped after the ring).
        unsafe {
            let name_len = socket::std_to_sockaddr(&to, &mut (*s).name);
            let control_len = from.map_or(0, |ip| socket::write_pktinfo(&mut (*s).cmsg.0, ip));
            (&raw mut (*s).iov).write(libc::iovec {
                iov_base: payload.cast(),
                iov_len: len,
            });
            let mut hdr: libc::msghdr = std::mem::zeroed();
            hdr.msg_name = (&raw mut (*s).name).cast();
            hdr.msg_namelen = name_len;
            hdr.msg_iov = &raw mut (*s).iov;
            hdr.msg_iovlen = 1;
            if control_len > 0 {
                hdr.msg_control = (&raw mut (*s).cmsg).cast();
                hdr.msg_controllen = control_len as _;
            }
            (&raw mut (*s).hdr).write(hdr);
            (&raw mut (*s).socket).write(socket);
        }
    }
}

/// The source address to send to `to` from: `from` if it is of `to`'s
/// family, else `None` (the kernel picks), as [`crate::Ctx::send_to`] promises.
fn source_for(to: SocketAddr, from: Option<IpAddr>) -> Option<IpAddr> {
    from.filter(|ip| ip.is_ipv4() == to.is_ipv4())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_must_match_the_destination_family() {
        let v4: SocketAddr = "1.1.1.1:1".parse().unwrap();
        let v6: SocketAddr = "[::1]:1".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:1.1.1.1]:1".parse().unwrap();
        let ip4: IpAddr = "127.0.0.1".parse().unwrap();
        let ip6: IpAddr = "::1".parse().unwrap();
        let ip6_mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(source_for(v4, Some(ip4)), Some(ip4));
        assert_eq!(source_for(v6, Some(ip6)), Some(ip6));
        assert_eq!(source_for(mapped, Some(ip6_mapped)), Some(ip6_mapped));
        assert_eq!(source_for(v4, Some(ip6)), None);
        assert_eq!(source_for(v6, Some(ip4)), None);
        assert_eq!(source_for(mapped, Some(ip4)), None);
        assert_eq!(source_for(v4, None), None);
    }

    #[test]
    fn slots_then_queue_then_full() {
        let mut pool = SendPool::new(2, 64, 2).unwrap();
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for k in 0..4u8 {
            let (q, parked) = pool.send_to(3, to, None, |b| {
                b[0] = k;
                1
            });
            assert!(matches!(q, Queued::Ok));
            assert_eq!(parked, k >= 2);
        }
        assert!(matches!(pool.send_to(3, to, None, |_| 1).0, Queued::Full));
        assert_eq!(pool.outstanding(), 4);
        let (first_slot, socket, _) = pool.take_ready().unwrap();
        let (second_slot, _, _) = pool.take_ready().unwrap();
        assert_eq!(socket, 3);
        assert!(pool.take_ready().is_none());
        pool.complete(first_slot as usize);
        pool.complete(second_slot as usize);
        // Both parked datagrams moved into the freed slots, in order.
        let (third, _, hdr) = pool.take_ready().unwrap();
        // SAFETY: hdr points into the pool, which is alive; iov too.
        let first = unsafe { *(*(*hdr).msg_iov).iov_base.cast::<u8>() };
        assert!(first == 2 || first == 3);
        pool.complete(third as usize);
        let (fourth, _, _) = pool.take_ready().unwrap();
        pool.complete(fourth as usize);
        assert_eq!(pool.outstanding(), 0);
        pool.complete(99);
    }
}
