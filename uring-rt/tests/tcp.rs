//! TCP: ACCEPT + multishot RECV + SEND echo of 1,000 concurrent
//! connections, payloads and peer addresses checked, every close reported
//! once.

mod common;

use common::{Greeter, TcpEcho, Watched};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const CONNS: usize = 1000;

fn pattern(conn: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7) ^ (conn * 13)) as u8).collect()
}

#[test]
fn echo_1000_connections() {
    if common::skip_tcp() {
        return;
    }
    let (addrs, t) = common::serve(common::small(1), vec![common::tcp_listener()], |s| {
        TcpEcho::new(Watched::new(s, Duration::from_secs(60)), CONNS, None)
    });
    let mut streams: Vec<TcpStream> = (0..CONNS)
        .map(|_| common::connect(addrs[0], Duration::from_secs(10)))
        .collect();
    // Sizes from 1 byte to 12 KiB: several receive buffers per message.
    let sizes: Vec<usize> = (0..CONNS).map(|i| 1 + (i * 37) % 12_000).collect();
    for (i, s) in streams.iter_mut().enumerate() {
        s.write_all(&pattern(i, sizes[i])).unwrap();
    }
    let mut total = 0;
    let peers: std::collections::HashSet<_> =
        streams.iter().map(|s| s.local_addr().unwrap()).collect();
    for (i, s) in streams.iter_mut().enumerate() {
        let mut got = vec![0u8; sizes[i]];
        s.read_exact(&mut got).unwrap();
        assert!(got == pattern(i, sizes[i]), "conn {i}: echo corrupted");
        total += sizes[i];
    }
    drop(streams);
    let h = t.join().unwrap();
    assert_eq!(h.accepted, CONNS);
    assert_eq!(h.peers, peers, "on_accept's peer addresses");
    assert_eq!(h.closed, CONNS);
    assert_eq!(h.bytes, total);
    assert_eq!(h.send_refused, 0);
    assert!(h.open.is_empty());
    assert!(!h.server.watchdog_fired);
}

const BLOB: usize = 16 * 1024;

/// The server closes right after queueing a reply larger than the socket
/// buffer: the bytes must still all arrive (close waits for the send,
/// continuing partial sends), then the peer sees EOF.
#[test]
fn close_after_send_delivers_everything() {
    if common::skip_tcp() {
        return;
    }
    let (addrs, t) = common::serve(common::small(1), vec![common::tcp_listener()], |s| {
        Greeter::new(s, pattern(1, BLOB), 1)
    });
    let mut s = common::connect(addrs[0], Duration::from_secs(10));
    socket2::SockRef::from(&s)
        .set_recv_buffer_size(4096)
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert!(got == pattern(1, BLOB));
    let h = t.join().unwrap();
    assert_eq!(h.accepted, 1);
    eprintln!("partial sends continued: {}", h.stats.send_partial);
}
