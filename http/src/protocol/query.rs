//! Query strings: splitting into parameters and percent-decoding to bytes.
//!
//! Decisions (BEP 3 leaves them to clients, and clients differ):
//! - Parameters are bytes, not text: `%XX` (upper- or lower-case hex)
//!   becomes the byte `0xXX`, whatever it is; nothing is checked for UTF-8.
//! - A bare byte stands for itself. That covers the unreserved characters
//!   (`A-Z a-z 0-9 - . _ ~`) every client leaves bare, and also the ones
//!   some leave bare although RFC 3986 would escape them: libtorrent's
//!   `peer_id` carries a bare `!`. The only bytes with a meaning are `%`
//!   (escape), `&` (separator) and the first `=` of a parameter.
//! - `+` is a literal `+` (0x2B), not a space: this is a URL query, not a
//!   form body, and a hash byte 0x2B sent bare must stay 0x2B.
//! - A `%` not followed by two hex digits is an error for the parameters
//!   riptide reads; unknown parameters are never decoded, so theirs are
//!   ignored.
//! - A parameter without `=` has an empty value; empty parameters (`&&`)
//!   are skipped.

/// Why a query value could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A `%` not followed by two hex digits.
    #[error("bad percent-escape")]
    BadEscape,
    /// The decoded value does not fit the destination.
    #[error("value too long")]
    TooLong,
}

#[inline]
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-decode `src` into `dst`; returns the decoded length. Never
/// writes past `dst` (then [`DecodeError::TooLong`]).
#[inline]
pub fn percent_decode(src: &[u8], dst: &mut [u8]) -> Result<usize, DecodeError> {
    let mut i = 0;
    let mut n = 0;
    while let Some(&b) = src.get(i) {
        let byte = if b == b'%' {
            let hi = src.get(i + 1).copied().and_then(hex_value);
            let lo = src.get(i + 2).copied().and_then(hex_value);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(DecodeError::BadEscape);
            };
            i += 3;
            hi << 4 | lo
        } else {
            i += 1;
            b
        };
        *dst.get_mut(n).ok_or(DecodeError::TooLong)? = byte;
        n += 1;
    }
    Ok(n)
}

/// The parameters of a query string as raw (still encoded) `(key, value)`
/// pairs, in order, empty parameters skipped.
pub fn pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
    query
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &p[p.len()..]),
        })
}

/// Longest parameter name riptide reads (`no_peer_id`, `downloaded`).
pub(crate) const MAX_NAME_LEN: usize = 16;

/// The decoded name of a parameter, or `None` for one too long or badly
/// escaped to be any parameter riptide reads.
#[inline]
pub(crate) fn name<'b>(raw: &[u8], buf: &'b mut [u8; MAX_NAME_LEN]) -> Option<&'b [u8]> {
    // Fast path: names are bare ASCII in every client seen.
    if raw.len() <= MAX_NAME_LEN && !raw.contains(&b'%') {
        buf[..raw.len()].copy_from_slice(raw);
        return Some(&buf[..raw.len()]);
    }
    let n = percent_decode(raw, buf).ok()?;
    Some(&buf[..n])
}

/// Decode a value that must be exactly 20 bytes (`info_hash`, `peer_id`).
#[inline]
pub(crate) fn decode_20(raw: &[u8]) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    (percent_decode(raw, &mut out) == Ok(20)).then_some(out)
}

/// Decode an unsigned decimal integer (escaped digits allowed; no sign, no
/// spaces, at least one digit, no overflow).
#[inline]
pub(crate) fn decode_u64(raw: &[u8]) -> Option<u64> {
    let mut buf = [0u8; 24];
    let n = percent_decode(raw, &mut buf).ok()?;
    let digits = &buf[..n];
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if d.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

/// Decode a signed decimal integer (a leading `-` allowed), saturating
/// at the `i64` range instead of failing on huge values.
#[inline]
pub(crate) fn decode_i64_saturating(raw: &[u8]) -> Option<i64> {
    let mut buf = [0u8; 24];
    let n = percent_decode(raw, &mut buf).ok()?;
    let (negative, digits) = match &buf[..n] {
        [b'-', rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits.iter().fold(0i64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    Some(if negative { -magnitude } else { magnitude })
}
