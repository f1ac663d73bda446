//! riptide-ws's configuration: the sections shared by every riptide tracker
//! plus `[tls]` (see `riptide_common::tcp_tracker_config!`).
//! `riptide-ws -p` prints it with comments.

riptide_common::tcp_tracker_config!(
    /// riptide-ws configuration.
    WsConfig,
    "riptide-ws",
    port = "8000",
    interval = 120
);

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
