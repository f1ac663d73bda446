//! The metrics riptide-udp exports, declared once ([`Metric`] indexes the
//! values, [`DESCS`] describes them), followed in every worker's values by
//! the runtime block every tracker shares (`riptide_common::metrics::RUNTIME`).
//! Names are shared with the other riptide trackers.

use riptide_common::metrics::help::{
    ANNOUNCES as ANN, ERRORS as ERR, PEERS, REQUESTS as REQ, RESPONSES as RESP,
    SCRAPE_HASHES as SCR,
};
use riptide_common::metrics::{Desc, RUNTIME};

riptide_common::metrics_table! {
    /// Index of each riptide-udp series in [`DESCS`] and a worker's values.
    pub enum Metric in DESCS, DESCS_UDP with "proto=\"udp\"" {
        /// `requests_total` (kind=connect, ip=4).
        RequestsConnect4 = Counter("requests_total", "kind=\"connect\",ip=\"4\"", REQ),
        /// `requests_total` (kind=connect, ip=6).
        RequestsConnect6 = Counter("requests_total", "kind=\"connect\",ip=\"6\"", REQ),
        /// `requests_total` (kind=announce, ip=4).
        RequestsAnnounce4 = Counter("requests_total", "kind=\"announce\",ip=\"4\"", REQ),
        /// `requests_total` (kind=announce, ip=6).
        RequestsAnnounce6 = Counter("requests_total", "kind=\"announce\",ip=\"6\"", REQ),
        /// `requests_total` (kind=scrape, ip=4).
        RequestsScrape4 = Counter("requests_total", "kind=\"scrape\",ip=\"4\"", REQ),
        /// `requests_total` (kind=scrape, ip=6).
        RequestsScrape6 = Counter("requests_total", "kind=\"scrape\",ip=\"6\"", REQ),
        /// `responses_total` (kind=connect, ip=4).
        ResponsesConnect4 = Counter("responses_total", "kind=\"connect\",ip=\"4\"", RESP),
        /// `responses_total` (kind=connect, ip=6).
        ResponsesConnect6 = Counter("responses_total", "kind=\"connect\",ip=\"6\"", RESP),
        /// `responses_total` (kind=announce, ip=4).
        ResponsesAnnounce4 = Counter("responses_total", "kind=\"announce\",ip=\"4\"", RESP),
        /// `responses_total` (kind=announce, ip=6).
        ResponsesAnnounce6 = Counter("responses_total", "kind=\"announce\",ip=\"6\"", RESP),
        /// `responses_total` (kind=scrape, ip=4).
        ResponsesScrape4 = Counter("responses_total", "kind=\"scrape\",ip=\"4\"", RESP),
        /// `responses_total` (kind=scrape, ip=6).
        ResponsesScrape6 = Counter("responses_total", "kind=\"scrape\",ip=\"6\"", RESP),
        /// `responses_total` (kind=error, ip=4).
        ResponsesError4 = Counter("responses_total", "kind=\"error\",ip=\"4\"", RESP),
        /// `responses_total` (kind=error, ip=6).
        ResponsesError6 = Counter("responses_total", "kind=\"error\",ip=\"6\"", RESP),
        /// `errors_total` (reason=malformed).
        ErrorsMalformed = Counter("errors_total", "reason=\"malformed\"", ERR),
        /// `errors_total` (reason=unanswerable).
        ErrorsUnanswerable = Counter("errors_total", "reason=\"unanswerable\"", ERR),
        /// `errors_total` (reason=connection_id_forged).
        ErrorsConnectionIdForged = Counter("errors_total", "reason=\"connection_id_forged\"", ERR),
        /// `errors_total` (reason=connection_id_expired).
        ErrorsConnectionIdExpired = Counter("errors_total", "reason=\"connection_id_expired\"", ERR),
        /// `errors_total` (reason=connection_id_future).
        ErrorsConnectionIdFuture = Counter("errors_total", "reason=\"connection_id_future\"", ERR),
        /// `errors_total` (reason=access_denied).
        ErrorsAccessDenied = Counter("errors_total", "reason=\"access_denied\"", ERR),
        /// `errors_total` (reason=send_queue_full).
        ErrorsSendQueueFull = Counter("errors_total", "reason=\"send_queue_full\"", ERR),
        /// `errors_total` (reason=scrape_abandoned).
        ErrorsScrapeAbandoned = Counter("errors_total", "reason=\"scrape_abandoned\"", ERR),
        /// `announces_total` (path=local).
        AnnouncesLocal = Counter("announces_total", "path=\"local\"", ANN),
        /// `announces_total` (path=forwarded).
        AnnouncesForwarded = Counter("announces_total", "path=\"forwarded\"", ANN),
        /// `scrape_hashes_total` (path=local).
        ScrapesLocal = Counter("scrape_hashes_total", "path=\"local\"", SCR),
        /// `scrape_hashes_total` (path=forwarded).
        ScrapesForwarded = Counter("scrape_hashes_total", "path=\"forwarded\"", SCR),
        /// `mesh_messages_total` (dir=sent).
        MeshSent = Counter("mesh_messages_total", "dir=\"sent\"", "Messages pushed to or drained from the inter-worker rings."),
        /// `mesh_messages_total` (dir=received).
        MeshReceived = Counter("mesh_messages_total", "dir=\"received\"", "Messages pushed to or drained from the inter-worker rings."),
        /// `mesh_full_total`.
        MeshFull = Counter("mesh_full_total", "", "Messages refused because the ring to their worker was full (back-pressure)."),
        /// `steering_refused_total`.
        SteeringRefused = Counter("steering_refused_total", "", "1 when the kernel refused the steering BPF program."),
        /// `bytes_received_total`.
        BytesReceived = Counter("bytes_received_total", "", "UDP payload bytes received."),
        /// `bytes_sent_total`.
        BytesSent = Counter("bytes_sent_total", "", "UDP payload bytes queued for sending."),
        /// `torrents`.
        Torrents = Gauge("torrents", "", "Torrents in this worker's shard."),
        /// `peers` (state=seeder, ip=4).
        Seeders4 = Gauge("peers", "state=\"seeder\",ip=\"4\"", PEERS),
        /// `peers` (state=seeder, ip=6).
        Seeders6 = Gauge("peers", "state=\"seeder\",ip=\"6\"", PEERS),
        /// `peers` (state=leecher, ip=4).
        Leechers4 = Gauge("peers", "state=\"leecher\",ip=\"4\"", PEERS),
        /// `peers` (state=leecher, ip=6).
        Leechers6 = Gauge("peers", "state=\"leecher\",ip=\"6\"", PEERS),
    }
}

/// riptide-udp's series, then the runtime block (at `DESCS.len()`).
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
