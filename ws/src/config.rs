//! riptide-ws's configuration: the sections shared by every riptide tracker
//! plus `[ws]` and `[tls]` (declared with `riptide_common::tracker_config!`).
//! `riptide-ws -p` prints it with comments.

use crate::protocol::{MAX_OFFERS, MAX_SCRAPE_HASHES};
use riptide_common::config::{ConfigError, TlsConfig, ValidateOwn};
use riptide_common::config_struct;

riptide_common::tracker_config! {
    /// riptide-ws configuration.
    pub struct WsConfig("riptide-ws", port = "8000", interval = 120) {
        /// WebSocket connections and WebTorrent signalling.
        pub ws: WsSection = WsSection::default(),
        /// TLS (wss://, rustls); certificate and key reloaded on SIGUSR1.
        pub tls: TlsConfig = TlsConfig::default(),
    }
}

config_struct! {
    /// WebSocket- and WebTorrent-specific settings.
    pub struct WsSection {
        /// Most open connections per worker; at the limit accepting pauses
        /// (new connections wait in the kernel's backlog).
        pub max_connections: usize = 65_536,
        /// Seconds a client has to complete the upgrade request once
        /// connected (slow-drip clients are cut off).
        pub handshake_timeout: u32 = 10,
        /// Seconds a connection may stay silent; any message (an announce,
        /// a ping) restarts it. Browsers re-announce every `interval`.
        pub idle_timeout: u32 = 300,
        /// Longest WebSocket message in bytes (also the longest frame);
        /// longer gets close code 1009.
        pub max_message_bytes: usize = 64 * 1024,
        /// Bytes queued towards one connection before it counts as a slow
        /// reader and is closed.
        pub max_outbound_bytes: usize = 256 * 1024,
        /// Offers relayed per announce (more are ignored; at most 10);
        /// WebTorrent sends at most 5, other clients up to 10.
        pub max_offers: usize = 10,
        /// Longest SDP of an offer or answer, in bytes (at most 64 KiB and
        /// `max_message_bytes`).
        pub max_sdp_bytes: usize = 16 * 1024,
        /// Seconds an offer waits for its answer; an answer to an offer
        /// that is unknown or older is dropped.
        pub offer_timeout: u32 = 60,
        /// Torrents one connection may join (a browser tab uses one
        /// connection for all its torrents).
        pub max_torrents_per_connection: usize = 256,
        /// Most info hashes in one scrape (at most 32).
        pub max_scrape_hashes: usize = 32,
        /// Reverse proxies (CIDRs, e.g. "10.0.0.0/8", "::1/128") whose
        /// `forwarded_header` and PROXY headers are believed; from anyone
        /// else the socket's peer is the client.
        pub trusted_proxies: Vec<String> = Vec::new(),
        /// Header of the upgrade request naming the client behind a trusted
        /// proxy: its rightmost entry that is not itself a trusted proxy.
        pub forwarded_header: String = "X-Forwarded-For".into(),
        /// Every connection starts with a PROXY protocol v1/v2 header, on
        /// the plain and the TLS listeners; a connection without a valid
        /// header, or from an untrusted peer, is refused.
        pub proxy_protocol: bool = false,
    }
}

fn check(
    key: &'static str,
    value: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            &value.to_string(),
            &format!("{} to {}", range.start(), range.end()),
        ))
    }
}

impl ValidateOwn for WsConfig {
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
        let w = &self.ws;
        if let Err(e) = riptide_stream::TrustedProxies::parse(&w.trusted_proxies) {
            return Err(ConfigError::invalid(
                "ws.trusted_proxies",
                &format!("{:?}", w.trusted_proxies),
                &format!("CIDRs like \"10.0.0.0/8\" or \"::1/128\" ({e})"),
            ));
        }
        check("ws.max_connections", w.max_connections, 1..=1 << 20)?;
        check("ws.max_message_bytes", w.max_message_bytes, 4096..=1 << 20)?;
        check(
            "ws.max_outbound_bytes",
            w.max_outbound_bytes,
            w.max_message_bytes..=64 << 20,
        )?;
        check("ws.max_offers", w.max_offers, 1..=MAX_OFFERS)?;
        check(
            "ws.max_sdp_bytes",
            w.max_sdp_bytes,
            256..=w.max_message_bytes.min(64 * 1024),
        )?;
        check(
            "ws.max_torrents_per_connection",
            w.max_torrents_per_connection,
            1..=4096,
        )?;
        check(
            "ws.max_scrape_hashes",
            w.max_scrape_hashes,
            1..=MAX_SCRAPE_HASHES,
        )?;
        if w.idle_timeout <= self.protocol.announce_interval {
            return Err(ConfigError::invalid(
                "ws.idle_timeout",
                &w.idle_timeout.to_string(),
                &format!(
                    "more than protocol.announce_interval ({}): clients re-announce that often, and a silent connection is closed",
                    self.protocol.announce_interval
                ),
            ));
        }
        for (key, v) in [
            ("ws.handshake_timeout", w.handshake_timeout),
            ("ws.idle_timeout", w.idle_timeout),
            ("ws.offer_timeout", w.offer_timeout),
        ] {
            check(key, v as usize, 1..=86_400)?;
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
        let text = print_default::<WsConfig>();
        assert_eq!(parse::<WsConfig>(&text).unwrap(), WsConfig::default());
        assert!(text.contains("[tls]") && text.contains(":8000"), "{text}");
        assert!(
            text.contains("[ws]") && text.contains("max_offers"),
            "{text}"
        );
        assert!(!text.contains("kernel_steering"), "a UDP-only key:\n{text}");
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
        let err = parse::<WsConfig>("[ws]\nidle_timeout = 60\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ws.idle_timeout") && err.contains("120"),
            "{err}"
        );
        let err = parse::<WsConfig>("[ws]\nmax_offers = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ws.max_offers"), "{err}");
        let err = parse::<WsConfig>("[ws]\ntrusted_proxies = [\"nope\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ws.trusted_proxies"), "{err}");
    }
}
