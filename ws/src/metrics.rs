//! The metrics riptide-ws exports, declared once; the runtime block
//! (`riptide_common::metrics::RUNTIME`, with the open connections) follows
//! them in every worker's values. Names are shared with riptide-udp and
//! riptide-http where the meaning is the same.

use riptide_common::metrics::help::{
    ANNOUNCES as ANN, ERRORS as ERR, PEERS, REQUESTS as REQ, RESPONSES as RESP,
    SCRAPE_HASHES as SCR,
};
use riptide_common::metrics::{Desc, RUNTIME};

const RELAYED: &str = "WebRTC offers and answers relayed to another peer's connection.";
const DROPPED: &str = "Offers and answers not relayed, by reason.";
const CLOSES: &str = "WebSocket connections closed by the tracker, by reason.";
const HANDSHAKES: &str = "WebSocket upgrade handshakes, by result.";

riptide_common::metrics_table! {
    /// Index of each riptide-ws series in [`DESCS`] and a worker's values.
    pub enum Metric in DESCS, DESCS_WS with "proto=\"ws\"" {
        /// `requests_total` (announce, IPv4 client).
        RequestsAnnounce4 = Counter("requests_total", "kind=\"announce\",ip=\"4\"", REQ),
        /// `requests_total` (announce, IPv6 client).
        RequestsAnnounce6 = Counter("requests_total", "kind=\"announce\",ip=\"6\"", REQ),
        /// `requests_total` (scrape, IPv4 client).
        RequestsScrape4 = Counter("requests_total", "kind=\"scrape\",ip=\"4\"", REQ),
        /// `requests_total` (scrape, IPv6 client).
        RequestsScrape6 = Counter("requests_total", "kind=\"scrape\",ip=\"6\"", REQ),
        /// `responses_total` (announce reply).
        ResponsesAnnounce = Counter("responses_total", "kind=\"announce\"", RESP),
        /// `responses_total` (scrape reply).
        ResponsesScrape = Counter("responses_total", "kind=\"scrape\"", RESP),
        /// `responses_total` (failure reason).
        ResponsesFailure = Counter("responses_total", "kind=\"failure\"", RESP),
        /// `relayed_total` (offers).
        OffersRelayed = Counter("relayed_total", "kind=\"offer\"", RELAYED),
        /// `relayed_total` (answers).
        AnswersRelayed = Counter("relayed_total", "kind=\"answer\"", RELAYED),
        /// `relay_dropped_total` (the target's connection is gone).
        StaleTargets = Counter("relay_dropped_total", "reason=\"stale_target\"", DROPPED),
        /// `relay_dropped_total` (an answer to no pending offer).
        AnswersUnmatched = Counter("relay_dropped_total", "reason=\"no_pending_offer\"", DROPPED),
        /// `errors_total` (an upgrade request refused).
        ErrorsHandshake = Counter("errors_total", "reason=\"handshake\"", ERR),
        /// `errors_total` (no complete upgrade request in time).
        ErrorsHandshakeTimeout = Counter("errors_total", "reason=\"handshake_timeout\"", ERR),
        /// `errors_total` (a frame broke RFC 6455: close 1002, 1007 or 1009).
        ErrorsFrame = Counter("errors_total", "reason=\"frame\"", ERR),
        /// `errors_total` (a text message that is not a valid WebTorrent message).
        ErrorsMessage = Counter("errors_total", "reason=\"message\"", ERR),
        /// `errors_total` (access list).
        ErrorsAccessDenied = Counter("errors_total", "reason=\"access_denied\"", ERR),
        /// `errors_total` (a `peer_id` held by another live connection).
        ErrorsPeerIdInUse = Counter("errors_total", "reason=\"peer_id_in_use\"", ERR),
        /// `errors_total` (more torrents than one connection may join).
        ErrorsTooManyTorrents = Counter("errors_total", "reason=\"too_many_torrents\"", ERR),
        /// `errors_total` (the mesh to another worker was full).
        ErrorsMeshFull = Counter("errors_total", "reason=\"mesh_full\"", ERR),
        /// `errors_total` (a PROXY header from a peer that is not a trusted proxy).
        ErrorsUntrustedProxy = Counter("errors_total", "reason=\"untrusted_proxy\"", ERR),
        /// `ws_handshakes_total` (upgraded).
        Handshakes = Counter("ws_handshakes_total", "result=\"ok\"", HANDSHAKES),
        /// `ws_closes_total` (a slow reader hit `max_outbound_bytes`).
        ClosesSlowReader = Counter("ws_closes_total", "reason=\"slow_reader\"", CLOSES),
        /// `ws_closes_total` (silent for `idle_timeout`).
        ClosesIdle = Counter("ws_closes_total", "reason=\"idle\"", CLOSES),
        /// `ws_closes_total` (the client sent a close frame; answered with one).
        ClosesByClient = Counter("ws_closes_total", "reason=\"client\"", CLOSES),
        /// `announces_total` (local).
        AnnouncesLocal = Counter("announces_total", "path=\"local\"", ANN),
        /// `announces_total` (forwarded).
        AnnouncesForwarded = Counter("announces_total", "path=\"forwarded\"", ANN),
        /// `scrape_hashes_total` (local).
        ScrapesLocal = Counter("scrape_hashes_total", "path=\"local\"", SCR),
        /// `scrape_hashes_total` (forwarded).
        ScrapesForwarded = Counter("scrape_hashes_total", "path=\"forwarded\"", SCR),
        /// `tls_handshakes_total` (completed).
        TlsHandshakes = Counter("tls_handshakes_total", "result=\"ok\"", "TLS handshakes, by result."),
        /// `tls_handshakes_total` (failed, or the session broke).
        TlsHandshakeFailures = Counter("tls_handshakes_total", "result=\"failed\"", "TLS handshakes, by result."),
        /// `bytes_received_total`.
        BytesReceived = Counter("bytes_received_total", "", "TCP payload bytes received."),
        /// `bytes_sent_total`.
        BytesSent = Counter("bytes_sent_total", "", "TCP payload bytes queued for sending."),
        /// `torrents`.
        Torrents = Gauge("torrents", "", "Torrents in this worker's shard."),
        /// `peers` (seeders).
        Seeders = Gauge("peers", "state=\"seeder\"", PEERS),
        /// `peers` (leechers).
        Leechers = Gauge("peers", "state=\"leecher\"", PEERS),
        /// `pending_offers`.
        PendingOffers = Gauge("pending_offers", "", "Relayed offers waiting for an answer."),
    }
}

/// riptide-ws's series, then the runtime block (at `DESCS.len()`).
pub const TABLES: &[&[Desc]] = &[DESCS, RUNTIME];

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_common::metrics::split_name;

    #[test]
    fn series_of_one_name_are_adjacent() {
        // So HELP/TYPE print once each.
        assert_eq!(split_name(TABLES), None);
    }
}
