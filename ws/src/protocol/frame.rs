//! The RFC 6455 frame codec (§5), both roles: the server reads masked
//! frames and writes unmasked ones; a client (the load generator, tests)
//! the other way round.
//!
//! Reading is in place over the caller's receive bytes, with no buffer of
//! its own:
//! - A complete frame is unmasked where it lies and handed out as a
//!   [`Message`] borrowing `buf`.
//! - A fragmented message is reassembled in `buf` itself. Its fragments
//!   are not consumed: each one's payload is unmasked and moved down to
//!   the end of the payload gathered so far, which sits at the front of
//!   what the caller carries over. The headers it leaves behind (and
//!   control frames handled in between, RFC 6455 §5.4) are a gap that the
//!   reader remembers ([`FrameReader`] is three integers) and skips next
//!   time. When the gap grows past a quarter of the gathered payload, the
//!   payload is moved up over it and the gap handed back to the caller as
//!   consumed, so the copying stays linear in the bytes received and the
//!   carry stays under [`FrameLimits::max_carry_len`].
//! - Size limits are checked from the header, before the payload arrives:
//!   nobody can make the caller buffer more than
//!   [`FrameLimits::max_carry_len`].
//! - Text is checked to be UTF-8 once, over the whole reassembled message.

/// Longest frame header: 2 bytes, 8 of extended length, 4 of mask.
pub const MAX_HEADER_LEN: usize = 14;
/// Longest payload of a control frame (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// Longest close frame [`write_close`] writes.
pub const CLOSE_MAX_LEN: usize = 2 + MAX_CONTROL_PAYLOAD;

/// Which end of the connection this codec runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Reads frames that must be masked (else 1002), writes unmasked ones.
    Server,
    /// Reads frames that must not be masked (else 1002), writes masked ones.
    Client,
}

/// Limits of the frame reader (from the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLimits {
    /// Which end we are.
    pub role: Role,
    /// Longest data message, reassembled, in payload bytes (larger: 1009).
    /// At most `u32::MAX / 2`.
    pub max_message_len: usize,
}

impl FrameLimits {
    /// The most bytes [`FrameReader::read`] leaves unconsumed when it
    /// returns `Ok` without a [`Flow::Stop`]: the carry buffer the caller
    /// needs (a reassembly in progress, its gap, and one partial frame).
    pub const fn max_carry_len(&self) -> usize {
        self.max_message_len + self.max_message_len / 4 + 2 * MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD
    }
}

/// A WebSocket close status code (RFC 6455 §7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the server is going away (shutdown).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: protocol error (unmasked client frame, reserved bits or
    /// opcodes, bad control frame, bad fragmentation, bad close payload).
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type we do not accept (binary messages, for the tracker).
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1007: a text message or close reason that is not UTF-8.
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: policy violation.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message longer than [`FrameLimits::max_message_len`].
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);

    /// The code as on the wire.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// A code that may appear in a received close frame (§7.4): 1000–1003,
    /// 1007–1011 (1012–1014 are registered since), 3000–4999. Not 1004–1006,
    /// 1015, nor anything under 1000 or in the reserved ranges.
    pub const fn is_valid_on_wire(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// Frame opcodes (§5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    /// A later fragment of a data message.
    Continuation = 0,
    /// UTF-8 text.
    Text = 1,
    /// Binary data.
    Binary = 2,
    /// Close.
    Close = 8,
    /// Ping.
    Ping = 9,
    /// Pong.
    Pong = 10,
}

impl Opcode {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Continuation,
            1 => Self::Text,
            2 => Self::Binary,
            8 => Self::Close,
            9 => Self::Ping,
            10 => Self::Pong,
            _ => return None,
        })
    }

    const fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// One received message, borrowing the caller's buffer (unmasked).
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A whole text message, checked to be UTF-8; mutable so the JSON
    /// parser can unescape in place.
    Text(&'a mut [u8]),
    /// A whole binary message.
    Binary(&'a [u8]),
    /// A ping: answer with [`write_pong`] of the same payload.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// A close frame: answer with [`write_close`] (echo the code, or 1000),
    /// then close. `code` is `None` for an empty close payload (1005).
    /// The reader stops after it.
    Close {
        /// Status code, when the frame had one (checked valid).
        code: Option<u16>,
        /// Reason, checked UTF-8.
        reason: &'a [u8],
    },
}

/// Whether [`FrameReader::read`] goes on after a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Hand out the next message.
    Continue,
    /// Return now; the rest stays unconsumed for the next call.
    Stop,
}

/// The reading state of one connection: a reassembly in progress, if any.
/// 12 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameReader {
    /// Payload gathered so far of a fragmented message, unmasked, at the
    /// front of the next `buf`.
    frag_len: u32,
    /// Bytes after that payload already dealt with (a gap), before the next
    /// frame.
    gap_len: u32,
    /// Opcode of the fragmented message (`Text`/`Binary`), 0 when none.
    frag_opcode: u8,
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug)]
struct Header {
    fin: bool,
    opcode: Opcode,
    mask: Option<[u8; 4]>,
    head_len: usize,
    payload_len: usize,
}

impl FrameReader {
    /// Whether a fragmented message is being reassembled.
    pub fn in_message(&self) -> bool {
        self.frag_opcode != 0
    }

    /// Reads every complete message in `buf` (unmasking in place), calling
    /// `on` for each, in order; returns how many bytes from the front of
    /// `buf` the caller may drop. The rest must be passed again next time,
    /// with more bytes appended (the caller's carry). Stops early when `on`
    /// returns [`Flow::Stop`], and after a [`Message::Close`].
    ///
    /// An `Err` is the close code to send before closing; the connection's
    /// reader must not be used again.
    pub fn read(
        &mut self,
        buf: &mut [u8],
        limits: &FrameLimits,
        mut on: impl FnMut(Message<'_>) -> Flow,
    ) -> Result<usize, CloseCode> {
        let max = limits.max_message_len.min(u32::MAX as usize / 2);
        // Layout: [consumed][gathered payload][gap][next frame ...]
        let mut start = 0usize;
        let mut frag = self.frag_len as usize;
        let mut gap = self.gap_len as usize;
        if frag + gap > buf.len() {
            debug_assert!(false, "the caller dropped bytes it was told to keep");
            return Err(CloseCode::INTERNAL_ERROR);
        }
        loop {
            let at = start + frag + gap;
            let Some(h) = parse_header(&buf[at..], limits.role, max, frag, self.frag_opcode)?
            else {
                break;
            };
            let payload_at = at + h.head_len;
            let end = payload_at + h.payload_len;
            if end > buf.len() {
                break;
            }
            if let Some(mask) = h.mask {
                unmask(&mut buf[payload_at..end], mask);
            }
            if h.opcode.is_control() {
                let msg = control_message(h.opcode, &buf[payload_at..end])?;
                let close = matches!(msg, Message::Close { .. });
                let flow = on(msg);
                if self.frag_opcode == 0 {
                    start = end;
                } else {
                    gap += h.head_len + h.payload_len;
                }
                if close || flow == Flow::Stop {
                    break;
                }
                continue;
            }
            if h.fin && self.frag_opcode == 0 {
                // A whole message in one frame: hand it out where it lies.
                let payload = &mut buf[payload_at..end];
                let msg = data_message(h.opcode as u8, payload)?;
                start = end;
                if on(msg) == Flow::Stop {
                    break;
                }
                continue;
            }
            // A fragment: move its payload down behind what is gathered.
            let to = start + frag;
            buf.copy_within(payload_at..end, to);
            frag += h.payload_len;
            gap += h.head_len;
            if h.opcode != Opcode::Continuation {
                self.frag_opcode = h.opcode as u8;
            }
            if !h.fin {
                continue;
            }
            let opcode = self.frag_opcode;
            self.frag_opcode = 0;
            let msg = data_message(opcode, &mut buf[start..start + frag])?;
            let flow = on(msg);
            start = end;
            frag = 0;
            gap = 0;
            if flow == Flow::Stop {
                break;
            }
        }
        if self.frag_opcode != 0 && gap > 0 && gap * 4 >= frag {
            // Close the gap: move the gathered payload up over it.
            buf.copy_within(start..start + frag, start + gap);
            start += gap;
            gap = 0;
        }
        self.frag_len = frag as u32;
        self.gap_len = gap as u32;
        Ok(start)
    }
}

/// Parses the header at the front of `b`: `Ok(None)` while incomplete.
/// Checks what it can as soon as the bytes are there.
fn parse_header(
    b: &[u8],
    role: Role,
    max: usize,
    frag: usize,
    frag_opcode: u8,
) -> Result<Option<Header>, CloseCode> {
    let Some(&b0) = b.first() else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(CloseCode::PROTOCOL_ERROR); // RSV bits: no extension agreed
    }
    let fin = b0 & 0x80 != 0;
    let opcode = Opcode::from_u8(b0 & 0x0f).ok_or(CloseCode::PROTOCOL_ERROR)?;
    match opcode {
        Opcode::Continuation if frag_opcode == 0 => return Err(CloseCode::PROTOCOL_ERROR),
        Opcode::Text | Opcode::Binary if frag_opcode != 0 => return Err(CloseCode::PROTOCOL_ERROR),
        _ if opcode.is_control() && !fin => return Err(CloseCode::PROTOCOL_ERROR),
        _ => {}
    }
    let Some(&b1) = b.get(1) else {
        return Ok(None);
    };
    let masked = b1 & 0x80 != 0;
    if masked != (role == Role::Server) {
        return Err(CloseCode::PROTOCOL_ERROR);
    }
    let len7 = b1 & 0x7f;
    if opcode.is_control() && usize::from(len7) > MAX_CONTROL_PAYLOAD {
        return Err(CloseCode::PROTOCOL_ERROR);
    }
    let (payload_len, mut header_len) = match len7 {
        0..=125 => (usize::from(len7), 2),
        126 => {
            let Some(ext) = b.get(2..4) else {
                return Ok(None);
            };
            (usize::from(u16::from_be_bytes([ext[0], ext[1]])), 4)
        }
        _ => {
            let Some(ext) = b.get(2..10) else {
                return Ok(None);
            };
            let len = u64::from_be_bytes(ext.try_into().expect("8 bytes"));
            if len >> 63 != 0 {
                return Err(CloseCode::PROTOCOL_ERROR);
            }
            (usize::try_from(len).unwrap_or(usize::MAX), 10)
        }
    };
    if !opcode.is_control() && payload_len > max - frag {
        return Err(CloseCode::MESSAGE_TOO_BIG);
    }
    let mask = if masked {
        let Some(m) = b.get(header_len..header_len + 4) else {
            return Ok(None);
        };
        header_len += 4;
        Some([m[0], m[1], m[2], m[3]])
    } else {
        None
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        head_len: header_len,
        payload_len,
    }))
}

/// A whole data message; text must be UTF-8.
fn data_message(opcode: u8, payload: &mut [u8]) -> Result<Message<'_>, CloseCode> {
    if opcode == Opcode::Text as u8 {
        if std::str::from_utf8(payload).is_err() {
            return Err(CloseCode::INVALID_PAYLOAD);
        }
        Ok(Message::Text(payload))
    } else {
        Ok(Message::Binary(payload))
    }
}

/// A control frame's message; checks a close frame's code and reason.
fn control_message(opcode: Opcode, payload: &[u8]) -> Result<Message<'_>, CloseCode> {
    Ok(match opcode {
        Opcode::Ping => Message::Ping(payload),
        Opcode::Pong => Message::Pong(payload),
        _ => match payload {
            [] => Message::Close {
                code: None,
                reason: &[],
            },
            [_] => return Err(CloseCode::PROTOCOL_ERROR),
            [hi, lo, reason @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                if !CloseCode::is_valid_on_wire(code) {
                    return Err(CloseCode::PROTOCOL_ERROR);
                }
                if std::str::from_utf8(reason).is_err() {
                    return Err(CloseCode::INVALID_PAYLOAD);
                }
                Message::Close {
                    code: Some(code),
                    reason,
                }
            }
        },
    })
}

/// XORs `data` with the 4-byte `mask`, starting at mask byte 0.
fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes((&*c).try_into().expect("8 bytes")) ^ wide;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Length of an unmasked (server) frame header for a payload of this length.
pub const fn frame_header_len(payload_len: usize) -> usize {
    if payload_len <= 125 {
        2
    } else if payload_len <= 0xffff {
        4
    } else {
        10
    }
}

/// Writes a FIN header; returns its length.
fn write_header(out: &mut [u8], b0: u8, mask: Option<[u8; 4]>, payload_len: usize) -> usize {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out[0] = b0;
    let mut n = if payload_len <= 125 {
        out[1] = mask_bit | payload_len as u8;
        2
    } else if payload_len <= 0xffff {
        out[1] = mask_bit | 0x7e;
        out[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
        4
    } else {
        out[1] = mask_bit | 0x7f;
        out[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
        10
    };
    if let Some(m) = mask {
        out[n..n + 4].copy_from_slice(&m);
        n += 4;
    }
    n
}

/// Writes one unmasked (server) frame with FIN set: `fill` writes the
/// payload into the slice it is given (at least `payload_max` bytes) and
/// returns its length; the header is written for that length, and the
/// payload moved down if the header came out shorter than reserved.
/// Returns the frame length.
///
/// # Panics
/// If `out` is shorter than `frame_header_len(payload_max) + payload_max`,
/// or `fill` returns more than `payload_max`.
pub fn write_frame(
    out: &mut [u8],
    opcode: Opcode,
    payload_max: usize,
    fill: impl FnOnce(&mut [u8]) -> usize,
) -> usize {
    let reserved = frame_header_len(payload_max);
    let n = fill(&mut out[reserved..reserved + payload_max]);
    assert!(n <= payload_max, "fill wrote past payload_max");
    let h = frame_header_len(n);
    if h < reserved {
        out.copy_within(reserved..reserved + n, h);
    }
    write_header(out, 0x80 | opcode as u8, None, n);
    h + n
}

/// Writes an unmasked close frame with `code` and `reason` (cut to fit the
/// 125-byte control payload at a character boundary); returns its length
/// (at most [`CLOSE_MAX_LEN`]).
///
/// # Panics
/// If `out` is shorter than the frame.
pub fn write_close(out: &mut [u8], code: u16, reason: &str) -> usize {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    write_frame(out, Opcode::Close, 2 + reason.len(), |p| {
        p[..2].copy_from_slice(&code.to_be_bytes());
        p[2..2 + reason.len()].copy_from_slice(reason);
        2 + reason.len()
    })
}

/// Writes an unmasked pong echoing `payload` (cut to 125 bytes); returns
/// its length.
pub fn write_pong(out: &mut [u8], payload: &[u8]) -> usize {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
    write_frame(out, Opcode::Pong, payload.len(), |p| {
        p[..payload.len()].copy_from_slice(payload);
        payload.len()
    })
}

/// Writes an unmasked ping with `payload` (cut to 125 bytes); returns its
/// length.
pub fn write_ping(out: &mut [u8], payload: &[u8]) -> usize {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
    write_frame(out, Opcode::Ping, payload.len(), |p| {
        p[..payload.len()].copy_from_slice(payload);
        payload.len()
    })
}

/// Writes one masked (client) frame with FIN set; returns its length
/// (`frame_header_len(payload.len()) + 4 + payload.len()`).
pub fn write_client_frame(out: &mut [u8], opcode: Opcode, mask: [u8; 4], payload: &[u8]) -> usize {
    write_client_fragment(out, opcode, true, mask, payload)
}

/// Writes one masked (client) frame, FIN as given: a fragment when `fin`
/// is false, or `opcode` is [`Opcode::Continuation`]. Returns its length.
///
/// # Panics
/// If `out` is shorter than the frame.
pub fn write_client_fragment(
    out: &mut [u8],
    opcode: Opcode,
    fin: bool,
    mask: [u8; 4],
    payload: &[u8],
) -> usize {
    let b0 = if fin { 0x80 } else { 0 } | opcode as u8;
    let h = write_header(out, b0, Some(mask), payload.len());
    let body = &mut out[h..h + payload.len()];
    body.copy_from_slice(payload);
    unmask(body, mask);
    h + payload.len()
}

#[cfg(test)]
mod tests;
