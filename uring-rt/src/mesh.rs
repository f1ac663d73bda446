//! Bounded SPSC mesh between workers.
//!
//! [`Mesh::new`] builds one bounded single-producer single-consumer ring
//! ([`rtrb`]) per ordered pair of distinct workers and hands out one
//! [`MeshEnd`] per worker. End `i` holds the producers of the rings `i → j`
//! and the consumers of the rings `j → i`, so a worker talks to every other
//! worker without a lock and without sharing a cache line with a third one.
//!
//! This module owns the rings and the *decision* to wake a peer; it does not
//! own the wake itself. [`MeshEnd::push`] returns `Ok(true)` when the peer
//! has to be woken, and the runtime delivers the wake (`IORING_OP_MSG_RING`,
//! an eventfd, a futex, a condvar: anything *sticky*, i.e. a wake sent while
//! the peer is awake makes its next wait return at once).
//!
//! Every ring is bounded: a full ring is back-pressure ([`MeshFull`]), never a
//! block and never an unbounded queue.
//!
//! Messages of variable length (forwarded HTTP requests, replies) travel on
//! the byte mesh in [`bytes`], which uses the same wake-up protocol.
//!
//! # The wake-up protocol
//!
//! A missed wake-up would leave a message stranded until something else
//! wakes the worker; a spurious one costs a loop turn. The protocol therefore
//! errs towards spurious wakes and never misses one:
//!
//! * **Producer** ([`MeshEnd::push`]): write the message and publish the new
//!   tail (release), then a `SeqCst` fence, then load the consumer's head.
//!   If the ring now holds at most this one message (`head >= our slot`),
//!   answer `Ok(true)`: wake the consumer.
//! * **Consumer** ([`MeshEnd::drain`]): pop what is there and publish the new
//!   head (release), then a `SeqCst` fence, then load every inbound tail
//!   again. If anything arrived, pop again; return only after a fenced
//!   re-check found every inbound ring empty. The worker may block only after
//!   `drain` returned.
//!
//! Why no wake is lost: take a message pushed into slot `t` for which push
//! answered `false`. Its fresh load of the head (after the producer's fence
//! `Fp`) saw `h < t`, i.e. it did not see the consumer's store `head = t`
//! that follows consuming message `t - 1`. That store is followed by a fence
//! `Fc` in the same drain. Both fences are `SeqCst`, so they are totally
//! ordered. Had `Fc` come before `Fp`, the producer's load after `Fp` would
//! have seen `head = t` (or later); it did not, so `Fp` comes before `Fc`,
//! and then the consumer's re-check of the tail after `Fc` sees the tail
//! published before `Fp`: it sees message `t` and pops it before returning.
//! By induction message `t - 1` is consumed (the consumer was woken for an
//! earlier message of the same run, or is awake), so message `t` is too. If
//! instead push answered `true`, the caller wakes the consumer after the push
//! and the consumer's next drain (after the wake) sees the message.
//!
//! The argument needs both fences: without the producer's, its load of the
//! head may be served before its store of the tail is visible (store-load
//! reordering, the x86 store buffer); without the consumer's, the same holds
//! for its re-check. Deciding "was empty" from a load of the head *before*
//! the push is not enough even on a sequentially consistent machine: the
//! producer sees one old message still queued, the consumer pops it, finds
//! the ring empty and goes to sleep, then the producer publishes its message
//! and answers `false`.
//!
//! The cost is one fence per push and one per drain round. A batch of pushes
//! to the same ring answers `true` at most for the first message unless the
//! consumer keeps up message by message, in which case it is awake anyway.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{fence, Ordering};

use rtrb::{Consumer, Producer, RingBuffer};

pub mod bytes;

/// Builder of the N×N mesh; see [`Mesh::new`].
pub struct Mesh<M>(PhantomData<fn() -> M>);

impl<M: Copy + Send> Mesh<M> {
    /// Builds the mesh for `workers` workers with rings of `capacity`
    /// messages each and returns one [`MeshEnd`] per worker: element `i`
    /// belongs to worker `i`.
    ///
    /// Memory: `workers * (workers - 1) * capacity * size_of::<M>()` bytes,
    /// all allocated here.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0 (a ring that can hold nothing would make every push
    /// fail). Set-up code only; nothing on the hot path panics.
    #[allow(clippy::new_ret_no_self)] // the mesh is its ends; there is no `Mesh` value
    pub fn new(workers: usize, capacity: usize) -> Vec<MeshEnd<M>> {
        assert!(capacity > 0, "mesh ring capacity must be at least 1");
        // outbound[i][j]: producer of ring i -> j; inbound[j]: consumers of rings * -> j.
        let mut outbound: Vec<Vec<Option<Producer<M>>>> = (0..workers)
            .map(|_| (0..workers).map(|_| None).collect())
            .collect();
        let mut inbound: Vec<Vec<Inbound<M>>> = (0..workers)
            .map(|_| Vec::with_capacity(workers.saturating_sub(1)))
            .collect();
        for (from, row) in outbound.iter_mut().enumerate() {
            for (to, slot) in row.iter_mut().enumerate() {
                if from == to {
                    continue;
                }
                let (producer, consumer) = RingBuffer::new(capacity);
                *slot = Some(producer);
                inbound[to].push(Inbound { from, consumer });
            }
        }
        outbound
            .into_iter()
            .zip(inbound)
            .enumerate()
            .map(|(worker, (outbound, inbound))| MeshEnd {
                worker,
                capacity,
                drain_budget: 2 * capacity * inbound.len(),
                backlog: false,
                outbound,
                inbound,
            })
            .collect()
    }
}

/// The consumer of one ring `from → this worker`.
struct Inbound<M> {
    from: usize,
    consumer: Consumer<M>,
}

/// Worker `i`'s end of the mesh: producers towards every other worker and
/// consumers of every ring towards `i`. `Send`, so it moves into the worker
/// thread; not `Sync`: exactly one thread uses it.
pub struct MeshEnd<M> {
    worker: usize,
    capacity: usize,
    /// Most messages one [`MeshEnd::drain`] call pops (twice what all inbound
    /// rings can hold), so a flood from the peers cannot keep a worker in
    /// `drain` for ever.
    drain_budget: usize,
    /// The last drain stopped at its budget with messages still queued.
    backlog: bool,
    /// Indexed by destination worker; `None` at `worker` (no ring to self).
    outbound: Vec<Option<Producer<M>>>,
    /// One per other worker, in worker order.
    inbound: Vec<Inbound<M>>,
}

impl<M: Copy + Send> MeshEnd<M> {
    /// Queues `msg` for worker `to`.
    ///
    /// `Ok(true)`: the ring to `to` was empty before this push (more exactly:
    /// `to` may have finished its last drain without this message), so the
    /// caller must wake `to` — after this push, and it may wait until the end
    /// of its loop turn, waking each peer once however many pushes answered
    /// `true`. `Ok(false)`: no wake needed, `to` will see the message in a
    /// drain it has not finished yet. See the module documentation for why no
    /// wake can be lost.
    ///
    /// `Err(MeshFull)`: the ring is full; nothing was queued (back-pressure,
    /// count it). The caller keeps the message or drops it; it never blocks.
    ///
    /// A worker never sends to itself: it handles its own messages directly.
    /// `to == self.worker()` is a caller bug: it panics in debug builds and
    /// returns `Err(MeshFull)` in release builds.
    ///
    /// # Panics
    ///
    /// If `to >= self.workers()` (a caller bug; worker indices come from the
    /// shard function, never from the network).
    #[inline]
    pub fn push(&mut self, to: usize, msg: M) -> Result<bool, MeshFull> {
        debug_assert_ne!(to, self.worker, "a worker never pushes to itself");
        let Some(producer) = self.outbound[to].as_mut() else {
            return Err(MeshFull);
        };
        if producer.push(msg).is_err() {
            return Err(MeshFull);
        }
        // Producer side of the wake-up protocol (module docs): the tail store
        // above must be visible before we load the head below.
        fence(Ordering::SeqCst);
        // slots() loads the head afresh; used = tail - head, ours included.
        Ok(self.capacity - producer.slots() <= 1)
    }

    /// Pops every message in every inbound ring and hands each to
    /// `f(from, msg)`, in order per sending worker. Returns how many.
    ///
    /// Ends with a fenced re-check of all inbound rings (module docs), so once
    /// it returns, every message pushed with `Ok(false)` before that point has
    /// been handed to `f`, and the worker may block until woken. Call it after
    /// every wake and before every block.
    ///
    /// A drain pops at most twice what the inbound rings can hold. If the
    /// peers refill the rings faster than `f` runs, it returns at that limit
    /// with messages still queued and [`MeshEnd::has_backlog`] set: the
    /// worker must then not block (wait with a zero timeout and drain again).
    pub fn drain(&mut self, mut f: impl FnMut(usize, M)) -> usize {
        let mut total = 0;
        loop {
            for inbound in &mut self.inbound {
                let want = inbound.consumer.slots().min(self.drain_budget - total);
                if want == 0 {
                    continue;
                }
                // `want` <= slots(), so the chunk is available.
                let Ok(chunk) = inbound.consumer.read_chunk(want) else {
                    continue;
                };
                let (first, second) = chunk.as_slices();
                for &msg in first.iter().chain(second) {
                    f(inbound.from, msg);
                }
                chunk.commit_all();
                total += want;
            }
            // Consumer side of the wake-up protocol (module docs): the head
            // stores above must be visible before the tails are loaded again.
            fence(Ordering::SeqCst);
            let more = self.inbound.iter().any(|i| i.consumer.slots() > 0);
            if !more {
                self.backlog = false;
                return total;
            }
            if total >= self.drain_budget {
                self.backlog = true;
                return total;
            }
        }
    }

    /// `true` when the last [`MeshEnd::drain`] stopped at its budget with
    /// messages still queued; the worker must drain again before blocking.
    pub fn has_backlog(&self) -> bool {
        self.backlog
    }

    /// This end's worker index.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// Number of workers in the mesh.
    pub fn workers(&self) -> usize {
        self.outbound.len()
    }

    /// Capacity of each ring, in messages.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Slots used in the ring to `to` (for metrics); 0 for `to == worker()`.
    ///
    /// # Panics
    ///
    /// If `to >= self.workers()`.
    pub fn fill(&self, to: usize) -> usize {
        self.outbound[to]
            .as_ref()
            .map_or(0, |producer| self.capacity - producer.slots())
    }
}

impl<M> fmt::Debug for MeshEnd<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshEnd")
            .field("worker", &self.worker)
            .field("workers", &self.outbound.len())
            .field("capacity", &self.capacity)
            .field("backlog", &self.backlog)
            .finish_non_exhaustive()
    }
}

/// The ring to the destination worker is full: back-pressure, nothing queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("mesh ring to the destination worker is full")]
pub struct MeshFull;

#[cfg(test)]
mod tests;
