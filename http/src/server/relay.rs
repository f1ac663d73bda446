//! The records riptide-http workers send each other through the byte mesh
//! (`uring_rt::mesh::bytes`): an announce or the hashes of a scrape go to
//! the worker that owns the torrent (request lane); the owner answers on
//! the reply lane. Every record starts with the asker's
//! [`ReturnAddr`] (worker, connection, sequence number), so an answer that
//! comes back after its connection moved on is recognised and dropped.
//!
//! Layouts (integers little-endian), each after the tag byte `h`
//! (`riptide_common::mesh_tag::HTTP`):
//! - announce: `ret | 1 | info_hash[20] | family (4|6) | ip[16] | port u16 |
//!   event | seeder | numwant u16 | compact | connection`
//! - announce answer: `ret | 1 | the whole HTTP response`
//! - scrape ask: `ret | 2 | n | (index, info_hash[20]) * n`
//! - scrape answer: `ret | 2 | n | (index, seeders u32, completed u32,
//!   leechers u32) * n`

use crate::protocol::{Connection, Event};
use riptide_common::swarm::{Announce, ScrapeStats};
use riptide_common::InfoHash;
use riptide_stream::Cursor;
use std::net::IpAddr;
use uring_rt::mesh::bytes::ReturnAddr;

/// First byte of every record (`riptide_common::mesh_tag`).
const TAG: u8 = riptide_common::mesh_tag::HTTP;
const ANNOUNCE: u8 = 1;
const SCRAPE: u8 = 2;

/// An announce for the owner to run and answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteAnnounce {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The client's address (after trusted proxies) and announced port.
    pub ip: IpAddr,
    /// Announced port.
    pub port: u16,
    /// The event.
    pub event: Event,
    /// Counted as a seeder.
    pub seeder: bool,
    /// Peers wanted, clamped.
    pub numwant: u16,
    /// Compact peer list.
    pub compact: bool,
    /// What the response says about the connection.
    pub connection: Connection,
}

impl RemoteAnnounce {
    /// The announce as the swarm takes it, from `addr` (IP and port).
    pub fn to_swarm<A>(&self, addr: A) -> Announce<A> {
        Announce {
            info_hash: self.info_hash,
            addr,
            event: self.event,
            seeder: self.seeder,
            numwant: usize::from(self.numwant),
        }
    }
}

/// Bytes of an encoded announce record.
pub const ANNOUNCE_LEN: usize = 1 + ReturnAddr::LEN + 1 + 20 + 1 + 16 + 2 + 1 + 1 + 2 + 1 + 1;
/// Bytes of a scrape ask of `n` hashes.
pub const fn scrape_ask_len(n: usize) -> usize {
    1 + ReturnAddr::LEN + 2 + n * 21
}
/// Bytes of a scrape answer of `n` hashes.
pub const fn scrape_answer_len(n: usize) -> usize {
    1 + ReturnAddr::LEN + 2 + n * 13
}

/// A record as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// Run this announce and answer with the HTTP response.
    Announce(ReturnAddr, RemoteAnnounce),
    /// The HTTP response to a forwarded announce.
    AnnounceAnswer(ReturnAddr, &'a [u8]),
    /// Count these hashes (raw `(index, hash)` pairs, see [`ask_pairs`]).
    ScrapeAsk(ReturnAddr, &'a [u8]),
    /// Counts of the asked hashes (raw, see [`answer_counts`]).
    ScrapeAnswer(ReturnAddr, &'a [u8]),
}

fn event_byte(e: Event) -> u8 {
    match e {
        Event::None => 0,
        Event::Started => 1,
        Event::Completed => 2,
        Event::Stopped => 3,
        Event::Paused => 4,
    }
}

fn event_of(b: u8) -> Event {
    match b {
        1 => Event::Started,
        2 => Event::Completed,
        3 => Event::Stopped,
        4 => Event::Paused,
        _ => Event::None,
    }
}

fn connection_byte(c: Connection) -> u8 {
    match c {
        Connection::Close => 0,
        Connection::KeepAlive => 1,
        Connection::KeepAliveHttp10 => 2,
    }
}

fn connection_of(b: u8) -> Connection {
    match b {
        1 => Connection::KeepAlive,
        2 => Connection::KeepAliveHttp10,
        _ => Connection::Close,
    }
}

/// Writes an announce record into `buf` (at least [`ANNOUNCE_LEN`] bytes);
/// returns its length.
pub fn write_announce(buf: &mut [u8], ret: &ReturnAddr, a: &RemoteAnnounce) -> usize {
    let mut w = Cursor::new(buf);
    w.put(&[TAG]);
    w.put(&ret.encode());
    w.put(&[ANNOUNCE]);
    w.put(&a.info_hash.0);
    let (family, ip) = match a.ip {
        IpAddr::V4(v4) => {
            let mut ip = [0; 16];
            ip[..4].copy_from_slice(&v4.octets());
            (4, ip)
        }
        IpAddr::V6(v6) => (6, v6.octets()),
    };
    w.put(&[family]);
    w.put(&ip);
    w.put(&a.port.to_le_bytes());
    w.put(&[event_byte(a.event), u8::from(a.seeder)]);
    w.put(&a.numwant.to_le_bytes());
    w.put(&[u8::from(a.compact), connection_byte(a.connection)]);
    w.written()
}

/// Writes the head of an announce answer (`ret | 1`); the HTTP response
/// follows it; returns the head's length.
pub fn write_answer_head(buf: &mut [u8], ret: &ReturnAddr) -> usize {
    let mut w = Cursor::new(buf);
    w.put(&[TAG]);
    w.put(&ret.encode());
    w.put(&[ANNOUNCE]);
    w.written()
}

/// Writes a scrape ask of `(index in the request, hash)` pairs; returns its
/// length (`buf` holds at least [`scrape_ask_len`]).
pub fn write_scrape_ask(buf: &mut [u8], ret: &ReturnAddr, hashes: &[(u8, InfoHash)]) -> usize {
    let mut w = Cursor::new(buf);
    w.put(&[TAG]);
    w.put(&ret.encode());
    w.put(&[SCRAPE, hashes.len() as u8]);
    for (i, h) in hashes {
        w.put(&[*i]);
        w.put(&h.0);
    }
    w.written()
}

/// Writes a scrape answer of `(index, counts)`; returns its length (`buf`
/// holds at least [`scrape_answer_len`]).
pub fn write_scrape_answer(
    buf: &mut [u8],
    ret: &ReturnAddr,
    counts: impl ExactSizeIterator<Item = (u8, ScrapeStats)>,
) -> usize {
    let mut w = Cursor::new(buf);
    w.put(&[TAG]);
    w.put(&ret.encode());
    w.put(&[SCRAPE, counts.len() as u8]);
    for (i, s) in counts {
        w.put(&[i]);
        w.put(&s.seeders.to_le_bytes());
        w.put(&s.completed.to_le_bytes());
        w.put(&s.leechers.to_le_bytes());
    }
    w.written()
}

/// The `(index, hash)` pairs of a scrape ask.
pub fn ask_pairs(body: &[u8]) -> impl ExactSizeIterator<Item = (u8, InfoHash)> + '_ {
    body.chunks_exact(21).map(|c| {
        let mut h = [0; 20];
        h.copy_from_slice(&c[1..]);
        (c[0], InfoHash(h))
    })
}

/// The `(index, counts)` of a scrape answer.
pub fn answer_counts(body: &[u8]) -> impl Iterator<Item = (u8, ScrapeStats)> + '_ {
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    body.chunks_exact(13).map(move |c| {
        (
            c[0],
            ScrapeStats {
                seeders: word(&c[1..5]),
                completed: word(&c[5..9]),
                leechers: word(&c[9..13]),
            },
        )
    })
}

/// Reads a record from the mesh; `None` for one that does not parse (never
/// expected: only workers of this process write them).
pub fn read(record: &[u8], reply: bool) -> Option<Record<'_>> {
    let (&TAG, record) = record.split_first()? else {
        return None;
    };
    let (ret, rest) = ReturnAddr::decode(record)?;
    let (&kind, body) = rest.split_first()?;
    match (kind, reply) {
        (ANNOUNCE, false) => {
            let b = body.get(..ANNOUNCE_LEN - ReturnAddr::LEN - 2)?;
            let mut info_hash = [0; 20];
            info_hash.copy_from_slice(&b[..20]);
            let mut ip16 = [0; 16];
            ip16.copy_from_slice(&b[21..37]);
            let ip = match b[20] {
                4 => IpAddr::from([ip16[0], ip16[1], ip16[2], ip16[3]]),
                6 => IpAddr::from(ip16),
                _ => return None,
            };
            Some(Record::Announce(
                ret,
                RemoteAnnounce {
                    info_hash: InfoHash(info_hash),
                    ip,
                    port: u16::from_le_bytes([b[37], b[38]]),
                    event: event_of(b[39]),
                    seeder: b[40] != 0,
                    numwant: u16::from_le_bytes([b[41], b[42]]),
                    compact: b[43] != 0,
                    connection: connection_of(b[44]),
                },
            ))
        }
        (ANNOUNCE, true) => Some(Record::AnnounceAnswer(ret, body)),
        (SCRAPE, reply) => {
            let (&n, pairs) = body.split_first()?;
            let each = if reply { 13 } else { 21 };
            let pairs = pairs.get(..usize::from(n) * each)?;
            Some(if reply {
                Record::ScrapeAnswer(ret, pairs)
            } else {
                Record::ScrapeAsk(ret, pairs)
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uring_rt::ConnId;

    fn ret(conn: ConnId) -> ReturnAddr {
        ReturnAddr {
            worker: 3,
            conn,
            seq: 77,
        }
    }

    /// A `ConnId` as a worker would hand it out (decoded from its encoding).
    fn conn() -> ConnId {
        let mut raw = [0u8; 16];
        raw[4..8].copy_from_slice(&9u32.to_le_bytes());
        raw[8..12].copy_from_slice(&2u32.to_le_bytes());
        ReturnAddr::decode(&raw).unwrap().0.conn
    }

    #[test]
    fn announces_round_trip_for_both_families() {
        for ip in [
            IpAddr::from([10, 1, 2, 3]),
            "2001:db8::7".parse::<IpAddr>().unwrap(),
        ] {
            let a = RemoteAnnounce {
                info_hash: InfoHash([0xab; 20]),
                ip,
                port: 6881,
                event: Event::Completed,
                seeder: true,
                numwant: 50,
                compact: false,
                connection: Connection::KeepAliveHttp10,
            };
            let mut buf = [0u8; ANNOUNCE_LEN];
            let n = write_announce(&mut buf, &ret(conn()), &a);
            assert_eq!(n, ANNOUNCE_LEN);
            assert_eq!(read(&buf, false), Some(Record::Announce(ret(conn()), a)));
        }
    }

    #[test]
    fn scrapes_round_trip_and_truncated_records_are_refused() {
        let hashes = [(0u8, InfoHash([1; 20])), (5, InfoHash([2; 20]))];
        let mut buf = [0u8; scrape_ask_len(2)];
        let n = write_scrape_ask(&mut buf, &ret(conn()), &hashes);
        let Some(Record::ScrapeAsk(r, body)) = read(&buf[..n], false) else {
            panic!("not an ask");
        };
        assert_eq!(r, ret(conn()));
        assert_eq!(ask_pairs(body).collect::<Vec<_>>(), hashes);
        assert_eq!(read(&buf[..n - 1], false), None);

        let counts = [(
            5u8,
            ScrapeStats {
                seeders: 1,
                completed: 2,
                leechers: 3,
            },
        )];
        let mut buf = [0u8; scrape_answer_len(1)];
        let n = write_scrape_answer(&mut buf, &ret(conn()), counts.into_iter());
        let Some(Record::ScrapeAnswer(_, body)) = read(&buf[..n], true) else {
            panic!("not an answer");
        };
        assert_eq!(answer_counts(body).collect::<Vec<_>>(), counts);
        assert_eq!(read(&buf[..10], true), None);
    }
}
