//! Page-aligned anonymous memory that the kernel reads or writes through raw
//! pointers (buffer-ring entries, receive buffers, send-slot bytes).
//!
//! A `Region` never moves and never hands out references on its own: users
//! take raw pointers and build slices only over bytes the kernel does not own
//! at that moment. Owns: the mapping. Not: which bytes belong to the kernel.

use std::io;
use std::ptr::NonNull;

/// One `mmap`ed, zero-filled, page-aligned block; unmapped on drop.
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

impl Region {
    /// Map `len` bytes (rounded up to whole pages, at least one page).
    /// The mapping is never shorter than `len`: callers index up to it.
    pub(crate) fn new(len: usize) -> io::Result<Region> {
        let page = page_size();
        let len = len
            .max(1)
            .div_ceil(page)
            .checked_mul(page)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "region too large"))?;
        // SAFETY: an anonymous private mapping with a null hint has no
        // preconditions; the result is checked against MAP_FAILED below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Region { ptr, len })
    }

    /// Start of the mapping.
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned in `Region::new`;
        // the owner (a Worker) drops its io_uring before any Region, so the
        // kernel holds no pending operation on these bytes any more.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The system page size (4096 if sysconf fails).
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).ok().filter(|p| *p > 0).unwrap_or(4096)
}
