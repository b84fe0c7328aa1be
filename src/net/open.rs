//! A TCP endpoint that passed its checks (resolved, or bound) and is not connected yet: the
//! stage that uses it connects or accepts when its turn comes, then says hello.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::Address;
use crate::net::connect::{self, Dialed};
use crate::net::frame::{Hello, Role, VERSION};
use crate::net::framed;
use crate::net::listen::{Accepted, Listener};
use crate::net::receive::Receiving;
use crate::net::send::Sending;
use crate::net::socket::{Conn, Flow, Socket};
use crate::net::{Link, options};

enum How {
    /// The host as given (TLS checks the listener's certificate against it) and its addresses.
    Dial(String, Vec<SocketAddr>),
    Accept(Arc<Listener>),
}

pub(crate) struct Unconnected {
    name: String,
    how: How,
    role: Role,
    link: Arc<Link>,
}

/// The addresses a name stands for, found now: a host that does not resolve stops bpipe before
/// any byte moves.
pub(crate) fn resolve(address: &Address) -> anyhow::Result<Vec<SocketAddr>> {
    let port = address.port();
    let found: Vec<SocketAddr> = match address.host() {
        Some(host) => (host, port)
            .to_socket_addrs()
            .with_context(|| format!("{address}: cannot resolve {host}"))?
            .collect(),
        // Every address: IPv6's (which takes IPv4 too, where the system allows), else IPv4's.
        None => vec![
            SocketAddr::from(([0u16; 8], port)),
            SocketAddr::from(([0u8; 4], port)),
        ],
    };
    match found.is_empty() {
        true => anyhow::bail!("{address}: no address found"),
        false => Ok(found),
    }
}

/// Binds a listening address now: one that is in use stops bpipe before any byte moves.
pub(crate) fn bind(address: &Address, link: &Link) -> anyhow::Result<Listener> {
    let spec = &link.spec;
    Listener::bind(
        &resolve(address)?,
        spec.max_conns,
        spec.allow.clone(),
        spec.accept_timeout,
    )
    .with_context(|| address.to_string())
}

impl Unconnected {
    pub(crate) fn dial(address: &Address, role: Role, link: Arc<Link>) -> anyhow::Result<Self> {
        Ok(Unconnected {
            name: address.to_string(),
            how: How::Dial(
                address.host().unwrap_or_default().to_string(),
                resolve(address)?,
            ),
            role,
            link,
        })
    }

    pub(crate) fn accept(
        address: &Address,
        listener: Arc<Listener>,
        role: Role,
        link: Arc<Link>,
    ) -> Self {
        Unconnected {
            name: address.to_string(),
            how: How::Accept(listener),
            role,
            link,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Connects or accepts, then greets the peer; `None` when a stop came first.
    pub(crate) fn open(&self, stop: &AtomicBool) -> anyhow::Result<Option<Socket>> {
        let stream = match &self.how {
            How::Dial(_, addrs) => self.dial_now(addrs, stop)?,
            How::Accept(listener) => self.accept_now(listener, stop)?,
        };
        let Some(stream) = stream else {
            return Ok(None);
        };
        let spec = &self.link.spec;
        options::tune(stream.as_fd(), spec.peer_timeout, spec.tcp_buffer)
            .with_context(|| format!("{}: cannot set the socket's options", self.name))?;
        let Some(conn) = self.secure(stream, stop)? else {
            return Ok(None);
        };
        if !self.greet(&conn, stop)? {
            return Ok(None);
        }
        let flow = match self.role {
            Role::Sends => Flow::Sending(Sending::new(spec.framed, spec.checksum)),
            Role::Receives => Flow::Receiving(Receiving::new(spec.framed, spec.checksum)),
        };
        Ok(Some(Socket::new(
            conn,
            self.name.clone(),
            flow,
            Arc::clone(&self.link),
        )))
    }

    /// Framed, says hello and checks the peer's; `false` when a stop came first.
    fn greet(&self, conn: &Conn, stop: &AtomicBool) -> anyhow::Result<bool> {
        let spec = &self.link.spec;
        if !spec.framed {
            return Ok(true);
        }
        let ours = Hello {
            version: VERSION,
            role: self.role,
            checksum: spec.checksum,
        };
        let given_up = || stop.load(Ordering::Relaxed);
        let hello = framed::handshake(conn.as_fd(), ours, &given_up);
        let Some(theirs) = hello.with_context(|| self.name.clone())? else {
            return Ok(false);
        };
        // Each end digests what passes through it, which the splice path cannot: both must
        // have chosen the copy path that --checksum brings.
        if theirs.checksum != spec.checksum {
            let given = if spec.checksum {
                "this one"
            } else {
                "the other one"
            };
            anyhow::bail!(
                "{}: --checksum must be given to both ends (it is given to {given} only)",
                self.name
            );
        }
        Ok(true)
    }

    /// With TLS, the handshake: nothing of the stream moves before it is complete.
    fn secure(&self, stream: TcpStream, stop: &AtomicBool) -> anyhow::Result<Option<Conn>> {
        let Some(tls) = &self.link.tls else {
            return Ok(Some(Conn::Tcp(stream)));
        };
        let timeout = self.link.spec.peer_timeout;
        let tunnel = match &self.how {
            How::Dial(host, _) => tls.connect(stream, host, timeout, stop),
            How::Accept(_) => tls.accept(stream, timeout, stop),
        };
        let tunnel = tunnel.with_context(|| self.name.clone())?;
        Ok(tunnel.map(|tunnel| Conn::Tls(Box::new(tunnel))))
    }

    fn dial_now(
        &self,
        addrs: &[SocketAddr],
        stop: &AtomicBool,
    ) -> anyhow::Result<Option<TcpStream>> {
        let link = &self.link;
        let started = Instant::now();
        let dialed = connect::dial(addrs, link.spec.retry, stop, |attempt, error, next| {
            link.stats.attempted();
            if let Some(next) = next {
                let why = crate::io::sys::describe(error);
                let next =
                    humantime::format_duration(Duration::from_millis(next.as_millis() as u64));
                link.note(
                    format!("{}: attempt {attempt}: {why}; next in {next}", self.name),
                    true,
                );
            }
        });
        match dialed {
            Dialed::Connected(stream) => {
                link.stats.attempted();
                Ok(Some(stream))
            }
            Dialed::Stopped => Ok(None),
            Dialed::GaveUp(error, attempts) => {
                let spent = humantime::format_duration(Duration::from_millis(
                    started.elapsed().as_millis() as u64,
                ));
                Err(error)
                    .context(format!(
                        "no connection after {attempts} attempts in {spent}"
                    ))
                    .context(self.name.clone())
            }
        }
    }

    fn accept_now(
        &self,
        listener: &Listener,
        stop: &AtomicBool,
    ) -> anyhow::Result<Option<TcpStream>> {
        let refused = |peer: SocketAddr| {
            self.link.note(
                format!("{}: refused {peer}: not in --allow", self.name),
                false,
            )
        };
        match listener
            .accept(stop, refused)
            .with_context(|| self.name.clone())?
        {
            Accepted::Peer(stream, peer) => {
                self.link
                    .note(format!("{}: connection from {peer}", self.name), true);
                Ok(Some(stream))
            }
            Accepted::Stopped => Ok(None),
            Accepted::TimedOut(after) => Err(anyhow::anyhow!(
                "no connection within {}",
                humantime::format_duration(after)
            ))
            .context(self.name.clone()),
        }
    }
}
