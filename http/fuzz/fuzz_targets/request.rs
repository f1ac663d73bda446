//! Fuzz target: `parse_request` on arbitrary bytes, then walk what it
//! parsed and answer it the way the server would. Checks: no panic; the
//! head length stays inside the input; a request that parses also parses
//! when more bytes follow it (pipelining) with the same head length; every
//! shorter prefix of it is `Incomplete` (never a different verdict on the
//! same bytes); the responses fit the buffer sizes the module promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riptide_common::InfoHash;
use riptide_http::protocol::{
    announce_response_max_len, parse_request, scrape_response_max_len, write_announce, write_error,
    write_failure, write_scrape, AnnounceResponse, ParseConfig, ParseError, PeerV4, Peers,
    ScrapeStats, Target,
};

fuzz_target!(|data: &[u8]| {
    let cfg = ParseConfig {
        max_head_len: 4096,
        full_scrape: true,
        forwarded_header: Some("X-Forwarded-For"),
        ..ParseConfig::default()
    };
    let mut out = vec![0u8; 64 * 1024];
    match parse_request(data, &cfg) {
        Ok(r) => {
            assert!(r.head_len > 0 && r.head_len <= data.len());
            let head = &data[..r.head_len];
            assert_eq!(parse_request(head, &cfg), Ok(r));
            if r.head_len <= 512 {
                for n in 0..r.head_len {
                    assert_eq!(parse_request(&head[..n], &cfg), Err(ParseError::Incomplete));
                }
            }
            match r.target {
                Target::Announce(a) => {
                    let n = a.numwant_or(50, 200);
                    let peers = vec![
                        PeerV4 {
                            ip: [1, 2, 3, 4],
                            port: a.port
                        };
                        n
                    ];
                    let max = announce_response_max_len(n, a.compact, 0);
                    let p = if a.compact {
                        Peers::Compact {
                            v4: &peers,
                            v6: &[],
                        }
                    } else {
                        Peers::Dicts {
                            v4: &peers,
                            v6: &[],
                            peer_ids: None,
                        }
                    };
                    let len = write_announce(
                        &mut out[..max],
                        &AnnounceResponse::default(),
                        p,
                        r.connection,
                    );
                    assert!(len.is_ok());
                }
                Target::Scrape(s) => {
                    let mut files: Vec<(InfoHash, ScrapeStats)> = s
                        .info_hashes()
                        .map(|h| (h, ScrapeStats::default()))
                        .collect();
                    assert_eq!(files.len(), s.len());
                    let max = scrape_response_max_len(files.len());
                    assert!(write_scrape(&mut out[..max], &mut files, r.connection).is_ok());
                }
                Target::Failure(reason) => {
                    assert!(write_failure(&mut out, reason.as_bytes(), r.connection).is_ok());
                }
            }
        }
        Err(ParseError::Incomplete) => assert!(data.len() < cfg.max_head_len),
        Err(ParseError::Reject(status)) => {
            assert!(write_error(&mut out, status).is_ok());
        }
    }
});
