//! riptide-http's configuration: the sections shared by every riptide tracker.
//! `riptide-http -p` prints it with comments.

use riptide_common::config::{
    AccessListConfig, CleaningConfig, ConfigError, CpuPinningConfig, LogLevel, MetricsConfig,
    NetworkConfig, PrivilegesConfig, ProtocolConfig, TlsConfig, TrackerConfig,
};
use riptide_common::config_struct;

config_struct! {
    /// riptide-http configuration.
    pub struct HttpConfig {
        /// Worker threads; 0 = one per core this process may run on.
        pub workers: usize = 0,
        /// error | warn | info | debug | trace (RUST_LOG overrides).
        pub log_level: LogLevel = LogLevel::Info,
        /// Listening sockets.
        pub network: NetworkConfig = NetworkConfig {
            address_ipv4: "0.0.0.0:6969".into(),
            address_ipv6: "[::]:6969".into(),
            ..NetworkConfig::default()
        },
        /// TLS (rustls); certificate and key reloaded on SIGUSR1.
        pub tls: TlsConfig = TlsConfig::default(),
        /// Announce behaviour.
        pub protocol: ProtocolConfig = ProtocolConfig { announce_interval: 1800, ..ProtocolConfig::default() },
        /// Removal of peers that stopped announcing.
        pub cleaning: CleaningConfig = CleaningConfig::default(),
        /// Which info hashes are served.
        pub access_list: AccessListConfig = AccessListConfig::default(),
        /// Dropping root after binding.
        pub privileges: PrivilegesConfig = PrivilegesConfig::default(),
        /// Pinning workers to cores.
        pub cpu_pinning: CpuPinningConfig = CpuPinningConfig::default(),
        /// Prometheus endpoint.
        pub metrics: MetricsConfig = MetricsConfig::default(),
    }
}

impl TrackerConfig for HttpConfig {
    const NAME: &'static str = "riptide-http";

    fn validate(&self) -> Result<(), ConfigError> {
        self.network.validate()?;
        self.tls.validate()?;
        self.protocol.validate()?;
        self.cleaning.validate()?;
        self.access_list.validate()?;
        self.metrics.addr()?;
        Ok(())
    }

    fn log_level(&self) -> LogLevel {
        self.log_level
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_common::config::{parse, print_default};

    #[test]
    fn printed_config_parses_back_to_the_defaults() {
        let text = print_default::<HttpConfig>();
        assert_eq!(parse::<HttpConfig>(&text).unwrap(), HttpConfig::default());
        assert!(text.contains("[tls]") && text.contains(":6969"), "{text}");
    }

    #[test]
    fn errors_name_the_key() {
        let err = parse::<HttpConfig>("[tls]\nenabled = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls.cert_path"), "{err}");
        let err = parse::<HttpConfig>("[tls]\nenable = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("enable"), "{err}");
    }
}
