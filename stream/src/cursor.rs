//! A bounded writer over a fixed slice, for the records and answers the
//! trackers write into buffers sized from their `*_len` functions: a write
//! past the end is cut short, never a panic.

/// Writes bytes one after another into a slice.
#[derive(Debug)]
pub struct Cursor<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    #[inline]
    pub fn new(buf: &'a mut [u8]) -> Self {
        Cursor { buf, at: 0 }
    }

    /// Bytes written so far.
    #[inline]
    pub fn written(&self) -> usize {
        self.at
    }

    /// Appends `bytes`, as many as fit.
    #[inline]
    pub fn put(&mut self, bytes: &[u8]) -> &mut Self {
        let end = (self.at + bytes.len()).min(self.buf.len());
        let n = end - self.at;
        self.buf[self.at..end].copy_from_slice(&bytes[..n]);
        self.at = end;
        self
    }

    /// Appends one byte, if it fits.
    #[inline]
    pub fn byte(&mut self, b: u8) -> &mut Self {
        self.put(&[b])
    }

    /// Appends `v` in decimal.
    #[inline]
    pub fn decimal(&mut self, v: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        self.put(decimal(v, &mut digits))
    }

    /// The room after what was written, for a writer that fills it in
    /// place; then [`Cursor::advance`] by what it wrote.
    #[inline]
    pub fn rest(&mut self) -> &mut [u8] {
        &mut self.buf[self.at..]
    }

    /// Counts `n` bytes written through [`Cursor::rest`].
    #[inline]
    pub fn advance(&mut self, n: usize) -> &mut Self {
        self.at = (self.at + n).min(self.buf.len());
        self
    }
}

/// Decimal digits of `v`, right-aligned in `buf`.
#[inline]
pub fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_in_order_and_cuts_at_the_end() {
        let mut buf = [0u8; 12];
        let mut w = Cursor::new(&mut buf);
        w.put(b"ab").byte(b'-').decimal(4_294_967_296);
        assert_eq!(w.written(), 12);
        w.put(b"more").byte(b'!');
        assert_eq!(w.written(), 12);
        assert_eq!(&buf, b"ab-429496729");

        let mut buf = [0u8; 4];
        let mut w = Cursor::new(&mut buf);
        w.rest()[..2].copy_from_slice(b"xy");
        w.advance(2).decimal(0).advance(9);
        assert_eq!((w.written(), &buf), (4, b"xy0\0"));
    }

    #[test]
    fn decimals() {
        let mut d = [0u8; 20];
        for v in [0, 9, 10, 1234, u64::MAX] {
            assert_eq!(decimal(v, &mut d), v.to_string().as_bytes());
        }
    }
}
