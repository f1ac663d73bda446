//! riptide-udp: the UDP BitTorrent tracker. `riptide-udp -p` prints the
//! config with comments; `riptide-udp -c FILE` runs with one.

fn main() -> anyhow::Result<()> {
    riptide_common::startup::main::<riptide_udp::server::UdpService>()
}
