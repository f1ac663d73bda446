//! Kernel steering: the classic BPF program on each reuseport group that
//! makes the kernel deliver every announce and one-hash scrape to the socket
//! of the worker that owns the torrent, so they never cross cores.
//!
//! The program computes exactly [`riptide_common::shard_of`]: the first four
//! bytes of the info hash (payload offset 16), big-endian, modulo the worker
//! count. Anything else (connects, multi-hash scrapes, junk) goes to a
//! random worker. It never returns an index past the workers' sockets (an
//! out-of-range index would make the kernel pick by its own hash among
//! *every* socket of the group): the group also holds each worker's
//! send-only socket (`uring_rt::socket::bind_sender`), bound behind the
//! workers' sockets, which must never be handed a request.
//!
//! Instructions are libc's `sock_filter` with libc's `BPF_*` opcode parts,
//! built with uring-rt's safe [`bpf_stmt`] (libc's `BPF_STMT` is an `unsafe
//! fn`, and this crate forbids unsafe code).

use libc::{
    sock_filter, BPF_A, BPF_ABS, BPF_ALU, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_LEN,
    BPF_MOD, BPF_RET, BPF_W,
};
use uring_rt::socket::{bpf_jump, bpf_stmt};

/// Ancillary load of a pseudo-random `u32` (`SKF_AD_OFF + SKF_AD_RANDOM`).
const RANDOM: u32 = (libc::SKF_AD_OFF + libc::SKF_AD_RANDOM) as u32;

/// Bytes of an announce without BEP 41 options.
const ANNOUNCE_LEN: u32 = 98;
/// Bytes of a scrape with exactly one info hash.
const ONE_HASH_SCRAPE_LEN: u32 = 36;
/// Payload offset of the action word.
const ACTION_OFFSET: u32 = 8;
/// Payload offset of the (first) info hash.
const HASH_OFFSET: u32 = 16;

// Instruction indices, so the jumps below are computed, not counted by hand.
const LOAD_ACTION: usize = 2;
const ANNOUNCE: usize = 5;
const SCRAPE: usize = 7;
const HASH: usize = 9;
const FALLBACK: usize = 12;

fn jump(at: usize, code: u32, k: u32, if_true: usize, if_false: usize) -> sock_filter {
    let offset = |to: usize| u8::try_from(to - at - 1).expect("forward jump within the program");
    bpf_jump(BPF_JMP | code | BPF_K, k, offset(if_true), offset(if_false))
}

/// The steering program for a reuseport group of `workers` sockets, joined
/// in worker order.
pub fn program(workers: usize) -> Vec<sock_filter> {
    let workers = u32::try_from(workers.max(1)).unwrap_or(u32::MAX);
    let prog = vec![
        bpf_stmt(BPF_LD | BPF_W | BPF_LEN, 0), // 0: A = payload length
        jump(1, BPF_JGE, 16, LOAD_ACTION, FALLBACK), // 1: too short for a header
        bpf_stmt(BPF_LD | BPF_W | BPF_ABS, ACTION_OFFSET), // 2: A = action
        jump(3, BPF_JEQ, 1, ANNOUNCE, 4),      // 3: announce?
        jump(4, BPF_JEQ, 2, SCRAPE, FALLBACK), // 4: scrape?
        bpf_stmt(BPF_LD | BPF_W | BPF_LEN, 0), // 5: announce: length
        jump(6, BPF_JGE, ANNOUNCE_LEN, HASH, FALLBACK), // 6
        bpf_stmt(BPF_LD | BPF_W | BPF_LEN, 0), // 7: scrape: length
        jump(8, BPF_JEQ, ONE_HASH_SCRAPE_LEN, HASH, FALLBACK), // 8: one hash only
        bpf_stmt(BPF_LD | BPF_W | BPF_ABS, HASH_OFFSET), // 9: A = hash[0..4] big-endian
        bpf_stmt(BPF_ALU | BPF_MOD | BPF_K, workers), // 10: A %= workers
        bpf_stmt(BPF_RET | BPF_A, 0),          // 11: the owner's socket
        bpf_stmt(BPF_LD | BPF_W | BPF_ABS, RANDOM), // 12: A = random
        bpf_stmt(BPF_ALU | BPF_MOD | BPF_K, workers), // 13: A %= workers
        bpf_stmt(BPF_RET | BPF_A, 0),          // 14: any worker's socket
    ];
    debug_assert_eq!(prog.len(), FALLBACK + 3);
    prog
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An instruction's fields (libc's `sock_filter` derives `PartialEq` and
    /// `Debug` only with its `extra_traits` feature).
    fn parts(i: sock_filter) -> (u16, u8, u8, u32) {
        (i.code, i.jt, i.jf, i.k)
    }

    #[test]
    fn program_has_the_documented_shape() {
        let p = program(4);
        assert_eq!(p.len(), 15);
        assert_eq!((p[10].k, p[13].k), (4, 4));
        assert_eq!(
            parts(p[12]),
            parts(bpf_stmt(BPF_LD | BPF_W | BPF_ABS, RANDOM))
        );
        // Every exit returns A % workers: never an index past the workers.
        let exits: Vec<usize> = (0..p.len())
            .filter(|&i| u32::from(p[i].code) & 0x07 == BPF_RET)
            .collect();
        assert_eq!(exits, [11, 14]);
        assert!(exits
            .iter()
            .all(|&i| parts(p[i]) == parts(bpf_stmt(BPF_RET | BPF_A, 0)) && p[i - 1].k == 4));
        assert_eq!((p[1].jt, p[1].jf), (0, 10));
        assert_eq!((p[8].jt, p[8].jf), (0, 3));
    }
}
