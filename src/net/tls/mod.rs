//! TLS 1.3 on TCP endpoints (rustls with the ring provider): the flags' files loaded once at
//! start (`config.rs`), a handshake bounded in time and by a stop (`handshake.rs`), trust by
//! pin (`verify.rs`), and the finished connection handed to the stages as a plain local stream
//! relayed by a pump thread (`pump.rs`).

mod config;
mod handshake;
mod pump;
mod verify;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, IoState, ServerConfig, ServerConnection};

use handshake::{Failure, Role, drive};
pub(crate) use pump::Tunnel;
use verify::AskWatch;

/// How long a connecting side whose certificate the listener asked for waits for the verdict
/// after its own handshake is over. A listener that sends no session ticket (bpipe's always
/// sends one) costs this much, then counts as having accepted.
const VERDICT_WAIT: Duration = Duration::from_secs(5);

/// The TLS flags as given.
#[derive(Debug, Default, Clone)]
pub(crate) struct TlsOptions {
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
    pub(crate) ca: Option<PathBuf>,
    /// As typed by the user.
    pub(crate) pin: Option<String>,
    pub(crate) client_ca: Option<PathBuf>,
}

impl From<&crate::cli::NetArgs> for TlsOptions {
    fn from(net: &crate::cli::NetArgs) -> TlsOptions {
        TlsOptions {
            cert: net.tls_cert.clone(),
            key: net.tls_key.clone(),
            ca: net.tls_ca.clone(),
            pin: net.tls_pin.clone(),
            client_ca: net.tls_client_ca.clone(),
        }
    }
}

impl TlsOptions {
    /// Refuses flags the run's endpoints cannot use, or that leave a side without what it
    /// needs, before any file is read: a usage error.
    pub(crate) fn check(&self, listens: bool, connects: bool) -> anyhow::Result<()> {
        match self.is_empty() {
            true => Ok(()),
            false => config::check_roles(self, listens, connects),
        }
    }

    fn is_empty(&self) -> bool {
        self.cert.is_none()
            && self.key.is_none()
            && self.ca.is_none()
            && self.pin.is_none()
            && self.client_ca.is_none()
    }
}

/// The run's TLS configurations, loaded and checked.
pub(crate) struct Tls {
    client: Option<Arc<ClientConfig>>,
    server: Option<Arc<ServerConfig>>,
}

impl Tls {
    /// None when no TLS flag was given. `listens`/`connects`: whether the run has listening /
    /// connecting endpoints. Every file is read and parsed here, so that a bad file is an
    /// error before any byte moves; the error's Display is "<flag> <file>: <why>".
    pub(crate) fn load(
        options: &TlsOptions,
        listens: bool,
        connects: bool,
    ) -> anyhow::Result<Option<Tls>> {
        if options.is_empty() {
            return Ok(None);
        }
        config::check_roles(options, listens, connects)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let identity = config::identity(options, &provider)?;
        let server = match (&identity, listens) {
            (Some(identity), true) => Some(config::server(options, identity, &provider)?),
            _ => None,
        };
        let client = match connects {
            true => Some(config::client(options, identity.as_ref(), &provider)?),
            false => None,
        };
        Ok(Some(Tls { client, server }))
    }

    /// Server side of a handshake on an accepted connection; returns once the handshake is
    /// complete, `Ok(None)` when `stop` was raised first.
    pub(crate) fn accept(
        &self,
        mut tcp: TcpStream,
        timeout: Duration,
        stop: &AtomicBool,
    ) -> anyhow::Result<Option<Tunnel>> {
        let config = self
            .server
            .clone()
            .ok_or_else(|| anyhow!("TLS: no listener certificate loaded"))?;
        let conn = ServerConnection::new(config).map_err(|e| anyhow!("TLS setup: {e}"))?;
        let mut conn = Connection::Server(conn);
        let fail = |failure| anyhow!(handshake::message(&failure, &Role::Listener, timeout));
        blocking(&tcp)?;
        let handshaking = |conn: &Connection, _: Option<&IoState>| !conn.is_handshaking();
        if !drive(&mut conn, &mut tcp, deadline(timeout), stop, handshaking).map_err(fail)? {
            return Ok(None);
        }
        pump::start(conn, tcp).map(Some)
    }

    /// Client side; `host` (a DNS name or an IP literal without brackets) is checked against
    /// the certificate with --tls-ca; with --tls-pin only the certificate's SHA-256 is.
    pub(crate) fn connect(
        &self,
        mut tcp: TcpStream,
        host: &str,
        timeout: Duration,
        stop: &AtomicBool,
    ) -> anyhow::Result<Option<Tunnel>> {
        let shared = self
            .client
            .as_ref()
            .ok_or_else(|| anyhow!("TLS: no way to trust a listener loaded"))?;
        let name = ServerName::try_from(host.to_string()).map_err(|_| {
            anyhow!("TLS handshake failed: {host} is not a host name or an IP address")
        })?;
        // A configuration of its own, to learn whether this listener asks for our certificate.
        let watch = Arc::new(AskWatch::new(shared.client_auth_cert_resolver.clone()));
        let mut config = ClientConfig::clone(shared);
        config.client_auth_cert_resolver = watch.clone();
        let conn =
            ClientConnection::new(Arc::new(config), name).map_err(|e| anyhow!("TLS setup: {e}"))?;
        let mut conn = Connection::Client(conn);
        let role = Role::Connector {
            host,
            presents_cert: watch.presents(),
        };
        let fail = |failure| anyhow!(handshake::message(&failure, &role, timeout));
        blocking(&tcp)?;
        let until = deadline(timeout);
        let handshaking = |conn: &Connection, _: Option<&IoState>| !conn.is_handshaking();
        if !drive(&mut conn, &mut tcp, until, stop, handshaking).map_err(fail)? {
            return Ok(None);
        }
        if watch.asked() {
            let wait = deadline(VERDICT_WAIT).map(|end| until.map_or(end, |u| u.min(end)));
            match drive(&mut conn, &mut tcp, wait, stop, verdict) {
                Ok(true) | Err(Failure::TimedOut) => {}
                Ok(false) => return Ok(None),
                Err(failure) => return Err(fail(failure)),
            }
        }
        pump::start(conn, tcp).map(Some)
    }
}

/// The listener has judged our certificate: a session ticket is sent only after it accepted,
/// and so is any data or its close; a refusal is an alert, which `drive` reports.
fn verdict(conn: &Connection, state: Option<&IoState>) -> bool {
    let ticket = match conn {
        Connection::Client(client) => client.tls13_tickets_received() > 0,
        Connection::Server(_) => true,
    };
    ticket || state.is_some_and(|s| s.plaintext_bytes_to_read() > 0 || s.peer_has_closed())
}

/// None: a timeout too large to be a point in time never runs out.
fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// The handshake and the pump wait in poll(2) and then make blocking calls.
fn blocking(tcp: &TcpStream) -> anyhow::Result<()> {
    tcp.set_nonblocking(false)
        .map_err(|e| anyhow!("TLS: {}", crate::io::sys::describe(&e)))
}
