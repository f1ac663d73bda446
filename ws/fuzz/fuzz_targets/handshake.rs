//! Fuzz target: `parse_upgrade` on arbitrary bytes. Checks: no panic; the
//! head length stays inside the input; an accepted request is accepted
//! again on exactly its head, and every shorter prefix is `Incomplete`; an
//! `Incomplete` input is under the head limit; both answers fit the sizes
//! the module promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riptide_ws::protocol::{
    parse_upgrade, write_accept, write_reject, HandshakeError, HandshakeLimits, ACCEPT_MAX_LEN,
    REJECT_MAX_LEN,
};

fuzz_target!(|data: &[u8]| {
    let limits = HandshakeLimits {
        max_head_len: 2048,
        forwarded_header: Some("X-Forwarded-For"),
    };
    match parse_upgrade(data, &limits) {
        Ok(up) => {
            assert!(up.head_len > 0 && up.head_len <= data.len());
            let head = &data[..up.head_len];
            assert_eq!(parse_upgrade(head, &limits), Ok(up));
            for n in 0..up.head_len.min(600) {
                assert_eq!(
                    parse_upgrade(&head[..n], &limits),
                    Err(HandshakeError::Incomplete)
                );
            }
            let mut out = [0u8; ACCEPT_MAX_LEN];
            assert_eq!(write_accept(&mut out, &up.accept), ACCEPT_MAX_LEN);
        }
        Err(HandshakeError::Incomplete) => assert!(data.len() < limits.max_head_len),
        Err(HandshakeError::Reject(r)) => {
            let mut out = [0u8; REJECT_MAX_LEN];
            assert!(write_reject(&mut out, &r) <= REJECT_MAX_LEN);
        }
    }
});
