//! Ring set-up: the strongest set of setup flags the kernel accepts, falling
//! back to fewer flags when `io_uring_setup` says `EINVAL`.

use io_uring::IoUring;
use std::io;
use std::os::fd::AsRawFd;

/// `IORING_SETUP_*` flags this crate asks for, as a small bit set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SetupFlags(u8);

impl SetupFlags {
    /// `IORING_SETUP_SINGLE_ISSUER` (Linux 6.0).
    pub const SINGLE_ISSUER: SetupFlags = SetupFlags(1);
    /// `IORING_SETUP_DEFER_TASKRUN` (Linux 6.1; needs SINGLE_ISSUER).
    pub const DEFER_TASKRUN: SetupFlags = SetupFlags(2);
    /// `IORING_SETUP_COOP_TASKRUN` (Linux 5.19).
    pub const COOP_TASKRUN: SetupFlags = SetupFlags(4);
    /// `IORING_SETUP_SUBMIT_ALL` (Linux 5.18).
    pub const SUBMIT_ALL: SetupFlags = SetupFlags(8);

    /// No flags.
    pub const fn empty() -> SetupFlags {
        SetupFlags(0)
    }

    /// Every flag this crate knows.
    pub const fn all() -> SetupFlags {
        SetupFlags(15)
    }

    /// Whether every flag of `other` is in `self`.
    pub const fn contains(self, other: SetupFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Union.
    #[must_use]
    pub const fn with(self, other: SetupFlags) -> SetupFlags {
        SetupFlags(self.0 | other.0)
    }

    /// Intersection.
    #[must_use]
    pub const fn intersect(self, other: SetupFlags) -> SetupFlags {
        SetupFlags(self.0 & other.0)
    }
}

impl std::fmt::Display for SetupFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = [
            (SetupFlags::SINGLE_ISSUER, "SINGLE_ISSUER"),
            (SetupFlags::DEFER_TASKRUN, "DEFER_TASKRUN"),
            (SetupFlags::COOP_TASKRUN, "COOP_TASKRUN"),
            (SetupFlags::SUBMIT_ALL, "SUBMIT_ALL"),
        ];
        let mut first = true;
        for (flag, name) in names {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// Flag sets tried in order, strongest first.
const LADDER: [SetupFlags; 5] = [
    SetupFlags::all(),
    SetupFlags::SINGLE_ISSUER
        .with(SetupFlags::COOP_TASKRUN)
        .with(SetupFlags::SUBMIT_ALL),
    SetupFlags::COOP_TASKRUN.with(SetupFlags::SUBMIT_ALL),
    SetupFlags::SUBMIT_ALL,
    SetupFlags::empty(),
];

/// Build a ring with `entries` SQEs (CQ twice that), trying the flag sets of
/// the ladder that fit inside `allowed`; returns the ring and the flags used.
pub(crate) fn build(entries: u32, allowed: SetupFlags) -> io::Result<(IoUring, SetupFlags)> {
    let mut last_err = io::Error::from_raw_os_error(libc::EINVAL);
    for flags in LADDER {
        if flags.intersect(allowed) != flags {
            continue;
        }
        let mut b = IoUring::builder();
        if flags.contains(SetupFlags::SINGLE_ISSUER) {
            b.setup_single_issuer();
        }
        if flags.contains(SetupFlags::DEFER_TASKRUN) {
            b.setup_defer_taskrun();
        }
        if flags.contains(SetupFlags::COOP_TASKRUN) {
            b.setup_coop_taskrun();
        }
        if flags.contains(SetupFlags::SUBMIT_ALL) {
            b.setup_submit_all();
        }
        b.setup_cqsize(entries.saturating_mul(2));
        match b.build(entries) {
            Ok(ring) => return Ok((ring, flags)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last_err = e,
            Err(e) => return Err(e),
        }
    }
    Err(last_err)
}

/// `IORING_REGISTER_RING_FDS`.
const REGISTER_RING_FDS: libc::c_uint = 20;
/// `IORING_UNREGISTER_RING_FDS`.
const UNREGISTER_RING_FDS: libc::c_uint = 21;
/// `IORING_ENTER_GETEVENTS`.
const ENTER_GETEVENTS: libc::c_uint = 1;
/// `IORING_ENTER_EXT_ARG`.
const ENTER_EXT_ARG: libc::c_uint = 1 << 3;
/// `IORING_ENTER_REGISTERED_RING`.
const ENTER_REGISTERED_RING: libc::c_uint = 1 << 4;

/// `struct io_uring_rsrc_update`.
#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

/// `struct __kernel_timespec`.
#[repr(C)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// The overall timeout of a batched wait. Without one the kernel treats
/// `min_wait_usec` as the whole timeout and an idle worker would wake every
/// few hundred µs; with it, an idle worker sleeps this long between turns.
const BATCHED_IDLE_SECS: i64 = 1;

/// `struct io_uring_getevents_arg` (`min_wait_usec` since Linux 6.12, a
/// zero pad before).
#[repr(C)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

/// `IORING_(UN)REGISTER_RING_FDS` with one update on `ring`; `true` if the
/// kernel took it (it writes the registered index into `up.offset`).
fn ring_fds(ring: &IoUring, op: libc::c_uint, up: &mut RsrcUpdate) -> bool {
    // SAFETY: both opcodes read (and REGISTER writes back) `nr_args` (1)
    // `io_uring_rsrc_update`s at `arg`: `up` is one, alive and exclusively
    // borrowed for the call; the ring's fd is open while `ring` lives.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.as_raw_fd(),
            op,
            std::ptr::from_mut(up),
            1,
        )
    };
    rc == 1
}

/// How a worker enters its ring: through the ring's registered index
/// (`IORING_REGISTER_RING_FDS`, Linux 5.18), which spares every
/// `io_uring_enter` the file lookup and reference count, or through the
/// plain descriptor when the kernel refuses. The io-uring crate keeps a
/// registration per `Submitter` value, which a worker cannot hold next to
/// its ring, hence this small wrapper over the one syscall.
///
/// A registration belongs to the thread that made it: build and use an
/// `Enter` on the worker's own thread, and [`Enter::unregister`] it there
/// before the ring closes (a registration holds the ring open until the
/// thread exits).
pub(crate) struct Enter {
    fd: libc::c_int,
    registered: bool,
}

impl Enter {
    /// Register `ring`'s descriptor for this thread, if the kernel can.
    pub(crate) fn new(ring: &IoUring) -> Enter {
        let raw = ring.as_raw_fd();
        let mut up = RsrcUpdate {
            offset: u32::MAX,
            resv: 0,
            data: raw as u64,
        };
        if ring_fds(ring, REGISTER_RING_FDS, &mut up) {
            Enter {
                fd: up.offset as libc::c_int,
                registered: true,
            }
        } else {
            log::debug!(
                "ring fd not registered ({}); entering by descriptor",
                io::Error::last_os_error()
            );
            Enter {
                fd: raw,
                registered: false,
            }
        }
    }

    /// Drop the registration (idempotent): call before closing the ring,
    /// on the thread that made it.
    pub(crate) fn unregister(&mut self, ring: &IoUring) {
        if !self.registered {
            return;
        }
        let mut up = RsrcUpdate {
            offset: self.fd as u32,
            resv: 0,
            data: 0,
        };
        if !ring_fds(ring, UNREGISTER_RING_FDS, &mut up) {
            log::debug!("unregistering the ring fd: {}", io::Error::last_os_error());
        }
        self.registered = false;
        self.fd = ring.as_raw_fd();
    }

    /// Whether enters go through the registered index.
    pub(crate) fn is_registered(&self) -> bool {
        self.registered
    }

    /// Submit what is queued in `ring`'s SQ, run the ring's deferred task
    /// work and wait for `want` completions (0: do not wait). With
    /// `min_wait_us > 0` (Linux 6.12, `IORING_FEAT_MIN_TIMEOUT`), once that
    /// many µs have passed the wait ends as soon as one completion is there,
    /// even if fewer than `want` arrived; with none, after
    /// [`BATCHED_IDLE_SECS`] (`ETIME`). Returns the number of SQEs the kernel
    /// took.
    pub(crate) fn submit(
        &self,
        ring: &mut IoUring,
        want: u32,
        min_wait_us: u32,
    ) -> io::Result<usize> {
        let to_submit = ring.submission().len() as u32;
        // Always GETEVENTS: on a DEFER_TASKRUN ring only an enter that asks
        // for events runs the deferred work that posts receive completions,
        // also when it does not wait (`want` 0, e.g. with a mesh backlog).
        let mut flags = ENTER_GETEVENTS;
        if self.registered {
            flags |= ENTER_REGISTERED_RING;
        }
        let timeout = KernelTimespec {
            tv_sec: BATCHED_IDLE_SECS,
            tv_nsec: 0,
        };
        let arg = GeteventsArg {
            sigmask: 0,
            sigmask_sz: 0,
            min_wait_usec: min_wait_us,
            ts: &raw const timeout as u64,
        };
        let (argp, argsz) = if min_wait_us > 0 && want > 0 {
            flags |= ENTER_EXT_ARG;
            (
                (&raw const arg).cast::<libc::c_void>(),
                std::mem::size_of::<GeteventsArg>(),
            )
        } else {
            (std::ptr::null(), 0)
        };
        // SAFETY: io_uring_enter on this thread's registered index (or the
        // ring's open fd); `to_submit` SQEs are in the SQ, published by the
        // SubmissionQueue's drop above; with EXT_ARG, `argp` points at one
        // live `io_uring_getevents_arg` of `argsz` bytes (no sigmask) whose
        // `ts` points at the live `timeout`, otherwise it is null.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                self.fd,
                to_submit,
                want,
                flags,
                argp,
                argsz,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc as usize)
        }
    }
}
