//! The real riptide-udp binary on loopback, for each backend and each IP
//! version: every request type, connection id checks, BEP 41 options,
//! swarm semantics, scrapes across shards, access list reload on SIGUSR1,
//! cleaning, junk resistance, metrics, privilege drop and graceful stop.

mod support;

use riptide_udp::protocol::{AnnounceEvent, ConnectionId};
use std::net::SocketAddr;
use std::time::Duration;
use support::{hash, Ann, Client, Options, Reply, Tracker};

const SHORT: Duration = Duration::from_millis(300);

/// Starts a tracker with `options`, and a client of its IPv6 or IPv4 socket.
fn start(options: Options, v6: bool) -> (Tracker, Client) {
    let t = options.start();
    let server = if v6 { t.v6 } else { t.v4 }.expect("family bound");
    (t, Client::new(server))
}

fn peers(r: &Reply) -> Vec<SocketAddr> {
    match r {
        Reply::Announce { peers, .. } => peers.clone(),
        other => panic!("expected an announce reply, got {other:?}"),
    }
}

fn counts(r: &Reply) -> (i32, i32) {
    match r {
        Reply::Announce {
            seeders, leechers, ..
        } => (*seeders, *leechers),
        other => panic!("expected an announce reply, got {other:?}"),
    }
}

fn two_peers_see_each_other(backend: &'static str, v6: bool) {
    let (t, mut a) = start(Options::new(backend), v6);
    let h = hash(1);
    let mut b = Client::new(a.server);
    let first = a.announce(&Ann::new(h, 1001));
    assert_eq!(peers(&first), vec![], "nobody else yet");
    assert_eq!(counts(&first), (0, 1));
    let second = b.announce(&Ann::new(h, 1002).seeder());
    let ip = if v6 { "[::1]" } else { "127.0.0.1" };
    assert_eq!(peers(&second), vec![format!("{ip}:1001").parse().unwrap()]);
    assert_eq!(counts(&second), (1, 1));
    match second {
        Reply::Announce { interval, .. } => assert_eq!(interval, 1800),
        _ => unreachable!(),
    }
    // The leecher now gets the seeder, never itself.
    let again = a.announce(&Ann::new(h, 1001).event(AnnounceEvent::None));
    assert_eq!(peers(&again), vec![format!("{ip}:1002").parse().unwrap()]);
    // Seeders get no seeders.
    let c = Client::new(a.server).announce(&Ann::new(h, 1003).seeder());
    assert_eq!(peers(&c), vec![format!("{ip}:1001").parse().unwrap()]);
    assert_eq!(a.scrape(&[h]), vec![(2, 0, 1)]);
    assert!(t.stop().success(), "exit 0 on SIGTERM");
}

fn completed_and_stopped_counts(backend: &'static str, v6: bool) {
    let (_t, mut a) = start(Options::new(backend), v6);
    let h = hash(2);
    let mut b = Client::new(a.server);
    a.announce(&Ann::new(h, 2001));
    b.announce(&Ann::new(h, 2002));
    assert_eq!(a.scrape(&[h]), vec![(0, 0, 2)]);
    let r = a.announce(&Ann::new(h, 2001).seeder().event(AnnounceEvent::Completed));
    assert_eq!(counts(&r), (1, 1));
    assert_eq!(a.scrape(&[h]), vec![(1, 1, 1)]);
    let r = b.announce(&Ann::new(h, 2002).event(AnnounceEvent::Stopped));
    assert_eq!(peers(&r), vec![], "stopped gets no peers");
    assert_eq!(counts(&r), (1, 0));
    assert_eq!(a.scrape(&[h]), vec![(1, 1, 0)]);
    // Port 0 is answered but not stored.
    let r = b.announce(&Ann::new(h, 0));
    assert_eq!(peers(&r).len(), 1);
    assert_eq!(a.scrape(&[h]), vec![(1, 1, 0)]);
}

fn connection_ids_are_checked(backend: &'static str, v6: bool) {
    let (t, mut a) = start(
        Options::new(backend).extra("[udp]\nconnection_id_max_age = 2"),
        v6,
    );
    let h = hash(3);
    let good = a.cid;
    for forged in [
        ConnectionId(0),
        ConnectionId(good.0 ^ 1),
        ConnectionId(good.0 ^ (1 << 40)),
        ConnectionId(-1),
    ] {
        assert_eq!(
            a.try_announce(&Ann::new(h, 3001), forged, SHORT),
            None,
            "forged id {forged:?} ignored"
        );
        assert_eq!(
            a.scrape_with(&[h], forged, SHORT),
            None,
            "forged id on scrape ignored"
        );
    }
    assert_eq!(
        a.scrape(&[h]),
        vec![(0, 0, 0)],
        "forged announces changed nothing"
    );
    // An id from another address is forged for this one.
    let other = Client::new(if v6 { t.v4.unwrap() } else { t.v6.unwrap() });
    assert_eq!(a.try_announce(&Ann::new(h, 3001), other.cid, SHORT), None);
    // Expiry: wait past the 2-second maximum age (plus the clock's coarseness).
    std::thread::sleep(Duration::from_millis(4200));
    assert_eq!(
        a.try_announce(&Ann::new(h, 3001), good, SHORT),
        None,
        "expired id ignored"
    );
    a.cid = a.connect();
    assert!(matches!(
        a.announce(&Ann::new(h, 3001)),
        Reply::Announce { .. }
    ));
    assert!(t.metric("riptide_errors_total", "connection_id_forged") >= 9);
    assert!(t.metric("riptide_errors_total", "connection_id_expired") >= 1);
}

fn bep41_options_and_trailing_bytes(backend: &'static str, v6: bool) {
    let (_t, mut a) = start(Options::new(backend), v6);
    let h = hash(4);
    let mut ann = Ann::new(h, 4001);
    ann.options = b"\x02\x09/announce\x01\x02\x05?a=bc\x00junk".to_vec();
    assert_eq!(counts(&a.announce(&ann)), (0, 1));
    let mut aria = Ann::new(h, 4002);
    aria.options = vec![0, 0];
    assert_eq!(counts(&a.announce(&aria)), (0, 2));
    let mut unknown = Ann::new(h, 4003);
    unknown.options = vec![0x77, 3, 1, 2, 3];
    assert_eq!(counts(&a.announce(&unknown)), (0, 3));
}

fn numwant_is_clamped(backend: &'static str, v6: bool) {
    let (_t, mut a) = start(
        Options::new(backend).extra("[protocol]\nmax_numwant = 30"),
        v6,
    );
    let h = hash(5);
    for port in 1..=80u16 {
        a.announce(&Ann::new(h, 5000 + port).event(AnnounceEvent::None));
    }
    let mut b = Client::new(a.server);
    assert_eq!(
        peers(&b.announce(&Ann::new(h, 6000).numwant(1000))).len(),
        30,
        "capped by max_numwant"
    );
    assert_eq!(
        peers(&b.announce(&Ann::new(h, 6000).numwant(-1))).len(),
        30,
        "-1 = default"
    );
    assert_eq!(
        peers(&b.announce(&Ann::new(h, 6000).numwant(0))).len(),
        30,
        "0 = default"
    );
    assert_eq!(peers(&b.announce(&Ann::new(h, 6000).numwant(7))).len(), 7);
    let got = peers(&b.announce(&Ann::new(h, 6000).numwant(30)));
    let unique: std::collections::HashSet<_> = got.iter().collect();
    assert_eq!(unique.len(), 30, "no duplicates");
    assert!(!got.iter().any(|p| p.port() == 6000), "never the requester");
}

fn scrapes_across_shards(backend: &'static str, v6: bool) {
    let (_t, mut a) = start(Options::new(backend).workers(4), v6);
    let hashes: Vec<_> = (100..174).map(hash).collect();
    // Give torrent i exactly (i mod 3) + 1 leechers.
    for (i, h) in hashes.iter().enumerate() {
        for p in 0..=(i % 3) {
            a.announce(&Ann::new(*h, 7000 + p as u16));
        }
    }
    for n in [1usize, 50, 74] {
        let got = a.scrape(&hashes[..n]);
        let want: Vec<_> = (0..n).map(|i| (0, 0, (i % 3 + 1) as u32)).collect();
        assert_eq!(got, want, "scrape of {n}");
    }
    // Unknown hashes are zeros, in request order.
    let mixed = [hash(9999), hashes[1], hash(9998)];
    assert_eq!(a.scrape(&mixed), vec![(0, 0, 0), (0, 0, 2), (0, 0, 0)]);
    // An empty scrape (a full scrape) gets an error.
    let mut bytes = vec![0u8; 16];
    bytes[..8].copy_from_slice(&a.cid.0.to_be_bytes());
    bytes[8..12].copy_from_slice(&2u32.to_be_bytes());
    bytes[12..16].copy_from_slice(&77i32.to_be_bytes());
    let reply = a.raw(&bytes, Duration::from_secs(3)).expect("error reply");
    assert_eq!(&reply[..8], &[0, 0, 0, 3, 0, 0, 0, 77]);
}

/// BEP 15: a scrape is `16 + 20·n` bytes. A hash block with stray bytes
/// (here one hash and 10 more: 46 bytes, which kernel steering sends to a
/// random worker) gets an error with the transaction id, not stats; the
/// exact 36-byte scrape of the same hash still gets its stats.
fn scrape_with_a_partial_hash_gets_an_error(backend: &'static str, v6: bool) {
    let (t, mut a) = start(Options::new(backend).workers(4), v6);
    let h = hash(11);
    assert_eq!(counts(&a.announce(&Ann::new(h, 4101))), (0, 1));
    let mut bytes = Vec::with_capacity(46);
    bytes.extend_from_slice(&a.cid.0.to_be_bytes());
    bytes.extend_from_slice(&2u32.to_be_bytes());
    bytes.extend_from_slice(&78i32.to_be_bytes());
    bytes.extend_from_slice(&h.0);
    bytes.extend_from_slice(&[0xee; 10]);
    assert_eq!(bytes.len(), 46);
    let before = t.metric("riptide_errors_total", "malformed");
    let reply = a.raw(&bytes, Duration::from_secs(3)).expect("error reply");
    assert_eq!(&reply[..8], &[0, 0, 0, 3, 0, 0, 0, 78], "error, same tid");
    assert_eq!(
        &reply[8..],
        b"scrape info hashes are not a multiple of 20 bytes"
    );
    assert_eq!(t.metric("riptide_errors_total", "malformed"), before + 1);
    // The exact one-hash scrape (36 bytes) is answered as before.
    assert_eq!(a.scrape(&[h]), vec![(0, 0, 1)]);
}

fn junk_does_not_stop_service(backend: &'static str, v6: bool) {
    let (t, mut a) = start(Options::new(backend), v6);
    let h = hash(6);
    let junk = std::net::UdpSocket::bind(if v6 { "[::1]:0" } else { "127.0.0.1:0" }).unwrap();
    let (valid, _) = a.announce_bytes(&Ann::new(h, 8001), a.cid);
    let mut seed = 0x1234_5678u32;
    for len in 0..=200usize {
        let mut pkt = vec![0u8; len];
        for b in &mut pkt {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            *b = seed as u8;
        }
        junk.send_to(&pkt, a.server).unwrap();
        // A valid prefix, cut at every length, with junk after.
        let cut = &valid[..len.min(valid.len())];
        junk.send_to(cut, a.server).unwrap();
        if len % 20 == 0 {
            assert!(
                matches!(a.announce(&Ann::new(h, 8001)), Reply::Announce { .. }),
                "still serving at {len}"
            );
        }
    }
    assert!(matches!(
        a.announce(&Ann::new(h, 8001)),
        Reply::Announce { .. }
    ));
    assert!(t.metric("riptide_errors_total", "unanswerable") > 0);
    assert!(t.stop().success());
}

fn access_list_reloads_on_sigusr1(backend: &'static str, v6: bool) {
    let allowed = hash(10);
    let other = hash(11);
    let dir =
        std::env::temp_dir().join(format!("riptide-al-{}-{backend}-{v6}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("allow.txt");
    let hex = |h: riptide_common::InfoHash| h.to_string();
    std::fs::write(&list, format!("# allowed\n{}\n", hex(allowed))).unwrap();
    let (t, mut a) = start(
        Options::new(backend).extra(&format!(
            "[access_list]\nmode = \"allow\"\npath = \"{}\"",
            list.display()
        )),
        v6,
    );
    assert!(matches!(
        a.announce(&Ann::new(allowed, 9001)),
        Reply::Announce { .. }
    ));
    assert_eq!(
        a.announce(&Ann::new(other, 9001)),
        Reply::Error("info hash is not allowed on this tracker".into())
    );
    assert_eq!(a.scrape(&[allowed, other]), vec![(0, 0, 1), (0, 0, 0)]);

    std::fs::write(&list, format!("{}\n", hex(other))).unwrap();
    t.signal(nix::sys::signal::Signal::SIGUSR1);
    t.wait_log("access list reloaded");
    assert!(matches!(
        a.announce(&Ann::new(other, 9001)),
        Reply::Announce { .. }
    ));
    assert!(matches!(
        a.announce(&Ann::new(allowed, 9002)),
        Reply::Error(_)
    ));

    // A broken file on reload keeps the old list.
    std::fs::write(&list, "not a hash\n").unwrap();
    t.signal(nix::sys::signal::Signal::SIGUSR1);
    t.wait_log("access list reload failed");
    assert!(matches!(
        a.announce(&Ann::new(other, 9001)),
        Reply::Announce { .. }
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

fn cleaning_drops_silent_peers(backend: &'static str, v6: bool) {
    let (t, mut a) = start(
        Options::new(backend).extra("[cleaning]\ninterval = 1\npeer_timeout = 1"),
        v6,
    );
    let h = hash(12);
    a.announce(&Ann::new(h, 1201));
    a.announce(&Ann::new(h, 1202).seeder());
    assert_eq!(a.scrape(&[h]), vec![(1, 0, 1)]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(250));
        if a.scrape(&[h]) == vec![(0, 0, 0)] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "peers were not cleaned"
        );
    }
    assert_eq!(t.metric("riptide_torrents", ""), 0, "empty torrent removed");
}

macro_rules! for_each_backend_and_family {
    ($($name:ident),* $(,)?) => {
        mod io_uring_v4 { $( #[test] fn $name() { super::$name("io_uring", false); } )* }
        mod io_uring_v6 { $( #[test] fn $name() { super::$name("io_uring", true); } )* }
        mod mio_v4 { $( #[test] fn $name() { super::$name("mio", false); } )* }
        mod mio_v6 { $( #[test] fn $name() { super::$name("mio", true); } )* }
    };
}

for_each_backend_and_family!(
    two_peers_see_each_other,
    completed_and_stopped_counts,
    connection_ids_are_checked,
    bep41_options_and_trailing_bytes,
    numwant_is_clamped,
    scrapes_across_shards,
    scrape_with_a_partial_hash_gets_an_error,
    junk_does_not_stop_service,
    access_list_reloads_on_sigusr1,
    cleaning_drops_silent_peers,
);

#[test]
fn metrics_count_requests_by_kind_and_version() {
    let t = Options::new("io_uring").start();
    let mut a = Client::new(t.v4.unwrap());
    let mut b = Client::new(t.v6.unwrap());
    a.announce(&Ann::new(hash(20), 1));
    b.announce(&Ann::new(hash(20), 2));
    b.scrape(&[hash(20)]);
    assert_eq!(
        t.metric("riptide_requests_total", "kind=\"connect\",ip=\"4\""),
        1
    );
    assert_eq!(
        t.metric("riptide_requests_total", "kind=\"announce\",ip=\"6\""),
        1
    );
    assert_eq!(
        t.metric("riptide_responses_total", "kind=\"scrape\",ip=\"6\""),
        1
    );
    // Gauges are refreshed once a second.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while t.metric("riptide_peers", "state=\"leecher\"") != 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "peer gauges never reached 2"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        t.metric("riptide_torrents", ""),
        2,
        "one torrent per family"
    );
}

#[test]
fn privileges_are_dropped_after_bind() {
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Options::new("io_uring")
        .extra("[privileges]\ndrop = true\nuser = \"nobody\"")
        .start();
    t.wait_log("dropped privileges");
    let status = std::fs::read_to_string(format!("/proc/{}/status", t.pid())).unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    // Real, effective, saved and filesystem ids are all nobody's.
    for (key, id) in [("Uid:", nobody.uid.as_raw()), ("Gid:", nobody.gid.as_raw())] {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        let id = id.to_string();
        assert!(line.split_whitespace().skip(1).all(|i| i == id), "{line}");
    }
    // Still serving.
    let mut a = Client::new(t.v4.unwrap());
    assert!(matches!(
        a.announce(&Ann::new(hash(21), 1)),
        Reply::Announce { .. }
    ));
}

#[test]
fn print_config_parses_back_and_check_config_reports_errors() {
    let bin = env!("CARGO_BIN_EXE_riptide-udp");
    let out = std::process::Command::new(bin).arg("-p").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let dir = std::env::temp_dir().join(format!("riptide-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, &text).unwrap();
    let out = std::process::Command::new(bin)
        .arg("--check-config")
        .arg("-c")
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[protocol]\nmax_numwant = \"lots\"\n").unwrap();
    let out = std::process::Command::new(bin)
        .arg("--check-config")
        .arg("-c")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_numwant") && err.contains("lots"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn falls_back_to_mio_when_seccomp_blocks_io_uring() {
    let t = Options::new("auto").workers(2).without_io_uring().start();
    t.wait_log("backend: mio (auto");
    for (i, server) in [t.v4.unwrap(), t.v6.unwrap()].into_iter().enumerate() {
        let h = hash(30 + 2 * i as u32);
        let mut a = Client::new(server);
        let mut b = Client::new(server);
        a.announce(&Ann::new(h, 3001));
        assert_eq!(peers(&b.announce(&Ann::new(h, 3002))).len(), 1);
        assert_eq!(a.scrape(&[h, hash(99)]), vec![(0, 0, 2), (0, 0, 0)]);
    }
    assert!(t.stop().success());
}

#[test]
fn io_uring_backend_refuses_to_start_without_io_uring() {
    let helper = support::without_io_uring();
    let dir = std::env::temp_dir().join(format!("riptide-nouring-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        "backend = \"io_uring\"\n[network]\naddress_ipv4 = \"127.0.0.1:0\"\naddress_ipv6 = \"\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(helper)
        .arg(env!("CARGO_BIN_EXE_riptide-udp"))
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("io_uring") && err.contains("lacks") && err.contains("kernel"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fixed_connection_id_key_keeps_ids_valid_across_a_restart() {
    let key = "[udp]\nconnection_id_key = \"00112233445566778899aabbccddeeff\"";
    let t = Options::new("io_uring").extra(key).start();
    let mut a = Client::new(t.v4.unwrap());
    let cid = a.cid;
    assert!(t.stop().success());
    let t = Options::new("mio").extra(key).start();
    a.server = t.v4.unwrap();
    assert!(matches!(
        a.try_announce(&Ann::new(hash(40), 1), cid, Duration::from_secs(3)),
        Some(Reply::Announce { .. })
    ));
    // Without the key, a restarted tracker does not know the id.
    let t2 = Options::new("mio").start();
    a.server = t2.v4.unwrap();
    assert_eq!(a.try_announce(&Ann::new(hash(40), 1), cid, SHORT), None);
    drop(t);
}

#[test]
fn connection_ids_from_the_future_are_ignored() {
    // With a known key the test can mint ids the tracker would issue.
    let key = [7u8; 16];
    let t = Options::new("io_uring")
        .extra("[udp]\nconnection_id_key = \"07070707070707070707070707070707\"")
        .start();
    let mut a = Client::new(t.v4.unwrap());
    let ids = riptide_udp::connection_id::ConnectionIds::new(key, 120);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let ip = "127.0.0.1".parse().unwrap();
    let minted = ids.issue(ip, now);
    assert!(
        matches!(
            a.try_announce(&Ann::new(hash(50), 1), minted, Duration::from_secs(3)),
            Some(Reply::Announce { .. })
        ),
        "a valid minted id works"
    );
    let future = ids.issue(ip, now + 60);
    assert_eq!(a.try_announce(&Ann::new(hash(50), 2), future, SHORT), None);
    assert_eq!(a.scrape_with(&[hash(50)], future, SHORT), None);
    assert!(t.metric("riptide_errors_total", "connection_id_future") >= 2);
}
