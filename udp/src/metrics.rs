//! The metrics riptide-udp exports, as a table of [`Desc`] indexed by
//! [`Metric`]. Names are shared with the other riptide trackers.

use riptide_common::metrics::{Desc, MetricKind};

/// Index of each series in [`DESCS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
#[allow(missing_docs)]
pub enum Metric {
    RequestsConnect4,
    RequestsConnect6,
    RequestsAnnounce4,
    RequestsAnnounce6,
    RequestsScrape4,
    RequestsScrape6,
    ResponsesConnect4,
    ResponsesConnect6,
    ResponsesAnnounce4,
    ResponsesAnnounce6,
    ResponsesScrape4,
    ResponsesScrape6,
    ResponsesError4,
    ResponsesError6,
    ErrorsMalformed,
    ErrorsUnanswerable,
    ErrorsConnectionIdForged,
    ErrorsConnectionIdExpired,
    ErrorsConnectionIdFuture,
    ErrorsAccessDenied,
    ErrorsSendQueueFull,
    ErrorsScrapeAbandoned,
    AnnouncesLocal,
    AnnouncesForwarded,
    ScrapesLocal,
    ScrapesForwarded,
    MeshSent,
    MeshReceived,
    MeshFull,
    MeshWakeups,
    SteeringRefused,
    BytesReceived,
    BytesSent,
    Torrents,
    Seeders4,
    Seeders6,
    Leechers4,
    Leechers6,
    RecvBuffersExhausted,
    RecvBuffersGrown,
    RecvRearms,
    SubmitBatches,
    SubmittedEntries,
    BusyTurns,
}

const fn c(name: &'static str, labels: &'static str, help: &'static str) -> Desc {
    Desc {
        name,
        labels,
        help,
        kind: MetricKind::Counter,
    }
}
const fn g(name: &'static str, labels: &'static str, help: &'static str) -> Desc {
    Desc {
        name,
        labels,
        help,
        kind: MetricKind::Gauge,
    }
}

const REQ: &str = "Requests received, by kind and IP version.";
const RESP: &str = "Responses sent, by kind and IP version.";
const ERR: &str = "Requests dropped or refused, by reason.";
const ANN: &str = "Announces handled on the receiving worker (local) or sent through the mesh to the owner (forwarded).";
const SCR: &str = "Scrape hashes answered on the receiving worker (local) or asked of another worker (forwarded).";

/// Descriptions, in [`Metric`] order.
pub const DESCS: &[Desc] = &[
    c("requests_total", "kind=\"connect\",ip=\"4\"", REQ),
    c("requests_total", "kind=\"connect\",ip=\"6\"", REQ),
    c("requests_total", "kind=\"announce\",ip=\"4\"", REQ),
    c("requests_total", "kind=\"announce\",ip=\"6\"", REQ),
    c("requests_total", "kind=\"scrape\",ip=\"4\"", REQ),
    c("requests_total", "kind=\"scrape\",ip=\"6\"", REQ),
    c("responses_total", "kind=\"connect\",ip=\"4\"", RESP),
    c("responses_total", "kind=\"connect\",ip=\"6\"", RESP),
    c("responses_total", "kind=\"announce\",ip=\"4\"", RESP),
    c("responses_total", "kind=\"announce\",ip=\"6\"", RESP),
    c("responses_total", "kind=\"scrape\",ip=\"4\"", RESP),
    c("responses_total", "kind=\"scrape\",ip=\"6\"", RESP),
    c("responses_total", "kind=\"error\",ip=\"4\"", RESP),
    c("responses_total", "kind=\"error\",ip=\"6\"", RESP),
    c("errors_total", "reason=\"malformed\"", ERR),
    c("errors_total", "reason=\"unanswerable\"", ERR),
    c("errors_total", "reason=\"connection_id_forged\"", ERR),
    c("errors_total", "reason=\"connection_id_expired\"", ERR),
    c("errors_total", "reason=\"connection_id_future\"", ERR),
    c("errors_total", "reason=\"access_denied\"", ERR),
    c("errors_total", "reason=\"send_queue_full\"", ERR),
    c("errors_total", "reason=\"scrape_abandoned\"", ERR),
    c("announces_total", "path=\"local\"", ANN),
    c("announces_total", "path=\"forwarded\"", ANN),
    c("scrape_hashes_total", "path=\"local\"", SCR),
    c("scrape_hashes_total", "path=\"forwarded\"", SCR),
    c(
        "mesh_messages_total",
        "dir=\"sent\"",
        "Messages pushed to or drained from the inter-worker rings.",
    ),
    c(
        "mesh_messages_total",
        "dir=\"received\"",
        "Messages pushed to or drained from the inter-worker rings.",
    ),
    c(
        "mesh_full_total",
        "",
        "Messages refused because the ring to their worker was full (back-pressure).",
    ),
    c(
        "mesh_wakeups_total",
        "",
        "Wake-ups sent to another worker because its ring went from empty to non-empty.",
    ),
    c(
        "steering_refused_total",
        "",
        "1 when the kernel refused the steering BPF program.",
    ),
    c("bytes_received_total", "", "UDP payload bytes received."),
    c(
        "bytes_sent_total",
        "",
        "UDP payload bytes queued for sending.",
    ),
    g("torrents", "", "Torrents in this worker's shard."),
    g(
        "peers",
        "state=\"seeder\",ip=\"4\"",
        "Peers in this worker's shard.",
    ),
    g(
        "peers",
        "state=\"seeder\",ip=\"6\"",
        "Peers in this worker's shard.",
    ),
    g(
        "peers",
        "state=\"leecher\",ip=\"4\"",
        "Peers in this worker's shard.",
    ),
    g(
        "peers",
        "state=\"leecher\",ip=\"6\"",
        "Peers in this worker's shard.",
    ),
    c(
        "recv_buffers_exhausted_total",
        "",
        "Times the io_uring buffer ring ran dry (ENOBUFS).",
    ),
    c(
        "recv_buffers_grown_total",
        "",
        "Times the io_uring buffer ring doubled the buffers in play after running dry.",
    ),
    c(
        "recv_rearms_total",
        "",
        "Times a multishot receive was armed again.",
    ),
    c("uring_submits_total", "", "io_uring submit calls."),
    c(
        "uring_submitted_entries_total",
        "",
        "Submission queue entries submitted (divide by submits for the batch size).",
    ),
    c(
        "uring_busy_turns_total",
        "",
        "Loop turns that skipped the batching wait because the worker was behind (saturation).",
    ),
];

impl Metric {
    /// Index into [`DESCS`] and the worker's values.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_enum() {
        assert_eq!(DESCS.len(), Metric::BusyTurns.index() + 1);
        // Series of one name are adjacent, so HELP/TYPE print once each.
        let mut seen = std::collections::HashSet::new();
        let mut last = "";
        for d in DESCS {
            if d.name != last {
                assert!(seen.insert(d.name), "{} split", d.name);
                last = d.name;
            }
        }
    }
}
