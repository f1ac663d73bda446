//! riptide-ws: the WebTorrent tracker. `riptide-ws -p` prints the config
//! with comments; `riptide-ws -c FILE` runs with one.

fn main() -> anyhow::Result<()> {
    riptide_common::startup::main::<riptide_ws::server::WsService>()
}
