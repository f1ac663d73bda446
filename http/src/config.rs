//! riptide-http's configuration: the sections shared by every riptide tracker
//! plus `[tls]` (see `riptide_common::tcp_tracker_config!`).
//! `riptide-http -p` prints it with comments.

riptide_common::tcp_tracker_config!(
    /// riptide-http configuration.
    HttpConfig,
    "riptide-http",
    port = "6969",
    interval = 1800
);

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_common::config::{parse, print_default};

    #[test]
    fn printed_config_parses_back_to_the_defaults() {
        let text = print_default::<HttpConfig>();
        assert_eq!(parse::<HttpConfig>(&text).unwrap(), HttpConfig::default());
        assert!(text.contains("[tls]") && text.contains(":6969"), "{text}");
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
