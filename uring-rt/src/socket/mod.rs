//! Safe socket set-up and batch syscalls.
//!
//! What the crates above uring-rt need from raw libc and cannot get safely
//! from std, socket2 or nix, each behind a safe function:
//!
//! * [`enable_pktinfo`]: received datagrams carry their destination address,
//!   so a wildcard-bound server answers from the address it was asked on.
//! * [`attach_reuseport_cbpf`] / [`detach_reuseport_bpf`]: a classic BPF
//!   program (libc's `sock_filter`, built with [`bpf_stmt`] / [`bpf_jump`]
//!   and libc's `BPF_*` / `SKF_AD_*` constants) that picks the socket of a
//!   `SO_REUSEPORT` group for each datagram (kernel steering of announces
//!   to their owner).
//! * [`reuseport_addr`]: a port for a new `SO_REUSEPORT` group that no
//!   other group holds (a port-0 reuseport bind may join another's).
//! * [`bind_sender`]: the send-only twin of a receive socket, for
//!   [`crate::Ctx::add_udp_with_sender`] (socket2 underneath).
//! * [`RecvBatch`] / [`SendBatch`]: `recvmmsg` / `sendmmsg` batches with
//!   source and destination addresses, allocated once (the mio backend and
//!   the load generators).
//! * [`reuseport_listeners`]: one `SO_REUSEPORT` TCP listener per worker
//!   (backlog, IPv6-only, `TCP_DEFER_ACCEPT`), and [`ensure_fd_limit`],
//!   the `RLIMIT_NOFILE` check the runtime makes at start.
//! * Conversions between [`SocketAddr`](std::net::SocketAddr) and
//!   `sockaddr_storage` / raw sockaddr bytes, and the pktinfo
//!   control-message parser and writer ([`pktinfo_dst`], [`write_pktinfo`]),
//!   also used by the io_uring runtime.
//!
//! Not here: the io_uring operations themselves, socket creation and binding
//! in general (socket2 does that safely).
//!
//! One module per topic: `addr` (sockaddr conversions), `cmsg` (pktinfo
//! control messages), `reuseport` (reuseport groups and their steering
//! program), `listen` (TCP listeners, the descriptor limit), `mmsg` (the batches), `sockopt` (the `setsockopt` they share).
//! Everything public is re-exported here, as `uring_rt::socket::X`.

mod addr;
mod cmsg;
mod listen;
mod mmsg;
mod reuseport;
mod sockopt;

pub(crate) use addr::zeroed_storage;
pub use addr::{sockaddr_bytes_to_std, sockaddr_to_std, std_to_sockaddr};
pub use cmsg::{enable_pktinfo, pktinfo_dst, write_pktinfo, PKTINFO_SPACE};
pub(crate) use listen::nofile_limit;
pub use listen::{ensure_fd_limit, reuseport_listeners, FdLimit, ListenOptions};
pub use mmsg::{Received, RecvBatch, SendBatch};
pub use reuseport::{
    attach_reuseport_cbpf, bind_sender, bpf_jump, bpf_stmt, detach_reuseport_bpf, reuseport_addr,
};

/// `N` bytes of `bytes` at `at`, if they are there.
fn read_array<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}
