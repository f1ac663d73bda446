//! riptide-http's I/O on uring-rt: per-worker `SO_REUSEPORT` listeners,
//! the [`worker::HttpWorker`] handler, and the records workers exchange
//! through the byte mesh ([`relay`]). [`HttpService`] plugs all of it into
//! the shared start-up sequence (`riptide_common::startup`).

pub mod full_scrape;
pub mod relay;
pub mod worker;

use crate::config::HttpConfig;
use crate::metrics::TABLES;
use crate::protocol::ParseConfig;
use riptide_common::access_list::SharedAccessList;
use riptide_common::metrics::Desc;
use riptide_common::startup::{BoundAddrs, Service, Started};
use riptide_stream::{bind_stream_listeners, CertStore, StreamListeners, TrustedProxies};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uring_rt::RuntimeConfig;
use worker::{HttpWorker, MetricsPlace};

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
    /// Every connection starts with a PROXY header.
    pub proxy_protocol: bool,
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
            proxy_protocol: c.http.proxy_protocol,
        }
    }
}

/// What every worker shares: read-only, or swapped atomically.
#[derive(Clone)]
pub struct ServerState {
    /// From the config.
    pub settings: Arc<Settings>,
    /// The request parser's limits.
    pub parse: ParseConfig<'static>,
    /// The access list, reloaded on SIGUSR1.
    pub access_list: SharedAccessList,
    /// Certificate and key of the TLS listeners, reloaded on SIGUSR1.
    pub certs: Option<Arc<CertStore>>,
    /// Proxies whose forwarded-for and PROXY headers are believed.
    pub trusted: Arc<TrustedProxies>,
    /// Process start: the epoch of the swarm's coarse seconds.
    pub start: Instant,
    /// The full scrape's parts and cached body, when it is offered.
    pub full_scrape: Option<Arc<full_scrape::FullScrape>>,
}

/// What `bind` prepared: each worker's listeners (with "speaks TLS"), and
/// the certificates, loaded while the files are still readable as root.
pub type Bound = StreamListeners;

/// riptide-http for the shared start-up sequence.
pub struct HttpService;

impl Service for HttpService {
    type Config = HttpConfig;
    type Bound = Bound;
    const METRICS: &'static [&'static [Desc]] = TABLES;

    fn probe_verdict(probe: &uring_rt::Probe) -> (Vec<&'static str>, &'static str) {
        (
            probe.missing_for_tcp(),
            "riptide-http needs them and will not start",
        )
    }

    fn bind(config: &HttpConfig, started: &Started) -> anyhow::Result<(Self::Bound, BoundAddrs)> {
        bind_stream_listeners(
            "riptide-http",
            &config.network,
            &config.tls,
            started.workers,
            ("http", "https"),
        )
    }

    fn serve(config: HttpConfig, bound: Self::Bound, started: Started) -> anyhow::Result<()> {
        let workers = started.workers;
        // No UDP here: the datagram buffer ring stays small.
        let base = RuntimeConfig {
            recv_buffers: 16,
            ..RuntimeConfig::default()
        };
        let rt = runtime_config(&config, workers, &base);
        let handlers: Vec<HttpWorker<()>> =
            HttpService::workers(&config, bound, &started, |i| MetricsPlace {
                values: Arc::clone(&started.metrics[i]),
                base: 0,
                runtime_base: Some(crate::metrics::DESCS.len()),
            })?;
        log::info!("{workers} workers");
        uring_rt::run(&rt, handlers).map_err(|e| anyhow::anyhow!("runtime: {e}"))?;
        Ok(())
    }
}

impl HttpService {
    /// One worker per listener set of `bound`, each with its series where
    /// `place(i)` says (also used by a process that serves more than HTTP).
    pub fn workers<M: Copy + Send + 'static>(
        config: &HttpConfig,
        bound: Bound,
        started: &Started,
        place: impl Fn(usize) -> MetricsPlace,
    ) -> anyhow::Result<Vec<HttpWorker<M>>> {
        let workers = started.workers;
        let settings = Arc::new(Settings::from_config(config));
        let trusted = TrustedProxies::parse(&config.http.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("http.trusted_proxies: {e}"))?;
        // The header name lives as long as the process (parsed per request).
        let forwarded: &'static str =
            Box::leak(config.http.forwarded_header.clone().into_boxed_str());
        let state = ServerState {
            parse: ParseConfig {
                max_head_len: settings.max_head_len,
                max_scrape_hashes: settings.max_scrape_hashes,
                full_scrape: config.http.full_scrape,
                forwarded_header: (!trusted.is_empty() && !forwarded.is_empty())
                    .then_some(forwarded),
            },
            settings,
            access_list: started.access_list.clone(),
            certs: bound.certs,
            trusted: Arc::new(trusted),
            start: Instant::now(),
            full_scrape: config.http.full_scrape.then(|| {
                Arc::new(full_scrape::FullScrape::new(
                    workers,
                    Duration::from_secs(u64::from(config.http.full_scrape_interval)),
                ))
            }),
        };
        Ok(bound
            .per_worker
            .into_iter()
            .enumerate()
            .map(|(i, listeners)| HttpWorker::new(i, workers, state.clone(), listeners, place(i)))
            .collect())
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
