//! The byte mesh inside the runtime: worker 0 sends requests of 1 B to
//! 64 KiB to worker 1, pushing until the ring refuses and retrying on
//! `on_mesh_space`; worker 1 answers each on the reply lane (which the full
//! request ring cannot block) with its sequence number and a checksum;
//! worker 0 checks that every answer comes back, in order and intact.

mod common;

use std::time::Duration;
use uring_rt::mesh::bytes::{Lane, PushError};
use uring_rt::{Ctx, Handler};

const RECORDS: u32 = 3000;
const MAX: usize = 64 * 1024;

fn size_of_record(seq: u32) -> usize {
    // 1 B, 64 KiB, and a spread in between.
    match seq % 7 {
        0 => 1,
        1 => MAX,
        _ => 1 + (seq as usize * 7919) % MAX,
    }
}

fn byte(seq: u32, i: usize) -> u8 {
    (seq as usize * 31 + i * 7) as u8
}

fn checksum(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}

#[derive(Default)]
struct Peer {
    next_send: u32,
    next_answer: u32,
    refused: u32,
    space_calls: u32,
    bad: u32,
    answered: u32,
}

impl Peer {
    fn pump(&mut self, ctx: &mut Ctx<()>) {
        while self.next_send < RECORDS {
            let seq = self.next_send;
            let len = size_of_record(seq);
            let r = ctx.mesh_push_with(1, Lane::Request, 4 + len, |buf| {
                buf[..4].copy_from_slice(&seq.to_le_bytes());
                for (i, b) in buf[4..].iter_mut().enumerate() {
                    *b = byte(seq, i);
                }
                4 + len
            });
            match r {
                Ok(()) => self.next_send += 1,
                Err(PushError::Full) => {
                    self.refused += 1;
                    return;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
}

impl Handler for Peer {
    type Msg = ();
    fn on_start(&mut self, ctx: &mut Ctx<()>) {
        ctx.add_timer(Duration::from_secs(30), 0);
        if ctx.worker() == 0 {
            self.pump(ctx);
        }
    }
    fn on_mesh_record(&mut self, ctx: &mut Ctx<()>, from: usize, lane: Lane, record: &mut [u8]) {
        let seq = u32::from_le_bytes(record[..4].try_into().unwrap());
        if ctx.worker() == 1 {
            assert_eq!((from, lane), (0, Lane::Request));
            let body = &record[4..];
            let ok = body.len() == size_of_record(seq)
                && body.iter().enumerate().all(|(i, &b)| b == byte(seq, i));
            if !ok {
                self.bad += 1;
            }
            let mut answer = [0u8; 12];
            answer[..4].copy_from_slice(&seq.to_le_bytes());
            answer[4..].copy_from_slice(&checksum(body).to_le_bytes());
            // The reply lane has room whatever the requests do.
            ctx.mesh_push(0, Lane::Reply, &answer).unwrap();
            self.answered += 1;
            if self.answered == RECORDS {
                ctx.stop();
            }
        } else {
            assert_eq!((from, lane), (1, Lane::Reply));
            let want: Vec<u8> = (0..size_of_record(seq)).map(|i| byte(seq, i)).collect();
            if seq != self.next_answer || record[4..] != checksum(&want).to_le_bytes() {
                self.bad += 1;
            }
            self.next_answer += 1;
            if self.next_answer == RECORDS {
                ctx.stop();
            }
        }
    }
    fn on_mesh_space(&mut self, ctx: &mut Ctx<()>, to: usize, lane: Lane) {
        assert_eq!((to, lane), (1, Lane::Request));
        self.space_calls += 1;
        self.pump(ctx);
    }
    fn on_timer(&mut self, ctx: &mut Ctx<()>, _: u64) {
        ctx.stop_all();
    }
}

#[test]
fn records_of_1_b_to_64_kib_round_trip_in_order_through_full_rings() {
    if common::skip_udp() {
        return;
    }
    let mut cfg = common::small(2);
    cfg.byte_mesh_ring_bytes = 256 * 1024;
    cfg.byte_mesh_max_record = MAX + 4;
    let hs = uring_rt::run(&cfg, vec![Peer::default(), Peer::default()]).unwrap();
    let (a, b) = (&hs[0], &hs[1]);
    assert_eq!(b.answered, RECORDS, "requests lost");
    assert_eq!(a.next_answer, RECORDS, "answers lost");
    assert_eq!(a.bad + b.bad, 0, "records corrupted or out of order");
    assert!(a.refused > 0, "the request ring never filled");
    assert!(a.space_calls > 0, "on_mesh_space never came");
}
