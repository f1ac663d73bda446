//! riptide-ws's configuration: the sections shared by every riptide tracker
//! plus `[ws]` and `[tls]` (declared with `riptide_common::tracker_config!`).
//! `riptide-ws -p` prints it with comments.

use crate::protocol::{MAX_OFFERS, MAX_SCRAPE_HASHES};
use riptide_common::config::{
    bad_trusted_proxies, check_range, check_tcp_listeners, ConfigError, TlsConfig, ValidateOwn,
};
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

impl ValidateOwn for WsConfig {
    fn validate_own(&self) -> Result<(), ConfigError> {
        check_tcp_listeners(&self.network, &self.tls)?;
        let w = &self.ws;
        if let Err(e) = riptide_stream::TrustedProxies::parse(&w.trusted_proxies) {
            return Err(bad_trusted_proxies(
                "ws.trusted_proxies",
                &w.trusted_proxies,
                e,
            ));
        }
        check_range("ws.max_connections", w.max_connections, 1..=1 << 20)?;
        check_range("ws.max_message_bytes", w.max_message_bytes, 4096..=1 << 20)?;
        check_range(
            "ws.max_outbound_bytes",
            w.max_outbound_bytes,
            w.max_message_bytes..=64 << 20,
        )?;
        check_range("ws.max_offers", w.max_offers, 1..=MAX_OFFERS)?;
        check_range(
            "ws.max_sdp_bytes",
            w.max_sdp_bytes,
            256..=w.max_message_bytes.min(64 * 1024),
        )?;
        check_range(
            "ws.max_torrents_per_connection",
            w.max_torrents_per_connection,
            1..=4096,
        )?;
        check_range(
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
        for (key, secs) in [
            ("ws.handshake_timeout", w.handshake_timeout),
            ("ws.idle_timeout", w.idle_timeout),
            ("ws.offer_timeout", w.offer_timeout),
        ] {
            check_range(key, secs, 1..=86_400)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_common::config::{assert_printed_default_round_trips, assert_rejected};

    #[test]
    fn printed_config_parses_back_to_the_defaults() {
        let text = assert_printed_default_round_trips::<WsConfig>(&[
            "[tls]",
            ":8000",
            "[ws]",
            "max_offers",
        ]);
        assert!(!text.contains("kernel_steering"), "a UDP-only key:\n{text}");
    }

    #[test]
    fn errors_name_the_key() {
        for (text, wants) in [
            ("[tls]\nenabled = true\n", &["tls.cert_path"][..]),
            ("[tls]\nenable = true\n", &["enable"]),
            ("[ws]\nidle_timeout = 60\n", &["ws.idle_timeout", "120"]),
            ("[ws]\nmax_offers = 0\n", &["ws.max_offers"]),
            (
                "[ws]\ntrusted_proxies = [\"nope\"]\n",
                &["ws.trusted_proxies"],
            ),
        ] {
            assert_rejected::<WsConfig>(text, wants);
        }
    }
}
