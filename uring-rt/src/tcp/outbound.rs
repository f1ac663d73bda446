//! Outbound bytes of a connection, written in place: the handler writes
//! (or encrypts) straight into the spare room of the connection's last
//! chunk ([`Outbound::spare`]); chunks come from a worker-wide pool and go
//! back as soon as they are sent, so a connection with nothing queued holds
//! no send memory. One SEND covers the first chunk, a SENDMSG up to
//! [`MAX_IOV`] chunks.
//!
//! While a send is in flight the kernel reads `[sent..end]` of the chunks
//! it names; new bytes are only ever written after a chunk's `len`, which
//! the kernel was not given, so the two never touch the same bytes.

use std::collections::VecDeque;
use std::ptr::NonNull;

/// Most chunks one SENDMSG covers.
pub(crate) const MAX_IOV: usize = 8;

/// One pooled buffer of `cap` bytes, `len` of them written.
pub(crate) struct Chunk {
    ptr: NonNull<u8>,
    cap: u32,
    len: u32,
}

impl Chunk {
    fn new(cap: u32) -> Chunk {
        let boxed = vec![0u8; cap as usize].into_boxed_slice();
        let ptr = NonNull::from(Box::leak(boxed)).cast::<u8>();
        Chunk { ptr, cap, len: 0 }
    }

    fn room(&self) -> usize {
        (self.cap - self.len) as usize
    }

    /// The unwritten tail, `[len..cap]`.
    fn spare(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` owns `cap` initialised bytes (from `new`); the kernel
        // is only ever given bytes before `len` (see the module docs), so
        // nothing else reads or writes `[len..cap]` while this borrow lives.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(self.len as usize), self.room())
        }
    }

    fn at(&self, off: u32) -> *const u8 {
        self.ptr.as_ptr().wrapping_add(off as usize).cast_const()
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.cap as usize);
        // SAFETY: `ptr`/`cap` came from `Box::leak` of a boxed slice of
        // exactly `cap` bytes in `new`, and are freed only here, once. A
        // worker drops chunks only after its ring (field order), so no
        // send still reads them.
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// The worker's spare chunks.
pub(crate) struct ChunkPool {
    free: Vec<Chunk>,
    size: u32,
    keep: usize,
    /// Chunks allocated since start (a warm worker stops allocating).
    pub(crate) allocated: u64,
}

impl ChunkPool {
    pub(crate) fn new(size: u32, keep: usize) -> ChunkPool {
        ChunkPool {
            free: Vec::new(),
            size: size.max(64),
            keep,
            allocated: 0,
        }
    }

    /// Bytes per chunk: the most one `send_with` can write.
    pub(crate) fn chunk_size(&self) -> usize {
        self.size as usize
    }

    fn take(&mut self) -> Chunk {
        self.free.pop().unwrap_or_else(|| {
            self.allocated += 1;
            Chunk::new(self.size)
        })
    }

    fn give(&mut self, mut c: Chunk) {
        if self.free.len() < self.keep {
            c.len = 0;
            self.free.push(c);
        }
    }
}

/// The iovecs and header one SENDMSG reads; pooled, boxed so their address
/// stays put while the kernel holds them.
pub(crate) struct SendHdr {
    pub(crate) msg: libc::msghdr,
    iov: [libc::iovec; MAX_IOV],
}

/// Spare SENDMSG headers. Boxed: a header's address must not move while
/// the kernel reads it, whatever happens to the pool's vector meanwhile.
#[allow(clippy::vec_box)]
pub(crate) type HdrPool = Vec<Box<SendHdr>>;

/// What the next send of a connection covers.
pub(crate) enum NextSend {
    /// One contiguous range: a plain SEND.
    One(*const u8, u32),
    /// Several chunks: a SENDMSG of this header.
    Many(*const libc::msghdr),
}

/// The queued bytes of one connection.
#[derive(Default)]
pub(crate) struct Outbound {
    chunks: VecDeque<Chunk>,
    /// Bytes of the first chunk already sent.
    sent: u32,
    /// Bytes queued and not yet sent (including those in flight).
    queued: usize,
    /// Bytes the send in flight covers.
    flight: usize,
    /// The SENDMSG header in flight, if the send covers several chunks.
    hdr: Option<Box<SendHdr>>,
}

impl Outbound {
    /// Bytes queued and not yet confirmed sent.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// Some bytes wait for a send that is not in flight yet.
    pub(crate) fn has_unsent(&self) -> bool {
        self.queued > self.flight
    }

    /// At least `min` bytes of contiguous room: the last chunk's spare
    /// room, or a fresh chunk from the pool. `None` when `min` is larger
    /// than a chunk.
    pub(crate) fn spare(&mut self, pool: &mut ChunkPool, min: usize) -> Option<&mut [u8]> {
        if min > pool.chunk_size() {
            return None;
        }
        if self.chunks.back().is_none_or(|c| c.room() < min.max(1)) {
            self.chunks.push_back(pool.take());
        }
        self.chunks.back_mut().map(Chunk::spare)
    }

    /// `n` bytes were written into the room `spare` returned; a fresh
    /// chunk that got nothing goes back to the pool.
    pub(crate) fn commit(&mut self, pool: &mut ChunkPool, n: usize) {
        let Some(last) = self.chunks.back_mut() else {
            return;
        };
        let n = n.min(last.room());
        last.len += n as u32;
        self.queued += n;
        if last.len == 0 {
            // A fresh chunk (a chunk that holds bytes is never empty).
            if let Some(c) = self.chunks.pop_back() {
                pool.give(c);
            }
        }
    }

    /// Build the next send over what is queued and not in flight; marks it
    /// in flight. `hdrs` lends a SENDMSG header when several chunks go.
    pub(crate) fn next_send(&mut self, hdrs: &mut HdrPool) -> Option<NextSend> {
        if !self.has_unsent() || self.flight > 0 {
            return None;
        }
        let n = self.chunks.len().min(MAX_IOV);
        let first = self.chunks.front()?;
        if n == 1 {
            let len = first.len - self.sent;
            self.flight = len as usize;
            return Some(NextSend::One(first.at(self.sent), len));
        }
        let mut hdr = hdrs.pop().unwrap_or_else(|| {
            Box::new(SendHdr {
                // SAFETY: msghdr is plain data; all-zero is a valid empty header.
                msg: unsafe { std::mem::zeroed() },
                iov: [libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                }; MAX_IOV],
            })
        });
        let mut total = 0;
        for (i, c) in self.chunks.iter().take(n).enumerate() {
            let off = if i == 0 { self.sent } else { 0 };
            let len = (c.len - off) as usize;
            hdr.iov[i] = libc::iovec {
                iov_base: c.at(off).cast_mut().cast(),
                iov_len: len,
            };
            total += len;
        }
        hdr.msg.msg_iov = hdr.iov.as_mut_ptr();
        hdr.msg.msg_iovlen = n as _;
        self.flight = total;
        let msg = &raw const hdr.msg;
        self.hdr = Some(hdr);
        Some(NextSend::Many(msg))
    }

    /// The send built by `next_send` could not be submitted.
    pub(crate) fn unsend(&mut self, hdrs: &mut HdrPool) {
        self.flight = 0;
        if let Some(h) = self.hdr.take() {
            hdrs.push(h);
        }
    }

    /// The send in flight wrote `n` bytes (`n <= flight`): sent chunks go
    /// back to the pool. Returns whether the send was partial.
    pub(crate) fn sent(&mut self, n: usize, pool: &mut ChunkPool, hdrs: &mut HdrPool) -> bool {
        let partial = n < self.flight;
        let mut left = n.min(self.flight);
        self.flight = 0;
        if let Some(h) = self.hdr.take() {
            hdrs.push(h);
        }
        self.queued -= left;
        while left > 0 {
            let Some(first) = self.chunks.front() else {
                break;
            };
            let rest = (first.len - self.sent) as usize;
            if left < rest {
                self.sent += left as u32;
                break;
            }
            // Sent in full (bytes appended since would have made `rest`
            // larger): back to the pool, so an idle connection holds none.
            left -= rest;
            self.sent = 0;
            if let Some(c) = self.chunks.pop_front() {
                pool.give(c);
            }
        }
        partial
    }

    /// Drop everything queued (abort); nothing may be in flight.
    pub(crate) fn clear(&mut self, pool: &mut ChunkPool, hdrs: &mut HdrPool) {
        debug_assert_eq!(self.flight, 0);
        for c in self.chunks.drain(..) {
            pool.give(c);
        }
        if let Some(h) = self.hdr.take() {
            hdrs.push(h);
        }
        self.sent = 0;
        self.queued = 0;
        self.flight = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(out: &mut Outbound, pool: &mut ChunkPool, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = out.spare(pool, 1).unwrap();
            let n = room.len().min(rest.len());
            room[..n].copy_from_slice(&rest[..n]);
            out.commit(pool, n);
            rest = &rest[n..];
        }
    }

    /// What the kernel would read for `s`.
    fn bytes_of(s: &NextSend) -> Vec<u8> {
        match *s {
            // SAFETY: the range lies in a live chunk.
            NextSend::One(p, n) => unsafe { std::slice::from_raw_parts(p, n as usize) }.to_vec(),
            NextSend::Many(m) => {
                // SAFETY: the header and its iovecs are live.
                let m = unsafe { &*m };
                let mut v = Vec::new();
                for i in 0..m.msg_iovlen {
                    // SAFETY: as above.
                    let iov = unsafe { *m.msg_iov.add(i) };
                    // SAFETY: as above.
                    v.extend_from_slice(unsafe {
                        std::slice::from_raw_parts(iov.iov_base.cast::<u8>(), iov.iov_len)
                    });
                }
                v
            }
        }
    }

    #[test]
    fn bytes_go_out_in_order_across_chunks_and_partial_sends() {
        let mut pool = ChunkPool::new(64, 16);
        let mut hdrs = Vec::new();
        let mut out = Outbound::default();
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        write(&mut out, &mut pool, &data);
        assert_eq!(out.queued(), 1000);
        let mut got = Vec::new();
        let mut step = 1;
        while let Some(s) = out.next_send(&mut hdrs) {
            let b = bytes_of(&s);
            // The kernel writes part of it; new bytes may be appended meanwhile.
            let n = b.len().min(step * 37);
            got.extend_from_slice(&b[..n]);
            out.sent(n, &mut pool, &mut hdrs);
            step += 1;
        }
        assert_eq!(got, data);
        assert_eq!(out.queued(), 0);
        assert!(out.chunks.is_empty(), "an idle connection holds no chunk");
        assert_eq!(pool.allocated, 16);
    }

    #[test]
    fn appending_while_a_send_is_in_flight_keeps_both() {
        let mut pool = ChunkPool::new(64, 16);
        let mut hdrs = Vec::new();
        let mut out = Outbound::default();
        write(&mut out, &mut pool, b"hello ");
        let s = out.next_send(&mut hdrs).unwrap();
        assert_eq!(bytes_of(&s), b"hello ");
        write(&mut out, &mut pool, b"world");
        assert!(out.has_unsent());
        assert!(out.next_send(&mut hdrs).is_none(), "one send at a time");
        out.sent(6, &mut pool, &mut hdrs);
        let s = out.next_send(&mut hdrs).unwrap();
        assert_eq!(bytes_of(&s), b"world");
        out.sent(5, &mut pool, &mut hdrs);
        assert_eq!(out.queued(), 0);
    }

    #[test]
    fn spare_refuses_more_than_a_chunk_and_an_unused_chunk_goes_back() {
        let mut pool = ChunkPool::new(64, 16);
        let mut out = Outbound::default();
        assert!(out.spare(&mut pool, 65).is_none());
        assert_eq!(out.spare(&mut pool, 64).unwrap().len(), 64);
        out.commit(&mut pool, 0);
        assert!(out.chunks.is_empty());
        assert_eq!(pool.free.len(), 1);
    }
}
