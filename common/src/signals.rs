//! Operator signals read through a signalfd: SIGUSR1 (reload) and
//! SIGTERM/SIGINT (graceful stop). No signal handler runs; the signals are
//! blocked and read as data, so nothing allocates in signal context.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::{AsFd, BorrowedFd};

/// What an operator signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorSignal {
    /// SIGUSR1: reload the access list (and TLS files).
    Reload,
    /// SIGTERM or SIGINT: stop gracefully.
    Terminate,
}

/// The signals riptide reads through a signalfd.
pub fn operator_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGUSR1);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set
}

/// Blocks the operator signals in the calling thread; threads spawned
/// afterwards inherit the mask. Call before spawning workers.
pub fn block_operator_signals() -> nix::Result<()> {
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&operator_signals()), None)
}

/// A non-blocking signalfd for the operator signals.
pub struct SignalReader(SignalFd);

impl SignalReader {
    /// Opens the signalfd (the signals must already be blocked).
    pub fn new() -> nix::Result<Self> {
        SignalFd::with_flags(
            &operator_signals(),
            SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
        )
        .map(Self)
    }

    /// The next pending signal, if any.
    pub fn read(&mut self) -> Option<OperatorSignal> {
        loop {
            match self.0.read_signal() {
                Ok(Some(info)) => match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGUSR1) => return Some(OperatorSignal::Reload),
                    Ok(Signal::SIGTERM | Signal::SIGINT) => return Some(OperatorSignal::Terminate),
                    _ => {}
                },
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

impl AsFd for SignalReader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
