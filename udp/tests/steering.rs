//! Kernel steering: the reuseport BPF program and `shard_of` agree, checked
//! by running the program in the kernel (a real reuseport group on
//! loopback), and the running tracker answers every announce on its owner.

mod support;

use rand::{rngs::SmallRng, RngCore, SeedableRng};
use riptide_common::{shard_of, InfoHash};
use riptide_udp::protocol::AnnounceEvent;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use support::{Ann, Client, Options};

fn group(addr: &str, n: usize) -> Vec<UdpSocket> {
    let mut sockets: Vec<UdpSocket> = Vec::new();
    let mut addr = uring_rt::socket::reuseport_addr(addr.parse().unwrap()).unwrap();
    for _ in 0..n {
        let domain = if addr.is_ipv4() {
            socket2::Domain::IPV4
        } else {
            socket2::Domain::IPV6
        };
        let s = socket2::Socket::new(domain, socket2::Type::DGRAM, None).unwrap();
        if addr.is_ipv6() {
            s.set_only_v6(true).unwrap();
        }
        s.set_reuse_port(true).unwrap();
        s.set_recv_buffer_size(4 << 20).unwrap();
        s.bind(&addr.into()).unwrap();
        let s: UdpSocket = s.into();
        s.set_nonblocking(true).unwrap();
        addr = s.local_addr().unwrap();
        sockets.push(s);
    }
    uring_rt::socket::attach_reuseport_cbpf(&sockets[0], &riptide_udp::steering::program(n))
        .unwrap();
    sockets
}

/// Connects, junk of every length and multi-hash scrapes go to a random
/// worker's socket, never to the send-only sockets bound behind the
/// workers' in the same group (they are never read: a datagram there is lost).
#[test]
fn everything_else_spreads_over_workers_and_never_reaches_a_sender() {
    const TOTAL: usize = 6_000;
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        let workers = group(addr, 3);
        let senders: Vec<UdpSocket> = workers
            .iter()
            .map(|s| {
                let t = uring_rt::socket::bind_sender(s).unwrap();
                t.set_nonblocking(true).unwrap();
                t
            })
            .collect();
        let target = workers[0].local_addr().unwrap();
        let client = UdpSocket::bind(SocketAddr::new(target.ip(), 0)).unwrap();
        let mut rng = SmallRng::seed_from_u64(5);
        let mut per_worker = [0usize; 3];
        let mut buf = [0u8; 2048];
        for sent in 0..TOTAL {
            let len = match sent % 3 {
                0 => 16,                                  // connect
                1 => 1 + (rng.next_u32() % 200) as usize, // junk of any length
                _ => 56,                                  // two-hash scrape
            };
            let mut p = vec![0u8; len];
            rng.fill_bytes(&mut p);
            if len == 16 {
                p[8..12].copy_from_slice(&0u32.to_be_bytes());
            } else if len == 56 {
                p[8..12].copy_from_slice(&2u32.to_be_bytes());
            }
            client.send_to(&p, target).unwrap();
            if sent % 200 == 199 {
                // Drain as we go, so no socket buffer overflows.
                std::thread::sleep(Duration::from_millis(2));
                for (i, s) in workers.iter().enumerate() {
                    while s.recv(&mut buf).is_ok() {
                        per_worker[i] += 1;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
        for (i, s) in workers.iter().enumerate() {
            while s.recv(&mut buf).is_ok() {
                per_worker[i] += 1;
            }
        }
        for t in &senders {
            assert!(t.recv(&mut buf).is_err(), "{addr}: a sender got a datagram");
        }
        assert_eq!(
            per_worker.iter().sum::<usize>(),
            TOTAL,
            "{addr}: {per_worker:?}"
        );
        assert!(
            per_worker.iter().all(|&n| n > TOTAL / 5),
            "{addr}: not spread over the workers: {per_worker:?}"
        );
    }
}

/// Sends `total` packets shaped by `make`, returns how many arrived on the
/// socket `shard_of` names.
fn agreement(
    addr: &str,
    workers: usize,
    total: usize,
    make: impl Fn(&InfoHash) -> Vec<u8>,
) -> usize {
    let sockets = group(addr, workers);
    let target = sockets[0].local_addr().unwrap();
    let sender = UdpSocket::bind(if target.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    })
    .unwrap();
    let mut rng = SmallRng::seed_from_u64(7);
    let (mut sent, mut agreed, mut received) = (0, 0, 0);
    let mut buf = [0u8; 256];
    while sent < total {
        for _ in 0..500.min(total - sent) {
            let mut h = InfoHash::default();
            rng.fill_bytes(&mut h.0);
            sender.send_to(&make(&h), target).unwrap();
            sent += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while received < sent && Instant::now() < deadline {
            for (i, s) in sockets.iter().enumerate() {
                while let Ok(n) = s.recv(&mut buf) {
                    received += 1;
                    let mut h = InfoHash::default();
                    h.0.copy_from_slice(&buf[16..36]);
                    assert!(n >= 36);
                    if shard_of(&h, workers) == i {
                        agreed += 1;
                    }
                }
            }
        }
    }
    assert_eq!(received, total, "every packet arrived");
    agreed
}

fn announce_bytes(h: &InfoHash, options: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 98];
    p[8..12].copy_from_slice(&1u32.to_be_bytes());
    p[16..36].copy_from_slice(&h.0);
    p.extend_from_slice(options);
    p
}

fn scrape_bytes(h: &InfoHash) -> Vec<u8> {
    let mut p = vec![0u8; 36];
    p[8..12].copy_from_slice(&2u32.to_be_bytes());
    p[16..36].copy_from_slice(&h.0);
    p
}

#[test]
fn bpf_program_agrees_with_shard_of_on_100k_hashes() {
    for (addr, workers) in [("127.0.0.1:0", 4), ("[::1]:0", 3)] {
        assert_eq!(
            agreement(addr, workers, 100_000, |h| announce_bytes(h, &[])),
            100_000,
            "{addr}"
        );
    }
    // With BEP 41 options, and one-hash scrapes.
    assert_eq!(
        agreement("127.0.0.1:0", 4, 5_000, |h| announce_bytes(
            h,
            b"\x02\x09/announce"
        )),
        5_000
    );
    assert_eq!(agreement("[::1]:0", 4, 5_000, scrape_bytes), 5_000);
}

/// 10,000 announces over 1,000 random hashes, pipelined 100 at a time;
/// returns the number of announces forwarded through the mesh.
fn run_announces(backend: &'static str, steering: bool, v6: bool) -> (u64, u64, u64) {
    let t = Options::new(backend).workers(4).steering(steering).start();
    let server = if v6 { t.v6 } else { t.v4 }.unwrap();
    let mut c = Client::new(server);
    let mut rng = SmallRng::seed_from_u64(11);
    let hashes: Vec<InfoHash> = (0..1000)
        .map(|_| {
            let mut h = InfoHash::default();
            rng.fill_bytes(&mut h.0);
            h
        })
        .collect();
    for batch in 0..100usize {
        let mut expect = std::collections::HashMap::new();
        for j in 0..100usize {
            let i = batch * 100 + j;
            let round = i / 1000;
            let ann = Ann::new(hashes[i % 1000], 1000 + round as u16).event(AnnounceEvent::None);
            let (bytes, tid) = c.announce_bytes(&ann, c.cid);
            c.sock.send_to(&bytes, server).unwrap();
            expect.insert(tid.0, round as i32 + 1);
        }
        let mut buf = [0u8; 2048];
        c.sock
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        for _ in 0..100 {
            let n = c.sock.recv(&mut buf).expect("every announce answered");
            let r = riptide_udp::protocol::parse_response(&buf[..n], v6).unwrap();
            let want = expect
                .remove(&r.transaction_id().0)
                .expect("a transaction id we sent");
            match r {
                riptide_udp::protocol::Response::Announce(a) => {
                    assert_eq!((a.leechers, a.seeders), (want, 0));
                    assert_eq!(a.peer_count(), (want - 1) as usize);
                }
                other => panic!("{other:?}"),
            }
        }
    }
    // One-hash scrapes: all answered with the final counts.
    for h in &hashes[..200] {
        assert_eq!(c.scrape(&[*h]), vec![(0, 0, 10)]);
    }
    let forwarded = t.metric("riptide_announces_total", "forwarded");
    let local = t.metric("riptide_announces_total", "local");
    let scrapes_forwarded = t.metric("riptide_scrape_hashes_total", "forwarded");
    assert_eq!(forwarded + local, 10_000);
    (forwarded, local, scrapes_forwarded)
}

fn steering_on_off(backend: &'static str, v6: bool) {
    let (fwd, _, scrape_fwd) = run_announces(backend, true, v6);
    assert_eq!(fwd, 0, "steering on: no announce crosses cores");
    assert_eq!(
        scrape_fwd, 0,
        "steering on: no one-hash scrape crosses cores"
    );
    let (fwd, _, scrape_fwd) = run_announces(backend, false, v6);
    assert!(
        (6_500..=8_500).contains(&fwd),
        "steering off: about 3/4 forwarded, got {fwd}"
    );
    assert!(
        (100..=200).contains(&scrape_fwd),
        "steering off: about 3/4 of 200 scrapes forwarded, got {scrape_fwd}"
    );
}

#[test]
fn steering_io_uring_v4() {
    steering_on_off("io_uring", false);
}
#[test]
fn steering_io_uring_v6() {
    steering_on_off("io_uring", true);
}
#[test]
fn steering_mio_v4() {
    steering_on_off("mio", false);
}
#[test]
fn steering_mio_v6() {
    steering_on_off("mio", true);
}

/// UDP sockets bound to `addr`'s port and family, from one `sock_diag`
/// netlink dump.
///
/// Not /proc/net/udp: it is read a page at a time and each read restarts
/// its walk by position, so while other tests open and close sockets a
/// socket can be skipped or counted twice. The dump asks the kernel for
/// this port only (`udp_dump` filters on `idiag_sport`, in network byte
/// order), so the few answers come in one pass over the port's hash slot, under its
/// lock; each answer's port is checked again here.
fn sockets_on(addr: SocketAddr) -> usize {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::io::Read;
    const NETLINK_SOCK_DIAG: i32 = 4;
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST_DUMP: u16 = 0x1 | 0x300;
    const NLMSG_DONE: u16 = 3;
    const NLMSG_ERROR: u16 = 2;
    let mut nl = Socket::new(
        Domain::from(nix::libc::AF_NETLINK),
        Type::DGRAM,
        Some(Protocol::from(NETLINK_SOCK_DIAG)),
    )
    .unwrap();
    // nlmsghdr (16 bytes), then inet_diag_req_v2 (56 bytes).
    let mut req = Vec::with_capacity(72);
    req.extend(72u32.to_ne_bytes());
    req.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend(NLM_F_REQUEST_DUMP.to_ne_bytes());
    req.extend([0u8; 8]); // sequence, port id
    let family = if addr.is_ipv4() {
        nix::libc::AF_INET
    } else {
        nix::libc::AF_INET6
    };
    req.extend([family as u8, nix::libc::IPPROTO_UDP as u8, 0, 0]);
    req.extend(u32::MAX.to_ne_bytes()); // every state
    req.extend(addr.port().to_be_bytes()); // sport
    req.extend([0u8; 46]); // dport, addresses, interface, cookie
    assert_eq!(req.len(), 72);
    // Unconnected, a netlink send goes to the kernel.
    nl.send(&req).unwrap();
    let (mut count, mut buf) = (0, vec![0u8; 1 << 16]);
    loop {
        let n = nl.read(&mut buf).unwrap();
        let mut msgs = &buf[..n];
        while msgs.len() >= 16 {
            let len = u32::from_ne_bytes(msgs[..4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes(msgs[4..6].try_into().unwrap());
            match kind {
                NLMSG_DONE => return count,
                NLMSG_ERROR => panic!("sock_diag dump refused: {:?}", &msgs[16..len.min(20)]),
                // inet_diag_msg: family, state, timer, retrans, then the
                // source port in network order.
                SOCK_DIAG_BY_FAMILY => {
                    count += usize::from(u16::from_be_bytes([msgs[20], msgs[21]]) == addr.port());
                }
                _ => {}
            }
            // Messages are aligned to 4 bytes.
            msgs = &msgs[((len + 3) & !3).clamp(16, msgs.len())..];
        }
    }
}

/// On a steered group both backends answer through one send-only socket
/// per worker and family (an unsteered group answers from the receive
/// socket), and every request is still answered, from the address it was
/// sent to.
#[test]
fn answers_leave_through_a_send_only_socket_per_worker() {
    for (backend, steering, per_worker) in [
        ("io_uring", true, 2),
        ("io_uring", false, 1),
        ("mio", true, 2),
        ("mio", false, 1),
    ] {
        let t = Options::new(backend).workers(2).steering(steering).start();
        for server in [t.v4, t.v6].into_iter().flatten() {
            assert_eq!(
                sockets_on(server),
                2 * per_worker,
                "{backend}, steering {steering}: sockets on {server}"
            );
            for i in 0..50 {
                // A new client each time: connects land on either worker.
                let mut c = Client::new(server);
                assert_eq!(c.scrape(&[support::hash(i)]), vec![(0, 0, 0)]);
            }
        }
    }
}

/// A second instance on a port another one holds (say, an overlapping
/// restart) shares its reuseport group: it binds no send-only sockets
/// (when the other instance's sockets close, the kernel would move ours
/// into their indices), says so, and requests are still answered.
#[test]
fn a_second_instance_on_a_held_port_binds_no_send_only_sockets() {
    let first = Options::new("io_uring").workers(2).start();
    let server = first.v4.unwrap();
    let mut o = Options::new("io_uring").workers(2);
    o.v6 = false;
    o.v4_addr = server.to_string();
    let second = o.start();
    second.wait_log("also bound by another process");
    // The first: 2 sockets + 2 send-only; the second: 2 sockets.
    assert_eq!(sockets_on(server), 6);
    for i in 0..20 {
        let mut c = Client::new(server);
        assert_eq!(c.scrape(&[support::hash(i)]), vec![(0, 0, 0)]);
    }
}
