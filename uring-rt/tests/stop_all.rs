//! `Ctx::stop_all`: one worker stops them all, and the others hear it as
//! a Terminate, as they would hear SIGTERM.

mod common;

use std::net::UdpSocket;
use std::sync::mpsc;
use std::time::Duration;
use uring_rt::{Ctx, Datagram, Handler, Signal};

#[derive(Default)]
struct Stopper {
    sock: Option<UdpSocket>,
    ready: Option<mpsc::Sender<std::net::SocketAddr>>,
    terminated: bool,
}

impl Handler for Stopper {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        if let Some(sock) = self.sock.take() {
            let addr = sock.local_addr().unwrap();
            ctx.add_udp(sock).unwrap();
            self.ready.take().unwrap().send(addr).unwrap();
        }
    }
    fn on_datagram(&mut self, ctx: &mut Ctx<()>, _: Datagram<'_>) {
        ctx.stop_all();
    }
    fn on_signal(&mut self, _: &mut Ctx<()>, s: Signal) {
        if s == Signal::Terminate {
            self.terminated = true;
        }
    }
}

#[test]
fn stop_all_stops_every_worker() {
    if common::skip_udp() {
        return;
    }
    let (tx, rx) = mpsc::channel();
    let first = Stopper {
        sock: Some(UdpSocket::bind("127.0.0.1:0").unwrap()),
        ready: Some(tx),
        ..Stopper::default()
    };
    let t = std::thread::spawn(move || {
        uring_rt::run(&common::small(2), vec![first, Stopper::default()]).unwrap()
    });
    let server = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"stop", server)
        .unwrap();
    // A watchdog: the test fails (instead of hanging) if worker 1 never stops.
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || done_tx.send(t.join().unwrap()).unwrap());
    let hs = done_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("every worker stopped");
    assert!(!hs[0].terminated, "the stopping worker is not told");
    assert!(hs[1].terminated, "the other worker heard Terminate");
}
