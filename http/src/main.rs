//! riptide-http: the HTTP tracker (BEP 3, 7, 23, 48). Its server is not built yet: today the binary
//! validates and prints its configuration (`-p`, `-c FILE`,
//! `--check-config`) so operators and scripts can prepare for it.

mod config;

use config::HttpConfig;
use riptide_common::config::{to_commented_toml, Cli, Command};

fn main() -> anyhow::Result<()> {
    match Cli::read::<HttpConfig>()? {
        Command::Probe => anyhow::bail!("riptide-http has no server yet; nothing to probe"),
        Command::Run(config) => {
            print!("{}", to_commented_toml(&config)?);
            anyhow::bail!("riptide-http does not serve yet: the configuration above is valid; use riptide-udp for a running tracker")
        }
    }
}
