//! One TLS server session per connection, over rustls' unbuffered API and
//! the runtime's own buffers.
//!
//! Receiving: the bytes `Handler::on_recv` hands over go to
//! [`TlsSession::read`], which processes every complete record in them:
//! handshake output is written through `out`, and the application data is
//! decrypted and laid out as one contiguous run at the front of the same
//! buffer ([`Read::plaintext`]). The application parses it, answers with
//! [`TlsSession::write`], and says how much it used with
//! [`TlsSession::finish_read`], which returns what `on_recv` returns:
//! unused plaintext is moved in front of the unprocessed ciphertext, so the
//! runtime's carry keeps both and the next `read` hands the plaintext back
//! first. A request split over records or receives therefore arrives in one
//! piece, as on plain TCP.
//!
//! Sending: `out` is `FnMut(min, fill) -> Result<written, E>`, which is
//! uring-rt's `Ctx::send_with` one to one:
//!
//! ```ignore
//! let mut out = |min: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize| {
//!     ctx.send_with(conn, min, |room| fill(room))
//! };
//! ```
//!
//! Records are encrypted straight into the send room, sized to fit it (and
//! so never larger than a send chunk; see `TlsOptions::max_record_bytes`).
//!
//! Sizing: the runtime's `max_inbound_bytes` must hold a whole TLS record
//! (up to 16 KiB + 261 bytes) plus the longest unfinished request kept as
//! plaintext; its default (64 KiB) does.
//!
//! Costs (rustls 0.23): rustls decrypts in place but then copies each
//! received record's plaintext into a `Vec` of its own, and encrypts each
//! sent record into a `Vec` before it is copied into the room; so there is
//! one allocation and one copy per record each way, inside rustls, that
//! this API does not add to and cannot remove.
//!
//! ```ignore
//! fn on_recv(&mut self, ctx: &mut Ctx<M>, conn: ConnId, data: &mut [u8]) -> usize {
//!     let tls = &mut self.conns[conn.index()];
//!     let r = match tls.read(data, &mut out) { Ok(r) => r, Err(_) => { ctx.close(conn); return data.len() } };
//!     let used = answer(&data[r.plaintext.clone()], |resp| tls.write(resp, &mut out));
//!     tls.finish_read(data, &r, used)
//! }
//! ```

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};
use rustls::{HandshakeKind, ProtocolVersion, ServerConfig};
use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

/// Upper bound on what encryption adds to one record: 5-byte header, 8-byte
/// explicit nonce (TLS 1.2 GCM), 16-byte tag, 1 content-type byte (TLS 1.3).
pub const RECORD_OVERHEAD: usize = 32;

/// Most plaintext asked for at once when sending: a response this size or
/// smaller goes into the last send chunk if it fits there.
const WRITE_STEP: usize = 1024;

/// Loop turns per `read` per received byte, plus this: a bound, never hit
/// by a connection that makes progress.
const STEP_SLACK: usize = 64;

/// Largest plaintext in one TLS record (RFC 8446 5.1).
const MAX_PLAINTEXT_RECORD: usize = 16 * 1024;

thread_local! {
    /// Decrypted payloads on their way into the caller's buffer: rustls
    /// 0.23 hands them over while it still borrows that buffer. One per
    /// worker thread, allocated at its first record.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Why a session call failed. After `Tls` the session is dead: the alert
/// (if any) was queued through `out`; close the connection.
#[derive(Debug, thiserror::Error)]
pub enum TlsError<E> {
    /// The peer broke the protocol, the handshake failed, or a record did
    /// not decrypt.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// `out` refused (e.g. the runtime's `QueueFull`, `TooLarge`, `Closed`).
    #[error("sending TLS output failed: {0:?}")]
    Write(E),
    /// `out` gave less room than asked for; a bug in the writer.
    #[error("the writer gave less than {0} bytes of room")]
    NoRoom(usize),
    /// Application data cannot be sent before the handshake completes.
    #[error("the TLS handshake is not complete")]
    HandshakeIncomplete,
    /// The peer sent part of a fragmented post-handshake message (e.g. a
    /// key update) whose rest has not arrived; rustls needs it before it
    /// can write. Retry after the next `read`.
    #[error("a fragmented TLS handshake message is pending")]
    Busy,
    /// Both sides sent close_notify, or we did: nothing more can be sent.
    #[error("the TLS session is closed")]
    Closed,
}

/// What one [`TlsSession::read`] found. Hand it to
/// [`TlsSession::finish_read`] with the same buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "finish_read tells how many bytes on_recv consumed"]
pub struct Read {
    /// The application data not consumed yet, contiguous, in the buffer
    /// given to `read` (what was carried over first, then what was just
    /// decrypted). Empty during the handshake.
    pub plaintext: Range<usize>,
    /// The handshake completed during this call: ALPN and the protocol
    /// version are known from now on.
    pub handshake_done: bool,
    /// The peer has sent close_notify (now or earlier): no more data will
    /// come. Answer what is in `plaintext`, then `send_close_notify` and
    /// close.
    pub peer_closed: bool,
    /// Where the unprocessed ciphertext starts.
    ciphertext_start: usize,
}

/// Where a connection's TLS stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsPhase {
    /// Handshake messages are still being exchanged.
    Handshaking,
    /// Application data flows both ways.
    Established,
    /// We sent close_notify: nothing more may be sent.
    CloseSent,
    /// A fatal error ended the session.
    Failed,
}

/// One connection's TLS server side. Holds no I/O buffer of its own: the
/// ciphertext lives in the runtime's receive carry, the output in its send
/// chunks.
pub struct TlsSession {
    conn: UnbufferedServerConnection,
    phase: TlsPhase,
    /// Plaintext bytes at the front of the next buffer `read` gets (left
    /// unused by the application last time).
    pending_plaintext: usize,
    /// rustls holds part of a fragmented handshake message in the carried
    /// ciphertext: it must see those bytes before it can write.
    held_handshake: bool,
    peer_closed: bool,
    /// Largest record written (from the config's `max_fragment_size`).
    max_record: usize,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("phase", &self.phase)
            .field("pending_plaintext", &self.pending_plaintext)
            .field("held_handshake", &self.held_handshake)
            .field("peer_closed", &self.peer_closed)
            .finish_non_exhaustive()
    }
}

impl TlsSession {
    /// A new server session with `config` (take it from
    /// [`crate::CertStore::config`] at accept time, so a reload reaches
    /// new handshakes only).
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsSession, rustls::Error> {
        // rustls' fragment size counts the 5-byte header, not the expansion.
        let max_record = config
            .max_fragment_size
            .map_or(MAX_PLAINTEXT_RECORD + 5, |f| f.max(64))
            - 5
            + RECORD_OVERHEAD;
        Ok(TlsSession {
            max_record,
            conn: UnbufferedServerConnection::new(config)?,
            phase: TlsPhase::Handshaking,
            pending_plaintext: 0,
            held_handshake: false,
            peer_closed: false,
        })
    }

    /// Where the session stands.
    pub fn phase(&self) -> TlsPhase {
        self.phase
    }

    /// The protocol ALPN chose (`None` before the handshake or without ALPN).
    pub fn alpn(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// TLS 1.2 or 1.3, once negotiated.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// Full or resumed handshake, once it is done.
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        self.conn.handshake_kind()
    }

    /// Whether the peer has sent close_notify.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Process the received bytes `data` (`on_recv`'s buffer: whatever the
    /// last `finish_read` left, then the new bytes). Handshake records are
    /// answered through `out`; application data is decrypted into
    /// `data[read.plaintext]`. Then call [`TlsSession::finish_read`].
    ///
    /// On `Err` the session is dead (an alert was queued when possible):
    /// close the connection and consume everything.
    pub fn read<E, W>(&mut self, data: &mut [u8], out: &mut W) -> Result<Read, TlsError<E>>
    where
        W: FnMut(usize, &mut dyn FnMut(&mut [u8]) -> usize) -> Result<usize, E>,
    {
        if self.phase == TlsPhase::Failed {
            return Err(TlsError::Closed);
        }
        let carried = self.pending_plaintext.min(data.len());
        let mut off = carried; // start of unprocessed ciphertext
        let mut plain_end = carried; // plaintext is data[..plain_end]
        let mut handshake_done = false;
        let steps = STEP_SLACK + data.len();
        for _ in 0..steps {
            let status = self.conn.process_tls_records(&mut data[off..]);
            let discard = status.discard;
            let state = match status.state {
                Ok(state) => state,
                Err(e) => {
                    off += discard;
                    return Err(self.fail(&mut data[off..], out, e));
                }
            };
            match state {
                ConnectionState::ReadTraffic(mut records) => {
                    // rustls 0.23 lends each payload while it still
                    // borrows `data`: stage it, then lay it out in `data`.
                    let (more, bad) = SCRATCH.with_borrow_mut(|scratch| {
                        scratch.clear();
                        let mut more = 0;
                        while let Some(rec) = records.next_record() {
                            match rec {
                                Ok(rec) => {
                                    more += rec.discard;
                                    if scratch.capacity() == 0 {
                                        scratch.reserve(MAX_PLAINTEXT_RECORD);
                                    }
                                    scratch.extend_from_slice(rec.payload);
                                }
                                Err(e) => return (more, Some(e)),
                            }
                        }
                        (more, None)
                    });
                    drop(records);
                    off += discard + more;
                    if let Some(e) = bad {
                        return Err(self.fail(&mut data[off..], out, e));
                    }
                    // A record's payload is shorter than the record, so the
                    // plaintext never reaches the unprocessed bytes.
                    let got = SCRATCH.with_borrow(|scratch| {
                        if plain_end + scratch.len() <= off {
                            data[plain_end..plain_end + scratch.len()].copy_from_slice(scratch);
                        }
                        scratch.len()
                    });
                    if plain_end + got > off {
                        let e = rustls::Error::General("plaintext longer than its records".into());
                        return Err(self.fail(&mut data[off..], out, e));
                    }
                    plain_end += got;
                }
                ConnectionState::ReadEarlyData(mut records) => {
                    // Early data is off (`max_early_data_size` = 0); drop
                    // whatever a client sends anyway.
                    let mut more = 0;
                    while let Some(Ok(rec)) = records.next_record() {
                        more += rec.discard;
                    }
                    off += discard + more;
                }
                ConnectionState::EncodeTlsData(mut enc) => {
                    off += discard;
                    if let Err(e) = emit(out, |room| enc.encode(room), encode_size) {
                        self.phase = TlsPhase::Failed;
                        return Err(e);
                    }
                }
                ConnectionState::TransmitTlsData(tx) => {
                    // The records are already queued in the send chunks.
                    off += discard;
                    tx.done();
                }
                ConnectionState::PeerClosed => {
                    off += discard;
                    self.peer_closed = true;
                }
                // BlockedHandshake, WriteTraffic, Closed: nothing more to
                // do with these bytes.
                _ => {
                    off += discard;
                    break;
                }
            }
        }
        if self.phase == TlsPhase::Handshaking && !self.conn.is_handshaking() {
            self.phase = TlsPhase::Established;
            handshake_done = true;
        }
        self.held_handshake = starts_with_whole_record(&data[off..]);
        Ok(Read {
            plaintext: 0..plain_end,
            handshake_done,
            peer_closed: self.peer_closed,
            ciphertext_start: off,
        })
    }

    /// The application used the first `used` bytes of `read.plaintext`
    /// (clamped to its length). Moves the rest in front of the unprocessed
    /// ciphertext and returns how many bytes of `data` `on_recv` consumed.
    pub fn finish_read(&mut self, data: &mut [u8], read: &Read, used: usize) -> usize {
        let plain_end = read.plaintext.end.min(data.len());
        let off = read.ciphertext_start.min(data.len()).max(plain_end);
        let used = used.min(plain_end);
        let left = plain_end - used;
        data.copy_within(used..plain_end, off - left);
        self.pending_plaintext = left;
        off - left
    }

    /// Encrypt `plaintext` into records written through `out`, split to fit
    /// the room `out` gives (a send chunk at most). Returns how many
    /// plaintext bytes were sent: all of them, or fewer when `out` refused
    /// after the first record (then send the rest once the runtime says
    /// the connection is writable). `Err(Write)` when it refused at once.
    pub fn write<E, W>(&mut self, plaintext: &[u8], out: &mut W) -> Result<usize, TlsError<E>>
    where
        W: FnMut(usize, &mut dyn FnMut(&mut [u8]) -> usize) -> Result<usize, E>,
    {
        self.writable(out)?;
        let mut state = match self.conn.process_tls_records(&mut []).state {
            Ok(ConnectionState::WriteTraffic(w)) => w,
            Ok(_) => return Err(TlsError::HandshakeIncomplete),
            Err(e) => return Err(TlsError::Tls(e)),
        };
        let mut sent = 0;
        while sent < plaintext.len() {
            let rest = &plaintext[sent..];
            let min = (rest.len().min(WRITE_STEP) + RECORD_OVERHEAD).min(self.max_record);
            let piece = self.max_record - RECORD_OVERHEAD;
            let mut took = 0;
            let mut failure = None;
            let r = out(min, &mut |room: &mut [u8]| {
                let (n, written, err) = encrypt_into(&mut state, rest, piece, room);
                took = n;
                failure = err;
                written
            });
            if let Some(e) = failure {
                self.phase = TlsPhase::Failed;
                return Err(e);
            }
            match r {
                Ok(_) if took == 0 => return Err(TlsError::NoRoom(min)),
                Ok(_) => sent += took,
                Err(e) if sent == 0 => return Err(TlsError::Write(e)),
                Err(_) => break,
            }
        }
        Ok(sent)
    }

    /// Queue a close_notify alert through `out`: the last thing sent on
    /// this session (close the connection gracefully after it). A second
    /// call does nothing.
    pub fn send_close_notify<E, W>(&mut self, out: &mut W) -> Result<(), TlsError<E>>
    where
        W: FnMut(usize, &mut dyn FnMut(&mut [u8]) -> usize) -> Result<usize, E>,
    {
        if self.phase == TlsPhase::CloseSent {
            return Ok(());
        }
        self.writable(out)?;
        let mut state = match self.conn.process_tls_records(&mut []).state {
            Ok(ConnectionState::WriteTraffic(w)) => w,
            Ok(_) => return Err(TlsError::HandshakeIncomplete),
            Err(e) => return Err(TlsError::Tls(e)),
        };
        emit(out, |room| state.queue_close_notify(room), encrypt_size)?;
        self.phase = TlsPhase::CloseSent;
        Ok(())
    }

    /// Bring rustls to its `WriteTraffic` state with no input: flush what
    /// it queued on its own (TLS 1.3 session tickets, key updates).
    fn writable<E, W>(&mut self, out: &mut W) -> Result<(), TlsError<E>>
    where
        W: FnMut(usize, &mut dyn FnMut(&mut [u8]) -> usize) -> Result<usize, E>,
    {
        match self.phase {
            TlsPhase::Handshaking => return Err(TlsError::HandshakeIncomplete),
            TlsPhase::CloseSent | TlsPhase::Failed => return Err(TlsError::Closed),
            TlsPhase::Established => {}
        }
        if self.held_handshake {
            // rustls would look for the held bytes in the empty input.
            return Err(TlsError::Busy);
        }
        for _ in 0..STEP_SLACK {
            match self.conn.process_tls_records(&mut []).state {
                Ok(ConnectionState::EncodeTlsData(mut enc)) => {
                    emit(out, |room| enc.encode(room), encode_size)?;
                }
                Ok(ConnectionState::TransmitTlsData(tx)) => tx.done(),
                Ok(ConnectionState::PeerClosed) => self.peer_closed = true,
                Ok(ConnectionState::WriteTraffic(_)) => return Ok(()),
                Ok(ConnectionState::Closed) => return Err(TlsError::Closed),
                Ok(_) => return Err(TlsError::HandshakeIncomplete),
                Err(e) => {
                    self.phase = TlsPhase::Failed;
                    return Err(TlsError::Tls(e));
                }
            }
        }
        Err(TlsError::Busy)
    }

    /// The session failed with `e`: queue what rustls still has to send
    /// (ending with its alert) and return the error. `rest` is the
    /// unprocessed input.
    fn fail<E, W>(&mut self, rest: &mut [u8], out: &mut W, e: rustls::Error) -> TlsError<E>
    where
        W: FnMut(usize, &mut dyn FnMut(&mut [u8]) -> usize) -> Result<usize, E>,
    {
        self.phase = TlsPhase::Failed;
        // rustls hands over queued records (the flight before the error,
        // then the alert) before it looks at any input. With no input it
        // then stops; given `rest` it would process it again and fail
        // again. Empty input is safe only while rustls holds no bytes of
        // `rest` (a fragmented handshake message): then give it `rest`,
        // once.
        let held = starts_with_whole_record(rest);
        for _ in 0..if held { 1 } else { STEP_SLACK } {
            let status = if held {
                self.conn.process_tls_records(rest)
            } else {
                self.conn.process_tls_records(&mut [])
            };
            let Ok(ConnectionState::EncodeTlsData(mut enc)) = status.state else {
                break;
            };
            if emit(out, |room| enc.encode(room), encode_size).is_err() {
                break;
            }
        }
        TlsError::Tls(e)
    }
}

/// `(plaintext bytes taken, bytes written, error)` for one room: records
/// of at most `piece` plaintext bytes while they fit, the last one
/// shortened to fit.
fn encrypt_into<E>(
    state: &mut rustls::unbuffered::WriteTraffic<'_, rustls::server::ServerConnectionData>,
    plaintext: &[u8],
    piece: usize,
    room: &mut [u8],
) -> (usize, usize, Option<TlsError<E>>) {
    let mut taken = 0;
    let mut written = 0;
    while taken < plaintext.len() {
        let space = room.len() - written;
        if space <= RECORD_OVERHEAD {
            break;
        }
        let mut n = (plaintext.len() - taken)
            .min(space - RECORD_OVERHEAD)
            .min(piece);
        // rustls may cut records smaller (`max_fragment_size`): shrink
        // the piece by what it says is missing, a few times at most.
        let mut tries = 0;
        loop {
            match state.encrypt(&plaintext[taken..taken + n], &mut room[written..]) {
                Ok(w) => {
                    written += w;
                    taken += n;
                    break;
                }
                Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size }))
                    if tries < 4 =>
                {
                    let over = required_size.saturating_sub(space) + RECORD_OVERHEAD;
                    if over >= n {
                        return (taken, written, None);
                    }
                    n -= over;
                    tries += 1;
                }
                Err(EncryptError::InsufficientSize(_)) => return (taken, written, None),
                Err(e) => {
                    let e = rustls::Error::General(e.to_string());
                    return (taken, written, Some(TlsError::Tls(e)));
                }
            }
        }
    }
    (taken, written, None)
}

fn encode_size(e: &EncodeError) -> Option<usize> {
    match e {
        EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(*required_size)
        }
        EncodeError::AlreadyEncoded => None,
    }
}

fn encrypt_size(e: &EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(*required_size)
        }
        EncryptError::EncryptExhausted => None,
    }
}

/// Write one piece of TLS output whose size only the encoder knows: ask
/// `out` for a little room, and when the encoder says it needs more, ask
/// again with that as the minimum.
fn emit<E, W, F, X>(
    out: &mut W,
    mut encode: F,
    needed: fn(&X) -> Option<usize>,
) -> Result<(), TlsError<E>>
where
    W: FnMut(usize, &mut dyn FnMut(&mut [u8]) -> usize) -> Result<usize, E>,
    F: FnMut(&mut [u8]) -> Result<usize, X>,
    X: std::fmt::Display,
{
    let mut min = RECORD_OVERHEAD;
    for _ in 0..3 {
        let mut outcome: Result<(), Option<usize>> = Err(None);
        let mut other = None;
        out(min, &mut |room: &mut [u8]| match encode(room) {
            Ok(n) => {
                outcome = Ok(());
                n
            }
            Err(e) => {
                outcome = Err(needed(&e));
                if outcome == Err(None) {
                    other = Some(e.to_string());
                }
                0
            }
        })
        .map_err(TlsError::Write)?;
        match outcome {
            Ok(()) => return Ok(()),
            Err(Some(required)) if required > min => min = required,
            Err(Some(required)) => return Err(TlsError::NoRoom(required)),
            Err(None) => {
                let msg = other.unwrap_or_else(|| "writer did not call fill".into());
                return Err(TlsError::Tls(rustls::Error::General(msg)));
            }
        }
    }
    Err(TlsError::NoRoom(min))
}

/// Whether `bytes` starts with a whole TLS record (5-byte header + length).
fn starts_with_whole_record(bytes: &[u8]) -> bool {
    bytes.len() >= 5 && 5 + usize::from(u16::from_be_bytes([bytes[3], bytes[4]])) <= bytes.len()
}
