//! The in-flight table: which request a transaction id belongs to, and
//! which requests timed out.

use std::time::{Duration, Instant};

use riptide_udp::protocol::TransactionId;

use crate::tally::CONNECT;

/// One request in flight.
#[derive(Clone, Copy)]
struct Slot {
    busy: bool,
    kind: u8,
    socket: u16,
    generation: u32,
    sent_at: Instant,
}

/// Fixed table of requests in flight; the transaction id is
/// `generation << bits | index`, so a late answer to a reused slot is
/// recognised.
pub(crate) struct InFlight {
    slots: Vec<Slot>,
    free: Vec<u32>,
    bits: u32,
}

impl InFlight {
    pub(crate) fn new(window: usize, now: Instant) -> Self {
        let size = window.next_power_of_two();
        let slots = vec![
            Slot {
                busy: false,
                kind: 0,
                socket: 0,
                generation: 0,
                sent_at: now,
            };
            size
        ];
        // Only `window` slots are ever handed out.
        let free = (0..window as u32).rev().collect();
        Self {
            slots,
            free,
            bits: size.trailing_zeros(),
        }
    }

    pub(crate) fn available(&self) -> usize {
        self.free.len()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.busy).count()
    }

    pub(crate) fn alloc(
        &mut self,
        kind: usize,
        socket: usize,
        now: Instant,
    ) -> Option<(u32, TransactionId)> {
        let index = self.free.pop()?;
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.busy = true;
        slot.kind = kind as u8;
        slot.socket = socket as u16;
        slot.sent_at = now;
        let tid = (slot.generation << self.bits) | index;
        Some((index, TransactionId(tid as i32)))
    }

    /// Give back a slot whose request was never sent.
    pub(crate) fn cancel(&mut self, index: u32) {
        self.slots[index as usize].busy = false;
        self.free.push(index);
    }

    /// The request an answer belongs to, freed: (kind, socket, sent at).
    pub(crate) fn complete(&mut self, tid: TransactionId) -> Option<(usize, usize, Instant)> {
        let tid = tid.0 as u32;
        let index = tid & ((1 << self.bits) - 1);
        let slot = self.slots.get_mut(index as usize)?;
        if !slot.busy || slot.generation << self.bits != tid & !((1 << self.bits) - 1) {
            return None;
        }
        slot.busy = false;
        self.free.push(index);
        Some((
            usize::from(slot.kind),
            usize::from(slot.socket),
            slot.sent_at,
        ))
    }

    /// Free every request older than `timeout`; returns them as
    /// (count, sockets whose connect timed out, as a bit set of the first 64).
    pub(crate) fn sweep(&mut self, now: Instant, timeout: Duration) -> (u64, u64) {
        let mut expired = 0;
        let mut connects = 0_u64;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.busy && now.duration_since(slot.sent_at) >= timeout {
                slot.busy = false;
                self.free.push(i as u32);
                expired += 1;
                if usize::from(slot.kind) == CONNECT && slot.socket < 64 {
                    connects |= 1 << slot.socket;
                }
            }
        }
        (expired, connects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tally::{ANNOUNCE, SCRAPE};

    #[test]
    fn in_flight_ids_survive_reuse_and_timeouts() {
        let t0 = Instant::now();
        let mut f = InFlight::new(3, t0);
        let (a, tid_a) = f.alloc(ANNOUNCE, 0, t0).unwrap();
        let (_, tid_b) = f.alloc(CONNECT, 1, t0).unwrap();
        let (_, tid_c) = f.alloc(SCRAPE, 0, t0).unwrap();
        assert!(f.alloc(SCRAPE, 0, t0).is_none());
        assert_eq!(
            f.complete(tid_a).map(|(k, s, _)| (k, s)),
            Some((ANNOUNCE, 0))
        );
        assert!(f.complete(tid_a).is_none(), "answered twice");
        // The slot is reused with a new generation: the old id stays dead.
        let (a2, tid_a2) = f.alloc(ANNOUNCE, 0, t0).unwrap();
        assert_eq!(a, a2);
        assert_ne!(tid_a, tid_a2);
        assert!(f.complete(tid_a).is_none());
        assert!(f.complete(TransactionId(-1)).is_none());
        // Timeouts free the rest and report the connect's socket.
        let (expired, connects) = f.sweep(t0 + Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!((expired, connects), (3, 0b10));
        assert!(f.complete(tid_b).is_none() && f.complete(tid_c).is_none());
        assert_eq!(f.available(), 3);
        assert_eq!(f.in_flight(), 0);
    }
}
