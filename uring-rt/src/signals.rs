//! SIGUSR1 / SIGTERM / SIGINT through a signalfd read by worker 0's ring.
//!
//! `run` blocks these signals in the calling thread before spawning, so every
//! worker inherits the mask and the signals stay pending for the signalfd.
//! The mask is NOT restored when `run` returns (the process is normally
//! about to exit; a caller that cares restores it itself).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::handler::Signal;

/// Size of `struct signalfd_siginfo`.
pub(crate) const SIGINFO_LEN: usize = 128;

fn runtime_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        libc::sigaddset(&raw mut set, libc::SIGUSR1);
        libc::sigaddset(&raw mut set, libc::SIGTERM);
        libc::sigaddset(&raw mut set, libc::SIGINT);
        set
    }
}

/// Block SIGUSR1, SIGTERM and SIGINT in the calling thread (threads spawned
/// afterwards inherit the mask). `run` calls this; programs with other
/// threads started earlier (a test harness, a logger) should call it first
/// thing in `main` so no other thread takes these signals.
pub fn block_runtime_signals() -> io::Result<()> {
    let set = runtime_set();
    // SAFETY: `set` is an initialised sigset_t; the old mask is not wanted.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut()) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(r))
    }
}

/// A non-blocking signalfd for the runtime's signals plus the buffer the
/// ring's READ fills (boxed: its address must not move while in flight).
pub(crate) struct SignalFd {
    pub(crate) fd: OwnedFd,
    pub(crate) buf: Box<[u8; SIGINFO_LEN]>,
}

impl SignalFd {
    pub(crate) fn new() -> io::Result<SignalFd> {
        let set = runtime_set();
        // SAFETY: `set` is initialised; -1 asks for a new fd.
        let fd =
            unsafe { libc::signalfd(-1, &raw const set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd just returned this fd and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(SignalFd {
            fd,
            buf: Box::new([0; SIGINFO_LEN]),
        })
    }

    /// The signal in the buffer after a READ of `len` bytes.
    pub(crate) fn signal(&self, len: i32) -> Option<Signal> {
        signal_of(&self.buf[..len.clamp(0, SIGINFO_LEN as i32) as usize])
    }
}

/// The signal a `signalfd_siginfo` names (its first field, `ssi_signo`).
fn signal_of(info: &[u8]) -> Option<Signal> {
    let signo = u32::from_ne_bytes(info.get(..4)?.try_into().ok()?) as i32;
    match signo {
        libc::SIGUSR1 => Some(Signal::Reload),
        libc::SIGTERM | libc::SIGINT => Some(Signal::Terminate),
        _ => None,
    }
}

/// The same signals read without a ring: a non-blocking signalfd a poll
/// loop (riptide-udp's mio backend) registers and reads when readable.
pub struct SignalReader {
    fd: OwnedFd,
}

impl SignalReader {
    /// Opens the signalfd; block the signals first
    /// ([`block_runtime_signals`]).
    pub fn new() -> io::Result<SignalReader> {
        Ok(SignalReader {
            fd: SignalFd::new()?.fd,
        })
    }

    /// The next pending signal, if any (others in the set are skipped).
    pub fn read(&mut self) -> Option<Signal> {
        let mut info = [0u8; SIGINFO_LEN];
        loop {
            // SAFETY: reads at most SIGINFO_LEN bytes into the live buffer.
            let n =
                unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), SIGINFO_LEN) };
            if n < SIGINFO_LEN as isize {
                return None;
            }
            if let Some(s) = signal_of(&info) {
                return Some(s);
            }
        }
    }
}

impl AsFd for SignalReader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
