//! `SO_REUSEPORT` groups: a fresh port for a new group, the send-only twin
//! of a receive socket, and the classic BPF program that steers each
//! datagram to a socket of the group.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;

use libc::c_int;

use super::sockopt::setsockopt;

/// A classic BPF statement, like C's `BPF_STMT(code, k)`: `code` is
/// libc's opcode parts or-ed together (`libc::BPF_LD | libc::BPF_W |
/// libc::BPF_ABS`), cut to the 16 bits of `sock_filter::code` as the C
/// macro does (every opcode fits). libc's own `BPF_STMT` is an `unsafe fn`;
/// this one is safe, for crates that forbid unsafe code.
pub const fn bpf_stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A classic BPF jump, like C's `BPF_JUMP(code, k, jt, jf)`: `jt` / `jf`
/// are how many instructions to skip if the test holds / fails. Safe, as
/// [`bpf_stmt`].
pub const fn bpf_jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
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
/// `bind`. The kernel copies the program. Needs Linux 4.5.
///
/// Errors: `InvalidInput` for an empty program or one longer than 4096
/// instructions; `EINVAL` from the kernel for a program its verifier refuses
/// or a socket without `SO_REUSEPORT`.
pub fn attach_reuseport_cbpf(sock: &impl AsFd, program: &[libc::sock_filter]) -> io::Result<()> {
    if program.is_empty() || program.len() > libc::BPF_MAXINSNS as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a classic BPF program has 1 to 4096 instructions",
        ));
    }
    // `sock_fprog` asks for a `*mut`, but the kernel only reads (copies) the
    // program during the call: nothing writes through the shared borrow.
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    setsockopt(
        sock.as_fd(),
        libc::SOL_SOCKET,
        libc::SO_ATTACH_REUSEPORT_CBPF,
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
        libc::SO_DETACH_REUSEPORT_BPF,
        &unused,
    )
}
