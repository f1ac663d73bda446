//! Test support: start the real riptide-udp binary on loopback ports chosen
//! by the kernel, read its bound addresses from its log, and talk to it
//! with the crate's own client-side codec.
#![allow(dead_code, clippy::missing_panics_doc, clippy::struct_excessive_bools)]

use riptide_common::{InfoHash, PeerId};
use riptide_udp::protocol::{
    parse_response, scrape_stats, AnnounceEvent, AnnounceRequest, ConnectRequest, ConnectionId,
    Response, ScrapeRequest, TransactionId,
};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

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
        self.wrapper = Some(helper);
        self
    }
    pub fn start(self) -> Tracker {
        Tracker::start(&self)
    }
}

/// A running riptide-udp process; SIGTERM and reaped on drop.
pub struct Tracker {
    child: Option<Child>,
    pub v4: Option<SocketAddr>,
    pub v6: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
    pub dir: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

fn temp_dir() -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("riptide-udp-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Tracker {
    fn start(o: &Options) -> Self {
        let dir = temp_dir();
        let config = format!(
            "workers = {}\nbackend = \"{}\"\nlog_level = \"info\"\n{}\n[network]\naddress_ipv4 = \"{}\"\naddress_ipv6 = \"{}\"\nkernel_steering = {}\n\n[metrics]\nenabled = {}\naddress = \"127.0.0.1:0\"\n\n{}",
            o.workers,
            o.backend,
            o.top,
            if o.v4 { o.v4_addr.as_str() } else { "" },
            if o.v6 { "[::1]:0" } else { "" },
            o.steering,
            o.metrics,
            o.extra,
        );
        let path = dir.join("riptide-udp.toml");
        std::fs::write(&path, config).unwrap();
        let bin = env!("CARGO_BIN_EXE_riptide-udp");
        let mut command = match &o.wrapper {
            Some(w) => {
                let mut c = Command::new(w);
                c.arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = command
            .arg("-c")
            .arg(&path)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start riptide-udp");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("tracker: {line}");
                let _ = tx.send(line.clone());
                log2.lock().unwrap().push(line);
            }
        });
        let mut t = Tracker {
            child: Some(child),
            v4: None,
            v6: None,
            metrics: None,
            dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let want_ready = |t: &Tracker| {
            t.v4.is_some() == o.v4 && t.v6.is_some() == o.v6 && t.metrics.is_some() == o.metrics
        };
        while !want_ready(&t) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("tracker did not get ready: {:?}", t.log()));
            if let Some(addr) = line.split("listening on udp ").nth(1) {
                let addr: SocketAddr = addr.trim().parse().unwrap();
                if addr.is_ipv4() {
                    t.v4 = Some(addr);
                } else {
                    t.v6 = Some(addr);
                }
            }
            if let Some(rest) = line.split("metrics on http://").nth(1) {
                t.metrics = Some(rest.trim().trim_end_matches("/metrics").parse().unwrap());
            }
        }
        t
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Waits until a log line contains `needle`.
    pub fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().iter().any(|l| l.contains(needle)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no log line with {needle:?}: {:?}", self.log());
    }

    /// The metrics text.
    pub fn metrics_text(&self) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.metrics.expect("metrics enabled")).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    }

    /// Sum over workers of the series whose name and labels start with `prefix`
    /// (e.g. `riptide_announces_total{` with `path="forwarded"`).
    pub fn metric(&self, name: &str, label: &str) -> u64 {
        self.metrics_text()
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.stop_inner()
            .expect("tracker exits within 10 s of SIGTERM")
    }

    fn stop_inner(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.stop_inner();
        let _ = std::fs::remove_dir_all(&self.dir);
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
