//! What riptide-http's integration tests share.

use riptide_test_support::Process;
use std::path::Path;

/// The real riptide-http with `workers` workers on loopback (IPv4 and
/// IPv6, any port), metrics on, then `extra` config.
pub fn tracker(workers: usize, extra: &str) -> Process {
    let config = format!(
        "workers = {workers}\nlog_level = \"info\"\n[network]\naddress_ipv4 = \"127.0.0.1:0\"\naddress_ipv6 = \"[::1]:0\"\n[metrics]\nenabled = true\naddress = \"127.0.0.1:0\"\n{extra}"
    );
    Process::start(
        Path::new(env!("CARGO_BIN_EXE_riptide-http")),
        None,
        "riptide-http",
        &config,
    )
}
