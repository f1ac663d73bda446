//! The HTTP tracker wire format (BEP 3, 7, 23, 48), no I/O.
//!
//! Owns: parsing a request head from untrusted bytes (HTTP framing checks,
//! the `/announce` and `/scrape` query parameters) without panicking or
//! allocating, a bencode writer over a plain `&mut [u8]`, and writing whole
//! HTTP responses straight into a send buffer. Not: sockets, TLS, timeouts,
//! deciding whether a forwarded-for header is trusted (the caller knows its
//! proxies), swarm logic (`riptide_common::swarm`).
//!
//! The flow for one request:
//! 1. [`parse_request`] on the bytes received so far: [`ParseError::Incomplete`]
//!    means read more; [`ParseError::Reject`] means write [`write_error`]
//!    and close; `Ok` gives the request and [`Request::head_len`], where
//!    the next pipelined request starts.
//! 2. [`Target::Announce`] / [`Target::Scrape`] go to the swarm;
//!    [`Target::Failure`] is answered with [`write_failure`] (HTTP 200).
//! 3. [`write_announce`] / [`write_scrape`] / [`write_failure`] with
//!    [`Request::connection`]; close after sending when it says so.

mod bencode;
mod query;
mod request;
mod response;

pub use bencode::BencodeWriter;
pub use query::{pairs, percent_decode, DecodeError};
pub use request::{
    parse_request, AnnounceKey, AnnounceRequest, ParseConfig, ParseError, Request, ScrapeRequest,
    Target, DEFAULT_MAX_HEAD_LEN, DEFAULT_MAX_SCRAPE_HASHES, MAX_HEADERS, MAX_KEY_LEN,
};
pub use response::{
    announce_response_max_len, full_scrape_body_max_len, scrape_response_max_len, write_announce,
    write_body_head, write_error, write_failure, write_full_scrape_body, write_scrape,
    AnnounceResponse, Peers, HEAD_RESERVE,
};
pub use riptide_common::swarm::{Event, PeerV4, PeerV6, ScrapeStats};

/// The output buffer cannot hold the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("output buffer too small")]
pub struct BufferTooSmall;

/// What happens to the connection after the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    /// Send the response, then close; the response says `Connection: close`.
    Close,
    /// HTTP/1.1 persistent connection (the default): nothing to add.
    KeepAlive,
    /// HTTP/1.0 with `Connection: keep-alive`: stays open, and the response
    /// must say `Connection: keep-alive` or the client assumes a close.
    KeepAliveHttp10,
}

impl Connection {
    /// The connection stays open after the response.
    pub fn keeps_alive(self) -> bool {
        !matches!(self, Connection::Close)
    }
}

/// The HTTP statuses riptide-http sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 200: every tracker answer, including `failure reason`.
    Ok,
    /// 400: a malformed head or a request-smuggling shape.
    BadRequest,
    /// 404: a path other than `/announce` and `/scrape`.
    NotFound,
    /// 405: a method other than GET.
    MethodNotAllowed,
    /// 431: the head is longer than the configured maximum or has too many
    /// header lines.
    HeadTooLarge,
    /// 503: the server is over a limit (the caller decides when).
    ServiceUnavailable,
}

impl Status {
    /// Code and reason phrase, as on the status line.
    pub fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::HeadTooLarge => "431 Request Header Fields Too Large",
            Status::ServiceUnavailable => "503 Service Unavailable",
        }
    }

    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::HeadTooLarge => 431,
            Status::ServiceUnavailable => 503,
        }
    }
}

#[cfg(test)]
mod tests;
