//! riptide: udp://, http(s):// and ws(s):// from one process, UDP and HTTP
//! from one swarm per torrent (a UDP peer and an HTTP peer of one torrent
//! see each other; WebRTC peers have their own swarms). The protocol
//! crates are libraries; this is where they are composed. `riptide-udp`,
//! `riptide-http` and `riptide-ws` stay as single-protocol shorthands.

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
use riptide_ws::metrics::DESCS_WS;
use riptide_ws::server::WsService;
use std::sync::Arc;
use uring_rt::RuntimeConfig;

/// The combined process for the shared start-up sequence.
struct Riptide;

/// Each protocol's bound sockets.
struct Bound {
    udp: Option<riptide_udp::server::Bound>,
    http: Option<riptide_http::server::Bound>,
    ws: Option<riptide_ws::server::Bound>,
}

impl Service for Riptide {
    type Config = RiptideConfig;
    type Bound = Bound;
    /// UDP's series (first, so its indices and its runtime block are as in
    /// riptide-udp), the runtime block, then HTTP's and WebTorrent's; every
    /// series carries `proto="udp"`, `proto="http"` or `proto="ws"`.
    const METRICS: &'static [&'static [Desc]] = &[DESCS_UDP, RUNTIME, DESCS_HTTP, DESCS_WS];

    fn probe_verdict(probe: &uring_rt::Probe) -> (Vec<&'static str>, &'static str) {
        let mut missing = probe.missing_for_udp();
        missing.extend(probe.missing_for_tcp());
        (missing, "riptide needs them and will not start")
    }

    fn bind(config: &RiptideConfig, started: &Started) -> anyhow::Result<(Bound, BoundAddrs)> {
        let mut addrs = Vec::new();
        let udp = bind_if::<UdpService>(config.udp(), || config.udp_config(), started, &mut addrs)?;
        let http =
            bind_if::<HttpService>(config.http(), || config.http_config(), started, &mut addrs)?;
        let ws = bind_if::<WsService>(config.ws(), || config.ws_config(), started, &mut addrs)?;
        log::info!(
            "serving {} (UDP and HTTP from one swarm)",
            config.protocols.join(", ")
        );
        Ok((Bound { udp, http, ws }, addrs))
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
        let bound_http = bound.http.is_some();
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
        let mut ws: Vec<Option<_>> = (0..workers).map(|_| None).collect();
        if let Some(b) = bound.ws {
            let ws_config = config.ws_config();
            // The stream limits of both TCP protocols, the larger of each.
            let before = rt.clone();
            rt = riptide_ws::server::runtime_config(&ws_config, workers, &rt);
            if bound_http {
                rt.max_connections += before.max_connections;
                rt.max_outbound_bytes = rt.max_outbound_bytes.max(before.max_outbound_bytes);
                rt.byte_mesh_ring_bytes = rt.byte_mesh_ring_bytes.max(before.byte_mesh_ring_bytes);
            }
            let no_runtime_block = !config.udp() && !config.http();
            let built = WsService::workers(&ws_config, b, &started, |i| {
                riptide_ws::server::worker::MetricsPlace {
                    values: Arc::clone(&started.metrics[i]),
                    base: udp_len + RUNTIME.len() + DESCS_HTTP.len(),
                    runtime_base: no_runtime_block.then_some(udp_len),
                }
            })?;
            for (slot, w) in ws.iter_mut().zip(built) {
                *slot = Some(w);
            }
        }
        let handlers: Vec<Combined> = udp
            .into_iter()
            .zip(http)
            .zip(ws)
            .map(|((udp, http), ws)| Combined::new(udp, http, ws))
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

/// Binds `S`'s sockets when it is `served`, adding their addresses to
/// `addrs`.
fn bind_if<S: Service>(
    served: bool,
    config: impl FnOnce() -> S::Config,
    started: &Started,
    addrs: &mut BoundAddrs,
) -> anyhow::Result<Option<S::Bound>> {
    if !served {
        return Ok(None);
    }
    let (bound, a) = S::bind(&config(), started)?;
    addrs.extend(a);
    Ok(Some(bound))
}

fn main() -> anyhow::Result<()> {
    riptide_common::startup::main::<Riptide>()
}
