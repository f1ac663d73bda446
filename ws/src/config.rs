//! riptide-ws's configuration: the sections shared by every riptide tracker
//! plus `[tls]` (declared with `riptide_common::tracker_config!`).
//! `riptide-ws -p` prints it with comments.

riptide_common::tracker_config! {
    /// riptide-ws configuration.
    pub struct WsConfig("riptide-ws", port = "8000", interval = 120) {
        /// TLS (rustls); certificate and key reloaded on SIGUSR1.
        pub tls: TlsConfig = TlsConfig::default(),
    }
}

impl ValidateOwn for WsConfig {
    fn validate_own(&self) -> Result<(), ConfigError> {
        self.tls.validate()?;
        self.network.require_one()
    }
}

use riptide_common::config::{ConfigError, TlsConfig, ValidateOwn};

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_common::config::{parse, print_default};

    #[test]
    fn printed_config_parses_back_to_the_defaults() {
        let text = print_default::<WsConfig>();
        assert_eq!(parse::<WsConfig>(&text).unwrap(), WsConfig::default());
        assert!(text.contains("[tls]") && text.contains(":8000"), "{text}");
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
    }
}
