//! riptide-ws: the WebTorrent tracker. Its server is not built yet: today the
//! binary goes through the shared start-up (flags, config, logging, access
//! list, metrics) and then prints its configuration, so operators and
//! scripts can prepare for it.

mod config;

use config::WsConfig;
use riptide_common::config::to_commented_toml;
use riptide_common::metrics::{Desc, RUNTIME};
use riptide_common::startup::{BoundAddrs, Service, Started};

/// riptide-ws for the shared start-up sequence.
struct WsService;

impl Service for WsService {
    type Config = WsConfig;
    type Bound = ();
    const METRICS: &'static [&'static [Desc]] = &[RUNTIME];

    fn probe_verdict(probe: &uring_rt::Probe) -> (Vec<&'static str>, &'static str) {
        (
            probe.missing_for_tcp(),
            "riptide-ws needs them and will not start",
        )
    }

    fn bind(_: &WsConfig, _: &Started) -> anyhow::Result<((), BoundAddrs)> {
        Ok(((), Vec::new()))
    }

    fn serve(config: WsConfig, (): (), _: Started) -> anyhow::Result<()> {
        print!("{}", to_commented_toml(&config)?);
        anyhow::bail!("riptide-ws does not serve yet: the configuration above is valid; use riptide-udp for a running tracker")
    }
}

fn main() -> anyhow::Result<()> {
    riptide_common::startup::main::<WsService>()
}
