//! riptide-ws's configuration: the sections shared by every riptide tracker.
//! `riptide-ws -p` prints it with comments.

use riptide_common::config::{
    AccessListConfig, CleaningConfig, ConfigError, CpuPinningConfig, LogLevel, MetricsConfig,
    NetworkConfig, PrivilegesConfig, ProtocolConfig, TlsConfig, TrackerConfig,
};
use riptide_common::config_struct;

config_struct! {
    /// riptide-ws configuration.
    pub struct WsConfig {
        /// Worker threads; 0 = one per core this process may run on.
        pub workers: usize = 0,
        /// error | warn | info | debug | trace (RUST_LOG overrides).
        pub log_level: LogLevel = LogLevel::Info,
        /// Listening sockets.
        pub network: NetworkConfig = NetworkConfig {
            address_ipv4: "0.0.0.0:8000".into(),
            address_ipv6: "[::]:8000".into(),
            ..NetworkConfig::default()
        },
        /// TLS (rustls); certificate and key reloaded on SIGUSR1.
        pub tls: TlsConfig = TlsConfig::default(),
        /// Announce behaviour.
        pub protocol: ProtocolConfig = ProtocolConfig { announce_interval: 120, ..ProtocolConfig::default() },
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

impl TrackerConfig for WsConfig {
    const NAME: &'static str = "riptide-ws";

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
        let text = print_default::<WsConfig>();
        assert_eq!(parse::<WsConfig>(&text).unwrap(), WsConfig::default());
        assert!(text.contains("[tls]") && text.contains(":8000"), "{text}");
    }

    #[test]
    fn errors_name_the_key() {
        let err = parse::<WsConfig>("[tls]\nenabled = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls.cert_path"), "{err}");
        let err = parse::<WsConfig>("[tls]\nenable = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("enable"), "{err}");
    }
}
