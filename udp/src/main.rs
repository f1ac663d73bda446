//! riptide-udp: the UDP BitTorrent tracker. `riptide-udp -p` prints the
//! config with comments; `riptide-udp -c FILE` runs with one.

use riptide_common::config::{Cli, Command, TrackerConfig};
use riptide_udp::config::UdpConfig;

fn main() -> anyhow::Result<()> {
    let config = match Cli::read::<UdpConfig>()? {
        Command::Probe => {
            let probe = uring_rt::Probe::detect();
            println!("{probe}");
            let missing = probe.missing_for_udp();
            if missing.is_empty() {
                println!("riptide-udp can run on io_uring");
            } else {
                println!("riptide-udp will use mio: missing {}", missing.join(", "));
            }
            return Ok(());
        }
        Command::Run(config) => config,
    };
    riptide_common::logging::init_logging(config.log_level());
    riptide_udp::server::run(config)
}
