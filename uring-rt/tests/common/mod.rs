//! Shared test helpers: running a test server ([`server`], which other
//! crates' tests include too) and the sockets several tests bind.
#![allow(dead_code)]

mod server;

pub use server::*;

use std::net::{SocketAddr, UdpSocket};

/// A UDP socket on `addr` with `SO_REUSEPORT` (IPv6-only on an IPv6
/// address), so that more sockets can join its group; port 0 picks a port
/// no other group holds.
pub fn reuseport_udp(addr: SocketAddr) -> UdpSocket {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        None,
    )
    .unwrap();
    if addr.is_ipv6() {
        s.set_only_v6(true).unwrap();
    }
    s.set_reuse_port(true).unwrap();
    let addr = uring_rt::socket::reuseport_addr(addr).unwrap();
    s.bind(&addr.into()).unwrap();
    s.into()
}
