//! Logging set-up: `log` + `env_logger`, level from the config unless
//! `RUST_LOG` says otherwise.

use crate::config::LogLevel;

/// Installs the logger. `RUST_LOG`, when set, overrides `level`.
/// Calling it twice is harmless (the second call does nothing).
pub fn init_logging(level: LogLevel) {
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(level.filter())
        .format_timestamp_millis();
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    let _ = builder.try_init();
}
