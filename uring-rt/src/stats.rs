//! Per-worker counters: plain `u64`s, written only by the worker's own
//! thread, read by its handler through `Ctx::stats`.

/// Counters of one worker's runtime. All start at zero and only grow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RtStats {
    /// Datagrams handed to `on_datagram`.
    pub datagrams: u64,
    /// Datagrams dropped because they did not fit the receive buffer.
    pub datagrams_truncated: u64,
    /// Receive completions we could not parse (bad header or address).
    pub recv_malformed: u64,
    /// Multishot receives that ended with `ENOBUFS` (buffer ring ran dry).
    pub recv_buffers_exhausted: u64,
    /// Times a buffer ring doubled the buffers in play after running dry
    /// (it starts small so that receives land in cached memory).
    pub recv_buffers_grown: u64,
    /// Other receive errors (UDP or TCP).
    pub recv_errors: u64,
    /// Multishot operations (RECVMSG, RECV, TIMEOUT) re-armed after they ended.
    pub rearms: u64,
    /// UDP datagrams and TCP sends completed successfully.
    pub sends: u64,
    /// Sends that completed with an error.
    pub send_errors: u64,
    /// Datagrams that waited in the bounded queue because no slot was free.
    pub send_queued: u64,
    /// `send_to`/`send` refused: no slot, queue or connection buffer space.
    pub send_queue_overflow: u64,
    /// TCP sends that wrote only part of their bytes and were continued.
    pub send_partial: u64,
    /// `mesh_send` refused because the ring to the target was full.
    pub mesh_full: u64,
    /// Mesh messages handed to `on_mesh`.
    pub mesh_received: u64,
    /// Byte-mesh records handed to `on_mesh_record`.
    pub mesh_records_received: u64,
    /// Wake-ups (MSG_RING or eventfd writes) sent to other workers.
    pub mesh_wakeups: u64,
    /// `io_uring_enter` calls of the loop (one per turn, timeouts included).
    pub submit_batches: u64,
    /// Turns that did not wait to gather completions (`batch_wait_us`)
    /// because the worker was behind: from a turn of 4 × `batch_completions`
    /// completions or more until one of fewer than `batch_completions`.
    pub busy_turns: u64,
    /// SQEs the kernel consumed over all submits.
    pub submitted_sqes: u64,
    /// Extra submits because the SQ filled up during a flush.
    pub sq_full_submits: u64,
    /// Completions handled.
    pub completions: u64,
    /// Connections accepted.
    pub accepts: u64,
    /// Accept errors (including `EMFILE`).
    pub accept_errors: u64,
    /// Connections refused because the connection table was full.
    pub conns_refused: u64,
    /// Connections closed (`on_closed` calls).
    pub conns_closed: u64,
    /// Connections ended with an RST by `Ctx::abort`.
    pub conns_aborted: u64,
    /// Times accepting paused because the worker was at `max_connections`.
    pub accept_paused: u64,
    /// ACCEPT back-offs after EMFILE/ENFILE/ENOMEM/ENOBUFS.
    pub accept_backoffs: u64,
    /// Connection sockets the file table refused (they go on by descriptor),
    /// and failed removals from it.
    pub conn_table_errors: u64,
    /// Receives whose unconsumed rest had to be kept (copied into a carry).
    pub carries: u64,
    /// Connections whose kept bytes would have passed `max_inbound_bytes`.
    pub inbound_full: u64,
    /// Bytes received on closing connections and discarded.
    pub bytes_discarded: u64,
    /// Graceful closes that reached the linger deadline before the peer's EOF.
    pub linger_timeouts: u64,
    /// Send chunks allocated (a warm worker stops allocating them).
    pub send_chunks_allocated: u64,
    /// Timer expirations delivered to `on_timer`.
    pub timer_fires: u64,
    /// Connection deadlines that passed (`on_deadline` calls, plus closes
    /// aborted because they were still sending at their deadline).
    pub deadlines_expired: u64,
}
