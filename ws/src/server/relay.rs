//! The records riptide-ws workers send each other through the byte mesh
//! (`uring_rt::mesh::bytes`).
//!
//! Request lane (to the torrent's owner):
//! - announce: `1 | conn | info_hash[20] | peer_id[20] | event | seeder |
//!   n_offers | has_answer | offer * n | answer?` where an offer is
//!   `offer_id | sdp` and an answer `to_peer_id[20] | offer_id | sdp`;
//!   `offer_id` is `len u8 | bytes[len]`, `sdp` is `kind_len u8 | kind |
//!   len u32 | sdp`. A worker runs its own announces through the same
//!   encoding, so there is one path for both.
//! - leave: `2 | conn | info_hash[20] | peer_id[20]` (a connection closed).
//! - scrape ask: `3 | ret | n | (index u8, info_hash[20]) * n`.
//!
//! Reply lane (from an owner to the worker holding a connection):
//! - deliver: `4 | conn | JSON text` (an announce reply, a relayed offer or
//!   answer, a failure): sent as one text frame if the connection is
//!   still the same one, else dropped and counted.
//! - scrape answer: `5 | ret | n | (index u8, complete u32, incomplete u32,
//!   downloaded u32) * n`.
//!
//! Every record starts with the tag byte `w` (`riptide_common::mesh_tag::WS`),
//! then the kind. `conn` and `ret` are a [`ReturnAddr`] (worker, connection id, sequence
//! number; the sequence only matters for scrapes). Integers little-endian.

use crate::protocol::{Announce, Event, OfferId, PeerId, ScrapeCounts, Sdp};
use crate::swarm::{PeerConn, SwarmEvent};
use riptide_common::InfoHash;
use riptide_stream::Cursor;
use uring_rt::mesh::bytes::ReturnAddr;

/// First byte of every record.
const TAG: u8 = riptide_common::mesh_tag::WS;
const ANNOUNCE: u8 = 1;
const LEAVE: u8 = 2;
const SCRAPE_ASK: u8 = 3;
const DELIVER: u8 = 4;
const SCRAPE_ANSWER: u8 = 5;

const HEAD: usize = 2 + ReturnAddr::LEN;
const ANNOUNCE_FIXED: usize = HEAD + 20 + 20 + 4;

/// Bytes an SDP takes in a record.
fn sdp_len(sdp: &Sdp<'_>) -> usize {
    1 + sdp.kind.len() + 4 + sdp.sdp.len()
}

/// Bytes `a`'s announce record takes.
pub fn announce_len(a: &Announce<'_>) -> usize {
    let offers: usize = a
        .offers
        .iter()
        .map(|o| 1 + o.offer_id.as_bytes().len() + sdp_len(&o.sdp))
        .sum();
    let answer = a.answer.as_ref().map_or(0, |x| {
        20 + 1 + x.offer_id.as_bytes().len() + sdp_len(&x.sdp)
    });
    ANNOUNCE_FIXED + offers + answer
}

fn conn_addr(conn: PeerConn, seq: u32) -> ReturnAddr {
    ReturnAddr {
        worker: usize::from(conn.worker),
        conn: conn.conn,
        seq,
    }
}

/// A cursor over `out` with a record's head written: tag, `kind`, `ret`.
fn record<'a>(out: &'a mut [u8], kind: u8, ret: &ReturnAddr) -> Cursor<'a> {
    let mut w = Cursor::new(out);
    w.byte(TAG).byte(kind).put(&ret.encode());
    w
}

fn put_offer_id(w: &mut Cursor<'_>, id: &OfferId) {
    let b = id.as_bytes();
    w.byte(b.len() as u8).put(b);
}

fn put_sdp(w: &mut Cursor<'_>, sdp: &Sdp<'_>) {
    w.byte(sdp.kind.len() as u8)
        .put(sdp.kind.as_bytes())
        .put(&(sdp.sdp.len() as u32).to_le_bytes())
        .put(sdp.sdp.as_bytes());
}

/// Writes `a`, from the peer on `conn`, as an announce record into `out`
/// (at least [`announce_len`] bytes); returns its length.
pub fn write_announce(out: &mut [u8], conn: PeerConn, a: &Announce<'_>) -> usize {
    let mut w = record(out, ANNOUNCE, &conn_addr(conn, 0));
    w.put(&a.info_hash.0);
    w.put(&a.peer_id);
    w.byte(match a.event {
        Event::Stopped => 2,
        Event::Completed => 1,
        _ => 0,
    });
    w.byte(u8::from(a.is_seeder()));
    w.byte(a.offers.len() as u8);
    w.byte(u8::from(a.answer.is_some()));
    for o in &a.offers {
        put_offer_id(&mut w, &o.offer_id);
        put_sdp(&mut w, &o.sdp);
    }
    if let Some(x) = &a.answer {
        w.put(&x.to_peer_id);
        put_offer_id(&mut w, &x.offer_id);
        put_sdp(&mut w, &x.sdp);
    }
    w.written()
}

/// Writes a leave record; returns its length ([`LEAVE_LEN`]).
pub fn write_leave(
    out: &mut [u8],
    conn: PeerConn,
    info_hash: &InfoHash,
    peer_id: &PeerId,
) -> usize {
    let mut w = record(out, LEAVE, &conn_addr(conn, 0));
    w.put(&info_hash.0);
    w.put(peer_id);
    w.written()
}

/// Bytes of a leave record.
pub const LEAVE_LEN: usize = HEAD + 40;

/// Bytes of a deliver record's head (the JSON text follows).
pub const DELIVER_HEAD: usize = HEAD;

/// Writes a deliver record's head for `conn`; the JSON text goes after it.
pub fn write_deliver_head(out: &mut [u8], conn: PeerConn) -> usize {
    out[0] = TAG;
    out[1] = DELIVER;
    out[2..HEAD].copy_from_slice(&conn_addr(conn, 0).encode());
    HEAD
}

/// Bytes of a scrape ask for `n` hashes.
pub fn scrape_ask_len(n: usize) -> usize {
    HEAD + 1 + 21 * n
}

/// Writes a scrape ask: the hashes (with their place in the request) this
/// owner counts.
pub fn write_scrape_ask(out: &mut [u8], ret: &ReturnAddr, hashes: &[(u8, InfoHash)]) -> usize {
    let mut w = record(out, SCRAPE_ASK, ret);
    w.byte(hashes.len() as u8);
    for (i, h) in hashes {
        w.byte(*i);
        w.put(&h.0);
    }
    w.written()
}

/// Bytes of a scrape answer with `n` counts.
pub fn scrape_answer_len(n: usize) -> usize {
    HEAD + 1 + 13 * n
}

/// Writes a scrape answer.
pub fn write_scrape_answer(
    out: &mut [u8],
    ret: &ReturnAddr,
    counts: impl ExactSizeIterator<Item = (u8, ScrapeCounts)>,
) -> usize {
    let mut w = record(out, SCRAPE_ANSWER, ret);
    w.byte(counts.len() as u8);
    for (i, c) in counts {
        w.byte(i);
        w.put(&c.complete.to_le_bytes());
        w.put(&c.incomplete.to_le_bytes());
        w.put(&c.downloaded.to_le_bytes());
    }
    w.written()
}

/// An announce record, read back.
pub struct AnnounceRecord<'a> {
    /// The announcing peer's connection.
    pub conn: PeerConn,
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// Its event.
    pub event: SwarmEvent,
    /// Whether it seeds.
    pub seeder: bool,
    n_offers: usize,
    offers: &'a [u8],
    /// The answer it relays, if any.
    pub answer: Option<(PeerId, OfferId, Sdp<'a>)>,
}

impl<'a> AnnounceRecord<'a> {
    /// Its offers, in order.
    pub fn offers(&self) -> OfferIter<'a> {
        OfferIter {
            r: Reader { b: self.offers },
            left: self.n_offers,
        }
    }

    /// How many offers it carries.
    pub fn offer_count(&self) -> usize {
        self.n_offers
    }
}

/// The offers of an [`AnnounceRecord`].
pub struct OfferIter<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for OfferIter<'a> {
    type Item = (OfferId, Sdp<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some((self.r.offer_id()?, self.r.sdp()?))
    }
}

/// A record, read back.
pub enum Record<'a> {
    /// Run this announce.
    Announce(AnnounceRecord<'a>),
    /// This connection closed: its peer leaves the torrent.
    Leave(PeerConn, InfoHash, PeerId),
    /// Count these hashes.
    ScrapeAsk(ReturnAddr, &'a [u8]),
    /// Send this text to this connection.
    Deliver(PeerConn, &'a [u8]),
    /// Counts for a scrape.
    ScrapeAnswer(ReturnAddr, &'a [u8]),
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn id20(&mut self) -> Option<[u8; 20]> {
        self.take(20).map(|b| b.try_into().expect("20 bytes"))
    }

    fn offer_id(&mut self) -> Option<OfferId> {
        let n = usize::from(self.byte()?);
        OfferId::new(self.take(n)?)
    }

    fn sdp(&mut self) -> Option<Sdp<'a>> {
        let k = usize::from(self.byte()?);
        let kind = std::str::from_utf8(self.take(k)?).ok()?;
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        let sdp = std::str::from_utf8(self.take(n)?).ok()?;
        Some(Sdp { kind, sdp })
    }

    fn conn(&mut self) -> Option<ReturnAddr> {
        let (ret, rest) = ReturnAddr::decode(self.b)?;
        self.b = rest;
        Some(ret)
    }
}

fn peer_conn(ret: &ReturnAddr) -> PeerConn {
    PeerConn {
        worker: ret.worker as u16,
        conn: ret.conn,
    }
}

/// Reads a record (`None` if it is cut short or of an unknown kind: a bug,
/// logged by the caller).
pub fn read(record: &[u8]) -> Option<Record<'_>> {
    let mut r = Reader { b: record };
    if r.byte()? != TAG {
        return None;
    }
    let kind = r.byte()?;
    let ret = r.conn()?;
    Some(match kind {
        ANNOUNCE => {
            let info_hash = InfoHash(r.id20()?);
            let peer_id = r.id20()?;
            let event = match r.byte()? {
                2 => SwarmEvent::Stopped,
                1 => SwarmEvent::Completed,
                _ => SwarmEvent::Update,
            };
            let seeder = r.byte()? != 0;
            let n_offers = usize::from(r.byte()?);
            let has_answer = r.byte()? != 0;
            let offers_start = r.b;
            for _ in 0..n_offers {
                r.offer_id()?;
                r.sdp()?;
            }
            let offers = &offers_start[..offers_start.len() - r.b.len()];
            let answer = if has_answer {
                Some((r.id20()?, r.offer_id()?, r.sdp()?))
            } else {
                None
            };
            Record::Announce(AnnounceRecord {
                conn: peer_conn(&ret),
                info_hash,
                peer_id,
                event,
                seeder,
                n_offers,
                offers,
                answer,
            })
        }
        LEAVE => Record::Leave(peer_conn(&ret), InfoHash(r.id20()?), r.id20()?),
        SCRAPE_ASK => {
            let n = usize::from(r.byte()?);
            Record::ScrapeAsk(ret, r.take(21 * n)?)
        }
        DELIVER => Record::Deliver(peer_conn(&ret), r.b),
        SCRAPE_ANSWER => {
            let n = usize::from(r.byte()?);
            Record::ScrapeAnswer(ret, r.take(13 * n)?)
        }
        _ => return None,
    })
}

/// The `(index, info_hash)` pairs of a scrape ask.
pub fn ask_pairs(pairs: &[u8]) -> impl ExactSizeIterator<Item = (u8, InfoHash)> + '_ {
    pairs
        .chunks_exact(21)
        .map(|c| (c[0], InfoHash(c[1..].try_into().expect("20 bytes"))))
}

/// The `(index, counts)` of a scrape answer.
pub fn answer_counts(counts: &[u8]) -> impl Iterator<Item = (u8, ScrapeCounts)> + '_ {
    counts.chunks_exact(13).map(|c| {
        let word = |i: usize| u32::from_le_bytes(c[i..i + 4].try_into().expect("4 bytes"));
        (
            c[0],
            ScrapeCounts {
                complete: word(1),
                incomplete: word(5),
                downloaded: word(9),
            },
        )
    })
}

#[cfg(test)]
mod tests;
