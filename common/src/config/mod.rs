//! Configuration machinery shared by the three trackers: commented TOML
//! printing from doc comments, loading with `deny_unknown_fields`,
//! validation errors that name the key, and the common CLI flags.

mod check;
mod cli;
mod doc;
mod sections;

pub use check::{
    assert_printed_default_round_trips, assert_rejected, bad_trusted_proxies, check_at_least,
    check_power_of_two, check_range, check_tcp_listeners,
};
pub use cli::{Cli, Command};
pub use doc::{to_commented_toml, Documented, KeyDoc};
pub use sections::{
    AccessListConfig, AccessListMode, CleaningConfig, CpuPinningConfig, LogLevel, MetricsConfig,
    NetworkConfig, PrivilegesConfig, ProtocolConfig, TlsConfig,
};

use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};

/// A config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("invalid config: {0}")]
    Parse(String),
    /// A value parsed but is not allowed.
    #[error("invalid config: {key} = {value}: expected {allowed}")]
    Invalid {
        /// The key, with its section, e.g. `network.address_ipv4`.
        key: &'static str,
        /// The value as found.
        value: String,
        /// What would be accepted.
        allowed: String,
    },
}

impl ConfigError {
    /// A value that parsed but is out of range or malformed.
    pub fn invalid(key: &'static str, value: &str, allowed: &str) -> Self {
        Self::Invalid {
            key,
            value: value.to_string(),
            allowed: allowed.to_string(),
        }
    }
}

/// What each tracker's top-level config provides to the shared machinery.
pub trait TrackerConfig: Serialize + DeserializeOwned + Documented + Default {
    /// The binary's name, used in `--help` and the printed file header.
    const NAME: &'static str;
    /// Checks what types alone cannot; errors name the key.
    fn validate(&self) -> Result<(), ConfigError>;
    /// The configured log level.
    fn log_level(&self) -> LogLevel;
    /// The sections every tracker has.
    fn common(&self) -> CommonSections<'_>;
}

/// Checks the sections every tracker has; errors name the key.
pub fn validate_shared(c: &CommonSections<'_>) -> Result<(), ConfigError> {
    if c.workers > 1024 {
        return Err(ConfigError::invalid(
            "workers",
            &c.workers.to_string(),
            "0 (one per core) to 1024",
        ));
    }
    c.network.validate()?;
    c.protocol.validate()?;
    c.cleaning.validate()?;
    c.access_list.validate()?;
    c.metrics.addr()?;
    Ok(())
}

/// The sections every tracker has, borrowed from its config: what the
/// shared start-up sequence reads.
#[derive(Debug, Clone, Copy)]
pub struct CommonSections<'a> {
    /// Worker threads; 0 = one per core.
    pub workers: usize,
    /// Listening sockets.
    pub network: &'a NetworkConfig,
    /// Announce behaviour.
    pub protocol: &'a ProtocolConfig,
    /// Peer expiry.
    pub cleaning: &'a CleaningConfig,
    /// Which info hashes are served.
    pub access_list: &'a AccessListConfig,
    /// Dropping root after binding.
    pub privileges: &'a PrivilegesConfig,
    /// Pinning workers to cores.
    pub cpu_pinning: &'a CpuPinningConfig,
    /// Prometheus endpoint.
    pub metrics: &'a MetricsConfig,
}

/// A tracker's own checks, beyond the shared sections' (which
/// [`tracker_config!`](crate::tracker_config) runs first).
pub trait ValidateOwn {
    /// Checks the tracker's own keys; errors name the key.
    fn validate_own(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Declares a tracker's config in one place: the sections every tracker
/// has (with its default port and announce interval) followed by its own
/// keys and sections, and its [`TrackerConfig`] impl (shared validation,
/// then [`ValidateOwn`], which the tracker implements).
///
/// ```ignore
/// riptide_common::tracker_config! {
///     /// riptide-http configuration.
///     pub struct HttpConfig("riptide-http", port = "6969", interval = 1800) {
///         /// TLS (rustls).
///         pub tls: TlsConfig = TlsConfig::default(),
///     }
/// }
/// ```
#[macro_export]
macro_rules! tracker_config {
    (
        $(#[doc = $sdoc:literal])*
        $vis:vis struct $name:ident($binary:literal, port = $port:literal, interval = $interval:literal) {
            $(
                $(#[doc = $doc:literal])*
                $fvis:vis $field:ident : $ty:ty = $default:expr
            ),* $(,)?
        }
    ) => {
        $crate::config_struct! {
            $(#[doc = $sdoc])*
            $vis struct $name {
                /// Worker threads; 0 = one per core this process may run on.
                pub workers: usize = 0,
                /// error | warn | info | debug | trace (RUST_LOG overrides).
                pub log_level: $crate::config::LogLevel = $crate::config::LogLevel::Info,
                /// Listening sockets.
                pub network: $crate::config::NetworkConfig = $crate::config::NetworkConfig {
                    address_ipv4: concat!("0.0.0.0:", $port).into(),
                    address_ipv6: concat!("[::]:", $port).into(),
                    ..$crate::config::NetworkConfig::default()
                },
                /// Announce behaviour.
                pub protocol: $crate::config::ProtocolConfig = $crate::config::ProtocolConfig {
                    announce_interval: $interval,
                    ..$crate::config::ProtocolConfig::default()
                },
                /// Removal of peers that stopped announcing.
                pub cleaning: $crate::config::CleaningConfig = $crate::config::CleaningConfig::default(),
                /// Which info hashes are served. A blocked hash gets an
                /// error response "info hash is not allowed on this
                /// tracker" to announce, and zeros to scrape.
                pub access_list: $crate::config::AccessListConfig = $crate::config::AccessListConfig::default(),
                /// Dropping root after binding.
                pub privileges: $crate::config::PrivilegesConfig = $crate::config::PrivilegesConfig::default(),
                /// Pinning workers to cores.
                pub cpu_pinning: $crate::config::CpuPinningConfig = $crate::config::CpuPinningConfig::default(),
                /// Prometheus endpoint.
                pub metrics: $crate::config::MetricsConfig = $crate::config::MetricsConfig::default(),
                $(
                    $(#[doc = $doc])*
                    $fvis $field: $ty = $default,
                )*
            }
        }

        impl $name {
            /// The sections every tracker has, as `other` sets them, with
            /// this tracker's own keys at their defaults: what a process
            /// serving several protocols from one file hands each one.
            pub fn with_common_of(other: &impl $crate::config::TrackerConfig) -> Self {
                let c = other.common();
                Self {
                    workers: c.workers,
                    log_level: other.log_level(),
                    network: c.network.clone(),
                    protocol: c.protocol.clone(),
                    cleaning: c.cleaning.clone(),
                    access_list: c.access_list.clone(),
                    privileges: c.privileges.clone(),
                    cpu_pinning: c.cpu_pinning.clone(),
                    metrics: c.metrics.clone(),
                    $($field: $default,)*
                }
            }
        }

        impl $crate::config::TrackerConfig for $name {
            const NAME: &'static str = $binary;

            fn validate(&self) -> Result<(), $crate::config::ConfigError> {
                $crate::config::validate_shared(&self.common())?;
                <Self as $crate::config::ValidateOwn>::validate_own(self)
            }

            fn log_level(&self) -> $crate::config::LogLevel {
                self.log_level
            }

            fn common(&self) -> $crate::config::CommonSections<'_> {
                $crate::config::CommonSections {
                    workers: self.workers,
                    network: &self.network,
                    protocol: &self.protocol,
                    cleaning: &self.cleaning,
                    access_list: &self.access_list,
                    privileges: &self.privileges,
                    cpu_pinning: &self.cpu_pinning,
                    metrics: &self.metrics,
                }
            }
        }
    };
}

/// Parses and validates a config from TOML text.
pub fn parse<T: TrackerConfig>(text: &str) -> Result<T, ConfigError> {
    let config: T = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
    config.validate()?;
    Ok(config)
}

/// Reads, parses and validates a config file.
pub fn load<T: TrackerConfig>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text)
}

/// The default config as a commented TOML file.
pub fn print_default<T: TrackerConfig>() -> String {
    let body = to_commented_toml(&T::default()).expect("default config serialises");
    format!(
        "# {} configuration. Every key is optional; shown are the defaults.\n\n{body}",
        T::NAME
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::tracker_config! {
        /// A config shaped like a tracker's.
        pub struct Sample("sample", port = "6969", interval = 1800) {
            /// Something of its own.
            ///
            /// 0 = none.
            pub own: usize = 0,
        }
    }

    impl ValidateOwn for Sample {
        fn validate_own(&self) -> Result<(), ConfigError> {
            self.network.require_one()
        }
    }

    #[test]
    fn printed_default_parses_back_and_every_key_is_commented() {
        let text = assert_printed_default_round_trips::<Sample>(&[
            "# 0 = none.",
            "[network]",
            "address_ipv4 = \"0.0.0.0:6969\"",
        ]);
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.starts_with('#') && (line.contains(" = ") || line.starts_with('[')) {
                assert!(
                    i > 0 && lines[i - 1].starts_with('#'),
                    "no comment above {line:?}\n{text}"
                );
            }
        }
    }

    #[test]
    fn common_sections_carry_over() {
        let mut other = parse::<Sample>("workers = 3\nlog_level = \"debug\"\n").unwrap();
        other.own = 7;
        let c = Sample::with_common_of(&other);
        assert_eq!((c.workers, c.log_level, c.own), (3, LogLevel::Debug, 0));
        assert_eq!(c.network, other.network);
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(parse::<Sample>("").unwrap(), Sample::default());
    }

    #[test]
    fn unknown_key_is_named() {
        assert_rejected::<Sample>("[network]\nadress_ipv4 = \"1.2.3.4:1\"\n", &["adress_ipv4"]);
        assert_rejected::<Sample>("wokers = 2\n", &["wokers"]);
    }

    #[test]
    fn bad_values_name_the_key_value_and_what_is_allowed() {
        for (text, wants) in [
            (
                "log_level = \"loud\"\n",
                &["log_level", "loud", "debug"][..],
            ),
            ("workers = \"two\"\n", &["workers", "two"]),
            (
                "[network]\naddress_ipv4 = \"[::1]:80\"\n",
                &["network.address_ipv4", "[::1]:80", "IPv4"],
            ),
            (
                "[protocol]\nannounce_interval = 0\n",
                &["protocol.announce_interval", "86400"],
            ),
            ("[access_list]\nmode = \"allow\"\n", &["access_list.path"]),
            (
                "[network]\naddress_ipv4 = \"\"\naddress_ipv6 = \"\"\n",
                &["at least one"],
            ),
        ] {
            assert_rejected::<Sample>(text, wants);
        }
    }
}
