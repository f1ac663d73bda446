//! Stateless connection ids (BEP 15 connect / announce / scrape).
//!
//! Owns issuing and checking connection ids. An id is
//! `issue time (32 bits, coarse seconds) | MAC (32 bits)`, the MAC being
//! SipHash-1-3 under a per-process random key over
//! `(client IP, issue time, address family tag)`. Any worker can check
//! any id with the key alone: there is no table of ids, nothing to flood.
//! Not: the clock (the caller passes `now_secs`, the same coarse clock for
//! issuing and checking, e.g. seconds since process start) or what to do
//! with a bad id (the server drops it without state change or large reply).
//!
//! The IP is hashed as seen, with a family tag: a v4-mapped IPv6 address and
//! the IPv4 address are different clients here.

use std::hash::Hasher;
use std::net::IpAddr;

use rand::TryRngCore;
use siphasher::sip::SipHasher13;

use crate::protocol::ConnectionId;

/// Clock skew tolerated between workers' clocks for ids "from the future".
pub const FUTURE_SKEW_SECS: u32 = 2;

/// Why a connection id was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnIdError {
    /// The MAC does not match this IP and issue time: not ours, or for
    /// another client.
    #[error("forged connection id")]
    Forged,
    /// Issued more than `max_age_secs` ago.
    #[error("expired connection id")]
    Expired,
    /// Issued later than now (beyond the tolerated skew).
    #[error("connection id from the future")]
    FromFuture,
}

/// Issues and checks connection ids; cheap to clone, one per worker.
#[derive(Clone)]
pub struct ConnectionIds {
    /// Keyed with the process's secret key; copied per id.
    sip: SipHasher13,
    max_age_secs: u32,
}

impl std::fmt::Debug for ConnectionIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionIds")
            .field("max_age_secs", &self.max_age_secs)
            .finish_non_exhaustive()
    }
}

impl ConnectionIds {
    /// With a given 128-bit key (tests; or shared across processes).
    pub fn new(key: [u8; 16], max_age_secs: u32) -> Self {
        ConnectionIds {
            sip: SipHasher13::new_with_key(&key),
            max_age_secs,
        }
    }

    /// With a random key from the operating system.
    ///
    /// # Panics
    /// If the operating system's random source fails (at start-up only).
    pub fn from_random(max_age_secs: u32) -> Self {
        let mut key = [0u8; 16];
        rand::rngs::OsRng
            .try_fill_bytes(&mut key)
            .unwrap_or_else(|e| panic!("no OS randomness for the connection id key: {e}"));
        Self::new(key, max_age_secs)
    }

    /// How long an id stays valid.
    pub fn max_age_secs(&self) -> u32 {
        self.max_age_secs
    }

    /// Fed as whole words, not a byte buffer: a buffer written byte-wise
    /// and read back as words stalls store-to-load forwarding (~40% of
    /// this function's time in a profile at saturation).
    #[inline]
    fn mac(&self, ip: IpAddr, time: u32) -> u32 {
        let mut h = self.sip;
        match ip {
            IpAddr::V4(a) => {
                h.write_u64(u64::from(a.to_bits()) << 32 | u64::from(time));
                h.write_u8(4);
            }
            IpAddr::V6(a) => {
                let bits = a.to_bits();
                h.write_u64((bits >> 64) as u64);
                h.write_u64(bits as u64);
                h.write_u32(time);
                h.write_u8(6);
            }
        }
        let x = h.finish();
        (x ^ (x >> 32)) as u32
    }

    /// A connection id for `ip`, issued at `now_secs`.
    #[inline]
    pub fn issue(&self, ip: IpAddr, now_secs: u32) -> ConnectionId {
        let mac = self.mac(ip, now_secs);
        ConnectionId(((u64::from(now_secs) << 32) | u64::from(mac)) as i64)
    }

    /// Check an id presented by `ip` at `now_secs`. The MAC is checked
    /// first (whole-word comparison, no early exit on a byte), so any
    /// altered bit reads as [`ConnIdError::Forged`].
    #[inline]
    pub fn check(&self, cid: ConnectionId, ip: IpAddr, now_secs: u32) -> Result<(), ConnIdError> {
        let raw = cid.0 as u64;
        let time = (raw >> 32) as u32;
        let mac = raw as u32;
        if (self.mac(ip, time) ^ mac) != 0 {
            return Err(ConnIdError::Forged);
        }
        if time > now_secs.saturating_add(FUTURE_SKEW_SECS) {
            return Err(ConnIdError::FromFuture);
        }
        if now_secs.saturating_sub(time) > self.max_age_secs {
            return Err(ConnIdError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const KEY: [u8; 16] = *b"0123456789abcdef";
    const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
    const V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7));

    #[test]
    fn valid_within_max_age() {
        let ids = ConnectionIds::new(KEY, 120);
        for ip in [V4, V6] {
            let cid = ids.issue(ip, 1000);
            assert_eq!(ids.check(cid, ip, 1000), Ok(()));
            assert_eq!(ids.check(cid, ip, 1120), Ok(()));
            // A worker whose clock lags slightly.
            assert_eq!(ids.check(cid, ip, 998), Ok(()));
        }
    }

    #[test]
    fn expired_after_max_age() {
        let ids = ConnectionIds::new(KEY, 120);
        let cid = ids.issue(V4, 1000);
        assert_eq!(ids.check(cid, V4, 1121), Err(ConnIdError::Expired));
        assert_eq!(ids.check(cid, V4, u32::MAX), Err(ConnIdError::Expired));
    }

    #[test]
    fn from_the_future_rejected() {
        let ids = ConnectionIds::new(KEY, 120);
        let cid = ids.issue(V4, 1000);
        assert_eq!(
            ids.check(cid, V4, 1000 - FUTURE_SKEW_SECS - 1),
            Err(ConnIdError::FromFuture)
        );
        assert_eq!(ids.check(cid, V4, 0), Err(ConnIdError::FromFuture));
    }

    #[test]
    fn every_flipped_bit_is_forged() {
        let ids = ConnectionIds::new(KEY, 120);
        for ip in [V4, V6] {
            let cid = ids.issue(ip, 5000);
            for bit in 0..64 {
                let bad = ConnectionId(cid.0 ^ (1i64 << bit));
                assert_eq!(
                    ids.check(bad, ip, 5000),
                    Err(ConnIdError::Forged),
                    "bit {bit}"
                );
            }
        }
    }

    #[test]
    fn other_ip_other_key_other_family() {
        let ids = ConnectionIds::new(KEY, 120);
        let cid = ids.issue(V4, 5000);
        assert_eq!(
            ids.check(cid, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 8)), 5000),
            Err(ConnIdError::Forged)
        );
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert_eq!(ids.check(cid, mapped, 5000), Err(ConnIdError::Forged));
        let other = ConnectionIds::new(*b"fedcba9876543210", 120);
        assert_eq!(other.check(cid, V4, 5000), Err(ConnIdError::Forged));
        let random = ConnectionIds::from_random(120);
        assert_eq!(random.check(random.issue(V6, 7), V6, 7), Ok(()));
        assert_eq!(random.check(cid, V4, 5000), Err(ConnIdError::Forged));
    }

    #[test]
    fn ids_differ_per_second_and_client() {
        let ids = ConnectionIds::new(KEY, 120);
        assert_ne!(ids.issue(V4, 1), ids.issue(V4, 2));
        assert_ne!(ids.issue(V4, 1), ids.issue(V6, 1));
        assert_eq!(ids.issue(V4, 1), ids.issue(V4, 1));
    }
}
