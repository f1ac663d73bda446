//! Codec benchmarks: parse a WebTorrent announce with 5 offers (680-byte
//! SDPs, 4.3 KB of JSON) and an answer, read a masked 4 KiB text frame,
//! write a relayed offer and an announce reply. Before timing, checks that
//! none of these allocates once the buffers are warm (a counting global
//! allocator, `stats_alloc`, so no unsafe code here).
//! `cargo bench -p riptide-ws --bench protocol`.

// criterion_group! generates an undocumented public fn.
#![allow(missing_docs)]

use std::alloc::System;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use riptide_ws::protocol::{
    announce_reply_max_len, parse_message, relayed_max_len, write_announce_reply,
    write_client_frame, write_frame, write_relayed, ClientMessage, Flow, FrameLimits, FrameReader,
    InfoHash, Message, MessageLimits, Opcode, ParseBuffers, Relayed, Role,
};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ANNOUNCE: &[u8] = include_bytes!("../fuzz/seeds/message/announce_offers");
const ANSWER: &[u8] = include_bytes!("../fuzz/seeds/message/answer");
const MAX_MESSAGE_LEN: usize = 64 * 1024;

fn parse_offers(text: &mut [u8], bufs: &mut ParseBuffers) -> usize {
    match parse_message(text, &MessageLimits::default(), bufs) {
        Ok(ClientMessage::Announce(a)) => {
            a.offers.iter().map(|o| o.sdp.sdp.len()).sum::<usize>()
                + a.answer.map_or(0, |x| x.sdp.sdp.len())
        }
        other => panic!("{other:?}"),
    }
}

fn masked_4k() -> Vec<u8> {
    let mut text = ANNOUNCE[..4096].to_vec();
    text.iter_mut()
        .filter(|b| **b >= 0x80)
        .for_each(|b| *b = b'x');
    let mut frame = vec![0u8; 4096 + 14];
    let n = write_client_frame(&mut frame, Opcode::Text, [0x37, 0xfa, 0x21, 0x3d], &text);
    frame.truncate(n);
    frame
}

fn read_frames(buf: &mut [u8], reader: &mut FrameReader) -> usize {
    let limits = FrameLimits {
        role: Role::Server,
        max_message_len: MAX_MESSAGE_LEN,
    };
    let mut len = 0;
    let n = reader
        .read(buf, &limits, |m| {
            if let Message::Text(t) = m {
                len += t.len();
            }
            Flow::Continue
        })
        .unwrap();
    n + len
}

/// What the timed code does, once more, under a counting allocator.
fn assert_no_allocation() {
    let mut bufs = ParseBuffers::new(MAX_MESSAGE_LEN);
    let mut texts: Vec<Vec<u8>> = (0..20).map(|_| ANNOUNCE.to_vec()).collect();
    texts.extend((0..20).map(|_| ANSWER.to_vec()));
    let mut frames: Vec<Vec<u8>> = (0..20).map(|_| masked_4k()).collect();
    let mut out = vec![0u8; 64 * 1024];
    // Warm up: the buffers grow to the largest message once.
    parse_offers(&mut ANNOUNCE.to_vec(), &mut bufs);
    let region = Region::new(GLOBAL);
    for t in &mut texts {
        black_box(parse_offers(t, &mut bufs));
    }
    for f in &mut frames {
        black_box(read_frames(f, &mut FrameReader::default()));
    }
    black_box(write_some(&mut out));
    let stats = region.change();
    assert_eq!(
        (stats.allocations, stats.reallocations),
        (0, 0),
        "the protocol hot path allocated: {stats:?}"
    );
}

const SDP: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=candidate:1467250027 1 udp 2122260223 192.168.1.23 56143 typ host generation 0 network-id 1\r\na=candidate:3163728923 1 udp 1686052607 198.51.100.7 56143 typ srflx raddr 192.168.1.23 rport 56143 generation 0 network-id 1\r\na=ice-ufrag:ZJ9y\r\na=ice-pwd:k8eYbmKzB0nTN3ePq0vRk+3W\r\na=ice-options:trickle\r\na=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CD:87:32:BE:DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:D6:BC\r\na=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n";

/// The relayed offer both benchmarks write: info hash, sender, offer id,
/// SDP.
fn offer() -> (
    InfoHash,
    [u8; 20],
    riptide_ws::protocol::OfferId,
    riptide_ws::protocol::Sdp<'static>,
) {
    let hash = InfoHash(
        *b"\x12\x34\x44\x56\x78\x9a\xbc\xde\xf1\x23\x45\x67\x89\xab\xcd\xef\x12\x34\x56\x78",
    );
    let from = *b"-WW0207-\xc3\xc2aBcDeFgHiJ";
    let id = riptide_ws::protocol::OfferId::new(b"\xc3\xbf\x00\x7f\x01abcdefghijklmno").unwrap();
    let sdp = riptide_ws::protocol::Sdp {
        kind: "offer",
        sdp: SDP,
    };
    (hash, from, id, sdp)
}

fn write_some(out: &mut [u8]) -> usize {
    let (hash, from, id, sdp) = offer();
    let max = relayed_max_len(SDP.len());
    let n = write_frame(out, Opcode::Text, max, |p| {
        write_relayed(p, Relayed::Offer, &hash, &from, &id, &sdp)
    });
    n + write_announce_reply(&mut out[n..], &hash, 120, 17, 4)
}

fn parse(c: &mut Criterion) {
    assert_no_allocation();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    let mut bufs = ParseBuffers::new(MAX_MESSAGE_LEN);
    g.bench_function("announce_5_offers", |b| {
        b.iter_batched_ref(
            || ANNOUNCE.to_vec(),
            |t| parse_offers(black_box(t), &mut bufs),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("answer", |b| {
        b.iter_batched_ref(
            || ANSWER.to_vec(),
            |t| parse_offers(black_box(t), &mut bufs),
            BatchSize::SmallInput,
        );
    });
    g.finish();

    let mut g = c.benchmark_group("frame");
    g.throughput(Throughput::Bytes(4096));
    let frame = masked_4k();
    g.bench_function("read_masked_4k_text", |b| {
        b.iter_batched_ref(
            || frame.clone(),
            |f| read_frames(black_box(f), &mut FrameReader::default()),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn write(c: &mut Criterion) {
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements(1));
    let (hash, from, id, sdp) = offer();
    let mut out = vec![0u8; relayed_max_len(SDP.len()) + 16];
    g.bench_function("offer_in_frame", |b| {
        b.iter(|| {
            let max = relayed_max_len(SDP.len());
            write_frame(&mut out, Opcode::Text, max, |p| {
                write_relayed(p, Relayed::Offer, black_box(&hash), &from, &id, &sdp)
            })
        });
    });
    g.bench_function("announce_reply", |b| {
        b.iter(|| {
            write_announce_reply(
                &mut out[..announce_reply_max_len()],
                black_box(&hash),
                120,
                17,
                4,
            )
        });
    });
    g.finish();
}

criterion_group!(benches, parse, write);
criterion_main!(benches);
