//! riptide-ws's I/O on uring-rt: per-worker `SO_REUSEPORT` listeners (ws://
//! and, with `[tls]`, wss://), the [`worker::WsWorker`] handler, and the
//! records workers exchange through the byte mesh ([`relay`]). [`Ws`] says
//! what riptide-ws is to the stream trackers' shared start-up
//! ([`WsService`]).

pub mod relay;
pub mod worker;

use crate::config::WsConfig;
use crate::metrics::{Metric, DESCS};
use riptide_common::config::TlsConfig;
use riptide_common::metrics::Desc;
use riptide_stream::{
    FrontSeries, ProxyKeys, Seat, StreamListeners, StreamService, StreamState, StreamTracker,
};
use std::sync::Arc;
use std::time::Duration;
use uring_rt::RuntimeConfig;
use worker::{ConnState, WsWorker};

/// What every worker reads from the config, resolved once.
#[derive(Debug)]
pub struct Settings {
    /// `interval` of announce replies, seconds.
    pub interval: u32,
    /// Seconds without an announce before a peer is dropped.
    pub peer_timeout: u32,
    /// Time between cleaning passes.
    pub clean_interval: Duration,
    /// Time to send the whole upgrade request.
    pub handshake_timeout: Duration,
    /// Time a connection may stay silent.
    pub idle_timeout: Duration,
    /// Longest upgrade request head.
    pub max_head_len: usize,
    /// Longest message (and frame).
    pub max_message_len: usize,
    /// Offers relayed per announce.
    pub max_offers: usize,
    /// Longest SDP.
    pub max_sdp_len: usize,
    /// Seconds an offer waits for its answer.
    pub offer_timeout: u32,
    /// Torrents one connection may join.
    pub max_torrents: usize,
    /// Most hashes per scrape.
    pub max_scrape_hashes: usize,
}

impl Settings {
    /// From a validated config.
    pub fn from_config(c: &WsConfig) -> Settings {
        let w = &c.ws;
        Settings {
            interval: c.protocol.announce_interval,
            peer_timeout: c.cleaning.peer_timeout,
            clean_interval: Duration::from_secs(u64::from(c.cleaning.interval)),
            handshake_timeout: Duration::from_secs(u64::from(w.handshake_timeout)),
            idle_timeout: Duration::from_secs(u64::from(w.idle_timeout)),
            max_head_len: 8192,
            max_message_len: w.max_message_bytes,
            max_offers: w.max_offers,
            max_sdp_len: w.max_sdp_bytes,
            offer_timeout: w.offer_timeout,
            max_torrents: w.max_torrents_per_connection,
            max_scrape_hashes: w.max_scrape_hashes,
        }
    }
}

/// What `bind` prepared: each worker's listeners (with "speaks TLS"), and
/// the certificates, loaded while the files are still readable as root.
pub type Bound = StreamListeners;

/// riptide-ws for the shared start-up sequence.
pub type WsService = StreamService<Ws>;

/// riptide-ws as a stream tracker: its workers share its [`Settings`].
pub struct Ws;

impl StreamTracker for Ws {
    type Config = WsConfig;
    type State = Arc<Settings>;
    type Conn = ConnState;
    type Worker<M: Copy + Send + 'static> = WsWorker<M>;
    const SERIES: &'static [Desc] = DESCS;
    const SCHEMES: (&'static str, &'static str) = ("ws", "wss");
    // A refused PROXY header counts as a refused handshake.
    const FRONT_SERIES: FrontSeries = FrontSeries {
        bytes_received: Metric::BytesReceived.index(),
        tls_handshakes: Metric::TlsHandshakes.index(),
        tls_failures: Metric::TlsHandshakeFailures.index(),
        untrusted_proxy: Metric::ErrorsUntrustedProxy.index(),
        bad_proxy_header: Metric::ErrorsHandshake.index(),
        mesh_full: Metric::ErrorsMeshFull.index(),
    };

    fn tls(config: &WsConfig) -> &TlsConfig {
        &config.tls
    }

    fn proxy_keys(config: &WsConfig) -> ProxyKeys<'_> {
        let w = &config.ws;
        ProxyKeys {
            section: "ws",
            trusted_proxies: &w.trusted_proxies,
            forwarded_header: &w.forwarded_header,
            proxy_protocol: w.proxy_protocol,
        }
    }

    fn runtime_config(config: &WsConfig, workers: usize, base: &RuntimeConfig) -> RuntimeConfig {
        runtime_config(config, workers, base)
    }

    fn state(config: &WsConfig, _: &StreamState, _: usize) -> Arc<Settings> {
        Arc::new(Settings::from_config(config))
    }

    fn worker<M: Copy + Send + 'static>(
        seat: Seat<ConnState>,
        settings: Arc<Settings>,
    ) -> WsWorker<M> {
        WsWorker::new(seat, settings)
    }
}

/// `base` with what riptide-ws needs of the runtime: its connection limit,
/// the per-connection send bound (slow readers), the byte mesh for offers
/// and answers between workers, pinning.
pub fn runtime_config(config: &WsConfig, workers: usize, base: &RuntimeConfig) -> RuntimeConfig {
    let max_message = config.ws.max_message_bytes;
    // The longest record: an announce (no longer than its message) or a
    // relayed offer or answer with every SDP byte escaped.
    let max_record = (max_message + 1024)
        .max(relay::DELIVER_HEAD + crate::protocol::relayed_max_len(config.ws.max_sdp_bytes));
    RuntimeConfig {
        workers,
        cores: riptide_common::pinning::worker_cores(&config.cpu_pinning),
        max_connections: config.ws.max_connections,
        max_outbound_bytes: config.ws.max_outbound_bytes,
        tcp_send_chunk: worker::DIRECT_MAX as u32,
        // A fragmented message waits whole in the carry.
        max_inbound_bytes: base.max_inbound_bytes.max(2 * max_message + 1024),
        byte_mesh_ring_bytes: if workers > 1 {
            (4 << 20).max(4 * max_record)
        } else {
            0
        },
        byte_mesh_max_record: max_record,
        ..base.clone()
    }
}
