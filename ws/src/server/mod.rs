//! riptide-ws's I/O on uring-rt: per-worker `SO_REUSEPORT` listeners (ws://
//! and, with `[tls]`, wss://), the [`worker::WsWorker`] handler, and the
//! records workers exchange through the byte mesh ([`relay`]).
//! [`WsService`] plugs all of it into the shared start-up sequence
//! (`riptide_common::startup`).

pub mod relay;
pub mod worker;

use crate::config::WsConfig;
use crate::metrics::TABLES;
use riptide_common::access_list::SharedAccessList;
use riptide_common::metrics::Desc;
use riptide_common::startup::{BoundAddrs, Service, Started};
use riptide_stream::{bind_stream_listeners, CertStore, StreamListeners, TrustedProxies};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uring_rt::RuntimeConfig;
use worker::{MetricsPlace, WsWorker};

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
    /// Every connection starts with a PROXY header.
    pub proxy_protocol: bool,
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
            proxy_protocol: w.proxy_protocol,
        }
    }
}

/// What every worker shares: read-only, or swapped atomically.
#[derive(Clone)]
pub struct ServerState {
    /// From the config.
    pub settings: Arc<Settings>,
    /// The access list, reloaded on SIGUSR1.
    pub access_list: SharedAccessList,
    /// Certificate and key of the wss:// listeners, reloaded on SIGUSR1.
    pub certs: Option<Arc<CertStore>>,
    /// Proxies whose forwarded-for and PROXY headers are believed.
    pub trusted: Arc<TrustedProxies>,
    /// The header naming the client behind a trusted proxy (`None` when no
    /// proxy is trusted).
    pub forwarded_header: Option<&'static str>,
    /// Process start: the epoch of the swarm's coarse seconds.
    pub start: Instant,
}

/// What `bind` prepared: each worker's listeners (with "speaks TLS"), and
/// the certificates, loaded while the files are still readable as root.
pub type Bound = StreamListeners;

/// riptide-ws for the shared start-up sequence.
pub struct WsService;

impl Service for WsService {
    type Config = WsConfig;
    type Bound = Bound;
    const METRICS: &'static [&'static [Desc]] = TABLES;

    fn probe_verdict(probe: &uring_rt::Probe) -> (Vec<&'static str>, &'static str) {
        (
            probe.missing_for_tcp(),
            "riptide-ws needs them and will not start",
        )
    }

    fn bind(config: &WsConfig, started: &Started) -> anyhow::Result<(Self::Bound, BoundAddrs)> {
        bind_stream_listeners(
            "riptide-ws",
            &config.network,
            &config.tls,
            started.workers,
            ("ws", "wss"),
        )
    }

    fn serve(config: WsConfig, bound: Self::Bound, started: Started) -> anyhow::Result<()> {
        let workers = started.workers;
        // No UDP here: the datagram buffer ring stays small.
        let base = RuntimeConfig {
            recv_buffers: 16,
            ..RuntimeConfig::default()
        };
        let rt = runtime_config(&config, workers, &base);
        let handlers: Vec<WsWorker<()>> =
            WsService::workers(&config, bound, &started, |i| MetricsPlace {
                values: Arc::clone(&started.metrics[i]),
                base: 0,
                runtime_base: Some(crate::metrics::DESCS.len()),
            })?;
        log::info!("{workers} workers");
        uring_rt::run(&rt, handlers).map_err(|e| anyhow::anyhow!("runtime: {e}"))?;
        Ok(())
    }
}

impl WsService {
    /// One worker per listener set of `bound`, each with its series where
    /// `place(i)` says (also used by a process that serves more than ws).
    pub fn workers<M: Copy + Send + 'static>(
        config: &WsConfig,
        bound: Bound,
        started: &Started,
        place: impl Fn(usize) -> MetricsPlace,
    ) -> anyhow::Result<Vec<WsWorker<M>>> {
        let workers = started.workers;
        let settings = Arc::new(Settings::from_config(config));
        let trusted = TrustedProxies::parse(&config.ws.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("ws.trusted_proxies: {e}"))?;
        // The header name lives as long as the process.
        let forwarded: &'static str =
            Box::leak(config.ws.forwarded_header.clone().into_boxed_str());
        let state = ServerState {
            forwarded_header: (!trusted.is_empty() && !forwarded.is_empty()).then_some(forwarded),
            settings,
            access_list: started.access_list.clone(),
            certs: bound.certs,
            trusted: Arc::new(trusted),
            start: Instant::now(),
        };
        Ok(bound
            .per_worker
            .into_iter()
            .enumerate()
            .map(|(i, listeners)| WsWorker::new(i, workers, state.clone(), listeners, place(i)))
            .collect())
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
        .max(relay::DELIVER_HEAD + crate::protocol::offer_max_len(config.ws.max_sdp_bytes));
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
