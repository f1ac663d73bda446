//! Range checks whose errors name the key, the value and what is allowed,
//! for the trackers' `validate` functions; and [`assert_rejected`] and
//! [`assert_printed_default_round_trips`] for their tests.

use std::fmt::Display;
use std::ops::RangeInclusive;

use super::{parse, print_default, ConfigError, NetworkConfig, TlsConfig, TrackerConfig};

/// `value` of `key` lies in `range` ("`start` to `end`").
pub fn check_range<T: PartialOrd + Display + Copy>(
    key: &'static str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(ConfigError::invalid(
        key,
        &value.to_string(),
        &format!("{} to {}", range.start(), range.end()),
    ))
}

/// `value` of `key` is `min` or more (`unit` follows the number in the
/// error, e.g. " seconds").
pub fn check_at_least<T: PartialOrd + Display + Copy>(
    key: &'static str,
    value: T,
    min: T,
    unit: &str,
) -> Result<(), ConfigError> {
    if value >= min {
        return Ok(());
    }
    Err(ConfigError::invalid(
        key,
        &value.to_string(),
        &format!("{min} or more{unit}"),
    ))
}

/// `value` of `key` is a power of two in `range`.
pub fn check_power_of_two(
    key: &'static str,
    value: u32,
    range: RangeInclusive<u32>,
) -> Result<(), ConfigError> {
    if value.is_power_of_two() && range.contains(&value) {
        return Ok(());
    }
    Err(ConfigError::invalid(
        key,
        &value.to_string(),
        &format!("a power of two from {} to {}", range.start(), range.end()),
    ))
}

/// The TCP trackers' `[tls]` section, and at least one listener: a plain
/// (`[network]`) or a TLS (`[tls]`) address.
pub fn check_tcp_listeners(network: &NetworkConfig, tls: &TlsConfig) -> Result<(), ConfigError> {
    tls.validate()?;
    if network.ipv4()?.is_none()
        && network.ipv6()?.is_none()
        && tls.ipv4()?.is_none()
        && tls.ipv6()?.is_none()
    {
        return Err(ConfigError::invalid(
            "network.address_ipv4",
            "\"\"",
            "at least one plain ([network]) or TLS ([tls]) address must be set",
        ));
    }
    Ok(())
}

/// The reverse proxies of `key` (`proxies`) did not parse, for `why`.
pub fn bad_trusted_proxies(
    key: &'static str,
    proxies: &[String],
    why: impl Display,
) -> ConfigError {
    ConfigError::invalid(
        key,
        &format!("{proxies:?}"),
        &format!("CIDRs like \"10.0.0.0/8\" or \"::1/128\" ({why})"),
    )
}

/// For tests: the default config printed as a commented file parses back
/// to the defaults and shows every one of `keys` (keys, sections, values);
/// returns the text for more checks.
///
/// # Panics
/// When it does not.
pub fn assert_printed_default_round_trips<T>(keys: &[&str]) -> String
where
    T: TrackerConfig + std::fmt::Debug + PartialEq,
{
    let text = print_default::<T>();
    assert_eq!(parse::<T>(&text).unwrap(), T::default(), "{text}");
    for key in keys {
        assert!(text.contains(key), "{key} missing:\n{text}");
    }
    text
}

/// For tests: `text` is refused, and the error names every one of `wants`
/// (the key, the value, what is allowed).
///
/// # Panics
/// When `text` parses, or the error lacks one of `wants`.
pub fn assert_rejected<T: TrackerConfig + std::fmt::Debug>(text: &str, wants: &[&str]) {
    let err = parse::<T>(text).unwrap_err().to_string();
    for want in wants {
        assert!(err.contains(want), "{text:?}: {want:?} not in {err:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_is_allowed() {
        assert!(check_range("k", 5, 1..=5).is_ok());
        let e = check_range("k", 6, 1..=5).unwrap_err().to_string();
        assert!(e.contains("k = 6") && e.contains("1 to 5"), "{e}");
        assert!(check_at_least("k", 1, 1, " seconds").is_ok());
        let e = check_at_least("k", 0, 1, " seconds")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("k = 0") && e.contains("1 or more seconds"),
            "{e}"
        );
        assert!(check_power_of_two("k", 64, 16..=64).is_ok());
        for bad in [8, 48, 128] {
            let e = check_power_of_two("k", bad, 16..=64)
                .unwrap_err()
                .to_string();
            assert!(e.contains("a power of two from 16 to 64"), "{e}");
        }
        let e = bad_trusted_proxies("k", &["x".into()], "bad CIDR").to_string();
        assert!(e.contains("[\"x\"]") && e.contains("(bad CIDR)"), "{e}");
    }
}
