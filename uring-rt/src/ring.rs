//! Ring set-up: the strongest set of setup flags the kernel accepts, falling
//! back to fewer flags when `io_uring_setup` says `EINVAL`.

use io_uring::IoUring;
use std::io;

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
