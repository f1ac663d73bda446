//! Fuzz target: `parse_request` on arbitrary bytes, then walk what it
//! parsed; `peek_announce` (the look-ahead's shortcut) on the same bytes
//! must agree with it on every well-formed announce.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riptide_udp::protocol::{parse_request, peek_announce, Peek, Request};

fuzz_target!(|data: &[u8]| {
    let peeked = peek_announce(data);
    if let Ok(req) = parse_request(data) {
        match req {
            Request::Announce(a) => {
                let expected = Peek {
                    info_hash: a.info_hash,
                    port: a.port,
                    seeder: a.left == 0,
                };
                assert_eq!(peeked, Some(expected));
                let total: usize = a.url_data().map(<[u8]>::len).sum();
                assert!(total <= a.options.len());
                let mut out = [0u8; 2048];
                if let Ok(n) = a.write(&mut out) {
                    assert_eq!(parse_request(&out[..n]), Ok(Request::Announce(a)));
                }
            }
            Request::Scrape(s) => {
                assert!((1..=74).contains(&s.len()));
                assert_eq!(s.info_hashes().count(), s.len());
                // BEP 15: exactly 16 + 20·n bytes, no stray bytes.
                assert_eq!(data.len(), 16 + 20 * s.len());
            }
            Request::Connect(_) => {}
        }
    }
});
