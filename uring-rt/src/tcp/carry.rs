//! Carry buffers: the bytes a handler did not consume yet, kept per
//! connection until the next receive is appended to them, so a request
//! split over several receives (or a 16 KiB TLS record over several
//! buffers) is seen whole. A connection holds a carry only while it has
//! such bytes; the buffer comes from a worker-wide pool and goes back when
//! it empties, so the common case (a whole request in one receive) copies
//! nothing and a warm worker allocates nothing.

/// A connection's unconsumed bytes; empty (and unallocated) most of the time.
#[derive(Default)]
pub(crate) struct Carry {
    buf: Vec<u8>,
}

impl Carry {
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The carried bytes, for the handler to consume (mutably: TLS
    /// decrypts and WebSocket unmasks in place).
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Append received bytes.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Drop the first `n` bytes (the handler consumed them).
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.copy_within(n.., 0);
        self.buf.truncate(self.buf.len() - n);
    }
}

/// The worker's spare carry buffers.
pub(crate) struct CarryPool {
    free: Vec<Vec<u8>>,
    /// Capacity a fresh carry buffer starts with.
    initial: usize,
    /// Spare buffers kept at most; more are freed.
    keep: usize,
}

impl CarryPool {
    pub(crate) fn new(initial: usize, keep: usize) -> CarryPool {
        CarryPool {
            free: Vec::new(),
            initial,
            keep,
        }
    }

    /// A carry holding `bytes`, on a pooled buffer when there is one.
    pub(crate) fn carry(&mut self, bytes: &[u8]) -> Carry {
        let mut buf = self
            .free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.initial.max(bytes.len())));
        buf.extend_from_slice(bytes);
        Carry { buf }
    }

    /// Take back a carry's buffer (its bytes are dropped).
    pub(crate) fn give(&mut self, carry: Carry) {
        let mut buf = carry.buf;
        if buf.capacity() == 0 || self.free.len() >= self.keep {
            return;
        }
        buf.clear();
        self.free.push(buf);
    }

    /// Spare buffers held.
    #[cfg(test)]
    pub(crate) fn spare(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carry_consumes_from_the_front_and_its_buffer_is_reused() {
        let mut pool = CarryPool::new(64, 2);
        let mut c = pool.carry(b"GET / HT");
        c.extend(b"TP/1.1\r\n\r\nGET");
        assert_eq!(c.bytes_mut(), b"GET / HTTP/1.1\r\n\r\nGET");
        c.consume(18);
        assert_eq!(c.bytes_mut(), b"GET");
        c.consume(99);
        assert!(c.is_empty());
        let ptr = c.buf.as_ptr();
        pool.give(c);
        assert_eq!(pool.spare(), 1);
        let again = pool.carry(b"x");
        assert_eq!(again.buf.as_ptr(), ptr, "the pooled buffer is reused");
        assert_eq!(again.len(), 1);
    }

    #[test]
    fn the_pool_keeps_a_bounded_number_of_buffers() {
        let mut pool = CarryPool::new(8, 1);
        let (a, b) = (pool.carry(b"a"), pool.carry(b"b"));
        pool.give(a);
        pool.give(b);
        pool.give(Carry::default());
        assert_eq!(pool.spare(), 1);
    }
}
