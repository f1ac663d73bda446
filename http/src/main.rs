//! riptide-http: the HTTP tracker. `riptide-http -p` prints the config with
//! comments; `riptide-http -c FILE` runs with one.

fn main() -> anyhow::Result<()> {
    riptide_common::startup::main::<riptide_http::server::HttpService>()
}
