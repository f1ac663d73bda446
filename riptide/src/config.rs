//! The combined process's configuration: the sections every tracker has,
//! the protocols to serve, and each protocol's own section, exactly as the
//! single-protocol binaries read them (`[udp]`, `[http]`, `[tls]`).

use riptide_common::config::{ConfigError, TlsConfig, TrackerConfig, ValidateOwn};
use riptide_http::config::{HttpConfig, HttpSection};
use riptide_udp::config::{Backend, UdpConfig, UdpSection};

riptide_common::tracker_config! {
    /// riptide configuration.
    pub struct RiptideConfig("riptide", port = "6969", interval = 1800) {
        /// What to serve, from one swarm per torrent: "udp", "http" (its TLS
        /// listeners too, with [tls] enabled). A UDP peer and an HTTP peer
        /// of one torrent see each other.
        pub protocols: Vec<String> = vec!["udp".into(), "http".into()],
        /// UDP-only settings (see riptide-udp).
        pub udp: UdpSection = UdpSection::default(),
        /// HTTP connections and requests (see riptide-http).
        pub http: HttpSection = HttpSection::default(),
        /// TLS for HTTP (see riptide-http).
        pub tls: TlsConfig = TlsConfig::default(),
    }
}

impl RiptideConfig {
    /// UDP is served.
    pub fn udp(&self) -> bool {
        self.protocols.iter().any(|p| p == "udp")
    }

    /// HTTP is served.
    pub fn http(&self) -> bool {
        self.protocols.iter().any(|p| p == "http")
    }

    /// The config riptide-udp would read: the shared sections and `[udp]`
    /// (always on io_uring: HTTP needs it, and both share the workers).
    pub fn udp_config(&self) -> UdpConfig {
        UdpConfig {
            workers: self.workers,
            log_level: self.log_level,
            network: self.network.clone(),
            protocol: self.protocol.clone(),
            cleaning: self.cleaning.clone(),
            access_list: self.access_list.clone(),
            privileges: self.privileges.clone(),
            cpu_pinning: self.cpu_pinning.clone(),
            metrics: self.metrics.clone(),
            backend: Backend::IoUring,
            udp: self.udp.clone(),
        }
    }

    /// The config riptide-http would read: the shared sections, `[http]`
    /// and `[tls]`.
    pub fn http_config(&self) -> HttpConfig {
        HttpConfig {
            workers: self.workers,
            log_level: self.log_level,
            network: self.network.clone(),
            protocol: self.protocol.clone(),
            cleaning: self.cleaning.clone(),
            access_list: self.access_list.clone(),
            privileges: self.privileges.clone(),
            cpu_pinning: self.cpu_pinning.clone(),
            metrics: self.metrics.clone(),
            http: self.http.clone(),
            tls: self.tls.clone(),
        }
    }
}

impl ValidateOwn for RiptideConfig {
    fn validate_own(&self) -> Result<(), ConfigError> {
        if self.protocols.is_empty()
            || self
                .protocols
                .iter()
                .any(|p| !matches!(p.as_str(), "udp" | "http"))
        {
            return Err(ConfigError::invalid(
                "protocols",
                &format!("{:?}", self.protocols),
                "one or both of \"udp\" and \"http\"",
            ));
        }
        if self.udp() {
            self.udp_config().validate()?;
        }
        if self.http() {
            self.http_config().validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_common::config::{parse, print_default};

    #[test]
    fn printed_config_parses_back_and_names_both_protocols() {
        let text = print_default::<RiptideConfig>();
        assert_eq!(
            parse::<RiptideConfig>(&text).unwrap(),
            RiptideConfig::default()
        );
        for key in [
            "protocols = [\"udp\", \"http\"]",
            "[udp]",
            "[http]",
            "[tls]",
        ] {
            assert!(text.contains(key), "{key} missing:\n{text}");
        }
        let err = parse::<RiptideConfig>("protocols = [\"ws\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("protocols") && err.contains("ws"), "{err}");
    }
}
