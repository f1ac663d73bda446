use super::*;
use crate::protocol::{parse_message, ClientMessage, MessageLimits, ParseBuffers};
use uring_rt::ConnId;

fn parse_and_encode(json: &str, conn: PeerConn) -> Vec<u8> {
    let mut text = json.as_bytes().to_vec();
    let limits = MessageLimits::default();
    let mut bufs = ParseBuffers::new(65536);
    let Ok(ClientMessage::Announce(a)) = parse_message(&mut text, &limits, &mut bufs) else {
        panic!("not an announce: {json}");
    };
    let mut out = vec![0; announce_len(&a)];
    let n = write_announce(&mut out, conn, &a);
    assert_eq!(n, out.len(), "announce_len is exact");
    out
}

/// Connection `index` (of generation `generation`) on worker `worker`.
fn peer_conn(worker: u16, index: u32, generation: u32) -> PeerConn {
    PeerConn {
        worker,
        conn: ConnId::from_parts(index, generation),
    }
}

/// The announce record in `rec`.
fn read_announce(rec: &[u8]) -> AnnounceRecord<'_> {
    let Some(Record::Announce(r)) = read(rec) else {
        panic!("not read back");
    };
    r
}

const IH: &str = "\\u0001\\u0002ABCDEFGHIJKLMNOPQ\u{ff}";
const PEER: &str = "-WW0105-abcdefghijkl";

#[test]
fn an_announce_with_offers_reads_back() {
    let json = format!(
        r#"{{"action":"announce","info_hash":"{IH}","peer_id":"{PEER}","numwant":2,"event":"started","left":"0","offers":[{{"offer":{{"type":"offer","sdp":"v=0\r\na=x \"q\""}},"offer_id":"first-offer-id"}},{{"offer":{{"type":"offer","sdp":"v=0\r\n"}},"offer_id":"o2"}}]}}"#
    );
    let conn = peer_conn(3, 17, 5);
    let rec = parse_and_encode(&json, conn);
    let r = read_announce(&rec);
    assert_eq!(r.conn, conn);
    assert_eq!(&r.peer_id, PEER.as_bytes());
    assert_eq!(r.info_hash.0[0..2], [1, 2]);
    assert_eq!(r.info_hash.0[19], 0xff);
    assert_eq!(r.event, SwarmEvent::Update);
    assert!(r.seeder);
    assert!(r.answer.is_none());
    let offers: Vec<_> = r.offers().collect();
    assert_eq!(offers.len(), 2);
    assert_eq!(r.offer_count(), 2);
    assert_eq!(offers[0].0.as_bytes(), b"first-offer-id");
    assert_eq!(offers[0].1.kind, "offer");
    assert_eq!(offers[0].1.sdp, "v=0\r\na=x \"q\"");
    assert_eq!(offers[1].0.as_bytes(), b"o2");
    // Cut short anywhere: refused, never a panic.
    for cut in 0..rec.len() {
        if let Some(Record::Announce(r)) = read(&rec[..cut]) {
            assert!(r.offers().count() < 2, "cut at {cut}");
        }
    }
}

#[test]
fn an_answer_and_a_stop_read_back() {
    let json = format!(
        r#"{{"action":"announce","info_hash":"{IH}","peer_id":"{PEER}","to_peer_id":"-WW0105-mnopqrstuvwx","answer":{{"type":"answer","sdp":"v=0"}},"offer_id":"o2"}}"#
    );
    let conn = peer_conn(0, 1, 1);
    let rec = parse_and_encode(&json, conn);
    let r = read_announce(&rec);
    let (to, offer_id, sdp) = r.answer.expect("the answer");
    assert_eq!(&to, b"-WW0105-mnopqrstuvwx");
    assert_eq!(offer_id.as_bytes(), b"o2");
    assert_eq!((sdp.kind, sdp.sdp), ("answer", "v=0"));
    assert_eq!(r.offer_count(), 0);
    assert!(!r.seeder);

    let stop = format!(
        r#"{{"action":"announce","info_hash":"{IH}","peer_id":"{PEER}","event":"stopped","left":null}}"#
    );
    let rec = parse_and_encode(&stop, conn);
    let r = read_announce(&rec);
    assert_eq!(r.event, SwarmEvent::Stopped);
}

#[test]
fn small_records_read_back() {
    let conn = peer_conn(1, 9, 2);
    let (ih, pid) = (InfoHash([4; 20]), [5u8; 20]);
    let mut b = [0u8; 256];
    let n = write_leave(&mut b, conn, &ih, &pid);
    assert_eq!(n, LEAVE_LEN);
    assert!(
        matches!(read(&b[..n]), Some(Record::Leave(c, h, p)) if c == conn && h == ih && p == pid)
    );

    let n = write_deliver_head(&mut b, conn);
    b[n..n + 2].copy_from_slice(b"{}");
    assert!(matches!(read(&b[..n + 2]), Some(Record::Deliver(c, t)) if c == conn && t == b"{}"));

    let ret = ReturnAddr {
        worker: 1,
        conn: conn.conn,
        seq: 77,
    };
    let n = write_scrape_ask(&mut b, &ret, &[(0, ih), (3, InfoHash([6; 20]))]);
    assert_eq!(n, scrape_ask_len(2));
    let Some(Record::ScrapeAsk(r, pairs)) = read(&b[..n]) else {
        panic!("ask")
    };
    assert_eq!(r, ret);
    let got: Vec<_> = ask_pairs(pairs).collect();
    assert_eq!(got, vec![(0, ih), (3, InfoHash([6; 20]))]);

    let counts = ScrapeCounts {
        complete: 1,
        incomplete: 2,
        downloaded: 3,
    };
    let n = write_scrape_answer(&mut b, &ret, [(3u8, counts)].into_iter());
    assert_eq!(n, scrape_answer_len(1));
    let Some(Record::ScrapeAnswer(r, c)) = read(&b[..n]) else {
        panic!("answer")
    };
    assert_eq!(r, ret);
    assert_eq!(answer_counts(c).collect::<Vec<_>>(), vec![(3, counts)]);
    assert!(read(&[9, 0, 0]).is_none());
}
