//! Provided buffer rings (`IORING_REGISTER_PBUF_RING`): the kernel picks a
//! buffer for each multishot receive; we give it back right after the
//! handler has looked at the bytes.
//!
//! The kernel takes buffers in ring order, so every buffer in the ring is
//! written once per lap: with all 4,096 of a default ring in play, each
//! receive lands in memory that left the cache long ago. So a ring starts
//! with [`FIRST_BUFFERS`] in play and doubles them each time a receive finds
//! it empty (`ENOBUFS`), up to its size: the working set stays as small as
//! the load needs, and the untouched rest costs no memory (it is `mmap`ed).
//!
//! Owns: the ring-entry array and the buffer memory (both `Region`s that
//! outlive the io_uring, see `worker::Worker`'s field order). Not: which
//! socket uses which group (the worker decides).

use crate::region::Region;
use io_uring::types::BufRingEntry;
use io_uring::Submitter;
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

/// Layout of `struct io_uring_buf` (what `BufRingEntry` wraps).
#[repr(C)]
struct RawBuf {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

const _: () = assert!(std::mem::size_of::<RawBuf>() == std::mem::size_of::<BufRingEntry>());

/// Buffers a ring hands the kernel at first (fewer if the ring is smaller).
pub(crate) const FIRST_BUFFERS: u16 = 128;

/// One buffer group: up to `entries` buffers of `buf_size` bytes each.
pub(crate) struct BufRing {
    ring: Region,
    bufs: Region,
    entries: u16,
    /// Buffers ids `0..provided` are in play (in the ring or lent out).
    provided: u16,
    /// A receive found the ring empty since the last `grow_if_dry`.
    dry: bool,
    buf_size: u32,
    /// Our copy of the tail; published with a release store.
    tail: u16,
}

impl BufRing {
    /// Allocate room for `entries` buffers, put the first
    /// [`FIRST_BUFFERS`] in the ring and register it as group `bgid`.
    /// `entries` must be a power of two in 1..=32768.
    pub(crate) fn new(
        submitter: &Submitter<'_>,
        bgid: u16,
        entries: u16,
        buf_size: u32,
    ) -> io::Result<BufRing> {
        if !entries.is_power_of_two() || entries > 32768 || buf_size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "recv_buffers must be a power of two <= 32768 and recv_buffer_size > 0",
            ));
        }
        let ring = Region::new(usize::from(entries) * std::mem::size_of::<BufRingEntry>())?;
        let bufs = Region::new(usize::from(entries) * buf_size as usize)?;
        let mut br = BufRing {
            ring,
            bufs,
            entries,
            provided: entries.min(FIRST_BUFFERS),
            dry: false,
            buf_size,
            tail: 0,
        };
        for bid in 0..br.provided {
            br.write_entry(bid);
        }
        br.publish();
        // SAFETY: the entry array is page-aligned, holds `entries` entries and
        // lives as long as this BufRing, which the Worker drops only after the
        // io_uring (field order in `Worker`), so the registration never
        // outlives the memory.
        unsafe {
            submitter.register_buf_ring_with_flags(br.ring.ptr() as u64, entries, bgid, 0)?;
        }
        Ok(br)
    }

    /// The first `len` bytes of buffer `bid`, which the kernel just handed us.
    /// Out-of-range ids or lengths (never produced by a sane kernel) give an
    /// empty slice instead of a panic.
    pub(crate) fn get(&self, bid: u16, len: usize) -> &[u8] {
        if bid >= self.provided || len > self.buf_size as usize {
            return &[];
        }
        let off = usize::from(bid) * self.buf_size as usize;
        // SAFETY: bid < entries and len <= buf_size keep the range inside the
        // `bufs` Region; the kernel gave buffer `bid` to us with this CQE and
        // does not write it again until `recycle(bid)` puts it back, which
        // needs `&mut self` and so cannot happen while this slice lives.
        unsafe { std::slice::from_raw_parts(self.bufs.ptr().add(off), len) }
    }

    /// Like [`get`](Self::get), mutably: a stream handler decrypts or
    /// unmasks in place.
    pub(crate) fn get_mut(&mut self, bid: u16, len: usize) -> &mut [u8] {
        if bid >= self.provided || len > self.buf_size as usize {
            return &mut [];
        }
        let off = usize::from(bid) * self.buf_size as usize;
        // SAFETY: as in `get`; `&mut self` makes this the only view of the
        // buffer until it is recycled.
        unsafe { std::slice::from_raw_parts_mut(self.bufs.ptr().add(off), len) }
    }

    /// Give buffer `bid` back to the kernel.
    pub(crate) fn recycle(&mut self, bid: u16) {
        if bid >= self.provided {
            return;
        }
        self.write_entry(bid);
        self.publish();
    }

    /// A receive ended with `ENOBUFS`: the kernel found the ring empty.
    pub(crate) fn ran_dry(&mut self) {
        self.dry = true;
    }

    /// Once per loop turn: if the ring ran dry since the last call, double
    /// the buffers in play (several receives on one group may all have
    /// found it empty at once; that is still one doubling). Returns the
    /// number now in play, or `None` if it did not grow.
    pub(crate) fn grow_if_dry(&mut self) -> Option<u16> {
        if !std::mem::take(&mut self.dry) || self.provided == self.entries {
            return None;
        }
        // Both are powers of two, so the doubled count stays <= entries.
        let more = self.provided;
        for bid in self.provided..self.provided + more {
            self.write_entry(bid);
        }
        self.provided += more;
        self.publish();
        Some(self.provided)
    }

    // The entry Region is page-aligned: casts to 8-byte-aligned types are fine.
    #[allow(clippy::cast_ptr_alignment)]
    fn write_entry(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (self.entries - 1));
        let addr = self.bufs.ptr() as u64 + u64::from(bid) * u64::from(self.buf_size);
        let entry = self.ring.ptr().cast::<RawBuf>().wrapping_add(slot);
        // SAFETY: slot < entries, so `entry` is inside the entry Region; the
        // kernel only reads entries between its head and our published tail,
        // and this slot is at our unpublished tail. Field-wise raw writes
        // leave `resv` alone: in entry 0 that is the shared tail.
        unsafe {
            (&raw mut (*entry).addr).write(addr);
            (&raw mut (*entry).len).write(self.buf_size);
            (&raw mut (*entry).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    #[allow(clippy::cast_ptr_alignment)]
    fn publish(&self) {
        // SAFETY: the Region start is the first entry of the buffer ring, as
        // `BufRingEntry::tail` requires; the tail field is a u16 that the
        // kernel reads concurrently, hence the atomic view of it. A u16 at
        // that offset is 2-byte aligned (the Region is page-aligned).
        let tail = unsafe {
            let p = BufRingEntry::tail(self.ring.ptr().cast::<BufRingEntry>().cast_const());
            &*p.cast::<AtomicU16>()
        };
        tail.store(self.tail, Ordering::Release);
    }
}
