//! The rustls client configuration: trust (`--ca` or `--tls-insecure`),
//! versions, and session resumption on or off (with a session store sized
//! for many connections to one server).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use riptide_stream::insecure;
use rustls::client::{
    ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, NamedGroup};

use crate::args::{Args, OnOff, TlsVersion};

/// Sessions for the one server every connection goes to. rustls' own
/// `ClientSessionMemoryCache` keeps at most 8 TLS 1.3 tickets per server,
/// and a ticket is used once: with more connections than that opening at
/// once, most handshakes would be full ones. This keeps up to
/// `max_tickets`, newest first, and ignores the server name.
#[derive(Debug)]
struct OneServerSessions {
    max_tickets: usize,
    inner: Mutex<Sessions>,
}

#[derive(Debug, Default)]
struct Sessions {
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    tls13: VecDeque<Tls13ClientSessionValue>,
}

impl OneServerSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ClientSessionStore for OneServerSessions {
    fn set_kx_hint(&self, _: ServerName<'static>, group: NamedGroup) {
        self.lock().kx_hint = Some(group);
    }

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        self.lock().kx_hint
    }

    fn set_tls12_session(&self, _: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.lock().tls12 = Some(value);
    }

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.lock().tls12.clone()
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {
        self.lock().tls12 = None;
    }

    fn insert_tls13_ticket(&self, _: ServerName<'static>, value: Tls13ClientSessionValue) {
        let mut s = self.lock();
        if s.tls13.len() >= self.max_tickets {
            s.tls13.pop_front();
        }
        s.tls13.push_back(value);
    }

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.lock().tls13.pop_back()
    }
}

/// The client config and server name for `args`, or `None` without `--tls`.
pub(crate) fn client_config(
    args: &Args,
) -> anyhow::Result<Option<(Arc<ClientConfig>, ServerName<'static>)>> {
    let versions: &[&rustls::SupportedProtocolVersion] = match args.tls_version {
        TlsVersion::Any => rustls::ALL_VERSIONS,
        TlsVersion::Tls12 => &[&rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let Some((mut config, name)) = insecure::client_config(&args.tls, versions)? else {
        return Ok(None);
    };
    config.resumption = match args.tls_resumption {
        OnOff::On => Resumption::store(Arc::new(OneServerSessions {
            max_tickets: 4 * args.connections,
            inner: Mutex::default(),
        })),
        OnOff::Off => Resumption::disabled(),
    };
    Ok(Some((Arc::new(config), name)))
}
