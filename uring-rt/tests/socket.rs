//! Tests of the socket helpers over real loopback sockets (127.0.0.1, ::1),
//! plus the address and control-message codecs on arbitrary bytes.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use uring_rt::socket::{
    attach_reuseport_cbpf, bpf_stmt, detach_reuseport_bpf, enable_pktinfo, pktinfo_dst,
    reuseport_addr, sockaddr_bytes_to_std, sockaddr_to_std, std_to_sockaddr, write_pktinfo,
    RecvBatch, SendBatch, PKTINFO_SPACE,
};

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn bind(addr: &str) -> UdpSocket {
    let sock = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock
}

/// Block (up to the socket's read timeout) until a datagram is queued.
fn wait_readable(sock: &UdpSocket) {
    let mut one = [0_u8; 1];
    match sock.peek(&mut one) {
        Ok(_) => {}
        Err(e) => panic!("no datagram arrived: {e}"),
    }
}

/// Receive exactly `n` datagrams into owned copies (src, dst, payload).
fn recv_n(
    sock: &UdpSocket,
    batch: &mut RecvBatch,
    n: usize,
) -> Vec<(SocketAddr, Option<IpAddr>, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} datagrams arrived",
            out.len()
        );
        wait_readable(sock);
        match batch.recv(sock) {
            Ok(k) => {
                assert_eq!(batch.len(), k);
                for i in 0..k {
                    let d = batch.get(i).unwrap();
                    assert!(!d.truncated);
                    out.push((d.src, d.dst, d.payload.to_vec()));
                }
                assert!(batch.get(k).is_none());
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
    assert_eq!(out.len(), n);
    out
}

fn port(sock: &UdpSocket) -> u16 {
    sock.local_addr().unwrap().port()
}

// --- pktinfo ------------------------------------------------------------------

#[test]
fn pktinfo_dst_is_reported_v4() {
    let server = bind("0.0.0.0:0");
    enable_pktinfo(&server).unwrap();
    let client = bind("127.0.0.1:0");
    let mut batch = RecvBatch::new(8, 1500);
    for dst in [Ipv4Addr::LOCALHOST, Ipv4Addr::new(127, 0, 0, 2)] {
        client.send_to(b"hello", (dst, port(&server))).unwrap();
        let got = recv_n(&server, &mut batch, 1);
        assert_eq!(
            got[0],
            (
                client.local_addr().unwrap(),
                Some(IpAddr::V4(dst)),
                b"hello".to_vec()
            )
        );
    }
}

#[test]
fn pktinfo_dst_is_reported_v6_and_dual_stack() {
    let server = bind("[::]:0");
    enable_pktinfo(&server).unwrap();
    let mut batch = RecvBatch::new(8, 1500);

    let client6 = bind("[::1]:0");
    client6.send_to(b"six", ("::1", port(&server))).unwrap();
    let got = recv_n(&server, &mut batch, 1);
    assert_eq!(
        got[0],
        (client6.local_addr().unwrap(), Some(V6), b"six".to_vec())
    );

    // IPv4 on the dual-stack socket: v4-mapped source and destination.
    let client4 = bind("127.0.0.1:0");
    client4
        .send_to(b"four", ("127.0.0.2", port(&server)))
        .unwrap();
    let got = recv_n(&server, &mut batch, 1);
    let mapped: SocketAddr = format!("[::ffff:127.0.0.1]:{}", port(&client4))
        .parse()
        .unwrap();
    let dst: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
    assert_eq!(got[0], (mapped, Some(dst), b"four".to_vec()));
}

#[test]
fn without_pktinfo_dst_is_none() {
    let server = bind("127.0.0.1:0");
    let client = bind("127.0.0.1:0");
    client.send_to(b"x", server.local_addr().unwrap()).unwrap();
    let mut batch = RecvBatch::new(1, 16);
    let got = recv_n(&server, &mut batch, 1);
    assert_eq!(got[0].1, None);
}

#[test]
fn send_from_chosen_source_v4() {
    let server = bind("0.0.0.0:0");
    let client = bind("127.0.0.1:0");
    let mut batch = SendBatch::new(4, 64);
    for from in [
        Ipv4Addr::LOCALHOST,
        Ipv4Addr::new(127, 0, 0, 2),
        Ipv4Addr::new(127, 0, 0, 3),
    ] {
        assert!(batch.push(
            client.local_addr().unwrap(),
            Some(IpAddr::V4(from)),
            |buf| {
                buf[..4].copy_from_slice(&from.octets());
                4
            }
        ));
        assert_eq!(batch.flush(&server).unwrap(), 1);
        let mut buf = [0_u8; 16];
        let (n, src) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &from.octets());
        assert_eq!(src, SocketAddr::new(IpAddr::V4(from), port(&server)));
    }
    assert_eq!(batch.dropped(), 0);
}

#[test]
fn send_from_chosen_source_v6_and_dual_stack() {
    let server = bind("[::]:0");
    let client6 = bind("[::1]:0");
    let client4 = bind("127.0.0.1:0");
    let mapped: SocketAddr = format!("[::ffff:127.0.0.1]:{}", port(&client4))
        .parse()
        .unwrap();
    let mut batch = SendBatch::new(4, 64);
    assert!(batch.push(client6.local_addr().unwrap(), Some(V6), |buf| {
        buf[0] = 6;
        1
    }));
    // IPv4 source for a v4-mapped destination on the dual-stack socket.
    assert!(batch.push(
        mapped,
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
        |buf| {
            buf[0] = 4;
            1
        }
    ));
    // The same with the v4-mapped source a dual-stack socket reports.
    assert!(
        batch.push(mapped, Some("::ffff:127.0.0.3".parse().unwrap()), |buf| {
            buf[0] = 44;
            1
        })
    );
    assert_eq!(batch.len(), 3);
    assert_eq!(batch.flush(&server).unwrap(), 3);
    assert!(batch.is_empty());
    assert_eq!(batch.dropped(), 0);

    let mut buf = [0_u8; 16];
    let (n, src) = client6.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], src),
        (&[6_u8][..], SocketAddr::new(V6, port(&server)))
    );
    let (n, src) = client4.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], src),
        (
            &[4_u8][..],
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), port(&server))
        )
    );
    let (n, src) = client4.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], src),
        (
            &[44_u8][..],
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)), port(&server))
        )
    );
}

// --- batches ------------------------------------------------------------------

/// The payload of datagram `i` of a round trip: varied lengths and bytes.
fn payload(i: usize, buf: &mut [u8]) -> usize {
    let len = 1 + (i * 37) % 700;
    for (j, b) in buf[..len].iter_mut().enumerate() {
        *b = (i * 7 + j) as u8;
    }
    len
}

fn round_trip_64(server_addr: &str, client_addr: &str) {
    let server = bind(server_addr);
    enable_pktinfo(&server).unwrap();
    let client = bind(client_addr);
    let target = SocketAddr::new(client.local_addr().unwrap().ip(), port(&server));

    let mut out = SendBatch::new(64, 1024);
    for i in 0..64 {
        assert!(out.push(target, None, |buf| payload(i, buf)));
    }
    assert!(!out.push(target, None, |_| unreachable!(
        "full batch must not call fill"
    )));
    assert_eq!(out.len(), 64);
    assert_eq!(out.flush(&client).unwrap(), 64);
    assert!(out.is_empty());

    // Server: receive all 64 and echo each from the address it was sent to.
    let mut inb = RecvBatch::new(64, 2048);
    let got = recv_n(&server, &mut inb, 64);
    let mut echo = SendBatch::new(64, 2048);
    for (i, (src, dst, bytes)) in got.iter().enumerate() {
        let mut expect = [0_u8; 1024];
        let len = payload(i, &mut expect);
        assert_eq!(bytes, &expect[..len], "datagram {i}");
        assert_eq!(*src, client.local_addr().unwrap());
        assert_eq!(*dst, Some(target.ip()));
        assert!(echo.push(*src, *dst, |buf| {
            buf[..bytes.len()].copy_from_slice(bytes);
            bytes.len()
        }));
    }
    assert_eq!(echo.flush(&server).unwrap(), 64);

    let back = recv_n(&client, &mut inb, 64);
    for (i, (src, _, bytes)) in back.iter().enumerate() {
        let mut expect = [0_u8; 1024];
        let len = payload(i, &mut expect);
        assert_eq!(bytes, &expect[..len], "echo {i}");
        assert_eq!(*src, target);
    }
    assert_eq!(out.dropped() + echo.dropped(), 0);
}

#[test]
fn batch_of_64_round_trips_v4() {
    round_trip_64("0.0.0.0:0", "127.0.0.1:0");
}

#[test]
fn batch_of_64_round_trips_v6() {
    round_trip_64("[::]:0", "[::1]:0");
}

#[test]
fn truncated_datagram_is_flagged() {
    let server = bind("127.0.0.1:0");
    let client = bind("127.0.0.1:0");
    client
        .send_to(&[9_u8; 100], server.local_addr().unwrap())
        .unwrap();
    let mut batch = RecvBatch::new(2, 10);
    wait_readable(&server);
    assert_eq!(batch.recv(&server).unwrap(), 1);
    let d = batch.get(0).unwrap();
    assert!(d.truncated);
    assert_eq!(d.payload, &[9_u8; 10]);
}

#[test]
fn empty_socket_would_block() {
    let server = bind("127.0.0.1:0");
    let mut batch = RecvBatch::new(4, 64);
    let err = batch.recv(&server).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert!(batch.is_empty());
    assert!(batch.get(0).is_none());
    // A zero-sized batch is not an error.
    assert_eq!(RecvBatch::new(0, 64).recv(&server).unwrap(), 0);
}

#[test]
fn send_errors_drop_only_the_bad_datagram() {
    let server = bind("127.0.0.1:0");
    let client = bind("127.0.0.1:0");
    let to = server.local_addr().unwrap();
    let mut batch = SendBatch::new(8, 16);
    let mut push = |to: SocketAddr, from: Option<IpAddr>, byte: u8| {
        assert!(batch.push(to, from, |buf| {
            buf[0] = byte;
            1
        }));
    };
    push(to, None, 1);
    push("127.0.0.1:0".parse().unwrap(), None, 2); // port 0: EINVAL
    push(to, None, 3);
    push("[::1]:9".parse().unwrap(), None, 4); // IPv6 on an IPv4 socket
    push(to, Some("10.255.255.254".parse().unwrap()), 5); // not a local source
    push(to, None, 6);
    let sent = batch.flush(&client).unwrap();
    assert_eq!((sent, batch.dropped()), (3, 3));
    assert!(batch.is_empty());
    let mut buf = [0_u8; 4];
    for expect in [1, 3, 6] {
        let (n, _) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[expect]);
    }
    // Nothing queued: flushing is a no-op.
    assert_eq!(batch.flush(&client).unwrap(), 0);
}

#[test]
fn fill_returning_zero_queues_nothing() {
    let mut batch = SendBatch::new(2, 8);
    let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
    assert!(batch.push(to, None, |_| 0));
    assert!(batch.is_empty());
    assert!(batch.push(to, None, |buf| buf.len() + 100)); // cut to size
    assert_eq!(batch.len(), 1);
    assert!(!SendBatch::new(0, 8).push(to, None, |_| 1));
}

fn assert_send<T: Send>() {}

#[test]
fn batches_are_send() {
    assert_send::<RecvBatch>();
    assert_send::<SendBatch>();
}

// --- reuseport cBPF -----------------------------------------------------------

/// A port-0 bind with `SO_REUSEPORT` can land on another group's port and
/// join it (on this kernel 7 to 16 of 10,000 such binds per family, with
/// 50 groups held); `reuseport_addr` never hands out a held port, and
/// keeps a given one.
#[test]
fn reuseport_addr_never_picks_a_port_another_group_holds() {
    for ip in [V4, V6] {
        let held: Vec<UdpSocket> = (0..50).flat_map(|_| reuseport_group(ip, 1)).collect();
        let ports: Vec<u16> = held
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        for _ in 0..10_000 {
            let addr = reuseport_addr(SocketAddr::new(ip, 0)).unwrap();
            assert_eq!(addr.ip(), ip);
            assert!(!ports.contains(&addr.port()), "{addr} is held by a group");
        }
        let given = SocketAddr::new(ip, ports[0]);
        assert_eq!(reuseport_addr(given).unwrap(), given);
    }
}

fn reuseport_group(ip: IpAddr, n: usize) -> Vec<UdpSocket> {
    let domain = if ip.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let mut port = reuseport_addr(SocketAddr::new(ip, 0)).unwrap().port();
    (0..n)
        .map(|_| {
            let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).unwrap();
            s.set_reuse_port(true).unwrap();
            s.bind(&SocketAddr::new(ip, port).into()).unwrap();
            let s: UdpSocket = s.into();
            port = s.local_addr().unwrap().port();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect()
}

/// `return payload[0] % 4`.
const MOD4: [libc::sock_filter; 3] = [
    bpf_stmt(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 0),
    bpf_stmt(libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K, 4),
    bpf_stmt(libc::BPF_RET | libc::BPF_A, 0),
];

fn steering(ip: IpAddr, client_addr: &str) {
    let group = reuseport_group(ip, 4);
    attach_reuseport_cbpf(&group[0], &MOD4).unwrap();
    let to = group[0].local_addr().unwrap();
    let client = bind(client_addr);

    let mut out = SendBatch::new(256, 8);
    for b in 0..=255_u8 {
        assert!(out.push(to, None, |buf| {
            buf[0] = b;
            buf[1] = !b;
            2
        }));
    }
    assert_eq!(out.flush(&client).unwrap(), 256);

    let mut batch = RecvBatch::new(128, 64);
    let mut total = 0;
    for (index, sock) in group.iter().enumerate() {
        let mut seen = Vec::new();
        loop {
            match batch.recv(sock) {
                Ok(_) => seen.extend(batch.iter().map(|d| d.payload[0])),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
        let expect: Vec<u8> = (0..=255_u8)
            .filter(|b| usize::from(*b) % 4 == index)
            .collect();
        assert_eq!(seen, expect, "socket {index}");
        total += seen.len();
    }
    assert_eq!(total, 256);

    detach_reuseport_bpf(&group[0]).unwrap();
    let err = detach_reuseport_bpf(&group[0]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
}

#[test]
fn reuseport_cbpf_steers_v4() {
    steering(V4, "127.0.0.1:0");
}

#[test]
fn reuseport_cbpf_steers_v6() {
    steering(V6, "[::1]:0");
}

#[test]
fn reuseport_cbpf_rejects_bad_programs() {
    let group = reuseport_group(V4, 1);
    assert_eq!(
        attach_reuseport_cbpf(&group[0], &[]).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let long = vec![bpf_stmt(libc::BPF_RET | libc::BPF_K, 0); 4097];
    assert_eq!(
        attach_reuseport_cbpf(&group[0], &long).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    // No return at the end: the kernel's checker refuses it.
    let bad = [bpf_stmt(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 0)];
    assert_eq!(
        attach_reuseport_cbpf(&group[0], &bad)
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EINVAL)
    );
    // A socket without SO_REUSEPORT cannot take one.
    let plain = bind("127.0.0.1:0");
    assert!(attach_reuseport_cbpf(&plain, &MOD4).is_err());
}

// --- codecs on arbitrary bytes -----------------------------------------------

#[test]
fn sockaddr_round_trips() {
    for addr in [
        "1.2.3.4:5678",
        "0.0.0.0:0",
        "255.255.255.255:65535",
        "[::ffff:1.2.3.4]:80",
        "[2001:db8::1]:6969",
        "[fe80::1%7]:1",
    ] {
        let addr: SocketAddr = addr.parse().unwrap();
        let mut storage = zeroed_storage();
        let len = std_to_sockaddr(&addr, &mut storage);
        assert_eq!(sockaddr_to_std(&storage, len), Some(addr));
        // Too short for its family.
        assert_eq!(sockaddr_to_std(&storage, len - 1), None);
    }
    let v6 = SocketAddr::V6(std::net::SocketAddrV6::new(
        Ipv6Addr::LOCALHOST,
        9,
        0x0001_2345,
        3,
    ));
    let mut storage = zeroed_storage();
    let len = std_to_sockaddr(&v6, &mut storage);
    assert_eq!(sockaddr_to_std(&storage, len), Some(v6));
}

#[test]
fn sockaddr_bytes_match_the_kernel_layout() {
    // sockaddr_in for 10.1.2.3:6969, byte by byte.
    let mut sin = [0_u8; 16];
    sin[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    sin[2..4].copy_from_slice(&6969_u16.to_be_bytes());
    sin[4..8].copy_from_slice(&[10, 1, 2, 3]);
    assert_eq!(
        sockaddr_bytes_to_std(&sin),
        Some("10.1.2.3:6969".parse().unwrap())
    );
    assert_eq!(sockaddr_bytes_to_std(&sin[..15]), None);

    // Unaligned: at offset 1 of a larger buffer.
    let mut shifted = [0_u8; 40];
    let mut sin6 = [0_u8; 28];
    sin6[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
    sin6[2..4].copy_from_slice(&443_u16.to_be_bytes());
    sin6[8..24].copy_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
    shifted[1..29].copy_from_slice(&sin6);
    assert_eq!(
        sockaddr_bytes_to_std(&shifted[1..29]),
        Some("[2001:db8::7]:443".parse().unwrap())
    );
    assert_eq!(sockaddr_bytes_to_std(&shifted[1..28]), None);

    // Unknown family.
    let mut unix = [0_u8; 110];
    unix[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
    assert_eq!(sockaddr_bytes_to_std(&unix), None);
}

#[test]
fn sockaddr_written_then_read_as_bytes() {
    // What the io_uring runtime does: std_to_sockaddr for a send slot,
    // sockaddr_bytes_to_std for a received name; flowinfo and scope id
    // come back as they went in.
    for addr in [
        "1.2.3.4:5678",
        "[::ffff:1.2.3.4]:80",
        "[2001:db8::1]:6969",
        "[fe80::1%7]:1",
    ] {
        let addr: SocketAddr = addr.parse().unwrap();
        assert_eq!(storage_bytes_round_trip(addr), Some(addr));
    }
    let v6 = SocketAddr::V6(std::net::SocketAddrV6::new(
        Ipv6Addr::LOCALHOST,
        9,
        0x0001_2345,
        3,
    ));
    assert_eq!(storage_bytes_round_trip(v6), Some(v6));
}

fn storage_bytes_round_trip(addr: SocketAddr) -> Option<SocketAddr> {
    let mut storage = zeroed_storage();
    let len = std_to_sockaddr(&addr, &mut storage) as usize;
    assert!(len <= std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: `storage` was fully initialised, then std_to_sockaddr wrote a
    // sockaddr_in / sockaddr_in6 (no padding) at its start, so its first
    // `len` <= size_of bytes are initialised; the slice borrows `storage`.
    let bytes =
        unsafe { std::slice::from_raw_parts(std::ptr::from_ref(&storage).cast::<u8>(), len) };
    sockaddr_bytes_to_std(bytes)
}

fn zeroed_storage() -> libc::sockaddr_storage {
    socket2::SockAddr::from(SocketAddr::from(([0, 0, 0, 0], 0))).as_storage()
}

#[test]
fn pktinfo_write_parse_round_trip() {
    let mut buf = [0_u8; 64];
    let v6: IpAddr = "2001:db8::42".parse().unwrap();
    let n = write_pktinfo(&mut buf, v6);
    assert!(n > 0 && n <= PKTINFO_SPACE);
    assert_eq!(pktinfo_dst(&buf[..n]), Some(v6));
    // Unaligned copy parses the same.
    let mut shifted = [0_u8; 65];
    shifted[1..].copy_from_slice(&buf);
    assert_eq!(pktinfo_dst(&shifted[1..=n]), Some(v6));
    // Too small a buffer: nothing written.
    assert_eq!(write_pktinfo(&mut buf[..n - 1], v6), 0);
    // IPv4 writes ipi_spec_dst (the source to use), so its ipi_addr reads 0.
    let n4 = write_pktinfo(&mut buf, V4);
    assert!(n4 > 0 && n4 <= PKTINFO_SPACE);
    assert_eq!(
        pktinfo_dst(&buf[..n4]),
        Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    );
}

/// One cmsg entry as the kernel lays it out.
fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
    let word = std::mem::size_of::<usize>();
    let hdr = word + 8;
    let data_at = hdr.next_multiple_of(word);
    let mut v = vec![0_u8; (data_at + data.len()).next_multiple_of(word)];
    v[..word].copy_from_slice(&(data_at + data.len()).to_ne_bytes());
    v[word..word + 4].copy_from_slice(&level.to_ne_bytes());
    v[word + 4..word + 8].copy_from_slice(&kind.to_ne_bytes());
    v[data_at..data_at + data.len()].copy_from_slice(data);
    v
}

#[test]
fn pktinfo_dst_skips_other_messages_and_reads_ipi_addr() {
    let mut control = cmsg(libc::SOL_SOCKET, libc::SO_TIMESTAMP, &[1; 16]);
    // in_pktinfo: ifindex 1, spec_dst 127.0.0.9, addr 127.0.0.2.
    control.extend(cmsg(
        libc::IPPROTO_IP,
        libc::IP_PKTINFO,
        &[1, 0, 0, 0, 127, 0, 0, 9, 127, 0, 0, 2],
    ));
    assert_eq!(
        pktinfo_dst(&control),
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
    );
    // A pktinfo whose data is too short is no answer.
    let short = cmsg(libc::IPPROTO_IP, libc::IP_PKTINFO, &[0; 8]);
    assert_eq!(pktinfo_dst(&short), None);
}

#[test]
fn pktinfo_dst_rejects_a_huge_cmsg_len_after_the_first_entry() {
    // A cmsg_len near usize::MAX in the second entry (so the offset is not
    // 0) must end the walk, not overflow past the bounds check.
    let word = std::mem::size_of::<usize>();
    let hdr = word + 8;
    for len in [usize::MAX, usize::MAX - 7, usize::MAX - hdr + 1] {
        // First: an empty SOL_SOCKET entry (header only), skipped.
        let mut c = cmsg(libc::SOL_SOCKET, libc::SO_TIMESTAMP, &[]);
        let mut second = cmsg(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &[7; 20]);
        // Intact, the walk reaches and reads the second entry.
        assert!(pktinfo_dst(&[c.as_slice(), &second].concat()).is_some());
        second[..word].copy_from_slice(&len.to_ne_bytes());
        c.extend(second);
        assert_eq!(pktinfo_dst(&c), None);
    }
}

#[test]
fn pktinfo_dst_never_panics_on_garbage() {
    let word = std::mem::size_of::<usize>();
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut rand = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let good = cmsg(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &[7; 20]);
    let mut buf = vec![0_u8; 400];
    for len in 0..buf.len() {
        for _ in 0..20 {
            for b in &mut buf {
                *b = rand() as u8;
            }
            let _ = pktinfo_dst(&buf[..len]);
            let _ = sockaddr_bytes_to_std(&buf[..len]);
            // Huge, tiny and odd lengths in a valid-looking header.
            for claimed in [
                usize::MAX,
                usize::MAX - 3,
                0,
                1,
                word + 7,
                len,
                len + 1,
                (rand() % 64) as usize,
            ] {
                if len >= word {
                    buf[..word].copy_from_slice(&claimed.to_ne_bytes());
                }
                let _ = pktinfo_dst(&buf[..len]);
            }
        }
        // A good entry cut at every length: found only when its cmsg_len fits.
        let good_len = usize::from_ne_bytes(good[..word].try_into().unwrap());
        let cut = len.min(good.len());
        assert_eq!(
            pktinfo_dst(&good[..cut]).is_some(),
            cut >= good_len,
            "cut at {cut}"
        );
    }
}
