use proptest::prelude::*;

use super::*;

/// An owned copy of a [`Message`], for comparing.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Got {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, Vec<u8>),
}

impl From<Message<'_>> for Got {
    fn from(m: Message<'_>) -> Self {
        match m {
            Message::Text(t) => Got::Text(t.to_vec()),
            Message::Binary(b) => Got::Binary(b.to_vec()),
            Message::Ping(p) => Got::Ping(p.to_vec()),
            Message::Pong(p) => Got::Pong(p.to_vec()),
            Message::Close { code, reason } => Got::Close(code, reason.to_vec()),
        }
    }
}

const SERVER: FrameLimits = FrameLimits {
    role: Role::Server,
    max_message_len: 1000,
};
const CLIENT: FrameLimits = FrameLimits {
    role: Role::Client,
    max_message_len: 1 << 20,
};

/// Reads all of `buf` in one call.
fn read_all(buf: &[u8], limits: &FrameLimits) -> (Vec<Got>, Result<usize, CloseCode>) {
    let mut buf = buf.to_vec();
    let mut got = Vec::new();
    let r = FrameReader::default().read(&mut buf, limits, |m| {
        got.push(Got::from(m));
        Flow::Continue
    });
    (got, r)
}

/// Feeds `stream` in pieces of the given sizes (cycled), keeping the
/// unconsumed bytes as the runtime does. Returns the messages, the first
/// error, the largest carry seen, and what was left.
fn feed(
    stream: &[u8],
    sizes: &[usize],
    limits: &FrameLimits,
) -> (Vec<Got>, Option<CloseCode>, usize, usize) {
    let mut reader = FrameReader::default();
    let mut carry = Vec::new();
    let mut got = Vec::new();
    let mut max_carry = 0;
    let mut at = 0;
    let mut i = 0;
    while at < stream.len() {
        let n = sizes[i % sizes.len()].max(1).min(stream.len() - at);
        i += 1;
        carry.extend_from_slice(&stream[at..at + n]);
        at += n;
        match reader.read(&mut carry, limits, |m| {
            got.push(Got::from(m));
            Flow::Continue
        }) {
            Ok(consumed) => {
                assert!(consumed <= carry.len());
                carry.drain(..consumed);
                max_carry = max_carry.max(carry.len());
            }
            Err(e) => return (got, Some(e), max_carry, carry.len()),
        }
        if matches!(got.last(), Some(Got::Close(..))) {
            break;
        }
    }
    (got, None, max_carry, carry.len())
}

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn client(opcode: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0; payload.len() + MAX_HEADER_LEN];
    let n = write_client_fragment(&mut out, opcode, fin, MASK, payload);
    out.truncate(n);
    out
}

#[test]
fn rfc_single_frame_unmasked_text() {
    let (got, r) = read_all(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], &CLIENT);
    assert_eq!(got, [Got::Text(b"Hello".to_vec())]);
    assert_eq!(r, Ok(7));
    let mut out = [0u8; 16];
    let n = write_frame(&mut out, Opcode::Text, 5, |p| {
        p[..5].copy_from_slice(b"Hello");
        5
    });
    assert_eq!(&out[..n], &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}

#[test]
fn rfc_single_frame_masked_text() {
    let wire = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let (got, r) = read_all(&wire, &SERVER);
    assert_eq!(got, [Got::Text(b"Hello".to_vec())]);
    assert_eq!(r, Ok(11));
    assert_eq!(client(Opcode::Text, true, b"Hello"), wire);
    let mut out = [0u8; 16];
    let n = write_client_frame(&mut out, Opcode::Text, MASK, b"Hello");
    assert_eq!(&out[..n], &wire);
    // The server refuses it unmasked, the client refuses it masked.
    assert_eq!(read_all(&wire, &CLIENT).1, Err(CloseCode::PROTOCOL_ERROR));
    let unmasked = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(
        read_all(&unmasked, &SERVER).1,
        Err(CloseCode::PROTOCOL_ERROR)
    );
}

#[test]
fn rfc_fragmented_unmasked_text() {
    let wire = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    let (got, r) = read_all(&wire, &CLIENT);
    assert_eq!(got, [Got::Text(b"Hello".to_vec())]);
    assert_eq!(r, Ok(9));
    // Only the first fragment: nothing consumed, all kept in place.
    let mut buf = wire[..5].to_vec();
    let mut reader = FrameReader::default();
    let n = reader.read(&mut buf, &CLIENT, |_| panic!("no message yet"));
    assert!(reader.in_message());
    let mut carry = buf[n.unwrap()..].to_vec();
    carry.extend_from_slice(&wire[5..]);
    let mut got = Vec::new();
    let n = reader
        .read(&mut carry, &CLIENT, |m| {
            got.push(Got::from(m));
            Flow::Continue
        })
        .unwrap();
    assert_eq!(got, [Got::Text(b"Hello".to_vec())]);
    assert_eq!(n, carry.len());
    assert!(!reader.in_message());
}

#[test]
fn rfc_ping_and_pong() {
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(read_all(&ping, &CLIENT).0, [Got::Ping(b"Hello".to_vec())]);
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(read_all(&pong, &SERVER).0, [Got::Pong(b"Hello".to_vec())]);
    let mut out = [0u8; 16];
    let n = write_ping(&mut out, b"Hello");
    assert_eq!(&out[..n], &ping);
    let n = write_pong(&mut out, b"Hello");
    assert_eq!(&out[..n], &[0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}

#[test]
fn rfc_binary_length_encodings() {
    let mut out = vec![0u8; 70_000];
    let n = write_frame(&mut out, Opcode::Binary, 256, |p| {
        p[..256].fill(7);
        256
    });
    assert_eq!(&out[..4], &[0x82, 0x7e, 0x01, 0x00]);
    assert_eq!(n, 260);
    assert_eq!(
        read_all(&out[..n], &CLIENT),
        (vec![Got::Binary(vec![7; 256])], Ok(260))
    );
    let n = write_frame(&mut out, Opcode::Binary, 65536, |p| {
        p[..65536].fill(9);
        65536
    });
    assert_eq!(
        &out[..10],
        &[0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
    );
    assert_eq!(n, 65546);
    assert_eq!(
        read_all(&out[..n], &CLIENT),
        (vec![Got::Binary(vec![9; 65536])], Ok(65546))
    );
    assert_eq!(frame_header_len(125), 2);
    assert_eq!(frame_header_len(126), 4);
    assert_eq!(frame_header_len(65535), 4);
    assert_eq!(frame_header_len(65536), 10);
}

#[test]
fn write_frame_moves_payload_when_header_shrinks() {
    let mut out = vec![0u8; 70_000];
    // Reserved 10 bytes of header, 3 used: payload moved down by 8... to 2.
    let n = write_frame(&mut out, Opcode::Text, 65_536, |p| {
        p[..3].copy_from_slice(b"abc");
        3
    });
    assert_eq!(&out[..n], &[0x81, 0x03, b'a', b'b', b'c']);
    let n = write_frame(&mut out, Opcode::Text, 200, |p| {
        p[..130].fill(b'x');
        130
    });
    assert_eq!(n, 134);
    assert_eq!(&out[..4], &[0x81, 0x7e, 0, 130]);
    assert!(out[4..134].iter().all(|&b| b == b'x'));
}

#[test]
fn close_frames() {
    let mut out = [0u8; CLOSE_MAX_LEN];
    let n = write_close(&mut out, 1000, "bye");
    assert_eq!(&out[..n], &[0x88, 0x05, 0x03, 0xe8, b'b', b'y', b'e']);
    let n = write_close(&mut out, 1001, &"é".repeat(100));
    assert!(n <= CLOSE_MAX_LEN);
    assert_eq!(usize::from(out[1]), n - 2);
    assert!(std::str::from_utf8(&out[4..n]).is_ok());

    let close = |payload: &[u8]| read_all(&client(Opcode::Close, true, payload), &SERVER);
    assert_eq!(close(b"").0, [Got::Close(None, vec![])]);
    assert_eq!(
        close(b"\x03\xe8bye").0,
        [Got::Close(Some(1000), b"bye".to_vec())]
    );
    assert_eq!(close(b"\x0f\xa0").0, [Got::Close(Some(4000), vec![])]);
    // A one-byte body, then codes a peer may not send (RFC 6455 7.4).
    assert_eq!(close(b"\x03").1, Err(CloseCode::PROTOCOL_ERROR));
    for code in [1005u16, 1006, 1015, 999, 0, 2000, 5000] {
        let bad = code.to_be_bytes();
        assert_eq!(close(&bad).1, Err(CloseCode::PROTOCOL_ERROR), "{code}");
    }
    assert_eq!(close(b"\x03\xe8\xff").1, Err(CloseCode::INVALID_PAYLOAD));
    // The reader stops after a close frame.
    let mut stream = client(Opcode::Close, true, b"\x03\xe8");
    let first = stream.len();
    stream.extend(client(Opcode::Text, true, b"after"));
    let (got, r) = read_all(&stream, &SERVER);
    assert_eq!(got.len(), 1);
    assert_eq!(r, Ok(first));
}

#[test]
fn protocol_errors() {
    let err = |stream: &[u8]| read_all(stream, &SERVER).1;
    // Reserved bits, reserved opcodes.
    for b0 in [0xc1u8, 0xa1, 0x91, 0x83, 0x87, 0x8b, 0x8f] {
        assert_eq!(err(&[b0, 0x80]), Err(CloseCode::PROTOCOL_ERROR), "{b0:#x}");
        assert_eq!(err(&[b0]), Err(CloseCode::PROTOCOL_ERROR), "{b0:#x}");
    }
    // A new data frame inside a fragmented message.
    let mut new_inside = client(Opcode::Text, false, b"a");
    new_inside.extend(client(Opcode::Binary, true, b"b"));
    for (stream, what) in [
        (
            client(Opcode::Ping, true, &[0; 126]),
            "control frame over 125",
        ),
        (vec![0x89, 0xfe], "control frame length over 125"),
        (
            client(Opcode::Ping, false, b"x"),
            "fragmented control frame",
        ),
        (
            client(Opcode::Continuation, true, b"x"),
            "continuation without a start",
        ),
        (new_inside, "new data frame inside a fragmented message"),
        (
            vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0],
            "64-bit length, top bit set",
        ),
    ] {
        assert_eq!(err(&stream), Err(CloseCode::PROTOCOL_ERROR), "{what}");
    }
}

#[test]
fn too_big_is_seen_from_the_header() {
    let err = |stream: &[u8]| read_all(stream, &SERVER).1;
    // Only the header of a 1001-byte frame: refused before any payload.
    assert_eq!(
        err(&[0x81, 0xfe, 0x03, 0xe9]),
        Err(CloseCode::MESSAGE_TOO_BIG)
    );
    assert_eq!(
        err(&[0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0]),
        Err(CloseCode::MESSAGE_TOO_BIG)
    );
    assert_eq!(read_all(&[0x81, 0xfe, 0x03, 0xe8], &SERVER).1, Ok(0));
    // Across fragments: 600 + 401.
    let mut s = client(Opcode::Text, false, &[b'a'; 600]);
    s.extend(&client(Opcode::Continuation, true, &[b'a'; 401])[..4]);
    assert_eq!(err(&s), Err(CloseCode::MESSAGE_TOO_BIG));
    let mut s = client(Opcode::Text, false, &[b'a'; 600]);
    s.extend(client(Opcode::Continuation, true, &[b'a'; 400]));
    assert_eq!(read_all(&s, &SERVER).0, [Got::Text(vec![b'a'; 1000])]);
}

#[test]
fn utf8_is_checked_over_the_whole_message() {
    let err = |stream: &[u8]| read_all(stream, &SERVER).1;
    for bad in [&b"\xff"[..], b"\xc3"] {
        let text = client(Opcode::Text, true, bad);
        assert_eq!(err(&text), Err(CloseCode::INVALID_PAYLOAD), "{bad:?}");
    }
    // "é" split between two fragments is fine.
    let mut s = client(Opcode::Text, false, b"caf\xc3");
    s.extend(client(Opcode::Continuation, true, b"\xa9!"));
    assert_eq!(
        read_all(&s, &SERVER).0,
        [Got::Text("café!".as_bytes().to_vec())]
    );
    // Binary is not checked.
    assert_eq!(
        read_all(&client(Opcode::Binary, true, b"\xff"), &SERVER).0,
        [Got::Binary(vec![0xff])]
    );
}

/// A stream with fragments and control frames between them.
fn interleaved() -> (Vec<u8>, Vec<Got>) {
    let mut s = Vec::new();
    s.extend(client(Opcode::Text, true, b"one"));
    s.extend(client(Opcode::Text, false, b"t"));
    s.extend(client(Opcode::Ping, true, b"p1"));
    s.extend(client(Opcode::Continuation, false, b""));
    s.extend(client(Opcode::Continuation, false, &[b'w'; 300]));
    s.extend(client(Opcode::Pong, true, b""));
    s.extend(client(Opcode::Ping, true, &[b'q'; 125]));
    s.extend(client(Opcode::Continuation, true, b"o"));
    s.extend(client(Opcode::Binary, false, &[1, 2]));
    s.extend(client(Opcode::Continuation, true, &[3]));
    s.extend(client(Opcode::Text, true, b""));
    s.extend(client(Opcode::Close, true, b"\x03\xe8done"));
    let mut two = b"t".to_vec();
    two.extend([b'w'; 300]);
    two.push(b'o');
    let want = vec![
        Got::Text(b"one".to_vec()),
        Got::Ping(b"p1".to_vec()),
        Got::Pong(vec![]),
        Got::Ping(vec![b'q'; 125]),
        Got::Text(two),
        Got::Binary(vec![1, 2, 3]),
        Got::Text(vec![]),
        Got::Close(Some(1000), b"done".to_vec()),
    ];
    (s, want)
}

#[test]
fn control_frames_between_fragments() {
    let (s, want) = interleaved();
    let (got, r) = read_all(&s, &SERVER);
    assert_eq!(got, want);
    assert_eq!(r, Ok(s.len()));
}

#[test]
fn every_piece_size_gives_the_same_messages() {
    let (s, want) = interleaved();
    for size in 1..=s.len() {
        let (got, err, max_carry, left) = feed(&s, &[size], &SERVER);
        assert_eq!(got, want, "size {size}");
        assert_eq!(err, None);
        assert_eq!(left, 0);
        assert!(max_carry <= SERVER.max_carry_len(), "size {size}");
    }
}

#[test]
fn every_split_point_gives_the_same_messages() {
    let (s, want) = interleaved();
    for at in 0..=s.len() {
        let (got, err, _, left) = feed(&s, &[at, s.len()], &SERVER);
        assert_eq!((got, err, left), (want.clone(), None, 0), "split at {at}");
    }
}

#[test]
fn stop_leaves_the_rest_for_later() {
    let (s, want) = interleaved();
    let mut reader = FrameReader::default();
    let mut carry = s.clone();
    let mut got = Vec::new();
    for _ in 0..want.len() {
        let n = reader
            .read(&mut carry, &SERVER, |m| {
                got.push(Got::from(m));
                Flow::Stop
            })
            .unwrap();
        carry.drain(..n);
    }
    assert_eq!(got, want);
    assert!(carry.is_empty());
}

#[test]
fn many_tiny_fragments_keep_the_carry_bounded() {
    // 1-byte fragments, each with a ping after it, fed 7 bytes at a time.
    let mut s = client(Opcode::Text, false, b"a");
    for _ in 0..998 {
        s.extend(client(Opcode::Continuation, false, b"b"));
        s.extend(client(Opcode::Ping, true, b"0123456789"));
    }
    s.extend(client(Opcode::Continuation, true, b"c"));
    for size in [1, 7, 64, 1000, s.len()] {
        let (got, err, max_carry, left) = feed(&s, &[size], &SERVER);
        assert_eq!(err, None);
        assert_eq!(left, 0);
        assert_eq!(got.len(), 999);
        let mut text = b"a".to_vec();
        text.extend([b'b'; 998]);
        text.push(b'c');
        assert_eq!(got.last(), Some(&Got::Text(text)));
        assert!(max_carry <= SERVER.max_carry_len(), "{max_carry}");
    }
}

#[test]
fn reader_state_is_small() {
    assert!(std::mem::size_of::<FrameReader>() <= 16);
}

/// One item of a generated stream.
#[derive(Clone, Debug)]
enum Item {
    /// A data message, its payload cut into fragments at these points,
    /// with control frames after some fragments.
    Data {
        text: bool,
        payload: Vec<u8>,
        cuts: Vec<usize>,
        pings: Vec<Vec<u8>>,
    },
    Ping(Vec<u8>),
    /// A broken frame: everything after it is an error.
    Garbage(Vec<u8>),
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        6 => (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec(0usize..300, 0..6),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..126), 0..4),
        )
            .prop_map(|(text, payload, cuts, pings)| {
                let payload = if text {
                    String::from_utf8_lossy(&payload).into_owned().into_bytes()
                } else {
                    payload
                };
                Item::Data { text, payload, cuts, pings }
            }),
        2 => proptest::collection::vec(any::<u8>(), 0..126).prop_map(Item::Ping),
        1 => proptest::collection::vec(any::<u8>(), 1..20).prop_map(Item::Garbage),
    ]
}

fn encode(items: &[Item]) -> Vec<u8> {
    let mut s = Vec::new();
    for it in items {
        match it {
            Item::Data {
                text,
                payload,
                cuts,
                pings,
            } => {
                let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(payload.len())).collect();
                cuts.sort_unstable();
                cuts.push(payload.len());
                let mut from = 0;
                for (i, &to) in cuts.iter().enumerate() {
                    let opcode = match (i, text) {
                        (0, true) => Opcode::Text,
                        (0, false) => Opcode::Binary,
                        _ => Opcode::Continuation,
                    };
                    s.extend(client(opcode, i + 1 == cuts.len(), &payload[from..to]));
                    if let Some(p) = pings.get(i) {
                        if i + 1 < cuts.len() {
                            s.extend(client(Opcode::Ping, true, p));
                        }
                    }
                    from = to;
                }
            }
            Item::Ping(p) => s.extend(client(Opcode::Ping, true, p)),
            Item::Garbage(g) => s.extend(g),
        }
    }
    s
}

proptest! {
    #[test]
    fn any_pieces_same_as_one_piece(
        items in proptest::collection::vec(item(), 0..8),
        sizes in proptest::collection::vec(1usize..200, 1..8),
    ) {
        let s = encode(&items);
        let (want, want_err, _, want_left) = feed(&s, &[s.len()], &SERVER);
        let (got, err, max_carry, left) = feed(&s, &sizes, &SERVER);
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(err, want_err);
        if err.is_none() && !matches!(got.last(), Some(Got::Close(..))) {
            prop_assert_eq!(left, want_left);
            prop_assert!(max_carry <= SERVER.max_carry_len());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..400),
        role in prop_oneof![Just(Role::Server), Just(Role::Client)],
    ) {
        let limits = FrameLimits { role, max_message_len: 100 };
        let len = bytes.len();
        if let Ok(n) = FrameReader::default().read(&mut bytes, &limits, |_| Flow::Continue) {
            prop_assert!(n <= len);
        }
    }
}
