//! riptide-http's configuration: the sections shared by every riptide tracker
//! plus `[tls]` (declared with `riptide_common::tracker_config!`).
//! `riptide-http -p` prints it with comments.

riptide_common::tracker_config! {
    /// riptide-http configuration.
    pub struct HttpConfig("riptide-http", port = "6969", interval = 1800) {
        /// TLS (rustls); certificate and key reloaded on SIGUSR1.
        pub tls: TlsConfig = TlsConfig::default(),
    }
}

impl ValidateOwn for HttpConfig {
    fn validate_own(&self) -> Result<(), ConfigError> {
        self.tls.validate()
    }
}

use riptide_common::config::{ConfigError, TlsConfig, ValidateOwn};

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
