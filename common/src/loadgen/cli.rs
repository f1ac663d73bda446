//! The flags every load generator takes ([`RunArgs`]), the TLS flags of
//! the TCP ones ([`TlsArgs`]), and the checks clap cannot make on its own.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use super::parse_duration;

/// Threads, torrents, peers and duration: the flags of every load
/// generator (`#[command(flatten)]` into its own).
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Load threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Pin thread i to the (i mod n)-th of these cores, e.g. `0,1`.
    #[arg(long, value_delimiter = ',')]
    pub cores: Vec<usize>,
    /// Number of distinct info hashes.
    #[arg(long, default_value_t = 10_000)]
    pub torrents: usize,
    /// Pareto shape of torrent popularity; 0 = uniform, 1 = about half the
    /// requests (announces) go to the most popular 1% of torrents.
    #[arg(long, default_value_t = 1.0)]
    pub pareto: f64,
    /// Share of peers announcing as seeders (`left` = 0).
    #[arg(long, default_value_t = 0.25)]
    pub seeders: f64,
    /// How long to measure, e.g. `10s`, `500ms`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// No per-second lines.
    #[arg(long)]
    pub quiet: bool,
}

impl RunArgs {
    /// Refuses what no load thread can run with.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.threads == 0 {
            bail!("--threads must be at least 1");
        }
        if self.torrents == 0 {
            bail!("--torrents must be at least 1");
        }
        if !(self.pareto >= 0.0 && self.pareto.is_finite()) {
            bail!("--pareto {}: must be 0 (uniform) or positive", self.pareto);
        }
        if !(0.0..=1.0).contains(&self.seeders) {
            bail!("--seeders {}: a share from 0 to 1", self.seeders);
        }
        if self.duration.is_zero() {
            bail!("--duration must be positive");
        }
        Ok(())
    }

    /// The core thread `i` is pinned to, if any.
    pub fn core(&self, i: usize) -> Option<usize> {
        (!self.cores.is_empty()).then(|| self.cores[i % self.cores.len()])
    }
}

/// The TLS flags of the TCP load generators.
#[derive(clap::Args, Debug)]
pub struct TlsArgs {
    /// Speak TLS (rustls, ring); needs `--tls-insecure` or `--ca`.
    #[arg(long)]
    pub tls: bool,
    /// Accept any server certificate (signatures are still checked, so the
    /// handshake costs what a verified one does, less the chain walk).
    #[arg(long)]
    pub tls_insecure: bool,
    /// Trust the certificates in this PEM file (it needs a subjectAltName
    /// for `--tls-server-name`).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Server name sent (SNI) and verified.
    #[arg(long, default_value = "localhost")]
    pub tls_server_name: String,
}

impl TlsArgs {
    /// `--tls` needs a way to trust the server.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.tls && !self.tls_insecure && self.ca.is_none() {
            bail!("--tls needs --tls-insecure or --ca FILE");
        }
        Ok(())
    }
}

/// `--connections` spread over `--threads`: at least one a thread, at most
/// 65536.
pub fn check_connections(threads: usize, connections: usize) -> anyhow::Result<()> {
    if connections < threads {
        bail!("--connections must be at least --threads");
    }
    if connections > 1 << 16 {
        bail!("--connections {connections}: at most 65536");
    }
    Ok(())
}

/// A `--host` header value: not empty, no spaces or control bytes.
pub fn check_host(host: Option<&str>) -> anyhow::Result<()> {
    if host.is_some_and(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_control() || b == b' ')) {
        bail!("--host: a non-empty name without spaces or control bytes");
    }
    Ok(())
}

/// A duration flag (`--timeout`) is more than zero.
pub fn check_positive(flag: &str, value: Duration) -> anyhow::Result<()> {
    if value.is_zero() {
        bail!("{flag} must be positive");
    }
    Ok(())
}

/// A flag's value lies in `range`.
pub fn check_flag<T: PartialOrd + Display + Copy>(
    flag: &str,
    value: T,
    range: RangeInclusive<T>,
) -> anyhow::Result<()> {
    if !range.contains(&value) {
        bail!("{flag} {value}: {} to {}", range.start(), range.end());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        tls: TlsArgs,
    }

    #[test]
    fn defaults_pass_and_bad_values_are_refused() {
        let cli = Cli::parse_from(["x"]);
        cli.run.check().unwrap();
        cli.tls.check().unwrap();
        assert_eq!(cli.run.core(3), None);
        for bad in [
            ["x", "--threads", "0"],
            ["x", "--torrents", "0"],
            ["x", "--pareto", "NaN"],
            ["x", "--seeders", "1.5"],
            ["x", "--duration", "0s"],
        ] {
            assert!(Cli::parse_from(bad).run.check().is_err(), "{bad:?}");
        }
        let cli = Cli::parse_from(["x", "--cores", "4,5", "--tls"]);
        assert_eq!(cli.run.core(3), Some(5));
        assert!(cli.tls.check().is_err());
        assert!(Cli::parse_from(["x", "--tls", "--tls-insecure"])
            .tls
            .check()
            .is_ok());
        assert!(check_connections(2, 1).is_err());
        assert!(check_connections(2, 70_000).is_err());
        assert!(check_host(Some("a b")).is_err());
        assert!(check_host(Some("tracker.example")).is_ok());
        assert!(check_flag("--answer-percent", 101, 0..=100).is_err());
        assert!(check_flag("--offers", 10, 0..=10).is_ok());
        assert!(check_positive("--timeout", Duration::ZERO).is_err());
    }
}
