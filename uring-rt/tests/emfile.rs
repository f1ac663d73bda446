//! Out of descriptors: an ACCEPT that fails with EMFILE backs off instead
//! of re-arming in a hot loop, and accepting resumes once descriptors are
//! free. Its own test binary: it lowers this process's RLIMIT_NOFILE for
//! good (soft and hard, so the runtime cannot raise it back; io_uring reads
//! the limit when an ACCEPT is armed), then fills the descriptor table.

mod common;

use common::Greeter;
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn set_limit(n: u64) {
    let r = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: setrlimit reads the live rlimit.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const r) };
    assert_eq!(rc, 0, "setrlimit");
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

fn cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &raw mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[test]
fn emfile_backs_off_instead_of_spinning_and_accepting_resumes() {
    if common::skip_tcp() {
        return;
    }
    set_limit(open_fds() + 64);
    let mut cfg = common::small(1);
    cfg.max_connections = 16;
    let (addrs, t) = common::serve(cfg, vec![common::tcp_listener()], |s| {
        Greeter::new(s, b"hi".to_vec(), 4)
    });
    // Client sockets exist before the limit drops; connecting needs no new fd.
    let socks: Vec<socket2::Socket> = (0..4)
        .map(|_| socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap())
        .collect();
    // Fill the table.
    let mut filler = Vec::new();
    let null = std::fs::File::open("/dev/null").unwrap();
    while let Ok(fd) = null.try_clone() {
        filler.push(fd);
    }
    for s in &socks {
        s.connect(&addrs[0].into()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    let (t0, c0) = (Instant::now(), cpu());
    std::thread::sleep(Duration::from_secs(1));
    let busy = cpu().saturating_sub(c0).as_secs_f64() / t0.elapsed().as_secs_f64();
    drop(filler);
    let mut streams: Vec<TcpStream> = socks.into_iter().map(Into::into).collect();
    for s in &mut streams {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hi", "not served once descriptors were free");
    }
    let h = t.join().unwrap();
    eprintln!(
        "CPU while out of descriptors: {:.1}% of a core",
        busy * 100.0
    );
    assert!(
        busy < 0.2,
        "the worker spun at {:.0}% of a core",
        busy * 100.0
    );
    assert_eq!(h.accepted, 4);
    assert!(h.stats.accept_backoffs > 0, "no back-off counted");
}
