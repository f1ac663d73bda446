//! A real SIGUSR1 and SIGTERM through the signalfd. Own process
//! (`harness = false`): the signals are blocked in `main` before any other
//! thread exists, so no thread can take them with the default action.

mod common;

use std::time::Duration;
use uring_rt::{Ctx, Handler, Signal};

#[derive(Default)]
struct H {
    signals: Vec<Signal>,
    ticks: u32,
    stopped: bool,
}

impl Handler for H {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        if ctx.worker() == 0 {
            ctx.add_timer(Duration::from_millis(10), 0);
        }
    }
    fn on_timer(&mut self, _: &mut Ctx<()>, _: u64) {
        self.ticks += 1;
        if self.ticks == 2 {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
        }
        assert!(self.ticks < 500, "signals never arrived");
    }
    fn on_signal(&mut self, _: &mut Ctx<()>, s: Signal) {
        self.signals.push(s);
        if s == Signal::Reload {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
        }
    }
    fn on_stop(&mut self, _: &mut Ctx<()>) {
        self.stopped = true;
    }
}

fn main() {
    // Speak just enough of the test-harness protocol for cargo-nextest:
    // `--list` names the one test; any other invocation runs it.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("signals: test");
        }
        return;
    }
    uring_rt::block_runtime_signals().unwrap();
    if common::skip_udp() {
        return;
    }
    let mut cfg = common::small(3);
    cfg.handle_signals = true;
    let hs = uring_rt::run(&cfg, vec![H::default(), H::default(), H::default()]).unwrap();
    assert_eq!(hs[0].signals, vec![Signal::Reload, Signal::Terminate]);
    assert_eq!(hs[1].signals, vec![Signal::Terminate]);
    assert_eq!(hs[2].signals, vec![Signal::Terminate]);
    assert!(hs.iter().all(|h| h.stopped));
    println!("signals: ok (SIGUSR1 -> worker 0, SIGTERM -> all 3 workers, graceful stop)");
}
