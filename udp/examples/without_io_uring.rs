//! Test helper: runs a command with io_uring taken away, the way Docker's
//! default seccomp profile does, so tests can check riptide-udp's fallback.
//!
//! `without_io_uring PROGRAM [ARGS...]` installs a seccomp filter that
//! makes `io_uring_setup`, `io_uring_enter` and `io_uring_register` fail
//! with ENOSYS, then execs PROGRAM (the filter survives exec).

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let program = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: without_io_uring PROGRAM [ARGS...]"))?;
    let rules = [
        libc_nr::IO_URING_SETUP,
        libc_nr::IO_URING_ENTER,
        libc_nr::IO_URING_REGISTER,
    ]
    .into_iter()
    .map(|nr| (nr, vec![]))
    .collect::<BTreeMap<_, _>>();
    let arch =
        TargetArch::try_from(std::env::consts::ARCH).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(38 /* ENOSYS */),
        arch,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let bpf: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| anyhow::anyhow!("{e}"))?;
    seccompiler::apply_filter(&bpf).map_err(|e| anyhow::anyhow!("{e}"))?;
    let err = std::process::Command::new(program).args(args).exec();
    Err(err.into())
}

/// The io_uring syscall numbers; the same on every Linux architecture
/// (they were added after the tables were unified).
mod libc_nr {
    pub const IO_URING_SETUP: i64 = 425;
    pub const IO_URING_ENTER: i64 = 426;
    pub const IO_URING_REGISTER: i64 = 427;
}
