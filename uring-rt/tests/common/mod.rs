//! Shared test helpers: probe-based skipping and small configs.
#![allow(dead_code)]

use uring_rt::{Probe, RuntimeConfig};

/// `true` (after printing why) when the UDP io_uring path cannot run here.
pub fn skip_udp() -> bool {
    let p = Probe::detect();
    let missing = p.missing_for_udp();
    if missing.is_empty() {
        return false;
    }
    eprintln!(
        "SKIP: io_uring UDP path unavailable on {}: missing {missing:?}",
        p.kernel()
    );
    true
}

/// `true` (after printing why) when the TCP io_uring path cannot run here.
pub fn skip_tcp() -> bool {
    let p = Probe::detect();
    let missing = p.missing_for_tcp();
    if missing.is_empty() {
        return false;
    }
    eprintln!(
        "SKIP: io_uring TCP path unavailable on {}: missing {missing:?}",
        p.kernel()
    );
    true
}

/// A small config for tests (no signal handling: tests share a process).
pub fn small(workers: usize) -> RuntimeConfig {
    RuntimeConfig {
        workers,
        ring_entries: 256,
        recv_buffers: 256,
        recv_buffer_size: 2048,
        send_slots: 256,
        send_slot_size: 2048,
        send_queue: 256,
        mesh_capacity: 1024,
        max_connections: 2048,
        max_outbound_bytes: 16 * 1024,
        handle_signals: false,
        ..RuntimeConfig::default()
    }
}
