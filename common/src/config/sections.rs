//! The config sections all three trackers share, and their validation.

use super::{check_at_least, check_range, ConfigError, Documented};
use crate::config_struct;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// How much the tracker logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings.
    Warn,
    /// Start-up, reloads, shutdown and periodic summaries.
    Info,
    /// Per-event detail, including dropped requests.
    Debug,
    /// Everything.
    Trace,
}
impl Documented for LogLevel {}

impl LogLevel {
    /// The matching `log` crate filter.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            Self::Error => log::LevelFilter::Error,
            Self::Warn => log::LevelFilter::Warn,
            Self::Info => log::LevelFilter::Info,
            Self::Debug => log::LevelFilter::Debug,
            Self::Trace => log::LevelFilter::Trace,
        }
    }
}

/// Whether the access list is consulted, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessListMode {
    /// Every info hash is served.
    Off,
    /// Only the listed info hashes are served.
    Allow,
    /// Every info hash but the listed ones is served.
    Deny,
}
impl Documented for AccessListMode {}

config_struct! {
    /// Where the tracker listens.
    pub struct NetworkConfig {
        /// IPv4 socket address to listen on; "" = no IPv4 socket.
        pub address_ipv4: String = "0.0.0.0:6969".into(),
        /// IPv6 socket address to listen on (IPV6_V6ONLY); "" = no IPv6 socket.
        pub address_ipv6: String = "[::]:6969".into(),
        /// Deprecated: riptide-udp's `[udp] kernel_steering`. Still read
        /// (with a warning) so old files keep working; never printed.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub kernel_steering: Option<bool> = None,
        /// Kernel receive buffer per socket in bytes (SO_RCVBUF, set before
        /// bind); 0 = the kernel default.
        pub socket_recv_buffer: usize = 8 * 1024 * 1024,
    }
}

impl NetworkConfig {
    /// The IPv4 listen address, `None` when disabled.
    pub fn ipv4(&self) -> Result<Option<SocketAddr>, ConfigError> {
        parse_addr("network.address_ipv4", &self.address_ipv4, true)
    }

    /// The IPv6 listen address, `None` when disabled.
    pub fn ipv6(&self) -> Result<Option<SocketAddr>, ConfigError> {
        parse_addr("network.address_ipv6", &self.address_ipv6, false)
    }

    /// Checks both addresses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.ipv4()?;
        self.ipv6()?;
        Ok(())
    }

    /// At least one address is set (a tracker whose only sockets these are
    /// calls this from its own validation).
    pub fn require_one(&self) -> Result<(), ConfigError> {
        if self.ipv4()?.is_none() && self.ipv6()?.is_none() {
            return Err(ConfigError::invalid(
                "network.address_ipv4",
                "\"\"",
                "at least one of address_ipv4 and address_ipv6 must be set",
            ));
        }
        Ok(())
    }
}

fn parse_addr(key: &'static str, value: &str, v4: bool) -> Result<Option<SocketAddr>, ConfigError> {
    if value.is_empty() {
        return Ok(None);
    }
    let (allowed, ok) = if v4 {
        (
            "an IPv4 socket address like \"0.0.0.0:6969\", or \"\"",
            SocketAddr::is_ipv4 as fn(&SocketAddr) -> bool,
        )
    } else {
        (
            "an IPv6 socket address like \"[::]:6969\", or \"\"",
            SocketAddr::is_ipv6 as fn(&SocketAddr) -> bool,
        )
    };
    match value.parse::<SocketAddr>() {
        Ok(addr) if ok(&addr) => Ok(Some(addr)),
        _ => Err(ConfigError::invalid(key, &format!("{value:?}"), allowed)),
    }
}

config_struct! {
    /// TLS for riptide-http and riptide-ws: listeners of their own beside
    /// the plain ones of `[network]` (set those to "" for TLS only).
    pub struct TlsConfig {
        /// Serve TLS; needs both paths. The files are reloaded on SIGUSR1
        /// (new handshakes use the new pair; a bad pair is logged and the
        /// old one kept).
        pub enabled: bool = false,
        /// PEM certificate chain.
        pub cert_path: PathBuf = PathBuf::new(),
        /// PEM private key: PKCS#8, SEC1 (EC) or PKCS#1 (RSA).
        pub key_path: PathBuf = PathBuf::new(),
        /// IPv4 socket address of the TLS listener; "" = none.
        pub address_ipv4: String = "0.0.0.0:443".into(),
        /// IPv6 socket address of the TLS listener (IPV6_V6ONLY); "" = none.
        pub address_ipv6: String = "[::]:443".into(),
    }
}
impl Documented for PathBuf {}

impl TlsConfig {
    /// The TLS IPv4 listen address, `None` when disabled or TLS is off.
    pub fn ipv4(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        parse_addr("tls.address_ipv4", &self.address_ipv4, true)
    }

    /// The TLS IPv6 listen address, `None` when disabled or TLS is off.
    pub fn ipv6(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        parse_addr("tls.address_ipv6", &self.address_ipv6, false)
    }

    /// Both paths must be set when TLS is enabled; addresses parse.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.ipv4()?;
        self.ipv6()?;
        if self.enabled
            && (self.cert_path.as_os_str().is_empty() || self.key_path.as_os_str().is_empty())
        {
            return Err(ConfigError::invalid(
                "tls.cert_path",
                &format!("{:?}", self.cert_path),
                "tls.enabled = true needs both tls.cert_path and tls.key_path",
            ));
        }
        Ok(())
    }
}

config_struct! {
    /// Announce behaviour.
    pub struct ProtocolConfig {
        /// Seconds clients are asked to wait between announces.
        pub announce_interval: u32 = 1800,
        /// Cap on peers per announce response (a client's numwant <= 0 means
        /// this value). UDP also caps by what fits one datagram.
        pub max_numwant: u32 = 100,
    }
}

impl ProtocolConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "protocol.announce_interval",
            self.announce_interval,
            1..=86_400,
        )?;
        check_range("protocol.max_numwant", self.max_numwant, 0..=1000)
    }
}

config_struct! {
    /// Removal of peers that stopped announcing.
    pub struct CleaningConfig {
        /// Seconds between cleaning slices; each slice visits a bounded
        /// number of torrents, so a full pass takes several slices.
        pub interval: u32 = 10,
        /// Seconds without an announce after which a peer is dropped.
        pub peer_timeout: u32 = 2700,
    }
}

impl CleaningConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_at_least("cleaning.interval", self.interval, 1, " seconds")?;
        check_at_least("cleaning.peer_timeout", self.peer_timeout, 1, " seconds")?;
        if self.peer_timeout > crate::swarm::MAX_PEER_TIMEOUT_SECS {
            return Err(ConfigError::invalid(
                "cleaning.peer_timeout",
                &self.peer_timeout.to_string(),
                "at most 32768 seconds (peers keep a 16-bit last-seen second)",
            ));
        }
        Ok(())
    }
}

config_struct! {
    /// Which info hashes are served.
    pub struct AccessListConfig {
        /// off | allow | deny.
        pub mode: AccessListMode = AccessListMode::Off,
        /// File of hex info hashes, one a line (40 hex, or 64 hex for v2,
        /// truncated to 20 bytes); `#` comments and blank lines allowed.
        /// Reloaded on SIGUSR1.
        pub path: PathBuf = PathBuf::new(),
    }
}

impl AccessListConfig {
    /// allow and deny need a path.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.mode != AccessListMode::Off && self.path.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                "access_list.path",
                "\"\"",
                "a file path when access_list.mode is allow or deny",
            ));
        }
        Ok(())
    }
}

config_struct! {
    /// Dropping root after the sockets are bound.
    pub struct PrivilegesConfig {
        /// After binding, switch to `user` (and its primary group) and
        /// optionally chroot; failure is fatal.
        pub drop: bool = false,
        /// User to switch to.
        pub user: String = "nobody".into(),
        /// Directory to chroot into before switching user; "" = none.
        pub chroot: PathBuf = PathBuf::new(),
    }
}

config_struct! {
    /// Pinning workers to cores.
    pub struct CpuPinningConfig {
        /// Pin worker i to the i-th core of `cores`.
        pub enabled: bool = false,
        /// Core ids; [] = the cores in this process's affinity mask.
        pub cores: Vec<usize> = Vec::new(),
    }
}

config_struct! {
    /// Prometheus text endpoint.
    pub struct MetricsConfig {
        /// Serve metrics at http://address/metrics.
        pub enabled: bool = false,
        /// Address of the metrics endpoint.
        pub address: String = "127.0.0.1:9000".into(),
    }
}

impl MetricsConfig {
    /// The endpoint address, when enabled.
    pub fn addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        self.address.parse().map(Some).map_err(|_| {
            ConfigError::invalid(
                "metrics.address",
                &format!("{:?}", self.address),
                "a socket address like \"127.0.0.1:9000\"",
            )
        })
    }
}
