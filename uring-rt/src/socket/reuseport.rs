//! `SO_REUSEPORT` groups: a fresh port for a new group, the send-only twin
//! of a receive socket, and the classic BPF program that steers each
//! datagram to a socket of the group.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;

use libc::c_int;

use super::sockopt::setsockopt;

/// `SO_ATTACH_REUSEPORT_CBPF` (asm-generic value, Linux 4.5+; the libc crate
/// defines it for Android only).
const SO_ATTACH_REUSEPORT_CBPF: c_int = 51;
/// `SO_DETACH_REUSEPORT_BPF` (asm-generic value, Linux 5.2+).
const SO_DETACH_REUSEPORT_BPF: c_int = 68;
/// `BPF_MAXINSNS`: the longest classic BPF program the kernel accepts.
const BPF_MAXINSNS: usize = 4096;

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
