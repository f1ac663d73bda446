//! The bytes a client (or a proxy) controls before any request: a PROXY
//! protocol v1/v2 header, and an X-Forwarded-For value. Neither may panic;
//! a parsed header never claims more bytes than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riptide_stream::{client_from_forwarded, parse_proxy_header, ProxyHeader, TrustedProxies};
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    if let ProxyHeader::Parsed { header_len, .. } = parse_proxy_header(data) {
        assert!(header_len <= data.len());
    }
    let trusted = TrustedProxies::parse(&["127.0.0.0/8", "::1/128", "10.0.0.0/8"]).unwrap();
    let peer = IpAddr::from([127, 0, 0, 1]);
    let _ = client_from_forwarded(peer, data, &trusted);
});
