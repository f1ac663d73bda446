//! A bencode writer over a plain byte slice: no tree, no `String`, no
//! allocation. Every call either writes its whole item or returns
//! [`BufferTooSmall`] (what it wrote in part is then garbage; the caller
//! drops the message). Key order in dicts is the caller's job (bencode
//! wants keys sorted as raw bytes).

use super::BufferTooSmall;
use riptide_stream::cursor::decimal;

/// A cursor writing bencode into `&mut [u8]`.
#[derive(Debug)]
pub struct BencodeWriter<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl<'a> BencodeWriter<'a> {
    /// A writer at the start of `out`.
    pub fn new(out: &'a mut [u8]) -> Self {
        BencodeWriter { out, pos: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Nothing written yet.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// What was written so far.
    pub fn written(&self) -> &[u8] {
        &self.out[..self.pos]
    }

    /// The next `len` bytes, reserved (written by the caller).
    #[inline]
    fn space(&mut self, len: usize) -> Result<&mut [u8], BufferTooSmall> {
        let end = self.pos.checked_add(len).ok_or(BufferTooSmall)?;
        let s = self.out.get_mut(self.pos..end).ok_or(BufferTooSmall)?;
        self.pos = end;
        Ok(s)
    }

    /// Bytes as they are (no bencode framing).
    #[inline]
    pub fn raw(&mut self, bytes: &[u8]) -> Result<(), BufferTooSmall> {
        self.space(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// `i<v>e`.
    #[inline]
    pub fn int(&mut self, v: i64) -> Result<(), BufferTooSmall> {
        let mut d = [0u8; 20];
        let digits = decimal(v.unsigned_abs(), &mut d);
        let sign = usize::from(v < 0);
        let s = self.space(digits.len() + sign + 2)?;
        s[0] = b'i';
        if sign == 1 {
            s[1] = b'-';
        }
        s[1 + sign..1 + sign + digits.len()].copy_from_slice(digits);
        s[s.len() - 1] = b'e';
        Ok(())
    }

    /// `i<v>e` for an unsigned value.
    #[inline]
    pub fn uint(&mut self, v: u64) -> Result<(), BufferTooSmall> {
        let mut d = [0u8; 20];
        let digits = decimal(v, &mut d);
        let s = self.space(digits.len() + 2)?;
        s[0] = b'i';
        s[1..=digits.len()].copy_from_slice(digits);
        s[digits.len() + 1] = b'e';
        Ok(())
    }

    /// `<len>:<bytes>`.
    #[inline]
    pub fn bytes(&mut self, bytes: &[u8]) -> Result<(), BufferTooSmall> {
        self.bytes_space(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// `<len>:` followed by `len` reserved bytes, returned for the caller
    /// to fill (e.g. compact peers written in place).
    #[inline]
    pub fn bytes_space(&mut self, len: usize) -> Result<&mut [u8], BufferTooSmall> {
        let mut d = [0u8; 20];
        let digits = decimal(len as u64, &mut d);
        let head = digits.len() + 1;
        let s = self.space(head.checked_add(len).ok_or(BufferTooSmall)?)?;
        s[..digits.len()].copy_from_slice(digits);
        s[digits.len()] = b':';
        Ok(&mut s[head..])
    }

    /// `d`: a dict begins (then key, value, key, value, …, [`Self::end`]).
    #[inline]
    pub fn dict(&mut self) -> Result<(), BufferTooSmall> {
        self.raw(b"d")
    }

    /// `l`: a list begins (then items, [`Self::end`]).
    #[inline]
    pub fn list(&mut self) -> Result<(), BufferTooSmall> {
        self.raw(b"l")
    }

    /// `e`: the innermost dict or list ends.
    #[inline]
    pub fn end(&mut self) -> Result<(), BufferTooSmall> {
        self.raw(b"e")
    }

    /// A key and an unsigned integer value.
    #[inline]
    pub fn key_uint(&mut self, key: &[u8], v: u64) -> Result<(), BufferTooSmall> {
        self.bytes(key)?;
        self.uint(v)
    }
}
