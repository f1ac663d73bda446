//! Fuzz target: `parse_response` on arbitrary bytes, both peer families.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riptide_udp::protocol::{parse_response, scrape_stats, Response};

fuzz_target!(|data: &[u8]| {
    for ipv6 in [false, true] {
        if let Ok(resp) = parse_response(data, ipv6) {
            match resp {
                Response::Announce(a) => {
                    assert_eq!(a.peers_v4().count() + a.peers_v6().count(), a.peer_count());
                }
                Response::Scrape { stats, .. } => {
                    let _ = scrape_stats(stats).count();
                }
                Response::Connect { .. } | Response::Error { .. } => {}
            }
            let mut out = [0u8; 2048];
            if let Ok(n) = resp.write(&mut out) {
                assert_eq!(parse_response(&out[..n], ipv6), Ok(resp));
            }
        }
    }
});
