//! riptide: udp:// and http(s):// from one process and one swarm per
//! torrent (a UDP peer and an HTTP peer of one torrent see each other).
//! The protocol crates are libraries; this is where they are composed.
//! `riptide-udp` and `riptide-http` stay as single-protocol shorthands.

mod combined;
mod config;

use combined::Combined;
use config::RiptideConfig;
use riptide_common::metrics::{Desc, RUNTIME};
use riptide_common::startup::{BoundAddrs, Service, Started};
use riptide_http::metrics::DESCS_HTTP;
use riptide_http::server::worker::MetricsPlace;
use riptide_http::server::HttpService;
use riptide_udp::metrics::DESCS_UDP;
use riptide_udp::server::uring::{runtime_config, UringDriver};
use riptide_udp::server::UdpService;
use std::sync::Arc;
use uring_rt::RuntimeConfig;

/// The combined process for the shared start-up sequence.
struct Riptide;

/// Each protocol's bound sockets.
struct Bound {
    udp: Option<riptide_udp::server::Bound>,
    http: Option<riptide_http::server::Bound>,
}

impl Service for Riptide {
    type Config = RiptideConfig;
    type Bound = Bound;
    /// UDP's series (first, so its indices and its runtime block are as in
    /// riptide-udp), the runtime block, then HTTP's; every series carries
    /// `proto="udp"` or `proto="http"`.
    const METRICS: &'static [&'static [Desc]] = &[DESCS_UDP, RUNTIME, DESCS_HTTP];

    fn probe_verdict(probe: &uring_rt::Probe) -> (Vec<&'static str>, &'static str) {
        let mut missing = probe.missing_for_udp();
        missing.extend(probe.missing_for_tcp());
        (missing, "riptide needs them and will not start")
    }

    fn bind(config: &RiptideConfig, started: &Started) -> anyhow::Result<(Bound, BoundAddrs)> {
        let mut addrs = Vec::new();
        let udp = if config.udp() {
            let (b, a) = UdpService::bind(&config.udp_config(), started)?;
            addrs.extend(a);
            Some(b)
        } else {
            None
        };
        let http = if config.http() {
            let (b, a) = HttpService::bind(&config.http_config(), started)?;
            addrs.extend(a);
            Some(b)
        } else {
            None
        };
        log::info!("serving {} from one swarm", config.protocols.join(" and "));
        Ok((Bound { udp, http }, addrs))
    }

    fn serve(config: RiptideConfig, bound: Bound, started: Started) -> anyhow::Result<()> {
        let workers = started.workers;
        let udp_len = DESCS_UDP.len();
        let mut rt = RuntimeConfig {
            recv_buffers: 16,
            ..RuntimeConfig::default()
        };
        let mut udp: Vec<Option<UringDriver>> = (0..workers).map(|_| None).collect();
        if let Some(b) = bound.udp {
            let (shared, trackers) = UdpService::trackers(config.udp_config(), &started);
            rt = runtime_config(&shared, workers);
            for ((slot, t), s) in udp.iter_mut().zip(trackers).zip(b.into_sockets()) {
                *slot = Some(UringDriver::new(t, shared.clone(), s));
            }
        }
        let mut http: Vec<Option<_>> = (0..workers).map(|_| None).collect();
        if let Some(b) = bound.http {
            let http_config = config.http_config();
            rt = riptide_http::server::runtime_config(&http_config, workers, &rt);
            let udp_served = config.udp();
            let built = HttpService::workers(&http_config, b, &started, |i| MetricsPlace {
                values: Arc::clone(&started.metrics[i]),
                base: udp_len + RUNTIME.len(),
                runtime_base: (!udp_served).then_some(udp_len),
            })?;
            for (slot, w) in http.iter_mut().zip(built) {
                *slot = Some(w);
            }
        }
        let handlers: Vec<Combined> = udp
            .into_iter()
            .zip(http)
            .map(|(udp, http)| Combined { udp, http })
            .collect();
        let stopped = uring_rt::run(&rt, handlers).map_err(|e| anyhow::anyhow!("runtime: {e}"))?;
        if stopped
            .iter()
            .any(|c| c.udp.as_ref().is_some_and(UringDriver::failed))
        {
            anyhow::bail!("a worker could not arm its socket (logged above); stopped every worker");
        }
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    riptide_common::startup::main::<Riptide>()
}
