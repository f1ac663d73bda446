//! riptide-udp's configuration: the shared sections plus the UDP-only
//! `backend` and `[udp]` keys. `riptide-udp -p` prints it with comments.

use riptide_common::config::{
    check_at_least, check_power_of_two, check_range, ConfigError, Documented, ValidateOwn,
};
use riptide_common::config_struct;
use serde::{Deserialize, Serialize};

/// Which I/O backend serves the sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// io_uring when the kernel has every feature used, else mio.
    Auto,
    /// io_uring; start-up fails if the kernel lacks a feature.
    IoUring,
    /// epoll through mio with recvmmsg/sendmmsg batches.
    Mio,
}
impl Documented for Backend {}

config_struct! {
    /// UDP-specific settings.
    pub struct UdpSection {
        /// A reuseport BPF program makes the kernel deliver each announce
        /// and one-hash scrape to the worker that owns its torrent.
        pub kernel_steering: bool = true,
        /// Seconds a connection id stays valid after it was issued (BEP 15
        /// says clients may use one for a minute; some reuse it longer).
        pub connection_id_max_age: u32 = 120,
        /// Secret key of the connection id MAC: 32 hex digits, or "" for a
        /// random key per process. With a fixed key, ids stay valid across
        /// a restart (libtorrent keeps an id for 60 s and cannot announce
        /// until it expires if the tracker forgot it). Keep it secret.
        pub connection_id_key: String = String::new(),
        /// Receive buffers per worker in the io_uring buffer ring, at most
        /// (power of two). A ring starts with 128 in play and doubles them
        /// when it runs dry, so receives land in cached memory.
        pub recv_buffers: u16 = 4096,
        /// Send slots per worker (responses in flight).
        pub send_slots: u32 = 2048,
        /// Entries in each worker's io_uring submission queue.
        pub ring_entries: u32 = 2048,
        /// Messages each SPSC ring between two workers holds.
        pub mesh_capacity: usize = 8192,
        /// io_uring backend: once a request arrives, a worker waits up to
        /// this many microseconds for more before answering, so one
        /// wake-up serves a batch (less CPU per request at moderate load;
        /// answers leave at most this much later). 0 = answer at once.
        /// Needs Linux 6.12; ignored before.
        pub batch_wait_us: u32 = 200,
    }
}

riptide_common::tracker_config! {
    /// riptide-udp configuration.
    pub struct UdpConfig("riptide-udp", port = "6969", interval = 1800) {
        /// auto | io_uring | mio.
        pub backend: Backend = Backend::Auto,
        /// UDP-only settings.
        pub udp: UdpSection = UdpSection::default(),
    }
}

impl UdpSection {
    /// Kernel steering as configured: `[udp] kernel_steering`, unless the
    /// deprecated `[network] kernel_steering` is set (it wins, with a warning
    /// at start, so an old file behaves as before).
    pub fn kernel_steering(&self, network: &riptide_common::config::NetworkConfig) -> bool {
        network.kernel_steering.unwrap_or(self.kernel_steering)
    }

    /// The configured connection id key, if set and well-formed.
    pub fn key_bytes(&self) -> Option<[u8; 16]> {
        let mut key = [0u8; 16];
        hex::decode_to_slice(&self.connection_id_key, &mut key).ok()?;
        Some(key)
    }
}

impl ValidateOwn for UdpConfig {
    fn validate_own(&self) -> Result<(), ConfigError> {
        self.network.require_one()?;
        let u = &self.udp;
        check_at_least(
            "udp.connection_id_max_age",
            u.connection_id_max_age,
            1,
            " seconds",
        )?;
        if !u.connection_id_key.is_empty() && u.key_bytes().is_none() {
            return Err(ConfigError::invalid(
                "udp.connection_id_key",
                "(hidden)",
                "32 hex digits, or \"\" for a random key",
            ));
        }
        check_power_of_two("udp.recv_buffers", u32::from(u.recv_buffers), 16..=32768)?;
        check_range("udp.send_slots", u.send_slots, 16..=1 << 20)?;
        check_power_of_two("udp.ring_entries", u.ring_entries, 64..=32768)?;
        check_at_least("udp.mesh_capacity", u.mesh_capacity, 64, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_common::config::{
        assert_printed_default_round_trips, assert_rejected, parse, print_default,
    };

    #[test]
    fn printed_config_parses_back_to_the_defaults() {
        assert_printed_default_round_trips::<UdpConfig>(&[
            "backend = \"auto\"",
            "[udp]",
            "kernel_steering = true",
            "connection_id_max_age = 120",
            "[access_list]",
        ]);
    }

    #[test]
    fn the_old_network_kernel_steering_key_still_works() {
        let old = parse::<UdpConfig>("[network]\nkernel_steering = false\n").unwrap();
        assert!(!old.udp.kernel_steering(&old.network));
        let new = parse::<UdpConfig>("[udp]\nkernel_steering = false\n").unwrap();
        assert!(!new.udp.kernel_steering(&new.network));
        assert!(UdpConfig::default()
            .udp
            .kernel_steering(&UdpConfig::default().network));
        let text = print_default::<UdpConfig>();
        assert_eq!(text.matches("kernel_steering").count(), 1, "{text}");
    }

    #[test]
    fn errors_name_the_key() {
        for (text, wants) in [
            (
                "backend = \"epoll\"\n",
                &["backend", "epoll", "io_uring"][..],
            ),
            (
                "[udp]\nrecv_buffers = 1000\n",
                &["udp.recv_buffers", "1000", "power of two"],
            ),
            ("[udp]\nbogus = 1\n", &["bogus"]),
        ] {
            assert_rejected::<UdpConfig>(text, wants);
        }
    }
}
