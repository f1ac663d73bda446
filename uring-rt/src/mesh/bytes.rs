//! Bounded SPSC byte mesh between workers: length-prefixed records.
//!
//! [`ByteMesh::new`] builds, for each ordered pair of distinct workers, two
//! bounded single-producer single-consumer byte rings, one per [`Lane`], and
//! hands out one [`ByteMeshEnd`] per worker, laid out like [`super::MeshEnd`]:
//! end `i` holds the producers of the rings `i → j` and the consumers of the
//! rings `j → i`. Where [`super::Mesh`] carries small `Copy` messages, this
//! mesh carries records of any length from 0 to a configured maximum
//! ([`ByteMeshConfig::max_record_bytes`], 64 KiB by default) without sizing
//! every slot for the largest: a forwarded HTTP request, a scrape answer for
//! many hashes, a WebRTC offer.
//!
//! Owns: the ring memory (all allocated in [`ByteMesh::new`], none per
//! record), the record framing, and the *decisions* to wake a peer. Not: the
//! wake itself (the runtime sends it, as for [`super::Mesh`]), what a record
//! means, or any queue of records that did not fit (the caller's, bounded).
//!
//! # Records and rings
//!
//! A ring is a power-of-two byte buffer with a `head` (consumer) and a `tail`
//! (producer) that count bytes for ever (`u64`, they never wrap). A record is
//! a 4-byte little-endian length followed by the payload, padded to a
//! multiple of 4 bytes, so a header never straddles the end of the buffer.
//! A record is always contiguous: when it does not fit before the end of the
//! buffer, the producer writes a *skip* header (length `u32::MAX`) and puts
//! the record at offset 0; the consumer jumps over the rest of the buffer.
//! The waste is at most one record per lap. A ring is at least twice the
//! largest record (the constructor rounds up), so a record of any allowed
//! size fits into an empty ring wherever the cursors stand.
//!
//! Writing is in place: [`ByteSender::push_with`] hands the payload space
//! inside the ring to a closure that writes (serialises, encrypts) into it and
//! says how many bytes it used; [`ByteSender::push`] copies a slice.
//! [`ByteReceiver::drain`] hands each record, in place and in order per ring,
//! to a callback, and publishes each ring's head once per round, not per
//! record.
//!
//! # Lanes: replies cannot be starved by requests
//!
//! Each pair has two rings: [`Lane::Request`] and [`Lane::Reply`]. They are
//! separate buffers with separate cursors, so requests filling their ring
//! never refuse a reply (a reply frees a connection on its origin worker;
//! refusing it because of the traffic it answers would be a deadlock in the
//! making). There is no order between the lanes; within a lane, records
//! arrive in push order. A drain round serves every reply ring before any
//! request ring.
//!
//! # Back-pressure and "space freed"
//!
//! A ring that cannot take a record answers [`PushError::Full`]: nothing was
//! queued, the caller counts it, then drops the record or keeps it in its own
//! bounded queue. It never blocks. [`ByteSender::space`] tells how long a
//! record the ring takes right now.
//!
//! A producer that keeps records back needs to learn when to retry, without
//! polling. A refused push sets the ring's `waiting` flag; the consumer's next
//! drain that advances that ring's head sees the flag, clears it and lists the
//! producer in [`ByteReceiver::space_freed`]. The consumer's loop then wakes
//! those workers (the same sticky wake as for records), and a woken worker
//! retries what it kept back. A retry that fails again re-arms the flag.
//! Spurious entries are possible (the producer found room by itself after
//! setting the flag); a missed one is not (below).
//!
//! # The wake-up protocol
//!
//! Exactly [`super::Mesh`]'s (see the proof in its module documentation),
//! with byte positions instead of slot numbers:
//!
//! * **Producer** ([`ByteSender::push_with`]): write the record (and the skip
//!   header if any), publish the new tail (release), a `SeqCst` fence, load
//!   the head. Answer `Ok(true)` (wake the consumer) if `head >= t`, where `t`
//!   is the tail before this push, i.e. the consumer has consumed everything
//!   before this record: the ring held only this push.
//! * **Consumer** ([`ByteReceiver::drain`]): consume, publish each advanced
//!   head (release), a `SeqCst` fence, load every inbound tail again; return
//!   only when that fenced re-check finds every inbound ring empty (or at the
//!   budget, with [`ByteReceiver::has_backlog`] set).
//!
//! The proof carries over word for word with "slot `t`" read as "the push
//! whose bytes start at position `t`": a push that answered `false` saw
//! `head < t` after its fence `Fp`, so it did not see the store `head = t`
//! that ends consuming the previous push; that store is followed by the
//! consumer's fence `Fc`; had `Fc` preceded `Fp` in the single `SeqCst`
//! order, the producer would have seen it; so `Fp` precedes `Fc`, and the
//! consumer's tail re-check after `Fc` sees our tail and consumes the push
//! before returning. A skip header belongs to the push that wrote it, so the
//! consumer never stops between a skip and the record after it.
//!
//! The space-freed flag is the same argument with the roles swapped. The
//! producer stores `waiting = true`, fences (`Fp`), loads the head; the
//! consumer stores the head, fences (`Fc`, the same fence as above), loads
//! `waiting` for every ring whose head it advanced. If `Fc` precedes `Fp`,
//! the producer's head load sees the new head and it has room itself (it then
//! pushes instead of failing); otherwise the consumer's flag load sees `true`
//! and it reports the producer. A head store that makes room always happens
//! in a drain that advanced that ring, so every refused push is followed by
//! either its own success on re-check or an entry in `space_freed`.
//!
//! # Return addresses (a convention for handlers)
//!
//! Request/reply traffic is two hops: the worker holding an HTTP or WebSocket
//! connection (the *origin*) sends a request on [`Lane::Request`] to the
//! shard's owner, which answers on [`Lane::Reply`]. A request starts with a
//! [`ReturnAddr`]: the origin worker, the connection ([`ConnId`]: slot index
//! and generation) and the sequence number of the request on that connection.
//! The reply echoes it unchanged. The origin delivers a reply only if the
//! connection is still the same (the generation matches the slot's current
//! one) *and* the sequence number is the one the connection is waiting for;
//! otherwise it drops the reply (and counts it). So a reply that arrives late
//! (the client gave up, the connection closed and its slot was reused, or a
//! keep-alive connection moved on to its next request after a timeout) never
//! answers a later request. The runtime does not enforce this; it only
//! provides [`ReturnAddr`] with a fixed 16-byte encoding.

use std::fmt;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::handler::ConnId;

/// Record header: the payload length, little-endian.
const HEADER: usize = 4;
/// Header of a skip record: the rest of the buffer is padding.
const SKIP: u32 = u32::MAX;
/// Largest allowed [`ByteMeshConfig::max_record_bytes`] (1 GiB): keeps
/// lengths far from the skip marker (`u32::MAX`) and rings addressable.
pub const MAX_RECORD_LIMIT: usize = 1 << 30;

/// Bytes a record of `len` payload bytes takes in the ring.
#[inline]
const fn stride(len: usize) -> usize {
    (HEADER + len + 3) & !3
}

/// Which of a pair's two rings a record travels on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Work for the receiving worker (e.g. an announce for its shard).
    Request = 0,
    /// An answer to a request; never refused because requests filled their
    /// ring.
    Reply = 1,
}

impl Lane {
    /// Both lanes, replies first (the order a drain round serves them in).
    pub const ALL: [Lane; 2] = [Lane::Reply, Lane::Request];
}

/// Sizes of the byte mesh; see [`ByteMesh::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteMeshConfig {
    /// Number of workers (one [`ByteMeshEnd`] each).
    pub workers: usize,
    /// Bytes of each request ring (one per ordered pair of workers). Rounded
    /// up to a power of two and to at least twice the largest record.
    pub request_ring_bytes: usize,
    /// Bytes of each reply ring (one per ordered pair of workers). Rounded
    /// up like `request_ring_bytes`.
    pub reply_ring_bytes: usize,
    /// Largest record payload in bytes; a longer push is refused with
    /// [`PushError::TooLarge`]. At most [`MAX_RECORD_LIMIT`].
    pub max_record_bytes: usize,
}

impl Default for ByteMeshConfig {
    /// One worker (set `workers`), 256 KiB rings per lane and pair, 64 KiB
    /// records.
    fn default() -> Self {
        ByteMeshConfig {
            workers: 1,
            request_ring_bytes: 256 << 10,
            reply_ring_bytes: 256 << 10,
            max_record_bytes: 64 << 10,
        }
    }
}

impl ByteMeshConfig {
    /// The ring size actually allocated for `lane` (rounded up, see the
    /// field docs).
    pub fn ring_bytes(&self, lane: Lane) -> usize {
        let asked = match lane {
            Lane::Request => self.request_ring_bytes,
            Lane::Reply => self.reply_ring_bytes,
        };
        asked
            .max(2 * stride(self.max_record_bytes))
            .next_power_of_two()
    }

    /// Bytes of ring memory the whole mesh allocates.
    pub fn total_bytes(&self) -> usize {
        let pairs = self.workers * self.workers.saturating_sub(1);
        pairs * (self.ring_bytes(Lane::Request) + self.ring_bytes(Lane::Reply))
    }
}

/// Builder of the N×N byte mesh; see [`ByteMesh::new`].
#[derive(Debug)]
pub struct ByteMesh(());

impl ByteMesh {
    /// Builds the mesh and returns one [`ByteMeshEnd`] per worker: element
    /// `i` belongs to worker `i`.
    ///
    /// Memory: [`ByteMeshConfig::total_bytes`], i.e. `workers * (workers -
    /// 1)` times the request ring plus the reply ring, all allocated here
    /// (zeroed; the kernel backs the pages on first touch).
    ///
    /// # Panics
    ///
    /// If `max_record_bytes` exceeds [`MAX_RECORD_LIMIT`]. Set-up code only;
    /// nothing on the hot path panics.
    #[allow(clippy::new_ret_no_self)] // the mesh is its ends; there is no `ByteMesh` value
    pub fn new(cfg: &ByteMeshConfig) -> Vec<ByteMeshEnd> {
        assert!(
            cfg.max_record_bytes <= MAX_RECORD_LIMIT,
            "byte mesh max_record_bytes {} exceeds {MAX_RECORD_LIMIT}",
            cfg.max_record_bytes
        );
        let workers = cfg.workers;
        let sizes = [cfg.ring_bytes(Lane::Request), cfg.ring_bytes(Lane::Reply)];
        let mut outbound: Vec<Vec<[Option<Producer>; 2]>> = (0..workers)
            .map(|_| (0..workers).map(|_| [None, None]).collect())
            .collect();
        let mut inbound: Vec<Vec<Consumer>> = (0..workers)
            .map(|_| Vec::with_capacity(2 * workers.saturating_sub(1)))
            .collect();
        for (from, row) in outbound.iter_mut().enumerate() {
            for (to, slots) in row.iter_mut().enumerate() {
                if from == to {
                    continue;
                }
                for lane in Lane::ALL {
                    let ring = Arc::new(Ring::new(sizes[lane as usize]));
                    slots[lane as usize] = Some(Producer {
                        ring: Arc::clone(&ring),
                        tail: 0,
                        head: 0,
                    });
                    inbound[to].push(Consumer {
                        from,
                        lane,
                        ring,
                        head: 0,
                        advanced: false,
                    });
                }
            }
        }
        outbound
            .into_iter()
            .zip(inbound)
            .enumerate()
            .map(|(worker, (outbound, mut inbound))| {
                // Replies first in every drain round; stable, so in worker
                // order within a lane.
                inbound.sort_by_key(|c| c.lane != Lane::Reply);
                let drain_budget = 2 * inbound.iter().map(|c| c.ring.size).sum::<usize>();
                ByteMeshEnd {
                    tx: ByteSender {
                        worker,
                        max_record: cfg.max_record_bytes,
                        outbound,
                    },
                    rx: ByteReceiver {
                        drain_budget,
                        backlog: false,
                        inbound,
                        freed: Vec::with_capacity(workers),
                        freed_mark: vec![false; workers],
                    },
                }
            })
            .collect()
    }
}

/// 128 bytes: two cache lines, as the adjacent-line prefetcher pulls pairs.
#[repr(align(128))]
struct Padded<T>(T);

/// One byte ring, shared by its producer and its consumer.
struct Ring {
    /// Start of the buffer: `size` bytes from `Box::<[u8]>::into_raw`, freed
    /// in `Drop`. Bytes in `[head, tail)` (mod `size`) belong to the
    /// consumer, the others to the producer.
    buf: *mut u8,
    /// Power of two, multiple of 4.
    size: usize,
    /// Bytes consumed so far. Written by the consumer (release), read by the
    /// producer (acquire: it reuses the space).
    head: Padded<AtomicU64>,
    /// Bytes published so far (release), read by the consumer (acquire).
    tail: Padded<AtomicU64>,
    /// A push was refused; the consumer reports it when it frees space.
    waiting: Padded<AtomicBool>,
}

// SAFETY: `buf` is owned by the ring (freed only in Drop). The producer and
// the consumer only touch disjoint byte ranges of it, as delimited by `head`
// and `tail` (acquire/release), and each side is a single `&mut` handle.
unsafe impl Send for Ring {}
// SAFETY: as for `Send`; shared access goes through the atomics, and the
// buffer ranges each side touches never overlap (see `Ring::buf`).
unsafe impl Sync for Ring {}

impl Ring {
    fn new(size: usize) -> Ring {
        debug_assert!(size.is_power_of_two() && size >= 2 * HEADER);
        let buf = Box::into_raw(vec![0_u8; size].into_boxed_slice()).cast::<u8>();
        Ring {
            buf,
            size,
            head: Padded(AtomicU64::new(0)),
            tail: Padded(AtomicU64::new(0)),
            waiting: Padded(AtomicBool::new(false)),
        }
    }

    /// Offset in the buffer of the absolute position `pos`.
    #[inline]
    fn offset(&self, pos: u64) -> usize {
        (pos as usize) & (self.size - 1)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.buf, self.size);
        // SAFETY: `buf`/`size` came from `Box::into_raw` of a boxed slice of
        // `size` bytes in `Ring::new`, and this is the only place that frees it.
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// The producer of one ring `this worker → to`.
struct Producer {
    ring: Arc<Ring>,
    /// Our tail (the shared one lags only inside `push_with`).
    tail: u64,
    /// Last head we loaded; the real one is never behind it.
    head: u64,
}

impl Producer {
    /// Bytes free if the head were `self.head`.
    #[inline]
    fn free(&self) -> usize {
        self.ring.size - (self.tail - self.head) as usize
    }

    fn push_with(
        &mut self,
        len: usize,
        write: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<bool, PushError> {
        let size = self.ring.size;
        let offset = self.ring.offset(self.tail);
        let to_end = size - offset;
        let reserved = stride(len);
        // Not contiguous before the end: skip the rest of the buffer.
        let skip = if reserved <= to_end { 0 } else { to_end };
        let need = skip + reserved;
        if need > self.free() {
            self.head = self.ring.head.0.load(Ordering::Acquire);
            if need > self.free() {
                // Space-freed protocol (module docs): flag, fence, re-check.
                self.ring.waiting.0.store(true, Ordering::Relaxed);
                fence(Ordering::SeqCst);
                self.head = self.ring.head.0.load(Ordering::Acquire);
                if need > self.free() {
                    return Err(PushError::Full);
                }
            }
        }
        if skip > 0 {
            self.bytes_mut(offset, HEADER)
                .copy_from_slice(&SKIP.to_le_bytes());
        }
        let start = (offset + skip) & (size - 1);
        let record = self.bytes_mut(start, reserved);
        let used = write(&mut record[HEADER..HEADER + len]);
        debug_assert!(used <= len, "push_with: wrote {used} of {len} bytes");
        let used = used.min(len);
        record[..HEADER].copy_from_slice(&(used as u32).to_le_bytes());
        let before = self.tail;
        self.tail += (skip + stride(used)) as u64;
        self.ring.tail.0.store(self.tail, Ordering::Release);
        // Producer side of the wake-up protocol (module docs): the tail store
        // above must be visible before we load the head below.
        fence(Ordering::SeqCst);
        self.head = self.ring.head.0.load(Ordering::Acquire);
        Ok(self.head >= before)
    }

    /// Longest payload a push would take now.
    fn space(&self) -> usize {
        let head = self.ring.head.0.load(Ordering::Acquire);
        let free = self.ring.size - (self.tail - head) as usize;
        let to_end = self.ring.size - self.ring.offset(self.tail);
        // Either contiguous at the tail, or after skipping to offset 0.
        let largest = free.min(to_end).max(free.saturating_sub(to_end));
        largest.saturating_sub(HEADER)
    }

    /// The producer's bytes at `offset..offset + len` of the buffer.
    #[inline]
    fn bytes_mut(&mut self, offset: usize, len: usize) -> &mut [u8] {
        assert!(offset + len <= self.ring.size);
        // SAFETY: in bounds (asserted above). Callers pass only ranges in
        // `[tail, head + size)` that `push_with` checked are free, so the
        // consumer does not read them until we publish a tail past them; the
        // `&mut self` borrow makes this the only reference into them.
        unsafe { std::slice::from_raw_parts_mut(self.ring.buf.add(offset), len) }
    }
}

/// The consumer of one ring `from → this worker`.
struct Consumer {
    from: usize,
    lane: Lane,
    ring: Arc<Ring>,
    /// Our head; published once per drain round.
    head: u64,
    /// The head advanced in the current drain call.
    advanced: bool,
}

impl Consumer {
    /// Hands records to `f` until the ring is empty (as of one tail load) or
    /// `budget` bytes are used; publishes the head once. Returns (records,
    /// bytes).
    fn consume(
        &mut self,
        budget: usize,
        f: &mut impl FnMut(usize, Lane, &mut [u8]),
    ) -> (usize, usize) {
        let tail = self.ring.tail.0.load(Ordering::Acquire);
        let start = self.head;
        let (mut records, mut bytes) = (0, 0);
        while self.head != tail && bytes < budget {
            let offset = self.ring.offset(self.head);
            let header = self.bytes_mut(offset, HEADER);
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            if len == SKIP {
                let rest = self.ring.size - offset;
                self.head += rest as u64;
                bytes += rest;
                continue;
            }
            let len = len as usize;
            let (from, lane) = (self.from, self.lane);
            f(
                from,
                lane,
                &mut self.bytes_mut(offset, HEADER + len)[HEADER..],
            );
            self.head += stride(len) as u64;
            bytes += stride(len);
            records += 1;
        }
        debug_assert!(self.head <= tail, "record ran past the tail");
        if self.head != start {
            self.ring.head.0.store(self.head, Ordering::Release);
            self.advanced = true;
        }
        (records, bytes)
    }

    /// The consumer's bytes at `offset..offset + len` of the buffer.
    #[inline]
    fn bytes_mut(&mut self, offset: usize, len: usize) -> &mut [u8] {
        assert!(offset + len <= self.ring.size);
        // SAFETY: in bounds (asserted above). Callers pass only ranges inside
        // `[head, tail)` for a tail loaded with acquire, so the producer wrote
        // them before publishing and will not touch them until we publish a
        // head past them; the `&mut self` borrow makes this the only
        // reference into them.
        unsafe { std::slice::from_raw_parts_mut(self.ring.buf.add(offset), len) }
    }

    /// Something is queued (a relaxed look, for the fenced re-check).
    fn has_data(&self) -> bool {
        self.ring.tail.0.load(Ordering::Relaxed) != self.head
    }
}

/// Worker `i`'s end of the byte mesh: producers towards every other worker
/// and consumers of every ring towards `i`, two of each per peer (one per
/// [`Lane`]). `Send`, so it moves into the worker thread; not `Sync`. The
/// runtime [`split`](ByteMeshEnd::split)s it, so a handler can push from
/// inside the drain callback; tests and benches use the halves in place.
pub struct ByteMeshEnd {
    /// The producers.
    pub tx: ByteSender,
    /// The consumers.
    pub rx: ByteReceiver,
}

/// The sending half of a [`ByteMeshEnd`]: the producers.
pub struct ByteSender {
    worker: usize,
    max_record: usize,
    /// `[to][lane]`; `None` at `to == worker`.
    outbound: Vec<[Option<Producer>; 2]>,
}

/// The receiving half of a [`ByteMeshEnd`]: the consumers.
pub struct ByteReceiver {
    /// Most ring bytes one [`ByteReceiver::drain`] consumes (twice what all
    /// inbound rings hold), so a flood cannot keep a worker in `drain`.
    drain_budget: usize,
    /// The last drain stopped at its budget with records still queued.
    backlog: bool,
    /// All reply rings, then all request rings.
    inbound: Vec<Consumer>,
    /// Producers the last drain freed space for (after a refused push).
    freed: Vec<usize>,
    /// `freed_mark[w]`: `w` is in `freed`.
    freed_mark: Vec<bool>,
}

impl ByteMeshEnd {
    /// The two halves, for a loop that drains into a handler that pushes.
    pub fn split(self) -> (ByteSender, ByteReceiver) {
        (self.tx, self.rx)
    }
}

impl ByteSender {
    /// Queues a record of up to `len` payload bytes for worker `to`, written
    /// in place: `write` gets exactly `len` bytes of ring space (holding
    /// stale data) and returns how many of them it filled, from the start;
    /// that many become the record (`min(returned, len)`).
    ///
    /// `Ok(true)`: the consumer must be woken (after this call; waking each
    /// peer once per loop turn is enough), `Ok(false)`: it will see the
    /// record in a drain it has not finished. Same contract as
    /// [`super::MeshEnd::push`]; see the module docs.
    ///
    /// `Err(PushError::Full)`: the ring cannot take `len` bytes now; nothing
    /// was queued and `write` was not called. The consumer lists this worker
    /// in its [`ByteReceiver::space_freed`] once it frees space.
    /// `Err(PushError::TooLarge)`: `len` exceeds the configured maximum.
    ///
    /// A worker never sends to itself; `to == self.worker()` panics in debug
    /// builds and answers `Err(Full)` in release builds.
    ///
    /// # Panics
    ///
    /// If `to >= self.workers()` (a caller bug).
    #[inline]
    pub fn push_with(
        &mut self,
        to: usize,
        lane: Lane,
        len: usize,
        write: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<bool, PushError> {
        debug_assert_ne!(to, self.worker, "a worker never pushes to itself");
        if len > self.max_record {
            return Err(PushError::TooLarge);
        }
        let Some(producer) = self.outbound[to][lane as usize].as_mut() else {
            return Err(PushError::Full);
        };
        producer.push_with(len, write)
    }

    /// Queues a copy of `record` for worker `to`; see
    /// [`ByteSender::push_with`].
    #[inline]
    pub fn push(&mut self, to: usize, lane: Lane, record: &[u8]) -> Result<bool, PushError> {
        self.push_with(to, lane, record.len(), |buf| {
            buf.copy_from_slice(record);
            record.len()
        })
    }

    /// Longest record payload the ring to `to` on `lane` would take now
    /// (capped at the configured maximum); 0 for `to == worker()`. Space only
    /// grows until this worker pushes again.
    ///
    /// # Panics
    ///
    /// If `to >= self.workers()`.
    pub fn space(&self, to: usize, lane: Lane) -> usize {
        self.outbound[to][lane as usize]
            .as_ref()
            .map_or(0, |p| p.space().min(self.max_record))
    }

    /// Number of workers in the mesh.
    pub fn workers(&self) -> usize {
        self.outbound.len()
    }

    /// This end's worker index.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// Largest record payload, bytes.
    pub fn max_record(&self) -> usize {
        self.max_record
    }
}

impl ByteReceiver {
    /// Hands every queued record of every inbound ring to `f(from, lane,
    /// record)`, in push order per ring, reply rings before request rings in
    /// each round. Returns how many records. `record` is the payload, in
    /// place in the ring, valid for the call.
    ///
    /// Each ring's head is published once per round, after its records. Ends
    /// with a fenced re-check (module docs): once it returns, every record
    /// pushed with `Ok(false)` before that point has been handed to `f`, and
    /// the worker may block until woken. Call it after every wake and before
    /// every block. Then wake every worker in [`ByteReceiver::space_freed`].
    ///
    /// At most twice the inbound ring bytes are consumed per call; beyond
    /// that it returns with records still queued and
    /// [`ByteReceiver::has_backlog`] set: do not block then, drain again.
    pub fn drain(&mut self, mut f: impl FnMut(usize, Lane, &mut [u8])) -> usize {
        for &w in &self.freed {
            self.freed_mark[w] = false;
        }
        self.freed.clear();
        let (mut records, mut bytes) = (0, 0);
        loop {
            for consumer in &mut self.inbound {
                if bytes >= self.drain_budget {
                    break;
                }
                let (r, b) = consumer.consume(self.drain_budget - bytes, &mut f);
                records += r;
                bytes += b;
            }
            // Consumer side of the wake-up protocol (module docs): the head
            // stores above must be visible before the tails (and the
            // `waiting` flags) are loaded again.
            fence(Ordering::SeqCst);
            let more = self.inbound.iter().any(Consumer::has_data);
            if !more || bytes >= self.drain_budget {
                self.backlog = more;
                break;
            }
        }
        for consumer in &mut self.inbound {
            if !std::mem::take(&mut consumer.advanced) {
                continue;
            }
            let waiting = &consumer.ring.waiting.0;
            if waiting.load(Ordering::Relaxed)
                && waiting.swap(false, Ordering::Relaxed)
                && !self.freed_mark[consumer.from]
            {
                self.freed_mark[consumer.from] = true;
                self.freed.push(consumer.from);
            }
        }
        records
    }

    /// Workers that had a push refused by a ring this worker's last
    /// [`ByteReceiver::drain`] freed space in: wake each, so it retries what
    /// it kept back. Each worker at most once; valid until the next drain.
    pub fn space_freed(&self) -> &[usize] {
        &self.freed
    }

    /// `true` when the last [`ByteReceiver::drain`] stopped at its budget with
    /// records still queued; the worker must drain again before blocking.
    pub fn has_backlog(&self) -> bool {
        self.backlog
    }
}

impl fmt::Debug for ByteMeshEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteMeshEnd")
            .field("worker", &self.tx.worker)
            .field("workers", &self.tx.outbound.len())
            .field("max_record", &self.tx.max_record)
            .field("backlog", &self.rx.backlog)
            .finish_non_exhaustive()
    }
}

/// A record was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The ring to the destination has no room for it now: back-pressure;
    /// count it, keep or drop the record, retry after a space-freed wake.
    #[error("byte mesh ring to the destination worker is full")]
    Full,
    /// Longer than the mesh's `max_record_bytes`; it will never fit.
    #[error("record longer than the byte mesh's max_record_bytes")]
    TooLarge,
}

/// Where a reply goes: the origin worker, the connection and the request's
/// sequence number on it (module docs, "Return addresses"). Encoded in
/// [`ReturnAddr::LEN`] bytes at the start of a request record and echoed at
/// the start of its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReturnAddr {
    /// Worker holding the connection.
    pub worker: usize,
    /// The connection (slot index + generation) on that worker.
    pub conn: ConnId,
    /// Sequence number of the request on the connection (wrapping).
    pub seq: u32,
}

impl ReturnAddr {
    /// Encoded length: worker, slot index, generation, sequence; `u32`
    /// little-endian each.
    pub const LEN: usize = 16;

    /// The 16-byte encoding.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0; Self::LEN];
        out[0..4].copy_from_slice(&(self.worker as u32).to_le_bytes());
        out[4..8].copy_from_slice(&self.conn.index.to_le_bytes());
        out[8..12].copy_from_slice(&self.conn.generation.to_le_bytes());
        out[12..16].copy_from_slice(&self.seq.to_le_bytes());
        out
    }

    /// Reads a return address from the start of `record`; returns it and the
    /// rest of the record, or `None` if `record` is shorter than
    /// [`ReturnAddr::LEN`].
    pub fn decode(record: &[u8]) -> Option<(ReturnAddr, &[u8])> {
        let (head, rest) = record.split_first_chunk::<{ Self::LEN }>()?;
        let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let addr = ReturnAddr {
            worker: word(0) as usize,
            conn: ConnId {
                index: word(4),
                generation: word(8),
            },
            seq: word(12),
        };
        Some((addr, rest))
    }

    /// Whether a reply carrying this address answers the request `conn` is
    /// waiting for right now (`outstanding`: its sequence number, `None` if
    /// it waits for nothing). A `false` reply is late: drop it.
    pub fn answers(&self, conn: ConnId, outstanding: Option<u32>) -> bool {
        self.conn == conn && outstanding == Some(self.seq)
    }
}

#[cfg(test)]
mod tests;
