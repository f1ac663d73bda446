//! Fuzz target: `FrameReader::read` over arbitrary bytes, as a server, fed
//! in two pieces split at a point taken from the first input byte, with the
//! runtime's carry semantics (unconsumed bytes are passed again with the
//! next piece in front). Checks: no panic; consumed ≤ length; the carry
//! stays under `max_carry_len`; the messages and the verdict are the same
//! as when the whole input is read at once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riptide_ws::protocol::{CloseCode, Flow, FrameLimits, FrameReader, Message, Role};

/// A digest of one message, for comparing the two readings.
fn digest(m: &Message<'_>) -> (u8, usize, u32) {
    let (kind, bytes): (u8, &[u8]) = match m {
        Message::Text(t) => (1, t),
        Message::Binary(b) => (2, b),
        Message::Ping(p) => (9, p),
        Message::Pong(p) => (10, p),
        Message::Close { reason, .. } => (8, reason),
    };
    let sum = bytes
        .iter()
        .fold(0u32, |h, &b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    (kind, bytes.len(), sum)
}

fn feed(
    data: &[u8],
    split: usize,
    limits: &FrameLimits,
) -> (Vec<(u8, usize, u32)>, Option<CloseCode>) {
    let mut reader = FrameReader::default();
    let mut carry = Vec::new();
    let mut got = Vec::new();
    for piece in [&data[..split], &data[split..]] {
        carry.extend_from_slice(piece);
        let mut closed = false;
        let r = reader.read(&mut carry, limits, |m| {
            closed |= matches!(m, Message::Close { .. });
            got.push(digest(&m));
            Flow::Continue
        });
        match r {
            Ok(n) => {
                assert!(n <= carry.len());
                carry.drain(..n);
                if !closed {
                    assert!(carry.len() <= limits.max_carry_len());
                }
            }
            Err(e) => return (got, Some(e)),
        }
        if closed {
            break;
        }
    }
    (got, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let limits = FrameLimits {
        role: if first & 0x80 == 0 {
            Role::Server
        } else {
            Role::Client
        },
        max_message_len: 1024,
    };
    let split = usize::from(first & 0x7f).min(rest.len());
    let whole = feed(rest, rest.len(), &limits);
    let pieces = feed(rest, split, &limits);
    assert_eq!(whole, pieces);
});
