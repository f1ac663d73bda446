//! `Ctx::stop_all`: one worker stops them all, and the others hear it as
//! a Terminate, as they would hear SIGTERM.

mod common;

use common::Serving;
use std::net::UdpSocket;
use std::sync::mpsc;
use std::time::Duration;
use uring_rt::{Ctx, Datagram, Handler, Signal};

#[derive(Default)]
struct Stopper {
    /// Worker 0's socket.
    serving: Option<Serving<UdpSocket>>,
    terminated: bool,
}

impl Handler for Stopper {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        if let Some(serving) = &mut self.serving {
            serving.start(ctx);
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
    let (serving, ready) = Serving::new(vec![common::udp_socket()]);
    let first = Stopper {
        serving: Some(serving),
        ..Stopper::default()
    };
    let t = std::thread::spawn(move || {
        uring_rt::run(&common::small(2), vec![first, Stopper::default()]).unwrap()
    });
    let server = ready.recv_timeout(Duration::from_secs(5)).unwrap()[0];
    common::udp_socket().send_to(b"stop", server).unwrap();
    // A watchdog: the test fails (instead of hanging) if worker 1 never stops.
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || done_tx.send(t.join().unwrap()).unwrap());
    let hs = done_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("every worker stopped");
    assert!(!hs[0].terminated, "the stopping worker is not told");
    assert!(hs[1].terminated, "the other worker heard Terminate");
}
