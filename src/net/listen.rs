//! Listening: bound when the run starts (so an address in use stops bpipe before any byte
//! moves), accepting when an input's turn comes, refusing peers outside `--allow`, and no longer
//! listening once its `--max-conns` connections are in, so that the next run can bind.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cli::net::Allow;
use crate::net::wait::{self, Ready};

pub(crate) struct Listener {
    socket: TcpListener,
    /// Connections still to accept.
    left: Mutex<usize>,
    allow: Vec<Allow>,
    timeout: Option<Duration>,
}

/// What a wait for a connection came to.
pub(crate) enum Accepted {
    Peer(TcpStream, SocketAddr),
    Stopped,
    TimedOut(Duration),
}

impl Listener {
    /// Binds every address `addrs` resolves to in turn until one binds; std sets SO_REUSEADDR,
    /// so a listener of a run that just ended does not hold the port.
    pub(crate) fn bind(
        addrs: &[SocketAddr],
        conns: usize,
        allow: Vec<Allow>,
        timeout: Option<Duration>,
    ) -> io::Result<Listener> {
        let socket = TcpListener::bind(addrs)?;
        socket.set_nonblocking(true)?;
        Ok(Listener {
            socket,
            left: Mutex::new(conns),
            allow,
            timeout,
        })
    }

    #[cfg(test)]
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    fn admits(&self, peer: &SocketAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|a| a.admits(peer.ip()))
    }

    /// Waits for an admitted peer. Several inputs may wait on one listener at once (merged
    /// connections): whoever the kernel hands a connection gets it, the others wait on.
    /// `refused` hears of every peer turned away.
    pub(crate) fn accept(
        &self,
        stop: &AtomicBool,
        mut refused: impl FnMut(SocketAddr),
    ) -> io::Result<Accepted> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        loop {
            match wait::ready(self.socket.as_fd(), libc::POLLIN, deadline, &|| {
                stop.load(Ordering::Relaxed)
            })? {
                Ready::Yes => {}
                Ready::Stopped => return Ok(Accepted::Stopped),
                Ready::TimedOut => return Ok(Accepted::TimedOut(self.timeout.unwrap_or_default())),
            }
            let (stream, peer) = match self.socket.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(e),
            };
            if !self.admits(&peer) {
                drop(stream);
                refused(peer);
                continue;
            }
            stream.set_nonblocking(false)?;
            self.took_one();
            return Ok(Accepted::Peer(stream, peer));
        }
    }

    /// After the last connection, the socket stops listening: shutdown on a listening socket
    /// refuses further connections at once, while its descriptor stays valid for any thread
    /// still holding it.
    fn took_one(&self) {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        *left = left.saturating_sub(1);
        if *left == 0 {
            // SAFETY: shutdown on a descriptor we own; a failure leaves it listening, harmless.
            unsafe { libc::shutdown(self.socket.as_raw_fd(), libc::SHUT_RDWR) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    fn local(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn accepts_then_stops_listening() {
        let listener = Listener::bind(&[local(0)], 1, Vec::new(), None).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).unwrap();
        let accepted = listener.accept(&AtomicBool::new(false), |_| {}).unwrap();
        assert!(matches!(accepted, Accepted::Peer(..)));
        let refused = TcpStream::connect(addr).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn peers_outside_allow_are_refused_and_the_wait_goes_on() {
        let allow = vec![Allow {
            network: "127.0.0.2".parse().unwrap(),
            prefix: 32,
        }];
        let listener =
            Listener::bind(&[local(0)], 1, allow, Some(Duration::from_secs(10))).unwrap();
        let addr = listener.local_addr().unwrap();
        let _outsider = TcpStream::connect(addr).unwrap();
        let socket = std::net::TcpListener::bind("127.0.0.2:0");
        let insider = socket.and_then(|s| {
            let from = s.local_addr()?;
            drop(s);
            crate::net::connect::bind_and_connect(from, addr)
        });
        let mut refused = Vec::new();
        let accepted = listener
            .accept(&AtomicBool::new(false), |peer| refused.push(peer))
            .unwrap();
        let Accepted::Peer(_, peer) = accepted else {
            panic!("expected a peer")
        };
        assert_eq!(peer.ip().to_string(), "127.0.0.2");
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].ip().to_string(), "127.0.0.1");
        drop(insider);
    }

    #[test]
    fn the_accept_timeout_ends_the_wait() {
        let timeout = Some(Duration::from_millis(50));
        let listener = Listener::bind(&[local(0)], 1, Vec::new(), timeout).unwrap();
        let accepted = listener.accept(&AtomicBool::new(false), |_| {}).unwrap();
        assert!(matches!(accepted, Accepted::TimedOut(_)));
    }

    #[test]
    fn an_address_in_use_is_refused() {
        let first = Listener::bind(&[local(0)], 1, Vec::new(), None).unwrap();
        let taken = first.local_addr().unwrap();
        let error = Listener::bind(&[taken], 1, Vec::new(), None).err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
    }
}
