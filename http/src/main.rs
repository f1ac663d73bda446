//! riptide-http: the HTTP tracker (BEP 3, 7, 23, 48). Its server is not built yet: today the
//! binary goes through the shared start-up (flags, config, logging, access
//! list, metrics) and then prints its configuration, so operators and
//! scripts can prepare for it.

mod config;

fn main() -> anyhow::Result<()> {
    riptide_common::startup::main::<riptide_common::startup::ConfigOnly<config::HttpConfig>>()
}
