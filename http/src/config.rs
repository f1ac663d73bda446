//! riptide-http's configuration: the sections shared by every riptide tracker
//! plus `[http]` and `[tls]` (declared with `riptide_common::tracker_config!`).
//! `riptide-http -p` prints it with comments.

use riptide_common::config::{
    bad_trusted_proxies, check_at_least, check_range, check_tcp_listeners, ConfigError, TlsConfig,
    ValidateOwn,
};
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
        check_tcp_listeners(&self.network, &self.tls)?;
        let h = &self.http;
        if let Err(e) = riptide_stream::TrustedProxies::parse(&h.trusted_proxies) {
            return Err(bad_trusted_proxies(
                "http.trusted_proxies",
                &h.trusted_proxies,
                e,
            ));
        }
        check_range("http.max_connections", h.max_connections, 1..=1 << 20)?;
        check_range("http.max_head_bytes", h.max_head_bytes, 512..=65_536)?;
        for (key, secs) in [
            ("http.full_scrape_interval", h.full_scrape_interval),
            ("http.head_timeout", h.head_timeout),
            ("http.idle_timeout", h.idle_timeout),
        ] {
            check_at_least(key, secs, 1, " seconds")?;
        }
        check_range("http.max_scrape_hashes", h.max_scrape_hashes, 1..=256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_common::config::{assert_printed_default_round_trips, assert_rejected};

    #[test]
    fn printed_config_parses_back_to_the_defaults() {
        let text = assert_printed_default_round_trips::<HttpConfig>(&["[tls]", ":6969"]);
        assert!(!text.contains("kernel_steering"), "a UDP-only key:\n{text}");
    }

    #[test]
    fn errors_name_the_key() {
        assert_rejected::<HttpConfig>("[tls]\nenabled = true\n", &["tls.cert_path"]);
        assert_rejected::<HttpConfig>("[tls]\nenable = true\n", &["enable"]);
    }
}
