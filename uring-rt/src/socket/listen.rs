//! TCP listeners as the trackers want them, so none hand-rolls socket
//! set-up: one `SO_REUSEPORT` listener per worker on the same address (the
//! kernel spreads connections over them), a chosen backlog, IPv6-only for
//! `[::]`, and `TCP_DEFER_ACCEPT` (the kernel hands over a connection only
//! once its first bytes arrived, so a connect that never sends costs no
//! accept, no slot and no wake-up). Plus the descriptor limit check the
//! runtime makes at start.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsFd;

use super::sockopt::setsockopt;

/// How the listeners of [`reuseport_listeners`] are made.
#[derive(Clone, Copy, Debug)]
pub struct ListenOptions {
    /// `listen(2)` backlog (the kernel caps it at `net.core.somaxconn`).
    pub backlog: i32,
    /// Seconds for `TCP_DEFER_ACCEPT`; 0 = off.
    pub defer_accept_secs: u32,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            backlog: 4096,
            defer_accept_secs: 5,
        }
    }
}

/// `n` listeners on `addr`, one per worker, in one `SO_REUSEPORT` group.
/// With port 0 the first picks a port and the others join it. An IPv6
/// address is `IPV6_V6ONLY` (IPv4 gets its own listeners).
pub fn reuseport_listeners(
    addr: SocketAddr,
    n: usize,
    opts: ListenOptions,
) -> io::Result<Vec<TcpListener>> {
    let mut out: Vec<TcpListener> = Vec::with_capacity(n);
    for _ in 0..n {
        let at = out.first().map_or(Ok(addr), TcpListener::local_addr)?;
        out.push(listener(at, opts)?);
    }
    Ok(out)
}

fn listener(addr: SocketAddr, opts: ListenOptions) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("bind {addr}: {e}")))?;
    s.listen(opts.backlog)?;
    if opts.defer_accept_secs > 0 {
        set_defer_accept(&s, opts.defer_accept_secs)?;
    }
    Ok(s.into())
}

fn set_defer_accept(s: &Socket, secs: u32) -> io::Result<()> {
    let v = secs as libc::c_int;
    setsockopt(s.as_fd(), libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, &v)
}

/// This process's `RLIMIT_NOFILE` (soft in `rlim_cur`, hard in `rlim_max`).
pub(crate) fn nofile_limit() -> io::Result<libc::rlimit> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the live rlimit we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

/// What [`ensure_fd_limit`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdLimit {
    /// Descriptors wanted.
    pub needed: u64,
    /// The soft limit before.
    pub soft_before: u64,
    /// The soft limit now (raised towards the hard limit when short).
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

/// Make sure this process may open `needed` descriptors: raise the soft
/// `RLIMIT_NOFILE` up to the hard limit when it is lower. Returns what it
/// found; `soft < needed` afterwards means the hard limit is too low.
pub fn ensure_fd_limit(needed: u64) -> io::Result<FdLimit> {
    let mut r = nofile_limit()?;
    let soft_before = r.rlim_cur;
    if r.rlim_cur < needed {
        r.rlim_cur = needed.min(r.rlim_max);
        // SAFETY: setrlimit reads the live rlimit we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const r) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(FdLimit {
        needed,
        soft_before,
        soft: r.rlim_cur,
        hard: r.rlim_max,
    })
}
