//! The metrics riptide-http exports, declared once; the runtime block
//! (`riptide_common::metrics::RUNTIME`) follows them in every worker's
//! values. Names are shared with riptide-udp where the meaning is the same.

use riptide_common::metrics::help::{
    ANNOUNCES as ANN, ERRORS as ERR, PEERS, REQUESTS as REQ, RESPONSES as RESP,
    SCRAPE_HASHES as SCR,
};
use riptide_common::metrics::{Desc, RUNTIME};

riptide_common::metrics_table! {
    /// Index of each riptide-http series in [`DESCS`] and a worker's values.
    pub enum Metric in DESCS, DESCS_HTTP with "proto=\"http\"" {
        /// `requests_total` (announce, IPv4).
        RequestsAnnounce4 = Counter("requests_total", "kind=\"announce\",ip=\"4\"", REQ),
        /// `requests_total` (announce, IPv6).
        RequestsAnnounce6 = Counter("requests_total", "kind=\"announce\",ip=\"6\"", REQ),
        /// `requests_total` (scrape, IPv4).
        RequestsScrape4 = Counter("requests_total", "kind=\"scrape\",ip=\"4\"", REQ),
        /// `requests_total` (scrape, IPv6).
        RequestsScrape6 = Counter("requests_total", "kind=\"scrape\",ip=\"6\"", REQ),
        /// `responses_total` (announce).
        ResponsesAnnounce = Counter("responses_total", "kind=\"announce\"", RESP),
        /// `responses_total` (scrape).
        ResponsesScrape = Counter("responses_total", "kind=\"scrape\"", RESP),
        /// `responses_total` (failure reason, HTTP 200).
        ResponsesFailure = Counter("responses_total", "kind=\"failure\"", RESP),
        /// `responses_total` (HTTP error status).
        ResponsesError = Counter("responses_total", "kind=\"error\"", RESP),
        /// `responses_total` (full scrape).
        ResponsesFullScrape = Counter("responses_total", "kind=\"full_scrape\"", RESP),
        /// `errors_total` (malformed head or smuggling shape).
        ErrorsMalformed = Counter("errors_total", "reason=\"malformed\"", ERR),
        /// `errors_total` (head not complete in time).
        ErrorsHeadTimeout = Counter("errors_total", "reason=\"head_timeout\"", ERR),
        /// `errors_total` (access list).
        ErrorsAccessDenied = Counter("errors_total", "reason=\"access_denied\"", ERR),
        /// `errors_total` (answer did not fit what the connection may queue).
        ErrorsSendQueueFull = Counter("errors_total", "reason=\"send_queue_full\"", ERR),
        /// `errors_total` (the mesh to the owner was full).
        ErrorsMeshFull = Counter("errors_total", "reason=\"mesh_full\"", ERR),
        /// `errors_total` (an answer came back for a connection that moved on).
        ErrorsLateReply = Counter("errors_total", "reason=\"late_reply\"", ERR),
        /// `errors_total` (a second full scrape within the interval).
        ErrorsFullScrapeRate = Counter("errors_total", "reason=\"full_scrape_rate\"", ERR),
        /// `errors_total` (a PROXY header from a peer that is not a trusted proxy).
        ErrorsUntrustedProxy = Counter("errors_total", "reason=\"untrusted_proxy\"", ERR),
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
        /// `peers` (IPv4 seeders).
        Seeders4 = Gauge("peers", "state=\"seeder\",ip=\"4\"", PEERS),
        /// `peers` (IPv6 seeders).
        Seeders6 = Gauge("peers", "state=\"seeder\",ip=\"6\"", PEERS),
        /// `peers` (IPv4 leechers).
        Leechers4 = Gauge("peers", "state=\"leecher\",ip=\"4\"", PEERS),
        /// `peers` (IPv6 leechers).
        Leechers6 = Gauge("peers", "state=\"leecher\",ip=\"6\"", PEERS),
    }
}

/// riptide-http's series, then the runtime block (at `DESCS.len()`).
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
