//! riptide-http's configuration: the sections shared by every riptide tracker
//! plus `[http]` and `[tls]` (declared with `riptide_common::tracker_config!`).
//! `riptide-http -p` prints it with comments.

use riptide_common::config::{ConfigError, TlsConfig, ValidateOwn};
use riptide_common::config_struct;

riptide_common::tracker_config! {
    /// riptide-http configuration.
    pub struct HttpConfig("riptide-http", port = "6969", interval = 1800) {
        /// HTTP connections and requests.
        pub http: HttpSection = HttpSection::default(),
        /// TLS (rustls); certificate and key reloaded on SIGUSR1.
        pub tls: TlsConfig = TlsConfig::default(),
    }
}

config_struct! {
    /// HTTP-specific settings.
    pub struct HttpSection {
        /// Most open connections per worker; at the limit accepting pauses
        /// (new connections wait in the kernel's backlog).
        pub max_connections: usize = 16_384,
        /// Longest request head in bytes (request line to the empty line);
        /// longer gets 431 and a close.
        pub max_head_bytes: usize = 8192,
        /// Seconds a client has to send a whole request head once it
        /// started one (or once connected): slow-drip clients are cut off.
        pub head_timeout: u32 = 10,
        /// Seconds a keep-alive connection may stay idle between requests.
        pub idle_timeout: u32 = 60,
        /// Requests served on one keep-alive connection; the last answer
        /// says `Connection: close`. 0 = no limit.
        pub max_requests_per_connection: u32 = 10_000,
        /// Most info hashes in one scrape.
        pub max_scrape_hashes: usize = 74,
        /// Answer a scrape without `info_hash` with every torrent (BEP 48
        /// "full scrape"). Heavy on a big tracker: the body is built at most
        /// once per `full_scrape_interval` and shared, and each client
        /// address gets it at most once per interval (per worker).
        pub full_scrape: bool = false,
        /// Seconds between full-scrape rebuilds, and between two full
        /// scrapes of one client address.
        pub full_scrape_interval: u32 = 600,
        /// Seconds for `min interval` in announce answers.
        pub min_interval: u32 = 60,
        /// Reverse proxies (CIDRs, e.g. "10.0.0.0/8", "::1/128") whose
        /// `forwarded_header` and PROXY headers are believed; from anyone
        /// else the socket's peer is the client.
        pub trusted_proxies: Vec<String> = Vec::new(),
        /// Header naming the client behind a trusted proxy: its rightmost
        /// entry that is not itself a trusted proxy is the client.
        pub forwarded_header: String = "X-Forwarded-For".into(),
        /// Every connection starts with a PROXY protocol v1/v2 header (HAProxy
        /// `send-proxy`, cloud load balancers), on the plain and the TLS
        /// listeners. Its source is the client when the connection comes
        /// from a trusted proxy; a connection without a valid header, or
        /// from an untrusted peer, is refused.
        pub proxy_protocol: bool = false,
    }
}

impl ValidateOwn for HttpConfig {
    fn validate_own(&self) -> Result<(), ConfigError> {
        self.tls.validate()?;
        if self.network.ipv4()?.is_none()
            && self.network.ipv6()?.is_none()
            && self.tls.ipv4()?.is_none()
            && self.tls.ipv6()?.is_none()
        {
            return Err(ConfigError::invalid(
                "network.address_ipv4",
                "\"\"",
                "at least one plain ([network]) or TLS ([tls]) address must be set",
            ));
        }
        let h = &self.http;
        if let Err(e) = riptide_stream::TrustedProxies::parse(&h.trusted_proxies) {
            return Err(ConfigError::invalid(
                "http.trusted_proxies",
                &format!("{:?}", h.trusted_proxies),
                &format!("CIDRs like \"10.0.0.0/8\" or \"::1/128\" ({e})"),
            ));
        }
        if !(1..=1 << 20).contains(&h.max_connections) {
            return Err(ConfigError::invalid(
                "http.max_connections",
                &h.max_connections.to_string(),
                "1 to 1048576",
            ));
        }
        if !(512..=65_536).contains(&h.max_head_bytes) {
            return Err(ConfigError::invalid(
                "http.max_head_bytes",
                &h.max_head_bytes.to_string(),
                "512 to 65536",
            ));
        }
        if h.full_scrape_interval == 0 {
            return Err(ConfigError::invalid(
                "http.full_scrape_interval",
                "0",
                "1 or more seconds",
            ));
        }
        if h.head_timeout == 0 || h.idle_timeout == 0 {
            return Err(ConfigError::invalid(
                "http.head_timeout",
                &format!("{} / idle_timeout {}", h.head_timeout, h.idle_timeout),
                "1 or more seconds each",
            ));
        }
        if !(1..=256).contains(&h.max_scrape_hashes) {
            return Err(ConfigError::invalid(
                "http.max_scrape_hashes",
                &h.max_scrape_hashes.to_string(),
                "1 to 256",
            ));
        }
        Ok(())
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
        assert!(!text.contains("kernel_steering"), "a UDP-only key:\n{text}");
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
