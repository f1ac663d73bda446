//! Conversions between [`SocketAddr`] and `sockaddr_storage` / raw sockaddr
//! bytes.

use std::mem::size_of;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ptr;

use libc::{c_int, socklen_t};

use super::read_array;

/// An all-zero `sockaddr_storage`.
pub(crate) fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is a plain C struct of integers; all-zero
    // bytes are a valid value (family AF_UNSPEC).
    unsafe { std::mem::zeroed() }
}

/// Parse a sockaddr_storage of `len` valid bytes (the `msg_namelen` /
/// `addrlen` the kernel returned) into a [`SocketAddr`].
///
/// `None` for families other than `AF_INET` / `AF_INET6` or a `len` too
/// short for the family. A v4-mapped IPv6 address stays IPv6
/// (`[::ffff:a.b.c.d]`), as a dual-stack socket needs it to answer. Ports
/// are converted from network order; `sin6_flowinfo` and `sin6_scope_id` are
/// taken as they are, as std does.
pub fn sockaddr_to_std(storage: &libc::sockaddr_storage, len: socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match c_int::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: sockaddr_storage is larger than and at least as aligned
            // as sockaddr_in, both are plain integers (every bit pattern is
            // valid), and the reference borrows `storage`.
            let sin = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Parse raw sockaddr bytes as the kernel wrote them (e.g. the name part of
/// an io_uring `recvmsg_out` buffer: any alignment) into a [`SocketAddr`].
/// Same rules as [`sockaddr_to_std`]; never panics.
#[inline]
pub fn sockaddr_bytes_to_std(name: &[u8]) -> Option<SocketAddr> {
    let family = c_int::from(u16::from_ne_bytes(read_array(name, 0)?));
    let port = u16::from_be_bytes(read_array(name, 2)?);
    match family {
        libc::AF_INET if name.len() >= size_of::<libc::sockaddr_in>() => Some(SocketAddr::V4(
            SocketAddrV4::new(Ipv4Addr::from(read_array::<4>(name, 4)?), port),
        )),
        libc::AF_INET6 if name.len() >= size_of::<libc::sockaddr_in6>() => {
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(read_array::<16>(name, 8)?),
                port,
                u32::from_ne_bytes(read_array(name, 4)?),
                u32::from_ne_bytes(read_array(name, 24)?),
            )))
        }
        _ => None,
    }
}

/// Write `addr` into `out` as a `sockaddr_in` / `sockaddr_in6`; returns the
/// length to pass as `msg_namelen` / `addrlen`.
///
/// The family must match the socket it is sent on: an IPv4 destination on
/// an IPv6 socket has to be given v4-mapped (`[::ffff:a.b.c.d]`).
pub fn std_to_sockaddr(addr: &SocketAddr, out: &mut libc::sockaddr_storage) -> socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and at least as aligned
            // as sockaddr_in; `out` is a unique borrow, written in place.
            unsafe { ptr::from_mut(out).cast::<libc::sockaddr_in>().write(sin) };
            size_of::<libc::sockaddr_in>() as socklen_t
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { ptr::from_mut(out).cast::<libc::sockaddr_in6>().write(sin6) };
            size_of::<libc::sockaddr_in6>() as socklen_t
        }
    }
}
