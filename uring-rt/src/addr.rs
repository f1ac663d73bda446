//! Socket addresses and pktinfo control messages, to and from their raw
//! kernel layouts. Parsing takes untrusted bytes and never panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// `sizeof(struct sockaddr_in6)`: the name space we ask RECVMSG for.
pub(crate) const NAME_LEN: u32 = std::mem::size_of::<libc::sockaddr_in6>() as u32;
/// Control space for one pktinfo cmsg of either family (with room to spare).
pub(crate) const CONTROL_LEN: u32 = 64;

fn rd_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn rd_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn rd_16(b: &[u8], at: usize) -> Option<[u8; 16]> {
    b.get(at..at + 16)?.try_into().ok()
}
fn rd_4(b: &[u8], at: usize) -> Option<[u8; 4]> {
    b.get(at..at + 4)?.try_into().ok()
}

/// Parse a `sockaddr_in` / `sockaddr_in6` as the kernel wrote it.
/// A v4-mapped v6 address stays a v6 address.
pub(crate) fn parse_sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(rd_u16(b, 0)?);
    // sin_port / sin6_port are in network order at offset 2 in both layouts.
    let port = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
    match family {
        libc::AF_INET => Some(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::from(rd_4(b, 4)?),
            port,
        ))),
        libc::AF_INET6 => {
            let flowinfo = u32::from_be(rd_u32(b, 4)?);
            let ip = Ipv6Addr::from(rd_16(b, 8)?);
            let scope = rd_u32(b, 24)?;
            Some(SocketAddr::V6(SocketAddrV6::new(ip, port, flowinfo, scope)))
        }
        _ => None,
    }
}

/// Write `addr` into `out`; returns the length to put in `msg_namelen`.
pub(crate) fn write_sockaddr(
    addr: SocketAddr,
    out: &mut libc::sockaddr_storage,
) -> libc::socklen_t {
    let s: socket2::SockAddr = addr.into();
    let len = s.len();
    // SAFETY: socket2 hands out a pointer to `len` initialised bytes of a
    // sockaddr, and `len` <= size_of::<sockaddr_storage>() by construction.
    unsafe {
        std::ptr::copy_nonoverlapping(
            s.as_ptr().cast::<u8>(),
            std::ptr::from_mut(out).cast::<u8>(),
            len as usize,
        );
    }
    len
}

const CMSG_HDR: usize = std::mem::size_of::<libc::cmsghdr>();
const ALIGN: usize = std::mem::size_of::<usize>();

fn cmsg_align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Find the destination address in an `IP_PKTINFO` / `IPV6_PKTINFO` cmsg.
pub(crate) fn parse_pktinfo(control: &[u8]) -> Option<IpAddr> {
    let mut off = 0usize;
    while off + CMSG_HDR <= control.len() {
        let len = usize::from_ne_bytes(control.get(off..off + ALIGN)?.try_into().ok()?);
        let level = rd_u32(control, off + ALIGN)? as i32;
        let ty = rd_u32(control, off + ALIGN + 4)? as i32;
        // `len` is a full usize from the buffer: compare against the room
        // left instead of computing `off + len`, which could overflow.
        if len < CMSG_HDR || len > control.len() - off {
            return None;
        }
        let data = &control[off + CMSG_HDR..off + len];
        match (level, ty) {
            // struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
            (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                return Some(IpAddr::V4(Ipv4Addr::from(rd_4(data, 8)?)))
            }
            // struct in6_pktinfo { in6_addr addr; unsigned ifindex; }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                return Some(IpAddr::V6(Ipv6Addr::from(rd_16(data, 0)?)))
            }
            _ => {}
        }
        off += cmsg_align(len);
    }
    None
}

/// Space one pktinfo cmsg needs, 8-byte aligned storage.
pub(crate) type CmsgBuf = [u64; 8];

/// Write a pktinfo cmsg asking the kernel to send from `from`. Returns the
/// `msg_controllen` to use (0 when the families do not match: the kernel then
/// picks the source).
pub(crate) fn write_pktinfo(out: &mut CmsgBuf, to: SocketAddr, from: IpAddr) -> usize {
    let bytes: &mut [u8; 64] = bytemuck_u64s(out);
    bytes.fill(0);
    match (to, from) {
        (SocketAddr::V4(_), IpAddr::V4(ip)) => {
            // in_pktinfo: ifindex 0, spec_dst = ip, addr unused.
            let mut d = [0u8; 12];
            d[4..8].copy_from_slice(&ip.octets());
            finish(bytes, libc::IPPROTO_IP, libc::IP_PKTINFO, &d)
        }
        (SocketAddr::V6(_), IpAddr::V6(ip)) => {
            // in6_pktinfo: addr = ip, ifindex 0.
            let mut d = [0u8; 20];
            d[0..16].copy_from_slice(&ip.octets());
            finish(bytes, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &d)
        }
        _ => 0,
    }
}

fn finish(bytes: &mut [u8; 64], level: i32, ty: i32, data: &[u8]) -> usize {
    let len = CMSG_HDR + data.len();
    bytes[0..ALIGN].copy_from_slice(&len.to_ne_bytes());
    bytes[ALIGN..ALIGN + 4].copy_from_slice(&level.to_ne_bytes());
    bytes[ALIGN + 4..ALIGN + 8].copy_from_slice(&ty.to_ne_bytes());
    bytes[CMSG_HDR..len].copy_from_slice(data);
    cmsg_align(len)
}

fn bytemuck_u64s(b: &mut CmsgBuf) -> &mut [u8; 64] {
    // SAFETY: [u64; 8] and [u8; 64] have the same size, u8 has no alignment
    // requirement and every bit pattern is valid for both.
    unsafe { &mut *std::ptr::from_mut(b).cast::<[u8; 64]>() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for a in ["1.2.3.4:5678", "[::ffff:1.2.3.4]:80", "[2001:db8::1]:6969"] {
            let a: SocketAddr = a.parse().unwrap();
            // SAFETY: sockaddr_storage is plain old data.
            let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let len = write_sockaddr(a, &mut st);
            // SAFETY: `st` is `len` initialised bytes.
            let b = unsafe {
                std::slice::from_raw_parts(std::ptr::from_ref(&st).cast::<u8>(), len as usize)
            };
            assert_eq!(parse_sockaddr(b), Some(a));
        }
    }

    #[test]
    fn pktinfo_round_trip_and_garbage() {
        let mut c: CmsgBuf = [0; 8];
        let to: SocketAddr = "[::1]:1".parse().unwrap();
        let n = write_pktinfo(&mut c, to, "::1".parse().unwrap());
        assert!(n > 0);
        assert_eq!(
            parse_pktinfo(&bytemuck_u64s(&mut c)[..n]),
            Some("::1".parse().unwrap())
        );
        let to4: SocketAddr = "1.1.1.1:1".parse().unwrap();
        assert_eq!(write_pktinfo(&mut c, to4, "::1".parse().unwrap()), 0);
        let mut junk = [0u8; 200];
        for len in 0..junk.len() {
            for (i, b) in junk.iter_mut().enumerate() {
                *b = (i * 31 + len) as u8;
            }
            let _ = parse_pktinfo(&junk[..len]);
            let _ = parse_sockaddr(&junk[..len]);
        }
    }

    #[test]
    fn pktinfo_huge_cmsg_len_is_rejected_not_overflowed() {
        // A cmsg_len near usize::MAX used to overflow `off + len` (panic in
        // debug, wrap-around past the bounds check in release).
        // The huge length sits in the second cmsg, so `off` is not 0.
        for len in [usize::MAX, usize::MAX - 7, usize::MAX - CMSG_HDR + 1] {
            let mut c = [0u8; 64];
            // First: an empty SOL_SOCKET cmsg (header only), skipped.
            c[..ALIGN].copy_from_slice(&CMSG_HDR.to_ne_bytes());
            c[ALIGN..ALIGN + 4].copy_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
            let second = &mut c[CMSG_HDR..];
            second[..ALIGN].copy_from_slice(&len.to_ne_bytes());
            second[ALIGN..ALIGN + 4].copy_from_slice(&libc::IPPROTO_IPV6.to_ne_bytes());
            second[ALIGN + 4..ALIGN + 8].copy_from_slice(&libc::IPV6_PKTINFO.to_ne_bytes());
            assert_eq!(parse_pktinfo(&c), None);
        }
    }
}
