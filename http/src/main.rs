//! riptide-http: the HTTP tracker (BEP 3, 7, 23, 48). Its server is not built yet: today the binary
//! validates and prints its configuration (`-p`, `-c FILE`,
//! `--check-config`) so operators and scripts can prepare for it. The wire
//! format, sans I/O, is in the library: `riptide_http::protocol`.

mod config;

use config::HttpConfig;
use riptide_common::config::{to_commented_toml, Cli, Command};

fn main() -> anyhow::Result<()> {
    match Cli::read::<HttpConfig>()? {
        Command::Probe => {
            let probe = uring_rt::Probe::detect();
            println!("{probe}");
            let missing = probe.missing_for_tcp();
            if missing.is_empty() {
                println!("this kernel has every io_uring feature riptide-http will use");
            } else {
                println!(
                    "riptide-http needs io_uring features this kernel lacks: {}",
                    missing.join(", ")
                );
            }
            Ok(())
        }
        Command::Run(config) => {
            print!("{}", to_commented_toml(&config)?);
            anyhow::bail!("riptide-http does not serve yet: the configuration above is valid; use riptide-udp for a running tracker")
        }
    }
}
