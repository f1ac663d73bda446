//! The JSON messages a WebTorrent client sends: announces (with offers, or
//! carrying an answer) and scrapes.
//!
//! Decisions:
//! - simd-json parses the text in place (strings are unescaped where they
//!   lie and borrowed) into a tape kept in [`ParseBuffers`] with its other
//!   buffers, so a message costs no allocation once the buffers have grown
//!   to the largest message. Nesting deeper than
//!   [`MessageLimits::max_depth`] fails in simd-json's own stage 2 (the
//!   stack it keeps is bounded by it), before any serde code runs.
//! - The serde visitors are total over valid JSON: every field is read
//!   leniently (a number or a string where a number is expected, `null`,
//!   a wrong type) and judged after the whole object is read. So a bad
//!   `left` in front of `action` still yields an error that carries
//!   `action` and `info_hash` (the client drops its socket on a reply
//!   without a known `action`).
//! - Binary strings are latin-1: decoded from the unescaped characters,
//!   code points > 255 and wrong lengths refused.
//! - Announce: `info_hash` and `peer_id` required; `event` absent or
//!   unknown is [`Event::Update`]; `numwant` and `left` as integers or
//!   decimal strings; `left` absent or `null` is `None` (a magnet link
//!   without metadata: a leecher). Unknown fields are ignored.
//! - Offers: at most `min(max_offers, MAX_OFFERS)` kept; the extra and the
//!   malformed ones (no `offer_id` of 1–20 latin-1 characters, `type` not
//!   `offer`, SDP longer than `max_sdp_len`) are dropped and counted in
//!   [`Offers::dropped`], the rest of the announce stands. A malformed
//!   `answer` fails the message (there is nothing else in it).
//! - Scrape: `info_hash` one string or an array of them; none at all is a
//!   scrape of no hashes (the caller decides: a full scrape or a failure);
//!   more than `min(max_scrape_hashes, MAX_SCRAPE_HASHES)` fails.

use std::fmt;

use riptide_common::InfoHash;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::latin1;

/// A peer's 20-byte id (as the client chose it).
pub type PeerId = [u8; 20];

/// Most offers an [`Offers`] holds, whatever the limits say.
pub const MAX_OFFERS: usize = 10;
/// Most hashes a [`Scrape`] holds, whatever the limits say.
pub const MAX_SCRAPE_HASHES: usize = 32;

/// An offer id: 1 to 20 bytes (latin-1 characters on the wire).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OfferId {
    bytes: [u8; 20],
    len: u8,
}

impl OfferId {
    /// An offer id of these bytes; `None` unless 1 to 20 of them.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > 20 {
            return None;
        }
        let mut id = Self {
            bytes: [0; 20],
            len: bytes.len() as u8,
        };
        id.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(id)
    }

    /// Decodes the latin-1 characters of a JSON string.
    fn from_latin1(s: &str) -> Option<Self> {
        let mut id = Self::default();
        let n = latin1::decode_into(s, &mut id.bytes)?;
        (n > 0).then(|| {
            id.len = n as u8;
            id
        })
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for OfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OfferId({})",
            String::from_utf8_lossy(self.as_bytes()).escape_debug()
        )
    }
}

/// A session description, opaque: relayed as it came (capped in length).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sdp<'a> {
    /// `type`: `"offer"` in an offer, `"answer"` in an answer (checked).
    pub kind: &'a str,
    /// `sdp`, unescaped.
    pub sdp: &'a str,
}

/// One WebRTC offer of an announce, to be relayed to one other peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offer<'a> {
    /// Chosen by the announcer; the answer names it.
    pub offer_id: OfferId,
    /// The offer.
    pub sdp: Sdp<'a>,
}

/// An answer to an offer, to be relayed to the peer that made it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answer<'a> {
    /// The peer that made the offer.
    pub to_peer_id: PeerId,
    /// The offer answered.
    pub offer_id: OfferId,
    /// The answer.
    pub sdp: Sdp<'a>,
}

/// The `event` of an announce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Event {
    /// The peer joined.
    Started,
    /// The peer leaves.
    Stopped,
    /// The peer finished downloading.
    Completed,
    /// A regular re-announce; also absent and unknown events.
    #[default]
    Update,
}

impl From<Event> for riptide_common::swarm::Event {
    fn from(e: Event) -> Self {
        match e {
            Event::Started => Self::Started,
            Event::Stopped => Self::Stopped,
            Event::Completed => Self::Completed,
            Event::Update => Self::None,
        }
    }
}

/// The offers of an announce: a fixed array, no allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offers<'a> {
    items: [Offer<'a>; MAX_OFFERS],
    len: u8,
    dropped: u16,
}

impl<'a> Offers<'a> {
    /// The offers kept, in message order.
    pub fn as_slice(&self) -> &[Offer<'a>] {
        &self.items[..usize::from(self.len)]
    }

    /// Iterates over the offers kept.
    pub fn iter(&self) -> std::slice::Iter<'_, Offer<'a>> {
        self.as_slice().iter()
    }

    /// Offers kept.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// No offer kept.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offers in the message that were not kept: over the limit, or
    /// malformed.
    pub fn dropped(&self) -> usize {
        usize::from(self.dropped)
    }

    fn push(&mut self, offer: Option<Offer<'a>>, max: usize) {
        match offer {
            Some(o) if usize::from(self.len) < max.min(MAX_OFFERS) => {
                self.items[usize::from(self.len)] = o;
                self.len += 1;
            }
            _ => self.dropped = self.dropped.saturating_add(1),
        }
    }
}

impl<'o, 'a> IntoIterator for &'o Offers<'a> {
    type Item = &'o Offer<'a>;
    type IntoIter = std::slice::Iter<'o, Offer<'a>>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

/// An announce: joins, updates or leaves a swarm; may carry offers to
/// relay, or an answer to relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Announce<'a> {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// What happened.
    pub event: Event,
    /// Peers wanted (offers to relay); `None`: absent or malformed.
    pub numwant: Option<u32>,
    /// Bytes left to download; `None`: absent or `null`.
    pub left: Option<u64>,
    /// Offers to relay, each to one other peer.
    pub offers: Offers<'a>,
    /// An answer to relay to `to_peer_id`.
    pub answer: Option<Answer<'a>>,
}

impl Announce<'_> {
    /// A seeder: nothing left, or it just completed.
    pub fn is_seeder(&self) -> bool {
        self.left == Some(0) || self.event == Event::Completed
    }
}

/// A scrape: the hashes asked for, in order (duplicates kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scrape {
    hashes: [InfoHash; MAX_SCRAPE_HASHES],
    len: u8,
}

impl Default for Scrape {
    fn default() -> Self {
        Self {
            hashes: [InfoHash::default(); MAX_SCRAPE_HASHES],
            len: 0,
        }
    }
}

impl Scrape {
    /// The hashes asked for; empty when the message named none.
    pub fn info_hashes(&self) -> &[InfoHash] {
        &self.hashes[..usize::from(self.len)]
    }

    /// Hashes asked for.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// No hash named (`info_hash` absent or `[]`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A message from a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMessage<'a> {
    /// `"action":"announce"`.
    Announce(Announce<'a>),
    /// `"action":"scrape"`.
    Scrape(Scrape),
}

/// The `action` of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `"announce"`.
    Announce,
    /// `"scrape"`.
    Scrape,
}

impl Action {
    /// As on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Announce => "announce",
            Action::Scrape => "scrape",
        }
    }
}

/// A message that cannot be served, with what could be read of it so the
/// failure reply can carry `action` and `info_hash`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct MessageError {
    /// The message's `action`, when known.
    pub action: Option<Action>,
    /// Its (first) `info_hash`, when readable.
    pub info_hash: Option<InfoHash>,
    /// Why, for the `failure reason`.
    pub reason: &'static str,
}

/// Limits of the message parser (from the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageLimits {
    /// Offers kept per announce (at most [`MAX_OFFERS`]).
    pub max_offers: usize,
    /// Longest SDP, in bytes after unescaping.
    pub max_sdp_len: usize,
    /// Hashes per scrape (at most [`MAX_SCRAPE_HASHES`]); more fail.
    pub max_scrape_hashes: usize,
    /// Deepest nesting of objects and arrays (an announce needs 4).
    pub max_depth: usize,
}

impl Default for MessageLimits {
    fn default() -> Self {
        Self {
            max_offers: MAX_OFFERS,
            max_sdp_len: 8192,
            max_scrape_hashes: MAX_SCRAPE_HASHES,
            max_depth: 8,
        }
    }
}

/// The parser's reusable memory, one per worker: simd-json's buffers and
/// its tape. Grows to the largest message seen, then stays.
pub struct ParseBuffers {
    buffers: simd_json::Buffers,
    tape: Option<simd_json::Tape<'static>>,
    max_depth: usize,
    max_message_len: usize,
}

impl ParseBuffers {
    /// Buffers sized for messages of up to `max_message_len` bytes.
    pub fn new(max_message_len: usize) -> Self {
        let depth = MessageLimits::default().max_depth;
        let mut tape = simd_json::Tape::null().reset();
        // About one tape node per 4 bytes of a dense message.
        tape.0.reserve(max_message_len / 4 + 16);
        Self {
            buffers: simd_json::Buffers::with_max_depth(max_message_len, depth),
            tape: Some(tape),
            max_depth: depth,
            max_message_len,
        }
    }
}

impl fmt::Debug for ParseBuffers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParseBuffers")
            .field("max_depth", &self.max_depth)
            .field("max_message_len", &self.max_message_len)
            .finish_non_exhaustive()
    }
}

/// Parses one text message (unescaping in place: `text` is garbage after).
pub fn parse_message<'a>(
    text: &'a mut [u8],
    limits: &MessageLimits,
    bufs: &mut ParseBuffers,
) -> Result<ClientMessage<'a>, MessageError> {
    let fail = |reason| MessageError {
        action: None,
        info_hash: None,
        reason,
    };
    if bufs.max_depth != limits.max_depth {
        bufs.buffers = simd_json::Buffers::with_max_depth(bufs.max_message_len, limits.max_depth);
        bufs.max_depth = limits.max_depth;
    }
    let mut tape = bufs
        .tape
        .take()
        .unwrap_or_else(simd_json::Tape::null)
        .reset();
    if let Err(e) = simd_json::fill_tape(text, &mut bufs.buffers, &mut tape) {
        bufs.tape = Some(tape.reset());
        return Err(fail(match e.error() {
            simd_json::ErrorType::DepthLimitExceeded => "JSON nested too deeply",
            _ => "invalid JSON",
        }));
    }
    let mut de = simd_json::Deserializer::from_tape(tape);
    let raw = MessageSeed { limits }.deserialize(&mut de);
    bufs.tape = Some(de.into_tape().reset());
    raw.map_err(|_: simd_json::Error| fail("not a JSON object"))?
        .build(limits)
}

/// The `visit_*` methods of a lenient visitor for every JSON scalar: each
/// gives `$v` (the value was of the wrong kind).
macro_rules! lenient_scalars {
    ($v:expr) => {
        fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($v)
        }
    };
}

/// A JSON value read leniently: whatever came, nothing fails.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum Scalar<'a> {
    /// The field was not there.
    #[default]
    Missing,
    Null,
    Str(&'a str),
    Uint(u64),
    /// Negative integer.
    Neg,
    Float(f64),
    /// A bool, an array, an object, or a string that could not be borrowed.
    Other,
}

impl<'a> Scalar<'a> {
    fn str(self) -> Option<&'a str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// An unsigned integer, as a number or a decimal string.
    fn uint(self) -> Option<u64> {
        match self {
            Scalar::Uint(n) => Some(n),
            Scalar::Str(s) if !s.is_empty() && s.len() <= 20 => s.parse().ok(),
            Scalar::Float(f) if f >= 0.0 && f.is_finite() && f.fract() == 0.0 => Some(f as u64),
            _ => None,
        }
    }
}

/// Visits any value into a [`Scalar`], draining arrays and objects.
struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(s))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Uint(n))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(n).map_or(Scalar::Neg, Scalar::Uint))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(f))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

impl<'de> serde::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// The keys looked at; everything else is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Action,
    InfoHash,
    PeerId,
    Numwant,
    Left,
    Event,
    Offers,
    Answer,
    ToPeerId,
    OfferId,
    Offer,
    Type,
    Sdp,
    Other,
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, s: &str) -> Result<Key, E> {
        Ok(match s {
            "action" => Key::Action,
            "info_hash" => Key::InfoHash,
            "peer_id" => Key::PeerId,
            "numwant" => Key::Numwant,
            "left" => Key::Left,
            "event" => Key::Event,
            "offers" => Key::Offers,
            "answer" => Key::Answer,
            "to_peer_id" => Key::ToPeerId,
            "offer_id" => Key::OfferId,
            "offer" => Key::Offer,
            "type" => Key::Type,
            "sdp" => Key::Sdp,
            _ => Key::Other,
        })
    }
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(KeyVisitor)
    }
}

/// `info_hash` as read: one string, or an array of them.
#[derive(Clone, Copy, Debug, Default)]
struct Hashes {
    scrape: Scrape,
    /// Hashes in the message (kept or not).
    count: usize,
    /// A string that is not 20 latin-1 characters, or a non-string.
    bad: bool,
    array: bool,
    present: bool,
}

impl Hashes {
    fn push(&mut self, s: Scalar<'_>) {
        match s.str().and_then(latin1::decode_20) {
            Some(h) => {
                if self.count < MAX_SCRAPE_HASHES {
                    self.scrape.hashes[self.count] = InfoHash(h);
                    self.scrape.len += 1;
                }
            }
            None => self.bad = true,
        }
        self.count += 1;
    }

    /// The first hash, when it was readable.
    fn first(&self) -> Option<InfoHash> {
        self.scrape.info_hashes().first().copied()
    }
}

struct HashesVisitor<'h>(&'h mut Hashes);

impl<'de> Visitor<'de> for HashesVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<(), E> {
        self.0.push(Scalar::Str(s));
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.array = true;
        while let Some(s) = seq.next_element::<Scalar<'de>>()? {
            self.0.push(s);
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        ScalarVisitor.visit_map(map)?;
        self.0.bad = true;
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.0.bad = true;
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.0.bad = true;
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.0.bad = true;
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.0.bad = true;
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.0.bad = true;
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for HashesVisitor<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.present = true;
        d.deserialize_any(self)
    }
}

/// `{"type":…,"sdp":…}` as read.
#[derive(Clone, Copy, Debug, Default)]
struct RawSdp<'a> {
    kind: Scalar<'a>,
    sdp: Scalar<'a>,
}

impl<'a> RawSdp<'a> {
    fn check(self, kind: &str, max_len: usize) -> Option<Sdp<'a>> {
        let (k, sdp) = (self.kind.str()?, self.sdp.str()?);
        (k == kind && sdp.len() <= max_len).then_some(Sdp { kind: k, sdp })
    }
}

/// Visits `{"type":…,"sdp":…}` leniently (`None`: not an object).
struct SdpVisitor;

impl<'de> Visitor<'de> for SdpVisitor {
    type Value = Option<RawSdp<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a session description")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawSdp::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type => raw.kind = map.next_value()?,
                Key::Sdp => raw.sdp = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(raw))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        ScalarVisitor.visit_seq(seq).map(|_| None)
    }
    lenient_scalars!(None);
}

/// A nested SDP object, read leniently (`None`: not an object).
struct SdpSeed;

impl<'de> DeserializeSeed<'de> for SdpSeed {
    type Value = Option<RawSdp<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(SdpVisitor)
    }
}

/// One element of `offers`: `{"offer":{…},"offer_id":…}`, checked.
struct OfferSeed<'l>(&'l MessageLimits);

impl<'de> DeserializeSeed<'de> for OfferSeed<'_> {
    type Value = Option<Offer<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for OfferSeed<'_> {
    type Value = Option<Offer<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an offer")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut sdp = None;
        let mut offer_id = Scalar::Missing;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Offer => sdp = map.next_value_seed(SdpSeed)?,
                Key::OfferId => offer_id = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((|| {
            Some(Offer {
                offer_id: OfferId::from_latin1(offer_id.str()?)?,
                sdp: sdp?.check("offer", self.0.max_sdp_len)?,
            })
        })())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        ScalarVisitor.visit_seq(seq).map(|_| None)
    }
    lenient_scalars!(None);
}

/// `offers`: an array of offers, into a fixed [`Offers`]; anything else is
/// no offers.
struct OffersSeed<'o, 'a, 'l> {
    offers: &'o mut Offers<'a>,
    limits: &'l MessageLimits,
}

impl<'de> DeserializeSeed<'de> for OffersSeed<'_, 'de, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for OffersSeed<'_, 'de, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of offers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        *self.offers = Offers::default();
        while let Some(o) = seq.next_element_seed(OfferSeed(self.limits))? {
            self.offers.push(o, self.limits.max_offers);
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        ScalarVisitor.visit_map(map).map(drop)
    }
    lenient_scalars!(());
}

/// The top-level object as read, before it is judged.
#[derive(Default)]
struct Raw<'a> {
    action: Scalar<'a>,
    hashes: Hashes,
    peer_id: Scalar<'a>,
    numwant: Scalar<'a>,
    left: Scalar<'a>,
    event: Scalar<'a>,
    offers: Offers<'a>,
    /// `answer` was there (`answer_sdp`: `None` if not an object).
    has_answer: bool,
    answer_sdp: Option<RawSdp<'a>>,
    to_peer_id: Scalar<'a>,
    offer_id: Scalar<'a>,
}

struct MessageSeed<'l> {
    limits: &'l MessageLimits,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = Raw<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Raw<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_> {
    type Value = Raw<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw<'de>, A::Error> {
        let mut raw = Raw::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Action => raw.action = map.next_value()?,
                Key::InfoHash => {
                    raw.hashes = Hashes::default();
                    map.next_value_seed(HashesVisitor(&mut raw.hashes))?;
                }
                Key::PeerId => raw.peer_id = map.next_value()?,
                Key::Numwant => raw.numwant = map.next_value()?,
                Key::Left => raw.left = map.next_value()?,
                Key::Event => raw.event = map.next_value()?,
                Key::Offers => map.next_value_seed(OffersSeed {
                    offers: &mut raw.offers,
                    limits: self.limits,
                })?,
                Key::Answer => {
                    raw.has_answer = true;
                    raw.answer_sdp = map.next_value_seed(SdpSeed)?;
                }
                Key::ToPeerId => raw.to_peer_id = map.next_value()?,
                Key::OfferId => raw.offer_id = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}

impl<'a> Raw<'a> {
    /// Judges what was read.
    fn build(self, limits: &MessageLimits) -> Result<ClientMessage<'a>, MessageError> {
        let action = match self.action.str() {
            Some("announce") => Some(Action::Announce),
            Some("scrape") => Some(Action::Scrape),
            _ => None,
        };
        let fail = |reason| MessageError {
            action,
            info_hash: self.hashes.first(),
            reason,
        };
        match action {
            None => Err(fail("unknown action")),
            Some(Action::Scrape) => {
                let h = &self.hashes;
                if h.bad {
                    Err(fail("info_hash must be 20 latin-1 characters"))
                } else if h.count > limits.max_scrape_hashes.min(MAX_SCRAPE_HASHES) {
                    Err(fail("too many info hashes"))
                } else {
                    Ok(ClientMessage::Scrape(h.scrape))
                }
            }
            Some(Action::Announce) => {
                let h = &self.hashes;
                let info_hash = match h.first() {
                    Some(hash) if !h.bad && !h.array && h.count == 1 => hash,
                    _ => return Err(fail("info_hash must be 20 latin-1 characters")),
                };
                let peer_id = self
                    .peer_id
                    .str()
                    .and_then(latin1::decode_20)
                    .ok_or_else(|| fail("peer_id must be 20 latin-1 characters"))?;
                let left = match self.left {
                    Scalar::Missing | Scalar::Null => None,
                    other => Some(other.uint().ok_or_else(|| fail("invalid left"))?),
                };
                let event = match self.event.str() {
                    Some("started") => Event::Started,
                    Some("stopped") => Event::Stopped,
                    Some("completed") => Event::Completed,
                    _ => Event::Update,
                };
                let answer = if self.has_answer {
                    Some(Answer {
                        to_peer_id: self
                            .to_peer_id
                            .str()
                            .and_then(latin1::decode_20)
                            .ok_or_else(|| fail("to_peer_id must be 20 latin-1 characters"))?,
                        offer_id: self
                            .offer_id
                            .str()
                            .and_then(OfferId::from_latin1)
                            .ok_or_else(|| fail("offer_id must be 1 to 20 latin-1 characters"))?,
                        sdp: self
                            .answer_sdp
                            .and_then(|s| s.check("answer", limits.max_sdp_len))
                            .ok_or_else(|| fail("invalid answer"))?,
                    })
                } else {
                    None
                };
                Ok(ClientMessage::Announce(Announce {
                    info_hash,
                    peer_id,
                    event,
                    numwant: self
                        .numwant
                        .uint()
                        .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
                    left,
                    offers: self.offers,
                    answer,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests;
