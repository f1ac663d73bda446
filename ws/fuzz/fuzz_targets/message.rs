//! Fuzz target: `parse_message` on arbitrary bytes (the reader hands it
//! UTF-8 only, but it must not panic on anything). Checks: no panic; what
//! parses stays within the limits; a failure is writable with what it
//! carries; replies to what parsed fit their promised sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riptide_ws::protocol::{
    failure_max_len, parse_message, relayed_max_len, scrape_reply_max_len, write_failure,
    write_relayed, write_scrape_reply, ClientMessage, MessageLimits, ParseBuffers, Relayed,
    ScrapeCounts,
};

fuzz_target!(|data: &[u8]| {
    let limits = MessageLimits {
        max_offers: 5,
        max_sdp_len: 2048,
        max_scrape_hashes: 8,
        max_depth: 6,
    };
    let mut bufs = ParseBuffers::new(1024);
    let mut text = data.to_vec();
    let mut out = vec![0u8; 16 * 1024];
    match parse_message(&mut text, &limits, &mut bufs) {
        Ok(ClientMessage::Announce(a)) => {
            assert!(a.offers.len() <= limits.max_offers);
            for o in &a.offers {
                assert!(o.sdp.sdp.len() <= limits.max_sdp_len);
                assert!(!o.offer_id.as_bytes().is_empty());
            }
            // Every offer relayed, and the answer, fit the promised size.
            let offers = a
                .offers
                .iter()
                .map(|o| (Relayed::Offer, &o.offer_id, &o.sdp));
            let answer = a
                .answer
                .iter()
                .map(|o| (Relayed::Answer, &o.offer_id, &o.sdp));
            for (kind, offer_id, sdp) in offers.chain(answer) {
                let max = relayed_max_len(sdp.sdp.len());
                let n = write_relayed(&mut out[..max], kind, &a.info_hash, &a.peer_id, offer_id, sdp);
                assert!(n <= max);
            }
        }
        Ok(ClientMessage::Scrape(s)) => {
            assert!(s.len() <= limits.max_scrape_hashes);
            let files: Vec<_> = s
                .info_hashes()
                .iter()
                .map(|h| (*h, ScrapeCounts::default()))
                .collect();
            let max = scrape_reply_max_len(files.len());
            assert!(write_scrape_reply(&mut out[..max], &files) <= max);
        }
        Err(e) => {
            let max = failure_max_len(e.reason.len());
            assert!(
                write_failure(&mut out[..max], e.action, e.info_hash.as_ref(), e.reason) <= max
            );
        }
    }
});
