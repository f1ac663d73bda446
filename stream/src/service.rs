//! A stream tracker (riptide-http, riptide-ws) in the shared start-up
//! sequence (`riptide_common::startup`): [`StreamService`] binds its
//! listener groups, builds one worker per group around what they all share
//! ([`StreamState`]) and runs them, for any protocol that says what it is
//! ([`StreamTracker`]); [`MetricsPlace`] says where a worker's series live.

use crate::{
    bind_stream_listeners, CertStore, Front, FrontSeries, StreamListeners, TrustedProxies,
};
use riptide_common::access_list::SharedAccessList;
use riptide_common::config::{TlsConfig, TrackerConfig};
use riptide_common::metrics::{fill_runtime, Desc, WorkerMetrics, RUNTIME};
use riptide_common::startup::{BoundAddrs, Service, Started};
use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use uring_rt::mesh::bytes::Lane;
use uring_rt::{Ctx, Handler, RuntimeConfig};

/// Where a worker's series live in its values: at `base` (0 alone; after
/// another tracker's in one process), and whether it fills the runtime
/// block (at `runtime_base`).
#[derive(Clone)]
pub struct MetricsPlace {
    /// The worker's values.
    pub values: Arc<WorkerMetrics>,
    /// Index of the worker's first series.
    pub base: usize,
    /// Index of the runtime block, if this worker fills it.
    pub runtime_base: Option<usize>,
}

impl MetricsPlace {
    /// Adds one to `series`.
    #[inline]
    pub fn count(&self, series: impl Into<usize>) {
        self.add(series, 1);
    }

    /// Adds `n` to `series`.
    #[inline]
    pub fn add(&self, series: impl Into<usize>, n: u64) {
        self.values.add(self.base + series.into(), n);
    }

    /// Adds one to the first of `series` for an IPv4 `client`, to the
    /// second for an IPv6 one.
    #[inline]
    pub fn count_by_family<S: Into<usize>>(&self, client: IpAddr, series: [S; 2]) {
        let [v4, v6] = series;
        self.count(if client.is_ipv4() { v4 } else { v6 });
    }

    /// Sets the gauge `series` to `n`.
    #[inline]
    pub fn set(&self, series: impl Into<usize>, n: u64) {
        self.values.set(self.base + series.into(), n);
    }

    /// Copies the runtime's statistics into the runtime block, if this
    /// worker fills it.
    pub fn fill_runtime<M: Copy + Send + 'static>(&self, ctx: &Ctx<M>) {
        if let Some(base) = self.runtime_base {
            fill_runtime(ctx.stats(), ctx.connections(), &self.values, base);
        }
    }
}

/// What every worker of a stream tracker shares, whatever its protocol:
/// read-only, or swapped atomically.
#[derive(Clone)]
pub struct StreamState {
    /// The access list, reloaded on SIGUSR1.
    pub access_list: SharedAccessList,
    /// Certificate and key of the TLS listeners, reloaded on SIGUSR1.
    pub certs: Option<Arc<CertStore>>,
    /// Proxies whose forwarded-for and PROXY headers are believed.
    pub trusted: Arc<TrustedProxies>,
    /// The header naming the client behind a trusted proxy (`None` when
    /// no proxy is trusted).
    pub forwarded_header: Option<&'static str>,
    /// Every connection starts with a PROXY header.
    pub proxy_protocol: bool,
    /// Process start: the epoch of the swarm's coarse seconds.
    pub start: Instant,
}

impl StreamState {
    /// Whole seconds from the start to `at`: the swarm's coarse clock.
    #[inline]
    pub fn secs(&self, at: Instant) -> u32 {
        u32::try_from(at.saturating_duration_since(self.start).as_secs()).unwrap_or(u32::MAX)
    }
}

/// The proxy keys of a stream tracker's config section.
#[derive(Clone, Copy, Debug)]
pub struct ProxyKeys<'a> {
    /// The section's name, for errors (`http`, `ws`).
    pub section: &'static str,
    /// `trusted_proxies`.
    pub trusted_proxies: &'a [String],
    /// `forwarded_header`.
    pub forwarded_header: &'a str,
    /// `proxy_protocol`.
    pub proxy_protocol: bool,
}

/// What a stream tracker's worker is below its protocol, the same for
/// riptide-http and riptide-ws: its place among the workers, its front
/// (listeners and connections, `C` per connection), where its series live,
/// what every worker shares.
pub struct Seat<C> {
    /// Its index among the workers.
    pub id: usize,
    /// How many workers there are.
    pub workers: usize,
    /// Its listeners and connections.
    pub front: Front<C>,
    /// Where its series live.
    pub metrics: MetricsPlace,
    /// What every worker shares.
    pub shared: StreamState,
    /// The series of records the full mesh refused.
    mesh_full: usize,
}

impl<C> Seat<C> {
    /// Pushes a record of at most `len` bytes, written by `write`, to
    /// worker `to` on `lane`; one the full mesh refused is counted.
    /// Returns whether it went.
    pub fn push<M: Copy + Send + 'static>(
        &self,
        ctx: &mut Ctx<M>,
        to: usize,
        lane: Lane,
        len: usize,
        write: impl FnOnce(&mut [u8]) -> usize,
    ) -> bool {
        let pushed = ctx.mesh_push_with(to, lane, len, write).is_ok();
        if !pushed {
            self.metrics.count(self.mesh_full);
        }
        pushed
    }

    /// Logs a mesh record from worker `from` that this worker could not
    /// read (a bug).
    pub fn unreadable_record(&self, from: usize) {
        log::debug!("worker {}: unreadable mesh record from {from}", self.id);
    }
}

/// One stream tracker, as [`StreamService`] starts it.
pub trait StreamTracker {
    /// Its config.
    type Config: TrackerConfig;
    /// What its workers share beyond [`StreamState`], built once.
    type State: Clone;
    /// What its workers keep per connection.
    type Conn;
    /// Its worker, for the runtime's small-mesh message `M`.
    type Worker<M: Copy + Send + 'static>: Handler<Msg = M>;
    /// Its own series, in value order; the runtime block follows when it
    /// runs alone.
    const SERIES: &'static [Desc];
    /// The URL schemes of its plain and TLS listeners.
    const SCHEMES: (&'static str, &'static str);
    /// Where its front counts TLS handshakes and refused connections.
    const FRONT_SERIES: FrontSeries;

    /// Its `[tls]` section.
    fn tls(config: &Self::Config) -> &TlsConfig;

    /// The proxy keys of its own section.
    fn proxy_keys(config: &Self::Config) -> ProxyKeys<'_>;

    /// `base` with what it needs of the runtime.
    fn runtime_config(config: &Self::Config, workers: usize, base: &RuntimeConfig)
        -> RuntimeConfig;

    /// What its workers share beyond [`StreamState`].
    fn state(config: &Self::Config, shared: &StreamState, workers: usize) -> Self::State;

    /// The worker in `seat`.
    fn worker<M: Copy + Send + 'static>(
        seat: Seat<Self::Conn>,
        state: Self::State,
    ) -> Self::Worker<M>;
}

/// A stream tracker `T` for the shared start-up sequence.
pub struct StreamService<T>(PhantomData<T>);

impl<T: StreamTracker> Service for StreamService<T> {
    type Config = T::Config;
    type Bound = StreamListeners;
    const METRICS: &'static [&'static [Desc]] = &[T::SERIES, RUNTIME];

    fn probe_verdict(probe: &uring_rt::Probe) -> (Vec<&'static str>, &'static str) {
        // Said once, for `--probe`.
        let then = format!("{} needs them and will not start", T::Config::NAME);
        (probe.missing_for_tcp(), Box::leak(then.into_boxed_str()))
    }

    fn bind(
        config: &T::Config,
        started: &Started,
    ) -> anyhow::Result<(StreamListeners, BoundAddrs)> {
        let network = config.common().network;
        let tls = T::tls(config);
        bind_stream_listeners(T::Config::NAME, network, tls, started.workers, T::SCHEMES)
    }

    fn serve(config: T::Config, bound: StreamListeners, started: Started) -> anyhow::Result<()> {
        let workers = started.workers;
        // No UDP here: the datagram buffer ring stays small.
        let base = RuntimeConfig {
            recv_buffers: 16,
            ..RuntimeConfig::default()
        };
        let rt = T::runtime_config(&config, workers, &base);
        let handlers: Vec<T::Worker<()>> =
            Self::workers(&config, bound, &started, |i| MetricsPlace {
                values: Arc::clone(&started.metrics[i]),
                base: 0,
                runtime_base: Some(T::SERIES.len()),
            })?;
        log::info!("{workers} workers");
        uring_rt::run(&rt, handlers).map_err(|e| anyhow::anyhow!("runtime: {e}"))?;
        Ok(())
    }
}

impl<T: StreamTracker> StreamService<T> {
    /// One worker per listener set of `bound`, each with its series where
    /// `place(i)` says (also used by a process that serves more than one
    /// protocol).
    pub fn workers<M: Copy + Send + 'static>(
        config: &T::Config,
        bound: StreamListeners,
        started: &Started,
        place: impl Fn(usize) -> MetricsPlace,
    ) -> anyhow::Result<Vec<T::Worker<M>>> {
        let workers = started.workers;
        let keys = T::proxy_keys(config);
        let trusted = TrustedProxies::parse(keys.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("{}.trusted_proxies: {e}", keys.section))?;
        // The header name lives as long as the process (parsed per request).
        let forwarded: &'static str = Box::leak(keys.forwarded_header.into());
        let shared = StreamState {
            access_list: started.access_list.clone(),
            certs: bound.certs,
            forwarded_header: (!trusted.is_empty() && !forwarded.is_empty()).then_some(forwarded),
            trusted: Arc::new(trusted),
            proxy_protocol: keys.proxy_protocol,
            start: Instant::now(),
        };
        let state = T::state(config, &shared, workers);
        Ok(bound
            .per_worker
            .into_iter()
            .enumerate()
            .map(|(id, listeners)| {
                let metrics = place(id);
                let front = Front::new(listeners, &shared, metrics.clone(), T::FRONT_SERIES);
                let seat = Seat {
                    id,
                    workers,
                    front,
                    metrics,
                    shared: shared.clone(),
                    mesh_full: T::FRONT_SERIES.mesh_full,
                };
                T::worker(seat, state.clone())
            })
            .collect())
    }
}
