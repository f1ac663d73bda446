//! `sendmmsg` / `recvmmsg` batches with source and destination addresses,
//! allocated once (the mio backend and the load generators).

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::ptr;

use libc::{c_int, c_uint, socklen_t};

use super::addr::{sockaddr_to_std, std_to_sockaddr, zeroed_storage};
use super::cmsg::{pktinfo_dst, write_pktinfo, PKTINFO_SPACE};

/// Control space [`RecvBatch`] gives each datagram: both pktinfo kinds plus
/// room for a few other control messages someone may enable on the socket.
const RECV_CONTROL_SPACE: usize = 128;

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

/// What a batch hands the kernel for `n` datagrams, allocated once: a
/// payload slot of `size` bytes, an address and `control_space` bytes of
/// control messages per datagram, and the iovecs and headers that point
/// into them.
struct Slots {
    size: usize,
    control_space: usize,
    data: Box<[u8]>,
    names: Box<[libc::sockaddr_storage]>,
    control: Box<[u8]>,
    iovecs: Box<[libc::iovec]>,
    headers: Box<[libc::mmsghdr]>,
}

// SAFETY: the raw pointers inside `iovecs` and `headers` point only into
// these slots' own heap buffers (never shared), and are rewritten from those
// buffers (`Slots::point`) before every syscall; moving the slots to another
// thread moves the buffers with them.
unsafe impl Send for Slots {}

impl Slots {
    fn new(n: usize, size: usize, control_space: usize) -> Self {
        Self {
            size,
            control_space,
            data: vec![0; n * size].into_boxed_slice(),
            names: (0..n).map(|_| zeroed_storage()).collect(),
            control: vec![0; n * control_space].into_boxed_slice(),
            iovecs: (0..n)
                .map(|_| libc::iovec {
                    iov_base: ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            headers: (0..n).map(|_| zeroed_mmsghdr()).collect(),
        }
    }

    /// Datagrams the slots hold.
    fn capacity(&self) -> usize {
        self.headers.len()
    }

    /// Point the headers of `range` at their buffers. `lens(i)`: datagram
    /// `i`'s payload length (at most `size`), name length and control
    /// length (at most `control_space`; 0: no control messages).
    fn point(
        &mut self,
        range: std::ops::Range<usize>,
        lens: impl Fn(usize) -> (usize, socklen_t, usize),
    ) {
        // Each buffer's base pointer is taken after its last write through a
        // reference, so the pointers handed to the kernel stay valid.
        let data = self.data.as_mut_ptr();
        for i in range.clone() {
            self.iovecs[i] = libc::iovec {
                iov_base: data.wrapping_add(i * self.size).cast(),
                iov_len: lens(i).0,
            };
        }
        let names = self.names.as_mut_ptr();
        let control = self.control.as_mut_ptr();
        let iovecs = self.iovecs.as_mut_ptr();
        for i in range {
            let (_, name_len, control_len) = lens(i);
            let header = &mut self.headers[i];
            let msg = &mut header.msg_hdr;
            msg.msg_name = names.wrapping_add(i).cast();
            msg.msg_namelen = name_len;
            msg.msg_iov = iovecs.wrapping_add(i);
            msg.msg_iovlen = 1;
            if control_len == 0 {
                msg.msg_control = ptr::null_mut();
                msg.msg_controllen = 0;
            } else {
                msg.msg_control = control.wrapping_add(i * self.control_space).cast();
                msg.msg_controllen = control_len as _;
            }
            msg.msg_flags = 0;
            header.msg_len = 0;
        }
    }
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
    /// Datagrams the last `recv` returned.
    count: usize,
    slots: Slots,
}

impl RecvBatch {
    /// A batch of `n` datagrams of at most `size` payload bytes each. Longer
    /// datagrams are cut to `size` and flagged [`Received::truncated`].
    pub fn new(n: usize, size: usize) -> Self {
        Self {
            count: 0,
            slots: Slots::new(n, size, RECV_CONTROL_SPACE),
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
        let n = self.slots.capacity().min(c_uint::MAX as usize);
        if n == 0 {
            return Ok(0);
        }
        let size = self.slots.size;
        let name_len = size_of::<libc::sockaddr_storage>() as socklen_t;
        self.slots.point(0..self.slots.capacity(), |_| {
            (size, name_len, RECV_CONTROL_SPACE)
        });
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
                    self.slots.headers.as_mut_ptr(),
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
        let slots = &self.slots;
        let msg = &slots.headers[i];
        let src = sockaddr_to_std(&slots.names[i], msg.msg_hdr.msg_namelen)?;
        #[allow(clippy::unnecessary_cast)] // size_t on glibc, socklen_t on musl
        let control_len = (msg.msg_hdr.msg_controllen as usize).min(RECV_CONTROL_SPACE);
        let control = &slots.control[i * RECV_CONTROL_SPACE..][..control_len];
        let len = (msg.msg_len as usize).min(slots.size);
        Some(Received {
            src,
            dst: pktinfo_dst(control),
            payload: &slots.data[i * slots.size..][..len],
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
        self.slots.capacity()
    }

    /// Maximum payload bytes per datagram.
    pub fn datagram_size(&self) -> usize {
        self.slots.size
    }
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("capacity", &self.capacity())
            .field("size", &self.slots.size)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

/// One datagram of a [`RecvBatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received<'a> {
    /// Who sent it (v4-mapped IPv6 on a dual-stack socket for IPv4 peers).
    pub src: SocketAddr,
    /// The local address it was sent to, if [`enable_pktinfo`](super::enable_pktinfo) is on.
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
    /// Queued datagrams are `head..tail`.
    head: usize,
    tail: usize,
    dropped: u64,
    slots: Slots,
    lens: Box<[usize]>,
    name_lens: Box<[socklen_t]>,
    control_lens: Box<[usize]>,
}

impl SendBatch {
    /// A batch of up to `n` datagrams of at most `size` bytes each.
    pub fn new(n: usize, size: usize) -> Self {
        Self {
            head: 0,
            tail: 0,
            dropped: 0,
            slots: Slots::new(n, size, PKTINFO_SPACE),
            lens: vec![0; n].into_boxed_slice(),
            name_lens: vec![0; n].into_boxed_slice(),
            control_lens: vec![0; n].into_boxed_slice(),
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
        if self.tail == self.capacity() {
            if self.head == 0 {
                return false;
            }
            self.compact();
        }
        let i = self.tail;
        let slots = &mut self.slots;
        let size = slots.size;
        let len = fill(&mut slots.data[i * size..][..size]).min(size);
        if len == 0 {
            return true;
        }
        self.lens[i] = len;
        self.name_lens[i] = std_to_sockaddr(&to, &mut slots.names[i]);
        self.control_lens[i] = from.map_or(0, |ip| {
            write_pktinfo(&mut slots.control[i * PKTINFO_SPACE..][..PKTINFO_SPACE], ip)
        });
        self.tail += 1;
        true
    }

    /// Move the queued datagrams `head..tail` to the front (after a flush
    /// stopped at `WouldBlock`), so pushing can go on.
    fn compact(&mut self) {
        let (head, tail) = (self.head, self.tail);
        let slots = &mut self.slots;
        slots
            .data
            .copy_within(head * slots.size..tail * slots.size, 0);
        self.lens.copy_within(head..tail, 0);
        self.name_lens.copy_within(head..tail, 0);
        slots
            .control
            .copy_within(head * PKTINFO_SPACE..tail * PKTINFO_SPACE, 0);
        self.control_lens.copy_within(head..tail, 0);
        slots.names.copy_within(head..tail, 0);
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
        self.slots.capacity()
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
                    self.slots.headers.as_mut_ptr().wrapping_add(self.head),
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
        let (lens, name_lens, control_lens) = (&self.lens, &self.name_lens, &self.control_lens);
        self.slots.point(self.head..self.tail, |i| {
            (lens[i], name_lens[i], control_lens[i])
        });
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
            .field("capacity", &self.capacity())
            .field("size", &self.slots.size)
            .field("queued", &self.len())
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}
