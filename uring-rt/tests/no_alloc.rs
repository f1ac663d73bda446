//! No heap allocation per request on the stream receive and send paths: a
//! keep-alive connection sends 2,000 requests (some split over two writes,
//! some pipelined, so the carry is used too) and the worker thread's
//! allocation count does not move between the 500th and the last answer.
//! A counting global allocator; counts per thread.

mod common;

use common::Serving;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use uring_rt::{ConnId, Ctx, Handler, ListenerId};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const REQUESTS: usize = 2000;
const WARM: usize = 500;
const REQ: &[u8] = b"GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n";

/// Answers each request (ending in a blank line) with 64 bytes written in
/// place; records the thread's allocation count at request WARM and at the
/// last one.
struct Server {
    serving: Serving<TcpListener>,
    answered: usize,
    at_warm: u64,
    at_end: u64,
    carries: u64,
}

impl Handler for Server {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        self.serving.start(ctx);
        ctx.add_timer(Duration::from_secs(30), 0);
    }
    fn on_accept(&mut self, _: &mut Ctx<()>, _: ListenerId, _: ConnId, _: SocketAddr) {}
    fn on_recv(&mut self, ctx: &mut Ctx<()>, conn: ConnId, data: &mut [u8]) -> usize {
        let mut used = 0;
        while let Some(end) = data[used..].windows(4).position(|w| w == b"\r\n\r\n") {
            used += end + 4;
            ctx.send_with(conn, 64, |room| {
                room[..64].fill(b'a');
                room[63] = b'\n';
                64
            })
            .unwrap();
            self.answered += 1;
            if self.answered == WARM {
                self.at_warm = ALLOCS.with(Cell::get);
            }
            if self.answered == REQUESTS {
                self.at_end = ALLOCS.with(Cell::get);
                self.carries = ctx.stats().carries;
            }
        }
        used
    }
    fn on_closed(&mut self, ctx: &mut Ctx<()>, _: ConnId) {
        ctx.stop();
    }
    fn on_timer(&mut self, ctx: &mut Ctx<()>, _: u64) {
        ctx.stop();
    }
}

#[test]
fn the_stream_paths_do_not_allocate_per_request() {
    if common::skip_tcp() {
        return;
    }
    let (addrs, t) = common::serve(common::small(1), vec![common::tcp_listener()], |serving| {
        Server {
            serving,
            answered: 0,
            at_warm: 0,
            at_end: 0,
            carries: 0,
        }
    });
    let mut s = common::connect(addrs[0], Duration::from_secs(10));
    s.set_nodelay(true).unwrap();
    let mut answer = [0u8; 64 * 4];
    let mut i = 0;
    while i < REQUESTS {
        match i % 3 {
            // Split in two writes with a pause between: the first half is carried.
            0 => {
                s.write_all(&REQ[..20]).unwrap();
                std::thread::sleep(Duration::from_micros(300));
                s.write_all(&REQ[20..]).unwrap();
                s.read_exact(&mut answer[..64]).unwrap();
                i += 1;
            }
            // Pipelined: four in one write.
            1 if i + 4 <= REQUESTS => {
                s.write_all(&REQ.repeat(4)).unwrap();
                s.read_exact(&mut answer).unwrap();
                i += 4;
            }
            _ => {
                s.write_all(REQ).unwrap();
                s.read_exact(&mut answer[..64]).unwrap();
                i += 1;
            }
        }
    }
    drop(s);
    let h = t.join().unwrap();
    assert_eq!(h.answered, REQUESTS);
    assert!(
        h.carries > 100,
        "the carry path was not exercised ({})",
        h.carries
    );
    assert_eq!(
        h.at_end - h.at_warm,
        0,
        "the worker allocated {} times in {} requests",
        h.at_end - h.at_warm,
        REQUESTS - WARM
    );
}
