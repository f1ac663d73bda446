//! riptide-ws: the WebTorrent tracker. Its server is not built yet: today the binary
//! validates and prints its configuration (`-p`, `-c FILE`,
//! `--check-config`) so operators and scripts can prepare for it.

mod config;

use config::WsConfig;
use riptide_common::config::{to_commented_toml, Cli, Command};

fn main() -> anyhow::Result<()> {
    match Cli::read::<WsConfig>()? {
        Command::Probe => anyhow::bail!("riptide-ws has no server yet; nothing to probe"),
        Command::Run(config) => {
            print!("{}", to_commented_toml(&config)?);
            anyhow::bail!("riptide-ws does not serve yet: the configuration above is valid; use riptide-udp for a running tracker")
        }
    }
}
