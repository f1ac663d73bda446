//! Dropping the runtime with operations in flight: multishot receives,
//! pending sends, timers, accepts and a TCP receive are all still owned by
//! the kernel when the worker stops (or panics). The ring must go first and
//! nothing may crash or be corrupted afterwards.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use uring_rt::{Ctx, Datagram, Handler, RuntimeError};

struct Busy {
    udp: Option<UdpSocket>,
    tcp: Option<TcpListener>,
    panic: bool,
    turns: u32,
}

impl Handler for Busy {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        let s = ctx.add_udp(self.udp.take().unwrap()).unwrap();
        ctx.add_listener(self.tcp.take().unwrap()).unwrap();
        ctx.add_timer(Duration::from_secs(3600), 1);
        ctx.add_timer(Duration::from_millis(1), 2);
        let blackhole: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for _ in 0..400 {
            let _ = ctx.send_to(s, blackhole, None, |b| {
                b[..1000].fill(0xAB);
                1000
            });
        }
    }
    fn on_datagram(&mut self, ctx: &mut Ctx<()>, d: Datagram<'_>) {
        let _ = ctx.send_to(d.socket, d.src, None, |b| {
            b[..d.payload.len()].copy_from_slice(d.payload);
            d.payload.len()
        });
    }
    fn on_timer(&mut self, ctx: &mut Ctx<()>, _token: u64) {
        self.turns += 1;
        if self.turns == 3 {
            assert!(
                !self.panic,
                "handler panics with ops in flight (expected by the test)"
            );
            ctx.stop();
        }
    }
}

fn cycle(panic: bool) {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp_addr = udp.local_addr().unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let blaster = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut conns = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..50 {
                    let _ = c.send_to(&[7u8; 512], udp_addr);
                }
                if conns.len() < 20 {
                    if let Ok(s) = TcpStream::connect(tcp_addr) {
                        conns.push(s);
                    }
                }
                std::thread::yield_now();
            }
        })
    };
    let h = Busy {
        udp: Some(udp),
        tcp: Some(tcp),
        panic,
        turns: 0,
    };
    let r = uring_rt::run(&common::small(1), vec![h]).map(|_| ());
    stop.store(true, Ordering::Relaxed);
    blaster.join().unwrap();
    if panic {
        assert!(matches!(r, Err(RuntimeError::Panicked(0))), "{r:?}");
    } else {
        r.unwrap();
    }
}

#[test]
fn drop_with_ops_in_flight() {
    if common::skip_udp() || common::skip_tcp() {
        return;
    }
    for i in 0..20 {
        cycle(i % 5 == 4);
        // Fresh allocations after each drop: a kernel writing into freed
        // buffer memory would show up as corruption here or as a crash.
        let v: Vec<u8> = vec![0x5A; 1 << 20];
        std::thread::sleep(Duration::from_millis(5));
        assert!(v.iter().all(|b| *b == 0x5A));
    }
}
