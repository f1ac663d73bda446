//! UDP echo: uring-rt vs. recvmmsg/sendmmsg loops.
//!
//! ```text
//! udp_echo bench  [--server S] [--workers N] [--rate PPS|0] [--secs S] [--clients K] [--size B]
//! udp_echo server [--server S] [--workers N] --bind ADDR [--secs S] [--batch-wait-us US] [--recv-buffers N] [--sender on|off]
//! udp_echo send   --target ADDR [--rate PPS|0] [--secs S] [--clients K] [--size B] [--peers N]
//! udp_echo spin   [--secs S]
//! ```
//! Servers: `uring` (uring-rt), `plain` (`poll` when idle, then
//! `recvmmsg`/`sendmmsg` until the socket is empty), `epoll` (the same
//! batches driven by an edge-triggered epoll registration, as mio runs it).
//! The `uring` server answers through a send-only twin of each socket
//! (`Ctx::add_udp_with_sender`, the group steered to the receive sockets),
//! as riptide-udp does; `--sender off` answers from the receive socket.
//! `--rate 0` saturates (each client keeps a window of requests in flight,
//! sent in UDP GSO bursts so that the sender core is not the bottleneck);
//! a fixed rate measures server CPU per response at that load.
//! `--peers N` (IPv4 loopback targets) sends every request from the next of
//! N source addresses 127.0.0.1..=N, as a tracker sees a different peer in
//! each request, with `sendmmsg` batches instead of GSO (which sends a
//! burst from one address); these senders cost more per request, so
//! `spin`, a busy loop on the servers' core, keeps the servers rather than
//! the senders the bottleneck. `bench` runs
//! server and sender in one process and prints responses/s and the server
//! threads' CPU time (getrusage RUSAGE_THREAD) per response.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uring_rt::socket::{attach_reuseport_cbpf, bind_sender, bpf_stmt, RecvBatch, SendBatch};
use uring_rt::{Ctx, Datagram, Handler, RuntimeConfig};

/// `udp_echo [MODE] [--option value]...`; MODE is `bench` by default.
#[derive(Clone, clap::Parser)]
struct Args {
    #[arg(default_value = "bench")]
    mode: String,
    /// `uring`, `plain` (recvmmsg) or `epoll`.
    #[arg(long, default_value = "uring")]
    server: String,
    #[arg(long, default_value_t = 1)]
    workers: usize,
    #[arg(long, default_value_t = 0)]
    rate: u64,
    #[arg(long, default_value_t = 5)]
    secs: u64,
    #[arg(long, default_value_t = 1)]
    clients: usize,
    #[arg(long, default_value_t = 64)]
    size: usize,
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: String,
    #[arg(long)]
    target: Option<SocketAddr>,
    #[arg(long, default_value_t = 0)]
    batch_wait_us: u32,
    #[arg(long, default_value_t = RuntimeConfig::default().recv_buffers)]
    recv_buffers: u16,
    /// `on` or `off`: answer through send-only sockets.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    sender: String,
    #[arg(long, default_value_t = 0)]
    peers: u8,
}

/// CPU time (user + system) of the calling thread.
fn thread_cpu() -> Duration {
    // SAFETY: rusage is plain data; getrusage fills it for this thread.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &raw mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn reuseport(addr: SocketAddr) -> UdpSocket {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        None,
    )
    .unwrap();
    s.set_reuse_port(true).unwrap();
    let _ = s.set_recv_buffer_size(8 << 20);
    s.bind(&addr.into()).unwrap();
    s.into()
}

/// Bind `n` SO_REUSEPORT sockets on one port.
fn sockets(bind: &str, n: usize) -> Vec<UdpSocket> {
    let addr = uring_rt::socket::reuseport_addr(bind.parse().expect("--bind")).unwrap();
    (0..n).map(|_| reuseport(addr)).collect()
}

/// What a server thread reports when it stops.
#[derive(Default, Clone, Copy)]
struct Report {
    responses: u64,
    cpu: Duration,
}

struct EchoHandler {
    sock: Option<UdpSocket>,
    sender: Option<UdpSocket>,
    stop: Arc<AtomicBool>,
    report: Report,
}

impl Handler for EchoHandler {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        let sock = self.sock.take().unwrap();
        match self.sender.take() {
            Some(sender) => ctx.add_udp_with_sender(sock, sender).unwrap(),
            None => ctx.add_udp(sock).unwrap(),
        };
        ctx.add_timer(Duration::from_millis(100), 0);
    }
    fn on_datagram(&mut self, ctx: &mut Ctx<()>, d: Datagram<'_>) {
        let p = d.payload;
        if ctx
            .send_to(d.socket, d.src, None, |b| {
                b[..p.len()].copy_from_slice(p);
                p.len()
            })
            .is_ok()
        {
            self.report.responses += 1;
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<()>, _: u64) {
        if self.stop.load(Ordering::Relaxed) {
            ctx.stop();
        }
    }
    fn on_stop(&mut self, ctx: &mut Ctx<()>) {
        self.report.cpu = thread_cpu();
        let s = ctx.stats();
        eprintln!(
            "worker {}: datagrams {} buffer-ring exhausted {} grown {} re-arms {} send-queued {} send-overflow {} send-errors {} submits {} (busy {}) sqes {}",
            ctx.worker(),
            s.datagrams,
            s.recv_buffers_exhausted,
            s.recv_buffers_grown,
            s.rearms,
            s.send_queued,
            s.send_queue_overflow,
            s.send_errors,
            s.submit_batches,
            s.busy_turns,
            s.submitted_sqes
        );
    }
}

fn serve_uring(socks: Vec<UdpSocket>, stop: &Arc<AtomicBool>, args: &Args) -> Vec<Report> {
    let cfg = RuntimeConfig {
        workers: socks.len(),
        handle_signals: false,
        batch_wait_us: args.batch_wait_us,
        recv_buffers: args.recv_buffers,
        ..RuntimeConfig::default()
    };
    let senders: Vec<Option<UdpSocket>> = if args.sender == "on" {
        // Steer every datagram to a receive socket (index < n, picked at
        // random) before the senders join the group behind them.
        let n = u32::try_from(socks.len()).expect("workers");
        let to_receivers = [
            bpf_stmt(
                libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
                (libc::SKF_AD_OFF + libc::SKF_AD_RANDOM) as u32,
            ),
            bpf_stmt(libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K, n),
            bpf_stmt(libc::BPF_RET | libc::BPF_A, 0),
        ];
        attach_reuseport_cbpf(&socks[0], &to_receivers).expect("steering program");
        socks
            .iter()
            .map(|s| Some(bind_sender(s).expect("sender")))
            .collect()
    } else {
        socks.iter().map(|_| None).collect()
    };
    let hs = socks
        .into_iter()
        .zip(senders)
        .map(|(s, sender)| EchoHandler {
            sock: Some(s),
            sender,
            stop: Arc::clone(stop),
            report: Report::default(),
        })
        .collect();
    uring_rt::run(&cfg, hs)
        .expect("uring-rt")
        .iter()
        .map(|h| h.report)
        .collect()
}

/// The `plain` server: `poll` while the socket is empty, then batches.
fn serve_plain(sock: &UdpSocket, stop: &AtomicBool) -> Report {
    serve_batches(sock, stop, || {
        let mut pfd = libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&raw mut pfd, 1, 100) };
    })
}

/// The `epoll` server, as mio (and riptide-udp's fallback backend) runs a
/// socket: it stays registered (edge-triggered), so it carries a wait-queue
/// entry all the time, as io_uring's multishot receive does.
fn serve_epoll(sock: &UdpSocket, stop: &AtomicBool) -> Report {
    // SAFETY: epoll_create1 has no memory preconditions; checked below.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(
        ep >= 0,
        "epoll_create1: {}",
        std::io::Error::last_os_error()
    );
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: 0,
    };
    // SAFETY: a valid epoll fd, socket fd and event for the call.
    let rc = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, sock.as_raw_fd(), &raw mut ev) };
    assert_eq!(rc, 0, "epoll_ctl: {}", std::io::Error::last_os_error());
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
    let report = serve_batches(sock, stop, || {
        // SAFETY: `events` has room for the 8 events asked for.
        unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 8, 100) };
    });
    // SAFETY: `ep` is ours and closed once.
    unsafe { libc::close(ep) };
    report
}

/// Until `stop`: `wait` for the socket, then `recvmmsg` 64 at a time and
/// answer each batch with one `sendmmsg`, until the socket is empty.
fn serve_batches(sock: &UdpSocket, stop: &AtomicBool, mut wait: impl FnMut()) -> Report {
    let mut rb = RecvBatch::new(64, 2048);
    let mut sb = SendBatch::new(64, 2048);
    let mut responses = 0;
    while !stop.load(Ordering::Relaxed) {
        wait();
        while rb.recv(sock).is_ok() {
            for d in rb.iter() {
                let p = d.payload;
                if sb.push(d.src, None, |b| {
                    b[..p.len()].copy_from_slice(p);
                    p.len()
                }) {
                    responses += 1;
                }
            }
            let _ = sb.flush(sock);
        }
    }
    Report {
        responses,
        cpu: thread_cpu(),
    }
}

fn serve(args: &Args, socks: Vec<UdpSocket>, stop: &Arc<AtomicBool>) -> Vec<Report> {
    if args.server == "plain" || args.server == "epoll" {
        let epoll = args.server == "epoll";
        let threads: Vec<_> = socks
            .into_iter()
            .map(|s| {
                let stop = Arc::clone(stop);
                std::thread::spawn(move || {
                    if epoll {
                        serve_epoll(&s, &stop)
                    } else {
                        serve_plain(&s, &stop)
                    }
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    } else {
        serve_uring(socks, stop, args)
    }
}

/// Datagrams per UDP GSO send of the saturating sender.
const GSO_BURST: usize = 64;
/// Requests each saturating client keeps in flight.
const WINDOW: u64 = 16 * GSO_BURST as u64;

/// One client socket: saturating window (rate 0) or a fixed rate.
///
/// At saturation the client sends bursts of [`GSO_BURST`] requests as one
/// UDP GSO write (`UDP_SEGMENT`): the receiving socket splits them, so the
/// server sees ordinary datagrams while the sender spends a fraction of a
/// `sendto` per request, and the server core, not the sender's, is the one
/// that saturates. Responses are read with `recvmmsg`. At a fixed rate each
/// request is its own `sendto`, evenly spaced. With `peer_count` > 0 the
/// socket is not connected and requests go out in `sendmmsg` batches, each
/// from the next of that many loopback sources (see [`Peers`]).
fn client(target: SocketAddr, rate: u64, secs: u64, size: usize, peer_count: u8) -> (u64, u64) {
    let s = if peer_count > 0 {
        UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0)).unwrap()
    } else {
        UdpSocket::bind(SocketAddr::new(target.ip(), 0)).unwrap()
    };
    let _ = socket2::SockRef::from(&s).set_recv_buffer_size(8 << 20);
    s.set_nonblocking(true).unwrap();
    let mut peers = (peer_count > 0).then(|| Peers::new(peer_count, target, size));
    if peers.is_none() {
        s.connect(target).unwrap();
    }
    let gso = rate == 0 && peers.is_none() && set_gso(&s, size);
    let payload = vec![0x42u8; size * GSO_BURST];
    let mut rb = RecvBatch::new(64, 2048);
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let (mut sent, mut got, mut in_flight) = (0u64, 0u64, 0u64);
    let mut last_rx = Instant::now();
    while Instant::now() < end {
        if rate == 0 {
            while in_flight + GSO_BURST as u64 <= WINDOW {
                let n = if let Some(p) = peers.as_mut() {
                    p.send(&s, GSO_BURST)
                } else if gso {
                    s.send(&payload).map(|_| GSO_BURST)
                } else {
                    s.send(&payload[..size]).map(|_| 1)
                };
                let Ok(n) = n else { break };
                sent += n as u64;
                in_flight += n as u64;
            }
        } else {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            while sent < due {
                if let Some(p) = peers.as_mut() {
                    let _ = p.send(&s, 1);
                } else {
                    let _ = s.send(&payload[..size]);
                }
                sent += 1;
            }
        }
        let mut any = false;
        while let Ok(n) = rb.recv(&s) {
            got += n as u64;
            in_flight = in_flight.saturating_sub(n as u64);
            any = true;
        }
        if any {
            last_rx = Instant::now();
        } else if rate == 0 && last_rx.elapsed() > Duration::from_millis(50) {
            in_flight = 0; // lost: refill the window
            last_rx = Instant::now();
        } else {
            std::thread::yield_now();
        }
    }
    (sent, got)
}

/// Requests from many peers: every datagram leaves from the next of
/// `count` loopback addresses (IP_PKTINFO source; all of 127.0.0.0/8 is
/// local), so consecutive requests, and the answers to them, name
/// different addresses, as on a tracker. One socket on the wildcard
/// address receives the answers to all of them.
struct Peers {
    batch: SendBatch,
    target: SocketAddr,
    count: u8,
    next: u8,
    size: usize,
}

impl Peers {
    fn new(count: u8, target: SocketAddr, size: usize) -> Peers {
        Peers {
            batch: SendBatch::new(GSO_BURST, size),
            target,
            count,
            next: 0,
            size,
        }
    }

    /// Queue `n` requests (at most a batch) and send what the socket
    /// takes: how many went out, `WouldBlock` when none did.
    fn send(&mut self, s: &UdpSocket, n: usize) -> std::io::Result<usize> {
        let size = self.size;
        for _ in 0..n {
            self.next = self.next % self.count + 1;
            let from = std::net::Ipv4Addr::new(127, 0, 0, self.next);
            if !self.batch.push(self.target, Some(from.into()), |b| {
                b[..size].fill(0x42);
                size
            }) {
                break;
            }
        }
        let queued = self.batch.len();
        match self.batch.flush(s) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                match queued - self.batch.len() {
                    0 => Err(e),
                    sent => Ok(sent),
                }
            }
            r => r,
        }
    }
}

/// Turn on UDP GSO with `size`-byte segments; `false` (with a note) if the
/// kernel refuses, and the sender falls back to one `send` per request.
fn set_gso(s: &UdpSocket, size: usize) -> bool {
    let seg = size as libc::c_int;
    // SAFETY: a valid socket fd and a c_int option value of the stated size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&raw const seg).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        eprintln!(
            "UDP_SEGMENT refused ({}); one send per request",
            std::io::Error::last_os_error()
        );
    }
    rc == 0
}

fn send(args: &Args, target: SocketAddr) -> (u64, u64) {
    if args.peers > 0 && !matches!(target, SocketAddr::V4(a) if a.ip().is_loopback()) {
        eprintln!(
            "--peers needs an IPv4 loopback target (the sources are 127.0.0.1..={})",
            args.peers
        );
        std::process::exit(2);
    }
    let per_client = args.rate / args.clients as u64;
    let threads: Vec<_> = (0..args.clients)
        .map(|_| {
            let (secs, size, peers) = (args.secs, args.size, args.peers);
            std::thread::spawn(move || client(target, per_client, secs, size, peers))
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    match args.mode.as_str() {
        "bench" => {
            let socks = sockets(&args.bind, args.workers);
            let target = socks[0].local_addr().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let server = {
                let stop = Arc::clone(&stop);
                let a = args.clone();
                std::thread::spawn(move || serve(&a, socks, &stop))
            };
            std::thread::sleep(Duration::from_millis(100));
            let (sent, got) = send(&args, target);
            stop.store(true, Ordering::Relaxed);
            let reports = server.join().unwrap();
            let responses: u64 = reports.iter().map(|r| r.responses).sum();
            let cpu: Duration = reports.iter().map(|r| r.cpu).sum();
            let offered = if args.rate == 0 {
                "saturation".to_string()
            } else {
                format!("{}/s", args.rate)
            };
            println!(
                "server={} workers={} clients={} size={} offered={offered} sent={sent} received={got} responses/s={:.0} server_cpu_us/response={:.3}",
                args.server,
                args.workers,
                args.clients,
                args.size,
                got as f64 / args.secs as f64,
                cpu.as_secs_f64() * 1e6 / responses.max(1) as f64,
            );
        }
        "server" => {
            let socks = sockets(&args.bind, args.workers);
            println!("listening on {}", socks[0].local_addr().unwrap());
            let stop = Arc::new(AtomicBool::new(false));
            {
                let stop = Arc::clone(&stop);
                let secs = args.secs;
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(secs));
                    stop.store(true, Ordering::Relaxed);
                });
            }
            let reports = serve(&args, socks, &stop);
            let responses: u64 = reports.iter().map(|r| r.responses).sum();
            let cpu: Duration = reports.iter().map(|r| r.cpu).sum();
            println!(
                "responses={responses} server_cpu_us/response={:.3}",
                cpu.as_secs_f64() * 1e6 / responses.max(1) as f64
            );
        }
        "send" => {
            let target = args.target.expect("--target ADDR");
            let (sent, got) = send(&args, target);
            println!(
                "sent={sent} received={got} responses/s={:.0}",
                got as f64 / args.secs as f64
            );
        }
        "spin" => {
            // A CPU-bound competitor for the servers' core (see `--peers`).
            let end = Instant::now() + Duration::from_secs(args.secs);
            while Instant::now() < end {
                std::hint::spin_loop();
            }
        }
        m => panic!("unknown mode {m} (bench | server | send | spin)"),
    }
}
