//! Running a test server on uring-rt: skipping (with a message) when the
//! probe lacks a path, a small config, and the set-up every test server
//! repeats: sockets bound to loopback handed to the worker at start, their
//! addresses sent back to the test thread, the runtime on a thread of its
//! own. Only std and uring-rt, so that other crates' tests can include it
//! (`#[path]`).
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use uring_rt::{Ctx, Handler, ListenerId, Probe, RuntimeConfig, SocketId};

/// How long the test thread waits for a worker to start serving.
const START: Duration = Duration::from_secs(10);

/// `true` (after printing why) when the UDP io_uring path cannot run here.
pub fn skip_udp() -> bool {
    skip("UDP", Probe::missing_for_udp)
}

/// `true` (after printing why) when the TCP io_uring path cannot run here.
pub fn skip_tcp() -> bool {
    skip("TCP", Probe::missing_for_tcp)
}

/// `true` (after printing why) when `missing` finds features of the `path`
/// io_uring path lacking here.
fn skip(path: &str, missing: fn(&Probe) -> Vec<&'static str>) -> bool {
    let p = Probe::detect();
    let missing = missing(&p);
    if missing.is_empty() {
        return false;
    }
    eprintln!(
        "SKIP: io_uring {path} path unavailable on {}: missing {missing:?}",
        p.kernel()
    );
    true
}

/// A small config for tests (no signal handling: tests share a process).
pub fn small(workers: usize) -> RuntimeConfig {
    RuntimeConfig {
        workers,
        ring_entries: 256,
        recv_buffers: 256,
        recv_buffer_size: 2048,
        send_slots: 256,
        send_slot_size: 2048,
        send_queue: 256,
        mesh_capacity: 1024,
        max_connections: 2048,
        max_outbound_bytes: 16 * 1024,
        handle_signals: false,
        ..RuntimeConfig::default()
    }
}

/// A TCP listener on 127.0.0.1, any port.
pub fn tcp_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// A UDP socket on 127.0.0.1, any port.
pub fn udp_socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// A connection to `addr` whose reads give up after `timeout`.
pub fn connect(addr: SocketAddr, timeout: Duration) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s
}

/// A UDP client on `ip` (any port) whose reads give up after `timeout`.
pub fn udp_client(ip: IpAddr, timeout: Duration) -> UdpSocket {
    let c = UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
    c.set_read_timeout(Some(timeout)).unwrap();
    c
}

/// A socket a worker serves: a TCP listener, a UDP socket, or a test's own
/// combination of them.
pub trait Serve: Send + 'static {
    /// What the worker calls it once added.
    type Id;
    /// Hand it to the worker; the address the test thread reaches it on,
    /// and its id.
    fn add_to<M: Copy + Send + 'static>(self, ctx: &mut Ctx<M>) -> (SocketAddr, Self::Id);
}

impl Serve for TcpListener {
    type Id = ListenerId;
    fn add_to<M: Copy + Send + 'static>(self, ctx: &mut Ctx<M>) -> (SocketAddr, ListenerId) {
        (self.local_addr().unwrap(), ctx.add_listener(self).unwrap())
    }
}

impl Serve for UdpSocket {
    type Id = SocketId;
    fn add_to<M: Copy + Send + 'static>(self, ctx: &mut Ctx<M>) -> (SocketAddr, SocketId) {
        (self.local_addr().unwrap(), ctx.add_udp(self).unwrap())
    }
}

/// Sockets for a test server's worker to take at start, and the channel on
/// which it then tells the test thread their addresses.
pub struct Serving<S> {
    sockets: Vec<S>,
    ready: Option<mpsc::Sender<Vec<SocketAddr>>>,
}

impl<S: Serve> Serving<S> {
    /// `sockets`, and where their addresses arrive once a worker serves them.
    pub fn new(sockets: Vec<S>) -> (Serving<S>, mpsc::Receiver<Vec<SocketAddr>>) {
        let (tx, rx) = mpsc::channel();
        let serving = Serving {
            sockets,
            ready: Some(tx),
        };
        (serving, rx)
    }

    /// In `on_start`: add the sockets to the worker, then send their
    /// addresses; their ids, in order.
    pub fn start<M: Copy + Send + 'static>(&mut self, ctx: &mut Ctx<M>) -> Vec<S::Id> {
        let (addrs, ids) = self.sockets.drain(..).map(|s| s.add_to(ctx)).unzip();
        self.ready
            .take()
            .expect("started twice")
            .send(addrs)
            .unwrap();
        ids
    }
}

/// Runs the handler `make` builds around `sockets` alone on one worker of
/// `cfg`, on a thread of its own. Returns once the worker serves them, with
/// their addresses and the thread, which returns the handler when the
/// runtime stops.
pub fn serve<S: Serve, H: Handler>(
    cfg: RuntimeConfig,
    sockets: Vec<S>,
    make: impl FnOnce(Serving<S>) -> H,
) -> (Vec<SocketAddr>, JoinHandle<H>) {
    let (serving, ready) = Serving::new(sockets);
    let h = make(serving);
    let t = std::thread::spawn(move || uring_rt::run(&cfg, vec![h]).unwrap().pop().unwrap());
    let addrs = ready
        .recv_timeout(START)
        .expect("the worker never started serving");
    (addrs, t)
}

/// The timer token of a [`Watched`] server's watchdog.
pub const WATCHDOG_TOKEN: u64 = u64::MAX;

/// A test server's sockets and its watchdog: a timer that stops a worker
/// (and says so) when a test would otherwise hang.
pub struct Watched<S> {
    serving: Serving<S>,
    watchdog: Duration,
    /// The watchdog stopped the worker.
    pub watchdog_fired: bool,
}

impl<S: Serve> Watched<S> {
    /// `serving`, stopped `watchdog` after the start at the latest.
    pub fn new(serving: Serving<S>, watchdog: Duration) -> Watched<S> {
        Watched {
            serving,
            watchdog,
            watchdog_fired: false,
        }
    }

    /// In `on_start`: serve the sockets and arm the watchdog.
    pub fn start<M: Copy + Send + 'static>(&mut self, ctx: &mut Ctx<M>) -> Vec<S::Id> {
        ctx.add_timer(self.watchdog, WATCHDOG_TOKEN);
        self.serving.start(ctx)
    }

    /// In `on_timer`: `true` when `token` is the watchdog's, which has now
    /// stopped the worker.
    pub fn fired<M: Copy + Send + 'static>(&mut self, ctx: &mut Ctx<M>, token: u64) -> bool {
        if token != WATCHDOG_TOKEN {
            return false;
        }
        self.watchdog_fired = true;
        ctx.stop();
        true
    }
}
