//! The combined process's configuration: the sections every tracker has,
//! the protocols to serve, and each protocol's own section, exactly as the
//! single-protocol binaries read them (`[udp]`, `[http]`, `[tls]`, `[ws]`),
//! plus `[webtorrent]`: where ws:// and wss:// listen here (riptide-ws
//! reads `[network]` and `[tls]` for that, which this process gives to
//! UDP and HTTP) and the interval WebTorrent clients are told.

use riptide_common::config::{ConfigError, TlsConfig, TrackerConfig, ValidateOwn};
use riptide_common::config_struct;
use riptide_http::config::{HttpConfig, HttpSection};
use riptide_udp::config::{Backend, UdpConfig, UdpSection};
use riptide_ws::config::{WsConfig, WsSection};

riptide_common::tracker_config! {
    /// riptide configuration.
    pub struct RiptideConfig("riptide", port = "6969", interval = 1800) {
        /// What to serve: "udp", "http" (its TLS listeners too, with [tls]
        /// enabled), "ws" (WebTorrent; wss:// too with [tls] enabled). A
        /// UDP peer and an HTTP peer of one torrent see each other; WebRTC
        /// peers have their own swarm.
        pub protocols: Vec<String> = vec!["udp".into(), "http".into()],
        /// UDP-only settings (see riptide-udp).
        pub udp: UdpSection = UdpSection::default(),
        /// HTTP connections and requests (see riptide-http).
        pub http: HttpSection = HttpSection::default(),
        /// TLS for HTTP (see riptide-http); its certificate serves wss:// too.
        pub tls: TlsConfig = TlsConfig::default(),
        /// WebSocket connections and WebTorrent signalling (see riptide-ws).
        pub ws: WsSection = WsSection::default(),
        /// Where ws:// and wss:// listen in this process.
        pub webtorrent: WebTorrentListen = WebTorrentListen::default(),
    }
}

config_struct! {
    /// ws:// and wss:// in the combined process.
    pub struct WebTorrentListen {
        /// IPv4 socket address of ws://; "" = none.
        pub address_ipv4: String = "0.0.0.0:8000".into(),
        /// IPv6 socket address of ws:// (IPV6_V6ONLY); "" = none.
        pub address_ipv6: String = "[::]:8000".into(),
        /// IPv4 socket address of wss:// (with [tls] enabled); "" = none.
        pub tls_address_ipv4: String = "0.0.0.0:8443".into(),
        /// IPv6 socket address of wss:// (with [tls] enabled); "" = none.
        pub tls_address_ipv6: String = "[::]:8443".into(),
        /// `interval` told to WebTorrent clients (they re-announce that
        /// often; keep it below `[ws] idle_timeout`).
        pub announce_interval: u32 = 120,
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

    /// WebTorrent is served.
    pub fn ws(&self) -> bool {
        self.protocols.iter().any(|p| p == "ws")
    }

    /// The config riptide-ws would read: the shared sections with
    /// `[webtorrent]`'s addresses and interval, `[ws]`, and `[tls]`'s
    /// certificate on `[webtorrent]`'s TLS addresses.
    pub fn ws_config(&self) -> WsConfig {
        let w = &self.webtorrent;
        WsConfig {
            network: riptide_common::config::NetworkConfig {
                address_ipv4: w.address_ipv4.clone(),
                address_ipv6: w.address_ipv6.clone(),
                ..self.network.clone()
            },
            protocol: riptide_common::config::ProtocolConfig {
                announce_interval: w.announce_interval,
                ..self.protocol.clone()
            },
            ws: self.ws.clone(),
            tls: TlsConfig {
                address_ipv4: w.tls_address_ipv4.clone(),
                address_ipv6: w.tls_address_ipv6.clone(),
                ..self.tls.clone()
            },
            ..WsConfig::with_common_of(self)
        }
    }

    /// The config riptide-udp would read: the shared sections and `[udp]`
    /// (always on io_uring: HTTP needs it, and both share the workers).
    pub fn udp_config(&self) -> UdpConfig {
        UdpConfig {
            backend: Backend::IoUring,
            udp: self.udp.clone(),
            ..UdpConfig::with_common_of(self)
        }
    }

    /// The config riptide-http would read: the shared sections, `[http]`
    /// and `[tls]`.
    pub fn http_config(&self) -> HttpConfig {
        HttpConfig {
            http: self.http.clone(),
            tls: self.tls.clone(),
            ..HttpConfig::with_common_of(self)
        }
    }
}

impl ValidateOwn for RiptideConfig {
    fn validate_own(&self) -> Result<(), ConfigError> {
        if self.protocols.is_empty()
            || self
                .protocols
                .iter()
                .any(|p| !matches!(p.as_str(), "udp" | "http" | "ws"))
        {
            return Err(ConfigError::invalid(
                "protocols",
                &format!("{:?}", self.protocols),
                "one or more of \"udp\", \"http\" and \"ws\"",
            ));
        }
        if self.udp() {
            self.udp_config().validate()?;
        }
        if self.http() {
            self.http_config().validate()?;
        }
        if self.ws() {
            self.ws_config().validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_common::config::{assert_printed_default_round_trips, assert_rejected, parse};

    #[test]
    fn printed_config_parses_back_and_names_both_protocols() {
        assert_printed_default_round_trips::<RiptideConfig>(&[
            "protocols = [\"udp\", \"http\"]",
            "[udp]",
            "[http]",
            "[tls]",
            "[ws]",
            "[webtorrent]",
        ]);
        assert_rejected::<RiptideConfig>("protocols = [\"wss\"]\n", &["protocols", "wss"]);
        let all = parse::<RiptideConfig>("protocols = [\"udp\", \"http\", \"ws\"]\n").unwrap();
        assert!(all.ws() && all.ws_config().network.address_ipv4.ends_with(":8000"));
    }
}
