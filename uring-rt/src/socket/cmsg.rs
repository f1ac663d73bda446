//! Control messages: enabling pktinfo on a socket, and parsing and writing
//! the pktinfo control message (destination address of a received datagram,
//! source address of a sent one).
//!
//! Control messages are parsed as plain bytes following the kernel ABI
//! (`struct cmsghdr { size_t len; int level; int type; }`, entries aligned
//! to `size_t`), with every read bounds-checked: a buffer of any length,
//! alignment or content is safe to parse, and parsing never panics.

use std::io;
use std::mem::{offset_of, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;

use libc::c_int;

use super::read_array;
use super::sockopt::setsockopt;

/// Enable IP_PKTINFO (v4 socket) or IPV6_RECVPKTINFO (v6 socket) so received
/// datagrams carry their destination address (see [`pktinfo_dst`]).
///
/// On a dual-stack v6 socket, IPv4 datagrams (source `[::ffff:a.b.c.d]`)
/// report their destination v4-mapped too (`::ffff:a.b.c.d`), which
/// [`write_pktinfo`] accepts as the source of the answer.
pub fn enable_pktinfo(sock: &UdpSocket) -> io::Result<()> {
    let on: c_int = 1;
    match sock.local_addr()? {
        SocketAddr::V4(_) => setsockopt(sock.as_fd(), libc::IPPROTO_IP, libc::IP_PKTINFO, &on),
        SocketAddr::V6(_) => setsockopt(
            sock.as_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVPKTINFO,
            &on,
        ),
    }
}

/// Alignment of control-message entries: `sizeof(size_t)` on Linux.
const CMSG_ALIGN_TO: usize = size_of::<usize>();
/// Kernel `struct cmsghdr`: `size_t cmsg_len; int cmsg_level; int cmsg_type;`.
const CMSG_HDR_LEN: usize = size_of::<usize>() + 2 * size_of::<c_int>();
const CMSG_LEVEL_AT: usize = size_of::<usize>();
const CMSG_TYPE_AT: usize = size_of::<usize>() + size_of::<c_int>();
/// `CMSG_LEN(0)`: where the data starts.
const CMSG_DATA_AT: usize = cmsg_align(CMSG_HDR_LEN);
const IN_PKTINFO_LEN: usize = size_of::<libc::in_pktinfo>();
const IN6_PKTINFO_LEN: usize = size_of::<libc::in6_pktinfo>();

// The byte layout above is the kernel ABI; check libc agrees on this target.
const _: () = {
    assert!(CMSG_HDR_LEN == size_of::<libc::cmsghdr>());
    assert!(CMSG_LEVEL_AT == offset_of!(libc::cmsghdr, cmsg_level));
    assert!(CMSG_TYPE_AT == offset_of!(libc::cmsghdr, cmsg_type));
    assert!(IN_PKTINFO_LEN == 12);
    assert!(IN6_PKTINFO_LEN == 20);
};

/// `CMSG_ALIGN` for compile-time sizes.
const fn cmsg_align(len: usize) -> usize {
    (len + CMSG_ALIGN_TO - 1) & !(CMSG_ALIGN_TO - 1)
}

/// `CMSG_SPACE(len)`: the bytes one entry with `len` data bytes occupies.
const fn cmsg_space(len: usize) -> usize {
    CMSG_DATA_AT + cmsg_align(len)
}

/// Control space for writing one pktinfo of either family
/// (`CMSG_SPACE(sizeof(struct in6_pktinfo))`, 40 bytes on 64-bit).
pub const PKTINFO_SPACE: usize = cmsg_space(IN6_PKTINFO_LEN);

/// Parse IP_PKTINFO/IPV6_PKTINFO from a control buffer (also used by the
/// runtime for recvmsg_out).
///
/// `control` is the control data the kernel returned (`msg_controllen`
/// bytes, any alignment). Returns the first pktinfo's destination:
/// `ipi_addr` (the datagram's header destination) for IPv4, `ipi6_addr` for
/// IPv6. For unicast datagrams, the only kind a tracker answers, that is the
/// local address to answer from. Other control messages are skipped; a
/// malformed or truncated entry ends the walk. Never reads outside
/// `control`, never panics.
#[inline]
pub fn pktinfo_dst(control: &[u8]) -> Option<IpAddr> {
    let mut at = 0_usize;
    loop {
        let rest = control.get(at..)?;
        let len = usize::from_ne_bytes(read_array(rest, 0)?);
        let level = c_int::from_ne_bytes(read_array(rest, CMSG_LEVEL_AT)?);
        let kind = c_int::from_ne_bytes(read_array(rest, CMSG_TYPE_AT)?);
        if len < CMSG_DATA_AT || len > rest.len() {
            return None;
        }
        let data = &rest[CMSG_DATA_AT..len];
        match (level, kind) {
            // struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr; }
            (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                return read_array::<4>(data, 8).map(|a| IpAddr::V4(Ipv4Addr::from(a)));
            }
            // struct in6_pktinfo { in6_addr ipi6_addr; unsigned ipi6_ifindex; }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                return read_array::<16>(data, 0).map(|a| IpAddr::V6(Ipv6Addr::from(a)));
            }
            _ => {}
        }
        // CMSG_NXTHDR: step by the aligned length (len <= rest.len(), so
        // the additions cannot overflow).
        at += len.next_multiple_of(CMSG_ALIGN_TO);
    }
}

/// Write a pktinfo control message for `from` into `buf`, return its length.
///
/// The length (`CMSG_SPACE`, at most [`PKTINFO_SPACE`]) is the
/// `msg_controllen` to send with; 0 if `buf` is too small (nothing written).
/// IPv4 writes `IP_PKTINFO` with `ipi_spec_dst = from`: valid on an IPv4
/// socket and, for a v4-mapped destination, on a dual-stack IPv6 socket.
/// IPv6 writes `IPV6_PKTINFO` with `ipi6_addr = from`: valid on an IPv6
/// socket, with a v4-mapped `from` for a v4-mapped destination. Interface index 0:
/// the route decides.
pub fn write_pktinfo(buf: &mut [u8], from: IpAddr) -> usize {
    let mut data = [0_u8; IN6_PKTINFO_LEN];
    let (level, kind, data) = match from {
        IpAddr::V4(ip) => {
            data[4..8].copy_from_slice(&ip.octets());
            (libc::IPPROTO_IP, libc::IP_PKTINFO, &data[..IN_PKTINFO_LEN])
        }
        IpAddr::V6(ip) => {
            data[..16].copy_from_slice(&ip.octets());
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &data[..])
        }
    };
    let space = cmsg_space(data.len());
    let Some(out) = buf.get_mut(..space) else {
        return 0;
    };
    out.fill(0);
    out[..CMSG_LEVEL_AT].copy_from_slice(&(CMSG_DATA_AT + data.len()).to_ne_bytes());
    out[CMSG_LEVEL_AT..CMSG_TYPE_AT].copy_from_slice(&level.to_ne_bytes());
    out[CMSG_TYPE_AT..CMSG_HDR_LEN].copy_from_slice(&kind.to_ne_bytes());
    out[CMSG_DATA_AT..CMSG_DATA_AT + data.len()].copy_from_slice(data);
    space
}
