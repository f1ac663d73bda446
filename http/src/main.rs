//! riptide-http: the HTTP tracker (BEP 3, 7, 23, 48). Its server is not built yet: today the
//! binary goes through the shared start-up (flags, config, logging, access
//! list, metrics) and then prints its configuration, so operators and
//! scripts can prepare for it.

mod config;

use config::HttpConfig;
use riptide_common::config::to_commented_toml;
use riptide_common::metrics::{Desc, RUNTIME};
use riptide_common::startup::{BoundAddrs, Service, Started};

/// riptide-http for the shared start-up sequence.
struct HttpService;

impl Service for HttpService {
    type Config = HttpConfig;
    type Bound = ();
    const METRICS: &'static [&'static [Desc]] = &[RUNTIME];

    fn probe_verdict(probe: &uring_rt::Probe) -> (Vec<&'static str>, &'static str) {
        (
            probe.missing_for_tcp(),
            "riptide-http needs them and will not start",
        )
    }

    fn bind(_: &HttpConfig, _: &Started) -> anyhow::Result<((), BoundAddrs)> {
        Ok(((), Vec::new()))
    }

    fn serve(config: HttpConfig, (): (), _: Started) -> anyhow::Result<()> {
        print!("{}", to_commented_toml(&config)?);
        anyhow::bail!("riptide-http does not serve yet: the configuration above is valid; use riptide-udp for a running tracker")
    }
}

fn main() -> anyhow::Result<()> {
    riptide_common::startup::main::<HttpService>()
}
