//! Safe socket set-up and batch syscalls.
//!
//! What the crates above uring-rt need from raw libc and cannot get safely
//! from std, socket2 or nix, each behind a safe function:
//!
//! * [`enable_pktinfo`]: received datagrams carry their destination address,
//!   so a wildcard-bound server answers from the address it was asked on.
//! * [`attach_reuseport_cbpf`] / [`detach_reuseport_bpf`]: a classic BPF
//!   program that picks the socket of a `SO_REUSEPORT` group for each
//!   datagram (kernel steering of announces to their owner).
//! * [`reuseport_addr`]: a port for a new `SO_REUSEPORT` group that no
//!   other group holds (a port-0 reuseport bind may join another's).
//! * [`bind_sender`]: the send-only twin of a receive socket, for
//!   [`crate::Ctx::add_udp_with_sender`] (socket2 underneath).
//! * [`RecvBatch`] / [`SendBatch`]: `recvmmsg` / `sendmmsg` batches with
//!   source and destination addresses, allocated once (the mio backend and
//!   the load generators).
//! * Conversions between [`SocketAddr`] and `sockaddr_storage` / raw
//!   sockaddr bytes, and the pktinfo control-message parser and writer
//!   ([`pktinfo_dst`], [`write_pktinfo`]), also used by the io_uring runtime.
//!
//! Not here: the io_uring operations themselves, socket creation and binding
//! in general (socket2 does that safely).
//!
//! Control messages are parsed as plain bytes following the kernel ABI
//! (`struct cmsghdr { size_t len; int level; int type; }`, entries aligned
//! to `size_t`), with every read bounds-checked: a buffer of any length,
//! alignment or content is safe to parse, and parsing never panics.

use std::io;
use std::mem::{offset_of, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr;

use libc::{c_int, c_uint, socklen_t};

/// `SO_ATTACH_REUSEPORT_CBPF` (asm-generic value, Linux 4.5+; the libc crate
/// defines it for Android only).
const SO_ATTACH_REUSEPORT_CBPF: c_int = 51;
/// `SO_DETACH_REUSEPORT_BPF` (asm-generic value, Linux 5.2+).
const SO_DETACH_REUSEPORT_BPF: c_int = 68;
/// `BPF_MAXINSNS`: the longest classic BPF program the kernel accepts.
const BPF_MAXINSNS: usize = 4096;

// ---------------------------------------------------------------------------
// setsockopt
// ---------------------------------------------------------------------------

/// `setsockopt(fd, level, name, &value, sizeof value)`.
fn setsockopt<T: Copy>(fd: BorrowedFd<'_>, level: c_int, name: c_int, value: &T) -> io::Result<()> {
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

// ---------------------------------------------------------------------------
// Classic BPF for SO_REUSEPORT
// ---------------------------------------------------------------------------

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    /// Opcode: class | size | mode (see [`bpf`]).
    pub code: u16,
    /// Jump offset if true (conditional jumps).
    pub jt: u8,
    /// Jump offset if false (conditional jumps).
    pub jf: u8,
    /// Generic field: constant, offset, or return value.
    pub k: u32,
}

impl SockFilter {
    /// A non-jump instruction, like C's `BPF_STMT(code, k)`.
    pub const fn stmt(code: u16, k: u32) -> Self {
        Self {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    /// A jump instruction, like C's `BPF_JUMP(code, k, jt, jf)`.
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Self {
        Self { code, jt, jf, k }
    }
}

/// Classic BPF opcode parts (`linux/filter.h`), as `u16` for
/// [`SockFilter::code`]: e.g. `bpf::LD | bpf::W | bpf::ABS`.
pub mod bpf {
    /// Class: load into A.
    pub const LD: u16 = 0x00;
    /// Class: load into X.
    pub const LDX: u16 = 0x01;
    /// Class: store A into scratch memory.
    pub const ST: u16 = 0x02;
    /// Class: store X into scratch memory.
    pub const STX: u16 = 0x03;
    /// Class: arithmetic on A.
    pub const ALU: u16 = 0x04;
    /// Class: jump.
    pub const JMP: u16 = 0x05;
    /// Class: return.
    pub const RET: u16 = 0x06;
    /// Class: register transfers.
    pub const MISC: u16 = 0x07;

    /// Size: 32-bit word (big-endian in the packet).
    pub const W: u16 = 0x00;
    /// Size: 16-bit half word.
    pub const H: u16 = 0x08;
    /// Size: byte.
    pub const B: u16 = 0x10;

    /// Mode: immediate constant `k`.
    pub const IMM: u16 = 0x00;
    /// Mode: packet data at absolute offset `k` (from the UDP payload for a
    /// reuseport program).
    pub const ABS: u16 = 0x20;
    /// Mode: packet data at offset `X + k`.
    pub const IND: u16 = 0x40;
    /// Mode: scratch memory word `k`.
    pub const MEM: u16 = 0x60;
    /// Mode: packet length.
    pub const LEN: u16 = 0x80;

    /// ALU op: `A += src`.
    pub const ADD: u16 = 0x00;
    /// ALU op: `A -= src`.
    pub const SUB: u16 = 0x10;
    /// ALU op: `A *= src`.
    pub const MUL: u16 = 0x20;
    /// ALU op: `A /= src`.
    pub const DIV: u16 = 0x30;
    /// ALU op: `A |= src`.
    pub const OR: u16 = 0x40;
    /// ALU op: `A &= src`.
    pub const AND: u16 = 0x50;
    /// ALU op: `A <<= src`.
    pub const LSH: u16 = 0x60;
    /// ALU op: `A >>= src`.
    pub const RSH: u16 = 0x70;
    /// ALU op: `A %= src`.
    pub const MOD: u16 = 0x90;
    /// ALU op: `A ^= src`.
    pub const XOR: u16 = 0xa0;

    /// Jump op: always, by `k`.
    pub const JA: u16 = 0x00;
    /// Jump op: `A == src`.
    pub const JEQ: u16 = 0x10;
    /// Jump op: `A > src`.
    pub const JGT: u16 = 0x20;
    /// Jump op: `A >= src`.
    pub const JGE: u16 = 0x30;
    /// Jump op: `A & src != 0`.
    pub const JSET: u16 = 0x40;

    /// Source: the constant `k`.
    pub const K: u16 = 0x00;
    /// Source: register X.
    pub const X: u16 = 0x08;
    /// Return source: register A.
    pub const A: u16 = 0x10;

    /// Misc op: `X = A`.
    pub const TAX: u16 = 0x00;
    /// Misc op: `A = X`.
    pub const TXA: u16 = 0x80;

    /// Offset of the ancillary loads (`SKF_AD_OFF`): `LD | W | ABS` with
    /// `k = AD_OFF + AD_...` loads a value that is not in the packet.
    pub const AD_OFF: u32 = 0xffff_f000;
    /// Ancillary load: a pseudo-random `u32` (`SKF_AD_RANDOM`).
    pub const AD_RANDOM: u32 = 56;
}

/// A send-only socket for [`crate::Ctx::add_udp_with_sender`]: bound to
/// `of`'s local address with `SO_REUSEPORT` (`of` needs it too), with
/// `of`'s `IPV6_V6ONLY`, non-blocking, and the smallest receive buffer the
/// kernel allows, as it is never read.
///
/// It joins `of`'s reuseport group: bind it after every receive socket of
/// the group, which must carry a program ([`attach_reuseport_cbpf`]) that
/// only ever returns a receive socket's index.
pub fn bind_sender(of: &UdpSocket) -> io::Result<UdpSocket> {
    let addr = of.local_addr()?;
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if addr.is_ipv6() {
        s.set_only_v6(socket2::SockRef::from(of).only_v6()?)?;
    }
    s.set_reuse_port(true)?;
    s.set_recv_buffer_size(0)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// The address to bind a new `SO_REUSEPORT` group on: `addr` itself, or,
/// for port 0, `addr` with a port that no socket holds.
///
/// A port-0 bind with `SO_REUSEPORT` set is not enough: the kernel's search
/// for a free UDP port skips ports held only by reuseport sockets of the
/// same user, so it may hand out the port of another process's group and
/// the new socket joins that group (two trackers sharing one port's
/// datagrams). A plain bind (no `SO_REUSEPORT`) never picks a held port;
/// it is closed at once and its port returned. Another
/// process could take the port in between only by a port-0 bind that lands
/// on it in that instant. The kernel still lets a later port-0 reuseport
/// bind of the same user land on the group: every group this project binds
/// goes through here.
pub fn reuseport_addr(addr: SocketAddr) -> io::Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let port = UdpSocket::bind(addr)?.local_addr()?.port();
    let mut addr = addr;
    addr.set_port(port);
    Ok(addr)
}

/// SO_ATTACH_REUSEPORT_CBPF on a socket of a reuseport group.
///
/// The program sees the UDP payload from offset 0 and returns the index of
/// the socket (in the order the group's sockets were bound) that gets the
/// datagram; an index out of range makes the kernel fall back to its hash.
/// The socket needs `SO_REUSEPORT` set; it may be attached before or after
/// `bind`. The kernel copies the program.
///
/// Errors: `InvalidInput` for an empty program or one longer than 4096
/// instructions; `EINVAL` from the kernel for a program its verifier refuses
/// or a socket without `SO_REUSEPORT`.
pub fn attach_reuseport_cbpf(sock: &impl AsFd, program: &[SockFilter]) -> io::Result<()> {
    if program.is_empty() || program.len() > BPF_MAXINSNS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a classic BPF program has 1 to 4096 instructions",
        ));
    }
    // Set-up path: one small allocation to get the kernel's layout.
    let mut insns: Vec<libc::sock_filter> = program
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: insns.len() as u16,
        filter: insns.as_mut_ptr(),
    };
    setsockopt(
        sock.as_fd(),
        libc::SOL_SOCKET,
        SO_ATTACH_REUSEPORT_CBPF,
        &fprog,
    )
}

/// SO_DETACH_REUSEPORT_BPF: remove the reuseport group's program (the kernel
/// hash picks the socket again). `ENOENT` if none was attached; needs Linux
/// 5.2.
pub fn detach_reuseport_bpf(sock: &impl AsFd) -> io::Result<()> {
    let unused: c_int = 0;
    setsockopt(
        sock.as_fd(),
        libc::SOL_SOCKET,
        SO_DETACH_REUSEPORT_BPF,
        &unused,
    )
}

// ---------------------------------------------------------------------------
// Socket addresses
// ---------------------------------------------------------------------------

/// An all-zero `sockaddr_storage`.
fn zeroed_storage() -> libc::sockaddr_storage {
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

// ---------------------------------------------------------------------------
// Control messages (pktinfo)
// ---------------------------------------------------------------------------

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

/// Control space [`RecvBatch`] gives each datagram: both pktinfo kinds plus
/// room for a few other control messages someone may enable on the socket.
const RECV_CONTROL_SPACE: usize = 128;

/// `N` bytes of `bytes` at `at`, if they are there.
fn read_array<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

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

// ---------------------------------------------------------------------------
// recvmmsg / sendmmsg batches
// ---------------------------------------------------------------------------

/// A zeroed `mmsghdr` (null pointers, zero lengths).
fn zeroed_mmsghdr() -> libc::mmsghdr {
    // SAFETY: mmsghdr is a plain C struct of integers and raw pointers; all
    // zero (null pointers, zero lengths) is a valid value.
    unsafe { std::mem::zeroed() }
}

/// `errno` values after which retrying is pointless for every datagram of
/// the batch: the descriptor or the batch itself is broken.
fn is_fatal(errno: c_int) -> bool {
    matches!(errno, libc::EBADF | libc::ENOTSOCK | libc::EFAULT)
}

/// A reusable batch for recvmmsg: `n` datagrams of `size` bytes, with name
/// and pktinfo control space, allocated once.
///
/// ```no_run
/// # use uring_rt::socket::RecvBatch;
/// # let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// let mut batch = RecvBatch::new(64, 2048);
/// match batch.recv(&sock) {
///     Ok(n) => for d in batch.iter() { /* d.src, d.dst, d.payload */ },
///     Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
///     Err(e) => { /* count it */ }
/// }
/// ```
pub struct RecvBatch {
    size: usize,
    /// Datagrams the last `recv` returned.
    count: usize,
    data: Box<[u8]>,
    names: Box<[libc::sockaddr_storage]>,
    control: Box<[u8]>,
    iovecs: Box<[libc::iovec]>,
    headers: Box<[libc::mmsghdr]>,
}

// SAFETY: the raw pointers inside `iovecs` and `headers` point only into
// this batch's own heap buffers (never shared), and are rewritten from those
// buffers before every syscall; moving the batch to another thread moves
// the buffers with it.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    /// A batch of `n` datagrams of at most `size` payload bytes each. Longer
    /// datagrams are cut to `size` and flagged [`Received::truncated`].
    pub fn new(n: usize, size: usize) -> Self {
        Self {
            size,
            count: 0,
            data: vec![0; n * size].into_boxed_slice(),
            names: (0..n).map(|_| zeroed_storage()).collect(),
            control: vec![0; n * RECV_CONTROL_SPACE].into_boxed_slice(),
            iovecs: (0..n)
                .map(|_| libc::iovec {
                    iov_base: ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            headers: (0..n).map(|_| zeroed_mmsghdr()).collect(),
        }
    }

    /// Receive up to `n` datagrams without blocking (`recvmmsg` with
    /// `MSG_DONTWAIT`); returns how many, readable with [`RecvBatch::get`].
    ///
    /// No datagram waiting: `Err` of kind `WouldBlock`. Other errors are the
    /// socket's (e.g. a pending ICMP error with `IP_RECVERR`). `EINTR` is
    /// retried. The previous datagrams are gone after this call, whatever it
    /// returns.
    pub fn recv(&mut self, sock: &impl AsFd) -> io::Result<usize> {
        self.count = 0;
        let n = self.headers.len().min(c_uint::MAX as usize);
        if n == 0 {
            return Ok(0);
        }
        // Each buffer's base pointer is taken after its last write through a
        // reference, so the pointers handed to the kernel stay valid.
        let data = self.data.as_mut_ptr();
        for (i, iovec) in self.iovecs.iter_mut().enumerate() {
            iovec.iov_base = data.wrapping_add(i * self.size).cast();
            iovec.iov_len = self.size;
        }
        let names = self.names.as_mut_ptr();
        let control = self.control.as_mut_ptr();
        let iovecs = self.iovecs.as_mut_ptr();
        for (i, header) in self.headers.iter_mut().enumerate() {
            let msg = &mut header.msg_hdr;
            msg.msg_name = names.wrapping_add(i).cast();
            msg.msg_namelen = size_of::<libc::sockaddr_storage>() as socklen_t;
            msg.msg_iov = iovecs.wrapping_add(i);
            msg.msg_iovlen = 1;
            msg.msg_control = control.wrapping_add(i * RECV_CONTROL_SPACE).cast();
            msg.msg_controllen = RECV_CONTROL_SPACE as _;
            msg.msg_flags = 0;
            header.msg_len = 0;
        }
        let fd = sock.as_fd().as_raw_fd();
        loop {
            // SAFETY: the first `n` headers point, as set just above, into
            // buffers owned by `self` with the lengths given there (iovec i:
            // `size` bytes of `data`; name i: one sockaddr_storage; control
            // i: RECV_CONTROL_SPACE bytes). `&mut self` keeps them alive and
            // unaliased for the call; `fd` is borrowed and open.
            let rc = unsafe {
                libc::recvmmsg(
                    fd,
                    self.headers.as_mut_ptr(),
                    n as c_uint,
                    libc::MSG_DONTWAIT,
                    ptr::null_mut(),
                )
            };
            if rc >= 0 {
                self.count = (rc as usize).min(n);
                return Ok(self.count);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// Datagram `i` of the last [`RecvBatch::recv`]: `None` if `i` is not
    /// below its count, or if its source is not an IPv4/IPv6 address.
    pub fn get(&self, i: usize) -> Option<Received<'_>> {
        if i >= self.count {
            return None;
        }
        let msg = &self.headers[i];
        let src = sockaddr_to_std(&self.names[i], msg.msg_hdr.msg_namelen)?;
        #[allow(clippy::unnecessary_cast)] // size_t on glibc, socklen_t on musl
        let control_len = (msg.msg_hdr.msg_controllen as usize).min(RECV_CONTROL_SPACE);
        let control = &self.control[i * RECV_CONTROL_SPACE..][..control_len];
        let len = (msg.msg_len as usize).min(self.size);
        Some(Received {
            src,
            dst: pktinfo_dst(control),
            payload: &self.data[i * self.size..][..len],
            truncated: msg.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        })
    }

    /// Number of datagrams the last [`RecvBatch::recv`] returned.
    pub fn len(&self) -> usize {
        self.count
    }

    /// `true` if the last [`RecvBatch::recv`] returned nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The datagrams of the last [`RecvBatch::recv`], in order (skipping any
    /// whose source is not IPv4/IPv6).
    pub fn iter(&self) -> impl Iterator<Item = Received<'_>> + '_ {
        (0..self.count).filter_map(|i| self.get(i))
    }

    /// Maximum datagrams per `recv`.
    pub fn capacity(&self) -> usize {
        self.headers.len()
    }

    /// Maximum payload bytes per datagram.
    pub fn datagram_size(&self) -> usize {
        self.size
    }
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("capacity", &self.headers.len())
            .field("size", &self.size)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

/// One datagram of a [`RecvBatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received<'a> {
    /// Who sent it (v4-mapped IPv6 on a dual-stack socket for IPv4 peers).
    pub src: SocketAddr,
    /// The local address it was sent to, if [`enable_pktinfo`] is on.
    pub dst: Option<IpAddr>,
    /// The payload, cut to the batch's datagram size.
    pub payload: &'a [u8],
    /// The datagram was longer than the batch's datagram size.
    pub truncated: bool,
}

/// A reusable batch for sendmmsg with optional source address (pktinfo) per
/// datagram.
///
/// Datagrams are written in place with [`SendBatch::push`] and sent with
/// [`SendBatch::flush`]; all memory is allocated by [`SendBatch::new`].
pub struct SendBatch {
    size: usize,
    /// Queued datagrams are `head..tail`.
    head: usize,
    tail: usize,
    dropped: u64,
    data: Box<[u8]>,
    lens: Box<[usize]>,
    names: Box<[libc::sockaddr_storage]>,
    name_lens: Box<[socklen_t]>,
    control: Box<[u8]>,
    control_lens: Box<[usize]>,
    iovecs: Box<[libc::iovec]>,
    headers: Box<[libc::mmsghdr]>,
}

// SAFETY: as for RecvBatch: the raw pointers in `iovecs` and `headers` point
// only into this batch's own heap buffers and are rewritten before every
// syscall.
unsafe impl Send for SendBatch {}

impl SendBatch {
    /// A batch of up to `n` datagrams of at most `size` bytes each.
    pub fn new(n: usize, size: usize) -> Self {
        Self {
            size,
            head: 0,
            tail: 0,
            dropped: 0,
            data: vec![0; n * size].into_boxed_slice(),
            lens: vec![0; n].into_boxed_slice(),
            names: (0..n).map(|_| zeroed_storage()).collect(),
            name_lens: vec![0; n].into_boxed_slice(),
            control: vec![0; n * PKTINFO_SPACE].into_boxed_slice(),
            control_lens: vec![0; n].into_boxed_slice(),
            iovecs: (0..n)
                .map(|_| libc::iovec {
                    iov_base: ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            headers: (0..n).map(|_| zeroed_mmsghdr()).collect(),
        }
    }

    /// Queue one datagram to `to`, sent from local address `from` if given
    /// (pktinfo; else the kernel picks the source).
    ///
    /// `fill` writes the payload into the slot (`size` bytes) and returns its
    /// length; returning 0 queues nothing (a length above `size` is cut to
    /// `size`). Returns `false`, without calling `fill`, when the batch is
    /// full: flush first.
    pub fn push(
        &mut self,
        to: SocketAddr,
        from: Option<IpAddr>,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> bool {
        let n = self.headers.len();
        if self.tail == n {
            if self.head == 0 {
                return false;
            }
            self.compact();
        }
        let i = self.tail;
        let len = fill(&mut self.data[i * self.size..][..self.size]).min(self.size);
        if len == 0 {
            return true;
        }
        self.lens[i] = len;
        self.name_lens[i] = std_to_sockaddr(&to, &mut self.names[i]);
        self.control_lens[i] = from.map_or(0, |ip| {
            write_pktinfo(&mut self.control[i * PKTINFO_SPACE..][..PKTINFO_SPACE], ip)
        });
        self.tail += 1;
        true
    }

    /// Move the queued datagrams `head..tail` to the front (after a flush
    /// stopped at `WouldBlock`), so pushing can go on.
    fn compact(&mut self) {
        let (head, tail) = (self.head, self.tail);
        self.data.copy_within(head * self.size..tail * self.size, 0);
        self.lens.copy_within(head..tail, 0);
        self.name_lens.copy_within(head..tail, 0);
        self.control
            .copy_within(head * PKTINFO_SPACE..tail * PKTINFO_SPACE, 0);
        self.control_lens.copy_within(head..tail, 0);
        for i in head..tail {
            self.names[i - head] = self.names[i];
        }
        self.head = 0;
        self.tail = tail - head;
    }

    /// Datagrams queued and not yet sent.
    pub fn len(&self) -> usize {
        self.tail - self.head
    }

    /// `true` if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.tail == self.head
    }

    /// Maximum datagrams queued at once.
    pub fn capacity(&self) -> usize {
        self.headers.len()
    }

    /// Send everything queued with `sendmmsg` (`MSG_DONTWAIT`, looping over
    /// partial sends); returns how many datagrams this call sent.
    ///
    /// * `WouldBlock`: the unsent datagrams stay queued (in order) and the
    ///   error is returned; call again when the socket is writable. (Sent
    ///   this call = `len()` before − `len()` after.)
    /// * An error that belongs to one datagram (`EPERM`, `ECONNREFUSED`,
    ///   `EINVAL` for a bad address or source, `EAFNOSUPPORT`, `EMSGSIZE`,
    ///   `ENETUNREACH`, `ENOBUFS`, ...): that datagram is tried once more (the
    ///   error may have been a pending ICMP error of the socket, which the
    ///   kernel reports once), then dropped and counted in
    ///   [`SendBatch::dropped`]; the rest go on.
    /// * `EBADF`, `ENOTSOCK`, `EFAULT`: returned, the queue is kept.
    /// * `EINTR` is retried.
    pub fn flush(&mut self, sock: &impl AsFd) -> io::Result<usize> {
        let fd = sock.as_fd().as_raw_fd();
        self.prepare();
        let mut sent = 0;
        let mut retried = false;
        while self.head < self.tail {
            let vlen = (self.tail - self.head).min(c_uint::MAX as usize);
            // SAFETY: headers head..tail were set by `prepare` to point into
            // buffers owned by `self` (payload i: lens[i] <= size bytes of
            // `data`; name i: name_lens[i] bytes of names[i]; control i:
            // control_lens[i] <= PKTINFO_SPACE bytes or null), unchanged
            // since; `&mut self` keeps them alive and unaliased; `fd` is
            // borrowed and open; `head + vlen <= headers.len()`.
            let rc = unsafe {
                libc::sendmmsg(
                    fd,
                    self.headers.as_mut_ptr().wrapping_add(self.head),
                    vlen as c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if rc > 0 {
                let k = (rc as usize).min(vlen);
                self.head += k;
                sent += k;
                retried = false;
                continue;
            }
            let err = if rc == 0 {
                // Not expected for vlen > 0; treat as "try later".
                io::Error::from(io::ErrorKind::WouldBlock)
            } else {
                io::Error::last_os_error()
            };
            match err.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => return Err(err),
                _ if err.raw_os_error().is_some_and(is_fatal) => return Err(err),
                _ if !retried => retried = true,
                _ => {
                    log::debug!("sendmmsg: dropping a datagram: {err}");
                    self.head += 1;
                    self.dropped += 1;
                    retried = false;
                }
            }
        }
        self.head = 0;
        self.tail = 0;
        Ok(sent)
    }

    /// Point headers `head..tail` at their buffers.
    fn prepare(&mut self) {
        // Each buffer's base pointer is taken after its last write through a
        // reference, so the pointers handed to the kernel stay valid.
        let data = self.data.as_mut_ptr();
        for i in self.head..self.tail {
            self.iovecs[i] = libc::iovec {
                iov_base: data.wrapping_add(i * self.size).cast(),
                iov_len: self.lens[i],
            };
        }
        let names = self.names.as_mut_ptr();
        let control = self.control.as_mut_ptr();
        let iovecs = self.iovecs.as_mut_ptr();
        for i in self.head..self.tail {
            let header = &mut self.headers[i];
            let msg = &mut header.msg_hdr;
            msg.msg_name = names.wrapping_add(i).cast();
            msg.msg_namelen = self.name_lens[i];
            msg.msg_iov = iovecs.wrapping_add(i);
            msg.msg_iovlen = 1;
            if self.control_lens[i] == 0 {
                msg.msg_control = ptr::null_mut();
                msg.msg_controllen = 0;
            } else {
                msg.msg_control = control.wrapping_add(i * PKTINFO_SPACE).cast();
                msg.msg_controllen = self.control_lens[i] as _;
            }
            msg.msg_flags = 0;
            header.msg_len = 0;
        }
    }

    /// Datagrams dropped by [`SendBatch::flush`] because of an error of
    /// their own (bad destination or source, unreachable, ...), since
    /// creation.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("capacity", &self.headers.len())
            .field("size", &self.size)
            .field("queued", &self.len())
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}
