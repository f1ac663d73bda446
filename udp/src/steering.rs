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

use uring_rt::socket::{bpf, SockFilter};

/// Ancillary load of a pseudo-random `u32` (`SKF_AD_OFF + SKF_AD_RANDOM`).
const RANDOM: u32 = bpf::AD_OFF + bpf::AD_RANDOM;

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

fn jump(at: usize, code: u16, k: u32, if_true: usize, if_false: usize) -> SockFilter {
    let offset = |to: usize| u8::try_from(to - at - 1).expect("forward jump within the program");
    SockFilter {
        code: bpf::JMP | code | bpf::K,
        jt: offset(if_true),
        jf: offset(if_false),
        k,
    }
}

/// The steering program for a reuseport group of `workers` sockets, joined
/// in worker order.
pub fn program(workers: usize) -> Vec<SockFilter> {
    let workers = u32::try_from(workers.max(1)).unwrap_or(u32::MAX);
    let prog = vec![
        SockFilter::stmt(bpf::LD | bpf::W | bpf::LEN, 0), // 0: A = payload length
        jump(1, bpf::JGE, 16, LOAD_ACTION, FALLBACK),     // 1: too short for a header
        SockFilter::stmt(bpf::LD | bpf::W | bpf::ABS, ACTION_OFFSET), // 2: A = action
        jump(3, bpf::JEQ, 1, ANNOUNCE, 4),                // 3: announce?
        jump(4, bpf::JEQ, 2, SCRAPE, FALLBACK),           // 4: scrape?
        SockFilter::stmt(bpf::LD | bpf::W | bpf::LEN, 0), // 5: announce: length
        jump(6, bpf::JGE, ANNOUNCE_LEN, HASH, FALLBACK),  // 6
        SockFilter::stmt(bpf::LD | bpf::W | bpf::LEN, 0), // 7: scrape: length
        jump(8, bpf::JEQ, ONE_HASH_SCRAPE_LEN, HASH, FALLBACK), // 8: one hash only
        SockFilter::stmt(bpf::LD | bpf::W | bpf::ABS, HASH_OFFSET), // 9: A = hash[0..4] big-endian
        SockFilter::stmt(bpf::ALU | bpf::MOD | bpf::K, workers), // 10: A %= workers
        SockFilter::stmt(bpf::RET | bpf::A, 0),           // 11: the owner's socket
        SockFilter::stmt(bpf::LD | bpf::W | bpf::ABS, RANDOM), // 12: A = random
        SockFilter::stmt(bpf::ALU | bpf::MOD | bpf::K, workers), // 13: A %= workers
        SockFilter::stmt(bpf::RET | bpf::A, 0),           // 14: any worker's socket
    ];
    debug_assert_eq!(prog.len(), FALLBACK + 3);
    prog
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_has_the_documented_shape() {
        let p = program(4);
        assert_eq!(p.len(), 15);
        assert_eq!((p[10].k, p[13].k), (4, 4));
        assert_eq!(p[12], SockFilter::stmt(bpf::LD | bpf::W | bpf::ABS, RANDOM));
        // Every exit returns A % workers: never an index past the workers.
        let exits: Vec<usize> = (0..p.len())
            .filter(|&i| p[i].code & 0x07 == bpf::RET)
            .collect();
        assert_eq!(exits, [11, 14]);
        assert!(exits
            .iter()
            .all(|&i| p[i] == SockFilter::stmt(bpf::RET | bpf::A, 0) && p[i - 1].k == 4));
        assert_eq!((p[1].jt, p[1].jf), (0, 10));
        assert_eq!((p[8].jt, p[8].jf), (0, 3));
    }
}
