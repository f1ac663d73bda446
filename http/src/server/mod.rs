//! riptide-http's I/O on uring-rt: per-worker `SO_REUSEPORT` listeners,
//! the [`worker::HttpWorker`] handler, and the records workers exchange
//! through the byte mesh ([`relay`]). [`Http`] says what riptide-http is to
//! the stream trackers' shared start-up ([`HttpService`]).

pub mod full_scrape;
pub mod relay;
pub mod worker;

use crate::config::HttpConfig;
use crate::metrics::{Metric, DESCS};
use crate::protocol::ParseConfig;
use riptide_common::config::TlsConfig;
use riptide_common::metrics::Desc;
use riptide_stream::{
    FrontSeries, ProxyKeys, Seat, StreamListeners, StreamService, StreamState, StreamTracker,
};
use std::sync::Arc;
use std::time::Duration;
use uring_rt::RuntimeConfig;
use worker::{ConnState, HttpWorker};

/// What every worker reads from the config, resolved once.
#[derive(Debug)]
pub struct Settings {
    /// `interval` of announce answers, seconds.
    pub interval: u32,
    /// `min interval`, seconds.
    pub min_interval: u32,
    /// Most peers per answer (and the default).
    pub max_numwant: usize,
    /// Seconds without an announce before a peer is dropped.
    pub peer_timeout: u32,
    /// Time between cleaning slices.
    pub clean_interval: Duration,
    /// Time to send a whole head.
    pub head_timeout: Duration,
    /// Time a keep-alive connection may idle.
    pub idle_timeout: Duration,
    /// Requests per connection (0 = no limit).
    pub max_requests: u32,
    /// Longest head.
    pub max_head_len: usize,
    /// Most hashes per scrape.
    pub max_scrape_hashes: usize,
}

impl Settings {
    /// From a validated config.
    pub fn from_config(c: &HttpConfig) -> Settings {
        Settings {
            interval: c.protocol.announce_interval,
            min_interval: c.http.min_interval.min(c.protocol.announce_interval),
            max_numwant: c.protocol.max_numwant as usize,
            peer_timeout: c.cleaning.peer_timeout,
            clean_interval: Duration::from_secs(u64::from(c.cleaning.interval)),
            head_timeout: Duration::from_secs(u64::from(c.http.head_timeout)),
            idle_timeout: Duration::from_secs(u64::from(c.http.idle_timeout)),
            max_requests: c.http.max_requests_per_connection,
            max_head_len: c.http.max_head_bytes,
            max_scrape_hashes: c.http.max_scrape_hashes,
        }
    }
}

/// What every worker shares beyond [`StreamState`]: read-only.
#[derive(Clone)]
pub struct ServerState {
    /// From the config.
    pub settings: Arc<Settings>,
    /// The request parser's limits.
    pub parse: ParseConfig<'static>,
    /// The full scrape's parts and cached body, when it is offered.
    pub full_scrape: Option<Arc<full_scrape::FullScrape>>,
}

/// What `bind` prepared: each worker's listeners (with "speaks TLS"), and
/// the certificates, loaded while the files are still readable as root.
pub type Bound = StreamListeners;

/// riptide-http for the shared start-up sequence.
pub type HttpService = StreamService<Http>;

/// riptide-http as a stream tracker.
pub struct Http;

impl StreamTracker for Http {
    type Config = HttpConfig;
    type State = ServerState;
    type Conn = ConnState;
    type Worker<M: Copy + Send + 'static> = HttpWorker<M>;
    const SERIES: &'static [Desc] = DESCS;
    const SCHEMES: (&'static str, &'static str) = ("http", "https");
    const FRONT_SERIES: FrontSeries = FrontSeries {
        bytes_received: Metric::BytesReceived.index(),
        tls_handshakes: Metric::TlsHandshakes.index(),
        tls_failures: Metric::TlsHandshakeFailures.index(),
        untrusted_proxy: Metric::ErrorsUntrustedProxy.index(),
        bad_proxy_header: Metric::ErrorsMalformed.index(),
        mesh_full: Metric::ErrorsMeshFull.index(),
    };

    fn tls(config: &HttpConfig) -> &TlsConfig {
        &config.tls
    }

    fn proxy_keys(config: &HttpConfig) -> ProxyKeys<'_> {
        let h = &config.http;
        ProxyKeys {
            section: "http",
            trusted_proxies: &h.trusted_proxies,
            forwarded_header: &h.forwarded_header,
            proxy_protocol: h.proxy_protocol,
        }
    }

    fn runtime_config(config: &HttpConfig, workers: usize, base: &RuntimeConfig) -> RuntimeConfig {
        runtime_config(config, workers, base)
    }

    fn state(config: &HttpConfig, shared: &StreamState, workers: usize) -> ServerState {
        let settings = Arc::new(Settings::from_config(config));
        ServerState {
            parse: ParseConfig {
                max_head_len: settings.max_head_len,
                max_scrape_hashes: settings.max_scrape_hashes,
                full_scrape: config.http.full_scrape,
                forwarded_header: shared.forwarded_header,
            },
            settings,
            full_scrape: config.http.full_scrape.then(|| {
                Arc::new(full_scrape::FullScrape::new(
                    workers,
                    Duration::from_secs(u64::from(config.http.full_scrape_interval)),
                ))
            }),
        }
    }

    fn worker<M: Copy + Send + 'static>(
        seat: Seat<ConnState>,
        state: ServerState,
    ) -> HttpWorker<M> {
        HttpWorker::new(seat, state)
    }
}

/// `base` with what riptide-http needs of the runtime: its connection
/// limit, the byte mesh for the hops to a torrent's owner, pinning.
pub fn runtime_config(config: &HttpConfig, workers: usize, base: &RuntimeConfig) -> RuntimeConfig {
    RuntimeConfig {
        workers,
        cores: riptide_common::pinning::worker_cores(&config.cpu_pinning),
        max_connections: config.http.max_connections,
        byte_mesh_ring_bytes: if workers > 1 { 1 << 20 } else { 0 },
        byte_mesh_max_record: 32 * 1024,
        ..base.clone()
    }
}
