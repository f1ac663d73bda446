//! riptide-stream: what riptide's two TCP trackers (riptide-http and
//! riptide-ws) share above uring-rt's stream API, sans-IO where it can be.
//!
//! Owns:
//! - [`tls`]: one TLS session per connection over rustls' unbuffered API,
//!   fed the runtime's receive bytes (`Handler::on_recv`'s `&mut [u8]`) and
//!   writing records straight into its send chunks (`Ctx::send_with`);
//! - [`certs`]: certificate chain + private key from PEM files, and a
//!   [`CertStore`] shared by all workers whose `reload` swaps the
//!   `ServerConfig` new handshakes use (SIGUSR1), keeping the old one on error;
//! - [`proxy_protocol`]: the PROXY protocol v1/v2 header parser;
//! - [`forwarded`]: trusted proxies (CIDR list) and the client address
//!   from `X-Forwarded-For`;
//! - [`listen`]: the plain and TLS listener groups of a stream tracker and
//!   its certificates, bound at start-up;
//! - [`front`]: what a stream tracker's worker does below its protocol:
//!   its listeners, and per connection the PROXY header, TLS session,
//!   addresses and the protocol's state, and the receive path through them;
//! - [`scrape`]: a scrape some of whose hashes other workers count;
//! - [`service`]: a stream tracker in the shared start-up sequence, what
//!   its workers share, and where their series live;
//! - [`cursor`]: the bounded writer the trackers' records and answers
//!   are written with;
//! - [`insecure`]: the load generators' TLS client set-up and its
//!   accept-any-certificate verifier (`--tls-insecure`).
//!
//! Not: the runtime's loop (the service only starts it), HTTP or
//! WebSocket framing, the configuration files. Besides the runtime it
//! starts, nothing here does I/O except reading certificate files and
//! binding the listeners at start-up.

pub mod certs;
pub mod cursor;
pub mod forwarded;
pub mod front;
pub mod insecure;
pub mod listen;
pub mod proxy_protocol;
pub mod scrape;
pub mod service;
pub mod tls;

pub use certs::{CertError, CertStore, TlsOptions};
pub use cursor::Cursor;
pub use forwarded::{client_from_forwarded, CidrError, IpCidr, TrustedProxies};
pub use front::{Conn, Front, FrontSeries, Protocol};
pub use listen::{bind_stream_listeners, StreamListeners};
pub use proxy_protocol::{parse_proxy_header, ProxyAddrs, ProxyError, ProxyHeader};
pub use scrape::ScrapeParts;
pub use service::{MetricsPlace, ProxyKeys, Seat, StreamService, StreamState, StreamTracker};
pub use tls::{Read, TlsError, TlsPhase, TlsSession};

/// Re-export of the TLS library, so users name the same types.
pub use rustls;
