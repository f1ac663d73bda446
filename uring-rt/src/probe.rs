//! What the running kernel's io_uring offers, found once at start-up.
//!
//! `Probe::detect` never panics: when `io_uring_setup` fails (ENOSYS, EPERM,
//! a seccomp filter, a container that forbids it) every feature is missing
//! and the caller picks its fallback backend.

use crate::region::Region;
use crate::ring::{self, SetupFlags};
use io_uring::{opcode, types::BufRingEntry};
use std::fmt;

/// Kernel release, accepted setup flags and the opcodes/features present.
#[derive(Clone, Debug)]
pub struct Probe {
    kernel: String,
    version: Option<(u32, u32)>,
    setup_error: Option<String>,
    flags: SetupFlags,
    ops: Vec<u8>,
    pbuf_ring: bool,
}

/// A feature the runtime may use, with the opcode it needs and the Linux
/// version that added the multishot/flag variant we use.
struct Need {
    name: &'static str,
    opcode: Option<u8>,
    since: (u32, u32),
}

const MULTISHOT_RECVMSG: Need = Need {
    name: "multishot RECVMSG (Linux 6.0)",
    opcode: Some(opcode::RecvMsgMulti::CODE),
    since: (6, 0),
};
const SENDMSG: Need = Need {
    name: "SENDMSG",
    opcode: Some(opcode::SendMsg::CODE),
    since: (5, 3),
};
const TIMEOUT: Need = Need {
    name: "TIMEOUT",
    opcode: Some(opcode::Timeout::CODE),
    since: (5, 4),
};
const READ: Need = Need {
    name: "READ (signalfd, eventfd)",
    opcode: Some(opcode::Read::CODE),
    since: (5, 6),
};
const ACCEPT: Need = Need {
    name: "ACCEPT (Linux 5.5)",
    opcode: Some(opcode::Accept::CODE),
    since: (5, 5),
};
const MULTISHOT_RECV: Need = Need {
    name: "multishot RECV (Linux 6.0)",
    opcode: Some(opcode::RecvMulti::CODE),
    since: (6, 0),
};
const SEND: Need = Need {
    name: "SEND",
    opcode: Some(opcode::Send::CODE),
    since: (5, 6),
};
const CLOSE: Need = Need {
    name: "CLOSE",
    opcode: Some(opcode::Close::CODE),
    since: (5, 6),
};
const ASYNC_CANCEL: Need = Need {
    name: "ASYNC_CANCEL",
    opcode: Some(opcode::AsyncCancel::CODE),
    since: (5, 5),
};
const MSG_RING: Need = Need {
    name: "MSG_RING (Linux 5.18)",
    opcode: Some(opcode::MsgRingData::CODE),
    since: (5, 18),
};
const MULTISHOT_TIMEOUT: Need = Need {
    name: "multishot TIMEOUT (Linux 6.4)",
    opcode: Some(opcode::Timeout::CODE),
    since: (6, 4),
};
const PBUF_RING: &str = "PBUF_RING provided buffer rings (Linux 5.19)";
const SETUP: &str = "io_uring_setup";

impl Probe {
    /// Probe the running kernel. Never panics.
    ///
    /// The probe ring lives on a short-lived helper thread: a ring's
    /// teardown can queue task work to the thread that created it, which
    /// interrupts that thread's blocking syscalls with EINTR (e.g. a socket
    /// read with a timeout); a finished thread cannot be interrupted.
    pub fn detect() -> Probe {
        std::thread::Builder::new()
            .name("uring-probe".into())
            .spawn(Probe::detect_here)
            .ok()
            .and_then(|t| t.join().ok())
            .unwrap_or_else(Probe::detect_here)
    }

    fn detect_here() -> Probe {
        let kernel = kernel_release();
        let version = parse_version(&kernel);
        let mut p = Probe {
            kernel,
            version,
            setup_error: None,
            flags: SetupFlags::empty(),
            ops: Vec::new(),
            pbuf_ring: false,
        };
        let (ring, flags) = match ring::build(8, SetupFlags::all()) {
            Ok(r) => r,
            Err(e) => {
                p.setup_error = Some(e.to_string());
                return p;
            }
        };
        p.flags = flags;
        let mut probe = io_uring::Probe::new();
        if ring.submitter().register_probe(&mut probe).is_ok() {
            p.ops = (0..=u8::MAX).filter(|op| probe.is_supported(*op)).collect();
        }
        p.pbuf_ring = probe_pbuf_ring(&ring);
        drop(ring);
        p
    }

    /// A probe that reports everything missing (for tests of fallback paths).
    pub fn nothing() -> Probe {
        Probe {
            kernel: kernel_release(),
            version: None,
            setup_error: Some("not probed".into()),
            flags: SetupFlags::empty(),
            ops: Vec::new(),
            pbuf_ring: false,
        }
    }

    /// The kernel release string (`uname -r`).
    pub fn kernel(&self) -> &str {
        &self.kernel
    }

    /// Setup flags the kernel accepted (the runtime tries these first).
    pub fn setup_flags(&self) -> SetupFlags {
        self.flags
    }

    /// Whether `io_uring_setup` worked at all.
    pub fn has_io_uring(&self) -> bool {
        self.setup_error.is_none()
    }

    /// Whether `IORING_OP_MSG_RING` can wake other workers (else eventfd).
    pub fn has_msg_ring(&self) -> bool {
        self.has(&MSG_RING)
    }

    /// Whether TIMEOUT supports `IORING_TIMEOUT_MULTISHOT` (else re-armed).
    pub fn has_multishot_timeout(&self) -> bool {
        self.has(&MULTISHOT_TIMEOUT)
    }

    /// Whether closing a file-table entry lets go of its file at once
    /// (Linux 6.13: a reference count per entry). Before, removed entries
    /// were freed in order behind every older fixed-file request still in
    /// flight (a long-lived multishot receive holds one), so a connection's
    /// socket could outlive its close by any time: connections stay out of
    /// the table there. An unparsable release counts as older.
    pub fn frees_table_entries_on_close(&self) -> bool {
        self.setup_error.is_none() && self.version.is_some_and(|v| v >= (6, 13))
    }

    fn has(&self, need: &Need) -> bool {
        if self.setup_error.is_some() {
            return false;
        }
        let op_ok = need
            .opcode
            .is_none_or(|op| self.ops.binary_search(&op).is_ok());
        // An unparsable release (vendor kernels) is trusted on the opcode probe alone.
        let version_ok = self.version.is_none_or(|v| v >= need.since);
        op_ok && version_ok
    }

    fn missing(&self, needs: &[&Need]) -> Vec<&'static str> {
        if self.setup_error.is_some() {
            return vec![SETUP];
        }
        let mut out: Vec<&'static str> = needs
            .iter()
            .filter(|n| !self.has(n))
            .map(|n| n.name)
            .collect();
        if !self.pbuf_ring {
            out.push(PBUF_RING);
        }
        out
    }

    /// Empty when the UDP io_uring path can run: multishot RECVMSG,
    /// PBUF_RING, SENDMSG, TIMEOUT and READ (signalfd; wake-ups use MSG_RING
    /// or, without it, an eventfd READ).
    pub fn missing_for_udp(&self) -> Vec<&'static str> {
        self.missing(&[&MULTISHOT_RECVMSG, &SENDMSG, &TIMEOUT, &READ])
    }

    /// Empty when the TCP io_uring path can run: ACCEPT, multishot
    /// RECV, SEND, ASYNC_CANCEL, PBUF_RING, TIMEOUT, READ.
    pub fn missing_for_tcp(&self) -> Vec<&'static str> {
        self.missing(&[
            &ACCEPT,
            &MULTISHOT_RECV,
            &SEND,
            &SENDMSG,
            &CLOSE,
            &ASYNC_CANCEL,
            &TIMEOUT,
            &READ,
        ])
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kernel {}; io_uring ", self.kernel)?;
        if let Some(e) = &self.setup_error {
            return write!(f, "unavailable ({e})");
        }
        write!(f, "setup flags {}; ", self.flags)?;
        let wake = if self.has_msg_ring() {
            "MSG_RING"
        } else {
            "eventfd"
        };
        let timer = if self.has_multishot_timeout() {
            "multishot"
        } else {
            "re-armed"
        };
        write!(f, "wake {wake}; timers {timer}; ")?;
        for (name, missing) in [
            ("udp", self.missing_for_udp()),
            ("tcp", self.missing_for_tcp()),
        ] {
            if missing.is_empty() {
                write!(f, "{name}: ok; ")?;
            } else {
                write!(f, "{name}: missing {}; ", missing.join(", "))?;
            }
        }
        Ok(())
    }
}

/// Register and unregister a tiny buffer ring to see whether PBUF_RING works.
fn probe_pbuf_ring(ring: &io_uring::IoUring) -> bool {
    let Ok(mem) = Region::new(8 * std::mem::size_of::<BufRingEntry>()) else {
        return false;
    };
    // SAFETY: `mem` is page-aligned, zeroed and large enough for 8 entries.
    // No SQE on this ring ever selects group 0, so the kernel never reads an
    // entry or writes a buffer through it; the registration is removed below
    // before `mem` is unmapped. (If the unregister failed, `mem` would be
    // unmapped first; the kernel pinned the entry pages at registration and
    // still reads nothing, and the ring is dropped by the caller right after.)
    let ok = unsafe {
        ring.submitter()
            .register_buf_ring_with_flags(mem.ptr() as u64, 8, 0, 0)
            .is_ok()
    };
    if ok {
        let _ = ring.submitter().unregister_buf_ring(0);
    }
    ok
}

fn kernel_release() -> String {
    // SAFETY: utsname is plain old data; uname fills it or fails.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&raw mut u) } != 0 {
        return "unknown".into();
    }
    let bytes: Vec<u8> = u
        .release
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn parse_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("6.18.44-fc-v595"), Some((6, 18)));
        assert_eq!(parse_version("5.4.0"), Some((5, 4)));
        assert_eq!(parse_version("weird"), None);
    }

    #[test]
    fn detect_never_panics_and_displays() {
        let p = Probe::detect();
        let line = p.to_string();
        assert!(line.contains(p.kernel()));
        assert!(!line.contains('\n'));
        assert_eq!(Probe::nothing().missing_for_udp(), vec![SETUP]);
    }

    #[test]
    fn connections_go_into_the_file_table_from_6_13() {
        let at = |version| Probe {
            version,
            setup_error: None,
            ..Probe::nothing()
        };
        assert!(!at(Some((6, 12))).frees_table_entries_on_close());
        assert!(at(Some((6, 13))).frees_table_entries_on_close());
        assert!(at(Some((7, 0))).frees_table_entries_on_close());
        assert!(!at(None).frees_table_entries_on_close());
        assert!(!Probe::nothing().frees_table_entries_on_close());
    }
}
