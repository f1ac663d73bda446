//! Test support: start the real riptide-udp binary on loopback ports chosen
//! by the kernel (through the shared `riptide_test_support` harness, which
//! reads its `--ready-file`), and talk to it with the crate's own
//! client-side codec.
#![allow(dead_code, clippy::missing_panics_doc, clippy::struct_excessive_bools)]

use riptide_common::{InfoHash, PeerId};
use riptide_test_support::Process;
use riptide_udp::protocol::{
    parse_response, scrape_stats, AnnounceEvent, AnnounceRequest, ConnectRequest, ConnectionId,
    Response, ScrapeRequest, TransactionId,
};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

/// How to start a tracker.
pub struct Options {
    pub backend: &'static str,
    pub workers: usize,
    pub steering: bool,
    pub v4: bool,
    pub v6: bool,
    /// Where the IPv4 socket binds (when `v4`).
    pub v4_addr: String,
    pub metrics: bool,
    /// More TOML sections (not [network] or [metrics]).
    pub extra: String,
    pub top: String,
    /// Run the tracker through this program (e.g. the seccomp helper).
    pub wrapper: Option<PathBuf>,
}

impl Options {
    pub fn new(backend: &'static str) -> Self {
        Self {
            backend,
            workers: 2,
            steering: true,
            v4: true,
            v6: true,
            v4_addr: "127.0.0.1:0".into(),
            metrics: true,
            extra: String::new(),
            top: String::new(),
            wrapper: None,
        }
    }
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }
    pub fn steering(mut self, on: bool) -> Self {
        self.steering = on;
        self
    }
    pub fn extra(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }
    pub fn top(mut self, toml: &str) -> Self {
        self.top.push_str(toml);
        self.top.push('\n');
        self
    }
    /// Runs the tracker under `without_io_uring` (the udp crate's example).
    pub fn without_io_uring(mut self) -> Self {
        self.wrapper = Some(without_io_uring());
        self
    }
    pub fn start(self) -> Tracker {
        Tracker::start(&self)
    }
}

/// The udp crate's `without_io_uring` example, which runs a program with
/// io_uring_setup refused (built next to the test binaries).
pub fn without_io_uring() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let helper = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/without_io_uring");
    assert!(
        helper.exists(),
        "{} is missing: cargo build -p riptide-udp --examples",
        helper.display()
    );
    helper
}

/// A running riptide-udp process (the shared harness), with its UDP and
/// metrics addresses from the ready file.
pub struct Tracker {
    pub process: Process,
    pub v4: Option<SocketAddr>,
    pub v6: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
}

impl std::ops::Deref for Tracker {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.process
    }
}

impl Tracker {
    fn start(o: &Options) -> Self {
        let config = format!(
            "workers = {}\nbackend = \"{}\"\nlog_level = \"info\"\n{}\n[network]\naddress_ipv4 = \"{}\"\naddress_ipv6 = \"{}\"\n\n[metrics]\nenabled = {}\naddress = \"127.0.0.1:0\"\n\n{}",
            o.workers,
            o.backend,
            o.top,
            if o.v4 { o.v4_addr.as_str() } else { "" },
            if o.v6 { "[::1]:0" } else { "" },
            o.metrics,
            udp_section(o),
        );
        let process = Process::start(
            Path::new(env!("CARGO_BIN_EXE_riptide-udp")),
            o.wrapper.as_deref(),
            "riptide-udp",
            &config,
        );
        Tracker {
            v4: process.addr("udp", true),
            v6: process.addr("udp", false),
            metrics: process.addr("metrics", true),
            process,
        }
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub fn stop(self) -> ExitStatus {
        self.process.stop()
    }
}

/// `o.extra` with `kernel_steering` added to its `[udp]` section (or a new one).
fn udp_section(o: &Options) -> String {
    let line = format!("kernel_steering = {}\n", o.steering);
    if o.extra.contains("[udp]") {
        o.extra.replacen("[udp]\n", &format!("[udp]\n{line}"), 1)
    } else {
        format!("{}\n[udp]\n{line}", o.extra)
    }
}

/// What an announce should say.
#[derive(Clone)]
pub struct Ann {
    pub hash: InfoHash,
    pub port: u16,
    pub left: i64,
    pub event: AnnounceEvent,
    pub numwant: i32,
    pub options: Vec<u8>,
}

impl Ann {
    pub fn new(hash: InfoHash, port: u16) -> Self {
        Self {
            hash,
            port,
            left: 1000,
            event: AnnounceEvent::Started,
            numwant: -1,
            options: Vec::new(),
        }
    }
    pub fn seeder(mut self) -> Self {
        self.left = 0;
        self
    }
    pub fn event(mut self, e: AnnounceEvent) -> Self {
        self.event = e;
        self
    }
    pub fn numwant(mut self, n: i32) -> Self {
        self.numwant = n;
        self
    }
}

/// A parsed reply, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Connect(ConnectionId),
    Announce {
        interval: i32,
        leechers: i32,
        seeders: i32,
        peers: Vec<SocketAddr>,
    },
    Scrape(Vec<(u32, u32, u32)>),
    Error(String),
}

/// A UDP tracker client on loopback.
pub struct Client {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    pub cid: ConnectionId,
    tid: i32,
}

pub fn hash(n: u32) -> InfoHash {
    let mut h = [0x5au8; 20];
    h[..4].copy_from_slice(&n.to_be_bytes());
    h[4..8].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
    InfoHash(h)
}

impl Client {
    pub fn new(server: SocketAddr) -> Self {
        let bind = if server.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        };
        let sock = UdpSocket::bind(bind).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut c = Self {
            sock,
            server,
            cid: ConnectionId(0),
            tid: 1,
        };
        c.cid = c.connect();
        c
    }

    fn next_tid(&mut self) -> TransactionId {
        self.tid = self.tid.wrapping_add(1);
        TransactionId(self.tid)
    }

    /// Sends `bytes`, returns the reply within `timeout`, or None.
    pub fn raw(&self, bytes: &[u8], timeout: Duration) -> Option<Vec<u8>> {
        self.sock.set_read_timeout(Some(timeout)).unwrap();
        self.sock.send_to(bytes, self.server).unwrap();
        let mut buf = [0u8; 4096];
        match self.sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                assert_eq!(from, self.server, "reply from the address asked");
                Some(buf[..n].to_vec())
            }
            Err(_) => None,
        }
    }

    /// Sends and parses; None on timeout. Checks the transaction id.
    pub fn request(
        &mut self,
        bytes: &[u8],
        tid: TransactionId,
        timeout: Duration,
    ) -> Option<Reply> {
        let reply = self.raw(bytes, timeout)?;
        let parsed = parse_response(&reply, self.server.is_ipv6()).expect("well-formed response");
        assert_eq!(parsed.transaction_id(), tid, "transaction id echoed");
        Some(match parsed {
            Response::Connect { connection_id, .. } => Reply::Connect(connection_id),
            Response::Announce(a) => {
                let peers = if a.ipv6 {
                    a.peers_v6()
                        .map(|p| SocketAddr::from((p.ip, p.port)))
                        .collect()
                } else {
                    a.peers_v4()
                        .map(|p| SocketAddr::from((p.ip, p.port)))
                        .collect()
                };
                Reply::Announce {
                    interval: a.interval,
                    leechers: a.leechers,
                    seeders: a.seeders,
                    peers,
                }
            }
            Response::Scrape { stats, .. } => Reply::Scrape(
                scrape_stats(stats)
                    .map(|s| (s.seeders, s.completed, s.leechers))
                    .collect(),
            ),
            Response::Error { message, .. } => {
                Reply::Error(String::from_utf8_lossy(message).into_owned())
            }
        })
    }

    pub fn connect(&mut self) -> ConnectionId {
        let tid = self.next_tid();
        let mut buf = [0u8; 16];
        let n = ConnectRequest {
            transaction_id: tid,
        }
        .write(&mut buf)
        .unwrap();
        match self.request(&buf[..n], tid, Duration::from_secs(3)) {
            Some(Reply::Connect(cid)) => cid,
            other => panic!("connect: {other:?}"),
        }
    }

    pub fn announce_bytes(&mut self, a: &Ann, cid: ConnectionId) -> (Vec<u8>, TransactionId) {
        let tid = self.next_tid();
        let req = AnnounceRequest {
            connection_id: cid,
            transaction_id: tid,
            info_hash: a.hash,
            peer_id: PeerId(*b"-RT0100-testtesttest"),
            downloaded: 0,
            left: a.left,
            uploaded: 0,
            event: a.event,
            ip: 0,
            key: 7,
            num_want: a.numwant,
            port: a.port,
            options: &a.options,
        };
        let mut buf = vec![0u8; 98 + a.options.len()];
        let n = req.write(&mut buf).unwrap();
        buf.truncate(n);
        (buf, tid)
    }

    pub fn try_announce(&mut self, a: &Ann, cid: ConnectionId, timeout: Duration) -> Option<Reply> {
        let (bytes, tid) = self.announce_bytes(a, cid);
        self.request(&bytes, tid, timeout)
    }

    pub fn announce(&mut self, a: &Ann) -> Reply {
        let cid = self.cid;
        self.try_announce(a, cid, Duration::from_secs(3))
            .expect("announce answered")
    }

    pub fn scrape_with(
        &mut self,
        hashes: &[InfoHash],
        cid: ConnectionId,
        timeout: Duration,
    ) -> Option<Reply> {
        let tid = self.next_tid();
        let mut buf = vec![0u8; 16 + 20 * hashes.len()];
        let n = ScrapeRequest::write(&mut buf, cid, tid, hashes).unwrap();
        self.request(&buf[..n], tid, timeout)
    }

    pub fn scrape(&mut self, hashes: &[InfoHash]) -> Vec<(u32, u32, u32)> {
        let cid = self.cid;
        match self.scrape_with(hashes, cid, Duration::from_secs(3)) {
            Some(Reply::Scrape(s)) => s,
            other => panic!("scrape: {other:?}"),
        }
    }
}
