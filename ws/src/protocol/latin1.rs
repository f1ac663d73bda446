//! The WebTorrent binary strings (`info_hash`, `peer_id`, `offer_id`): each
//! character is one byte (latin-1, code points 0–255). Decoding from the
//! unescaped JSON string, and writing back as a JSON string literal.

/// Decodes `s` into `out` when every character is ≤ U+00FF; returns how
/// many bytes it took, or `None` for a larger code point or more than
/// `out.len()` characters.
pub(crate) fn decode_into(s: &str, out: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    for c in s.chars() {
        let b = u8::try_from(u32::from(c)).ok()?;
        *out.get_mut(n)? = b;
        n += 1;
    }
    Some(n)
}

/// Decodes exactly 20 bytes.
pub(crate) fn decode_20(s: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    // 20 latin-1 characters are at most 40 UTF-8 bytes.
    if s.len() < 20 || s.len() > 40 {
        return None;
    }
    (decode_into(s, &mut out)? == 20).then_some(out)
}

/// Longest JSON string literal [`write_json`] makes of `n` bytes: quotes,
/// and six bytes (`\u00XX`) per byte at worst.
pub(crate) const fn json_max_len(n: usize) -> usize {
    2 + 6 * n
}

/// Writes `bytes` as a JSON string literal of latin-1 characters; returns
/// its length.
pub(crate) fn write_json(out: &mut [u8], bytes: &[u8]) -> usize {
    let mut n = 0;
    out[n] = b'"';
    n += 1;
    for &b in bytes {
        match b {
            0x80.. => {
                out[n] = 0xc0 | (b >> 6);
                out[n + 1] = 0x80 | (b & 0x3f);
                n += 2;
            }
            b'"' | b'\\' => {
                out[n] = b'\\';
                out[n + 1] = b;
                n += 2;
            }
            0..0x20 => n += super::write::write_control_escape(&mut out[n..], b),
            _ => {
                out[n] = b;
                n += 1;
            }
        }
    }
    out[n] = b'"';
    n + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rules() {
        assert_eq!(
            decode_20("abcdefghijklmnopqrst"),
            Some(*b"abcdefghijklmnopqrst")
        );
        assert_eq!(decode_20("abcdefghijklmnopqrs"), None);
        assert_eq!(decode_20("abcdefghijklmnopqrstu"), None);
        let s: String = (0xe0u8..0xf4).map(char::from).collect();
        assert_eq!(decode_20(&s).map(|b| b[0]), Some(0xe0));
        let s = format!("{}\u{100}", "a".repeat(19));
        assert_eq!(decode_20(&s), None);
        let s = format!("{}\u{1F600}", "a".repeat(19));
        assert_eq!(decode_20(&s), None);
        let mut out = [0u8; 4];
        assert_eq!(decode_into("ab", &mut out), Some(2));
        assert_eq!(decode_into("abcde", &mut out), None);
    }

    #[test]
    fn writes_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let mut out = vec![0u8; json_max_len(all.len())];
        let n = write_json(&mut out, &all);
        let s = std::str::from_utf8(&out[..n]).unwrap();
        assert!(s.starts_with("\"\\u0000"));
        assert!(s.contains("\\\"") && s.contains("\\\\"));
        assert!(s.ends_with("ÿ\""));
    }
}
