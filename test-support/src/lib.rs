//! Dev-only test support shared by the trackers' integration tests: start
//! the real binary with a config file, wait for its `--ready-file` (no log
//! scraping), keep its log, signal it, read its metrics, stop it (SIGTERM,
//! bounded wait, reaped on drop).
#![allow(clippy::missing_panics_doc)]

use riptide_common::startup::read_ready_file;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a tracker may take to bind and write its ready file.
pub const READY_LIMIT: Duration = Duration::from_secs(20);

/// A fresh directory under the system temp dir, unique per process and call.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("{name}-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The byte string under `key` in the bencoded dictionary `dict` (found by
/// searching for `<len>:<key>`, enough for the trackers' answers in tests).
pub fn bencoded_string<'a>(dict: &'a [u8], key: &str) -> &'a [u8] {
    let k = format!("{}:{key}", key.len());
    let at = dict
        .windows(k.len())
        .position(|w| w == k.as_bytes())
        .unwrap()
        + k.len();
    let colon = dict[at..].iter().position(|&c| c == b':').unwrap();
    let len: usize = std::str::from_utf8(&dict[at..at + colon])
        .unwrap()
        .parse()
        .unwrap();
    &dict[at + colon + 1..at + colon + 1 + len]
}

/// A running tracker process.
pub struct Process {
    child: Option<Child>,
    /// What it bound, from its ready file: `(protocol, address)`.
    pub bound: Vec<(String, SocketAddr)>,
    /// Its working directory (config, ready file); removed on drop.
    pub dir: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `bin` (optionally through `wrapper`) with `config` written to
    /// a file, and waits for its ready file.
    pub fn start(bin: &Path, wrapper: Option<&Path>, name: &str, config: &str) -> Process {
        let dir = temp_dir(name);
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        let ready = dir.join("ready");
        let mut command = match wrapper {
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
            .arg("--ready-file")
            .arg(&ready)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("tracker: {line}");
                log2.lock().unwrap().push(line);
            }
        });
        let mut p = Process {
            child: Some(child),
            bound: Vec::new(),
            dir,
            log,
        };
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                p.bound = read_ready_file(&text);
                return p;
            }
            if let Some(Ok(Some(status))) = p.child.as_mut().map(Child::try_wait) {
                panic!(
                    "tracker exited with {status} before it was ready: {:?}",
                    p.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tracker did not get ready: {:?}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The addresses bound for `protocol` ("udp", "metrics", ...).
    pub fn addrs(&self, protocol: &str) -> impl Iterator<Item = SocketAddr> + '_ {
        let protocol = protocol.to_string();
        self.bound
            .iter()
            .filter(move |(p, _)| *p == protocol)
            .map(|(_, a)| *a)
    }

    /// The first address bound for `protocol` of the family `v4` says.
    pub fn addr(&self, protocol: &str, v4: bool) -> Option<SocketAddr> {
        self.addrs(protocol).find(|a| a.is_ipv4() == v4)
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Sends it `sig`.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Waits (at most 10 s) until a log line contains `needle`.
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

    /// The metrics text (the tracker must have its endpoint enabled).
    pub fn metrics_text(&self) -> String {
        let addr = self.addr("metrics", true).expect("metrics enabled");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    }

    /// Sum over workers of series `name` whose labels contain `label`.
    pub fn metric(&self, name: &str, label: &str) -> u64 {
        self.metrics_text()
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// SIGTERM, then wait (at most 10 s) for the exit status.
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

impl Drop for Process {
    fn drop(&mut self) {
        self.stop_inner();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
