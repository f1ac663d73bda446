//! `Ctx`: what a handler acts through. Every method only records work
//! (fills a send slot, marks a socket for arming, pushes a mesh message);
//! the worker turns it into SQEs at the end of the loop turn, with one
//! submit per turn.

use crate::deadline::Deadlines;
use crate::handler::{SendError, SocketId};
use crate::mesh::bytes::{ByteSender, Lane, PushError};
use crate::mesh::{MeshEnd, MeshFull};
use crate::send::{Queued, SendPool};
use crate::stats::RtStats;
use crate::tcp::Tcp;
use io_uring::types::Timespec;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

// The TCP part of `Ctx` lives with TCP: `tcp/api.rs`.

pub(crate) struct UdpSock {
    pub(crate) sock: UdpSocket,
    /// The send-only socket answers leave through (`add_udp_with_sender`).
    pub(crate) sender: Option<UdpSocket>,
    /// File-table slot of `sock`, once registered, so its SQEs skip the
    /// per-operation file lookup.
    pub(crate) fixed: Option<u32>,
    /// File-table slot of `sender`, once registered.
    pub(crate) sender_fixed: Option<u32>,
}

/// A file an SQE can name: its file-table slot when registered, and its
/// descriptor.
pub(crate) type File = (Option<u32>, RawFd);

impl UdpSock {
    /// The file receives are armed on.
    pub(crate) fn recv_file(&self) -> File {
        (self.fixed, self.sock.as_raw_fd())
    }

    /// The file answers leave through: the sender if there is one.
    pub(crate) fn send_file(&self) -> File {
        match &self.sender {
            Some(s) => (self.sender_fixed, s.as_raw_fd()),
            None => self.recv_file(),
        }
    }
}

pub(crate) struct Timer {
    /// Boxed so its address is stable while the TIMEOUT SQE waits for submit.
    pub(crate) ts: Box<Timespec>,
    pub(crate) token: u64,
}

/// A worker's handle to the runtime, passed to every `Handler` method.
pub struct Ctx<M> {
    pub(crate) worker: usize,
    pub(crate) workers: usize,
    pub(crate) now: Instant,
    pub(crate) stats: RtStats,
    pub(crate) stop_requested: bool,
    pub(crate) stop_all_requested: bool,
    pub(crate) mesh: MeshEnd<M>,
    /// The sending half of the byte mesh, when configured.
    pub(crate) bytes: Option<ByteSender>,
    /// `mesh_refused[w][lane]`: the length of the last byte-mesh push to
    /// `w` on `lane` that was refused, until `on_mesh_space` reports room
    /// for it (0: none refused).
    pub(crate) mesh_refused: Vec<[usize; 2]>,
    /// Workers to wake at the end of this turn (each at most once).
    pub(crate) wake_list: Vec<usize>,
    pub(crate) wake_marked: Vec<bool>,
    pub(crate) udp: Vec<UdpSock>,
    pub(crate) arm_udp: Vec<u32>,
    pub(crate) sends: SendPool,
    pub(crate) tcp: Tcp,
    pub(crate) timers: Vec<Timer>,
    pub(crate) arm_timers: Vec<u32>,
    pub(crate) deadlines: Deadlines,
}

impl<M: Copy + Send + 'static> Ctx<M> {
    pub(crate) fn new(
        worker: usize,
        workers: usize,
        mesh: MeshEnd<M>,
        bytes: Option<ByteSender>,
        sends: SendPool,
        tcp: Tcp,
    ) -> Ctx<M> {
        let now = Instant::now();
        Ctx {
            worker,
            workers,
            now,
            stats: RtStats::default(),
            stop_requested: false,
            stop_all_requested: false,
            mesh,
            bytes,
            mesh_refused: vec![[0; 2]; workers],
            wake_list: Vec::with_capacity(workers),
            wake_marked: vec![false; workers],
            udp: Vec::new(),
            arm_udp: Vec::new(),
            sends,
            tcp,
            timers: Vec::new(),
            arm_timers: Vec::new(),
            deadlines: Deadlines::new(now),
        }
    }

    /// This worker's index (0-based).
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Register a UDP socket with this worker and arm multishot RECVMSG on
    /// the worker's buffer ring. A socket bound to a wildcard address gets
    /// pktinfo enabled, so [`Datagram::dst`](crate::Datagram) names the
    /// address each datagram was sent to; on a socket bound to one address
    /// that is known already, and `dst` is `None` (no per-packet cmsg).
    pub fn add_udp(&mut self, sock: UdpSocket) -> io::Result<SocketId> {
        self.add_udp_socket(sock, None)
    }

    /// [`add_udp`](Self::add_udp), with the answers ([`send_to`](Self::send_to)
    /// on the returned id) leaving through `sender`, a socket this worker
    /// never receives on; make it with [`crate::socket::bind_sender`].
    ///
    /// Why: a multishot receive keeps io_uring's poll entry on its socket's
    /// wait queue, so every datagram sent from that socket wakes the queue
    /// when the kernel frees it (~60 ns a response, ~2.5% at saturation;
    /// uring-rt/README.md). A socket nobody waits on skips that.
    ///
    /// The sender is in `sock`'s `SO_REUSEPORT` group, so the group must
    /// carry a program that never picks it (bound after every receive
    /// socket, its index is past theirs); anything the kernel delivers to
    /// it is never read and is lost.
    pub fn add_udp_with_sender(
        &mut self,
        sock: UdpSocket,
        sender: UdpSocket,
    ) -> io::Result<SocketId> {
        self.add_udp_socket(sock, Some(sender))
    }

    fn add_udp_socket(
        &mut self,
        sock: UdpSocket,
        sender: Option<UdpSocket>,
    ) -> io::Result<SocketId> {
        if sock.local_addr()?.ip().is_unspecified() {
            crate::socket::enable_pktinfo(&sock)?;
        }
        self.udp.push(UdpSock {
            sock,
            sender,
            fixed: None,
            sender_fixed: None,
        });
        let id = (self.udp.len() - 1) as u32;
        self.arm_udp.push(id);
        Ok(SocketId(id))
    }

    /// The local address of a registered UDP socket.
    pub fn udp_local_addr(&self, socket: SocketId) -> io::Result<SocketAddr> {
        self.udp
            .get(socket.0 as usize)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?
            .sock
            .local_addr()
    }

    /// Queue a datagram: `fill` writes the payload into the slot's buffer
    /// (`send_slot_size` bytes) and returns its length (0 = send nothing).
    /// `from`: source address (pktinfo cmsg), `None` = kernel's choice; it
    /// must be of `to`'s family or it is ignored. Sent at the end of this
    /// loop turn.
    pub fn send_to(
        &mut self,
        socket: SocketId,
        to: SocketAddr,
        from: Option<IpAddr>,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<(), SendError> {
        if socket.0 as usize >= self.udp.len() {
            return Err(SendError::Closed);
        }
        match self.sends.send_to(socket.0, to, from, fill) {
            (Queued::Ok, parked) => {
                if parked {
                    self.stats.send_queued += 1;
                }
                Ok(())
            }
            (Queued::Full, _) => {
                self.stats.send_queue_overflow += 1;
                Err(SendError::QueueFull)
            }
        }
    }

    /// Call `on_timer(token)` every `every` (at least 1 ms) until the loop stops.
    pub fn add_timer(&mut self, every: Duration, token: u64) {
        let every = every.max(Duration::from_millis(1));
        self.timers.push(Timer {
            ts: Box::new(Timespec::from(every)),
            token,
        });
        self.arm_timers.push((self.timers.len() - 1) as u32);
    }

    /// Send `msg` to worker `to` through the mesh; the target is woken (one
    /// MSG_RING or eventfd write per target per turn) when its ring was
    /// empty. A full ring is counted in `mesh_full` and returned.
    ///
    /// `to == self.worker()` or `to >= self.workers()` is refused with
    /// `MeshFull` (a worker handles its own messages directly).
    pub fn mesh_send(&mut self, to: usize, msg: M) -> Result<(), MeshFull> {
        if to == self.worker || to >= self.workers {
            self.stats.mesh_full += 1;
            return Err(MeshFull);
        }
        match self.mesh.push(to, msg) {
            Ok(was_empty) => {
                if was_empty {
                    self.wake(to);
                }
                Ok(())
            }
            Err(e) => {
                self.stats.mesh_full += 1;
                Err(e)
            }
        }
    }

    /// Send a record of up to `len` bytes to worker `to` through the byte
    /// mesh, written in place: `fill` gets `len` bytes of ring space and
    /// returns how many it wrote (the record's length). Replies go on
    /// [`Lane::Reply`], which requests can never fill. `Full`: no room now
    /// (counted in `mesh_full`; `Handler::on_mesh_space(to, lane)` follows
    /// once `to` freed room for a record this long). `TooLarge`: longer than `byte_mesh_max_record`, or
    /// no byte mesh configured. `to == self.worker()` is refused with
    /// `Full` (a worker handles its own work directly). The target is woken
    /// at the end of the turn when its ring was empty. Record layout and
    /// the return-address convention: [`crate::mesh::bytes`].
    pub fn mesh_push_with(
        &mut self,
        to: usize,
        lane: Lane,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<(), PushError> {
        let Some(tx) = self.bytes.as_mut() else {
            return Err(PushError::TooLarge);
        };
        if to == self.worker || to >= self.workers {
            self.stats.mesh_full += 1;
            return Err(PushError::Full);
        }
        match tx.push_with(to, lane, len, fill) {
            Ok(wake) => {
                if wake {
                    self.wake(to);
                }
                Ok(())
            }
            Err(e) => {
                if e == PushError::Full {
                    self.stats.mesh_full += 1;
                    self.mesh_refused[to][lane as usize] = len.max(1);
                }
                Err(e)
            }
        }
    }

    /// [`mesh_push_with`](Self::mesh_push_with) of a copy of `record`.
    pub fn mesh_push(&mut self, to: usize, lane: Lane, record: &[u8]) -> Result<(), PushError> {
        self.mesh_push_with(to, lane, record.len(), |buf| {
            buf.copy_from_slice(record);
            record.len()
        })
    }

    /// The longest record the byte-mesh ring to `to` on `lane` takes now
    /// (0 without a byte mesh or for this worker).
    pub fn mesh_space(&self, to: usize, lane: Lane) -> usize {
        match &self.bytes {
            Some(tx) if to != self.worker && to < self.workers => tx.space(to, lane),
            _ => 0,
        }
    }

    /// Wake worker `to` at the end of this turn (once per turn).
    pub(crate) fn wake(&mut self, to: usize) {
        if let Some(marked) = self.wake_marked.get_mut(to) {
            if !*marked {
                *marked = true;
                self.wake_list.push(to);
            }
        }
    }

    /// The time at the start of this loop turn (cached; cheap).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// This worker's counters.
    pub fn stats(&self) -> &RtStats {
        &self.stats
    }

    /// Stop this worker's loop gracefully at the end of the turn.
    pub fn stop(&mut self) {
        self.stop_requested = true;
    }

    /// Stop every worker, as SIGTERM would: each other handler gets
    /// `on_signal(Terminate)`, then all drain and `run` returns.
    pub fn stop_all(&mut self) {
        self.stop_all_requested = true;
        self.stop_requested = true;
    }
}
