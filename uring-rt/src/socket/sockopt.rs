//! `setsockopt` behind a safe, typed call.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr;

use libc::{c_int, socklen_t};

/// `setsockopt(fd, level, name, &value, sizeof value)`.
pub(super) fn setsockopt<T: Copy>(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` points to a live, initialised `T` of exactly the length
    // passed; the kernel only reads it (and whatever it points to, e.g. the
    // filter array of a sock_fprog, which the caller keeps alive) during the
    // call. `fd` is a valid descriptor borrowed for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            ptr::from_ref(value).cast(),
            size_of::<T>() as socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
