//! A connected socket as an endpoint: the stages read or write its descriptor as they do a
//! pipe's (splice included), and call in here around the payload: the receiving side for how
//! much the current frame still holds, the sending side for each chunk's header and for the
//! end of the stream.

use std::cell::RefCell;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use crate::net::Link;
use crate::net::receive::Receiving;
use crate::net::send::Sending;
use crate::net::tls::Tunnel;

/// The connection the stages read or write: the socket itself, or with TLS the plain end of a
/// tunnel whose pump encrypts (`net/tls`).
pub(crate) enum Conn {
    Tcp(TcpStream),
    Tls(Box<Tunnel>),
}

impl Conn {
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Conn::Tcp(stream) => stream.as_fd(),
            Conn::Tls(tunnel) => tunnel.as_fd(),
        }
    }

    /// Why the TLS pump ended in error, if it did.
    fn fault(&self) -> Option<String> {
        match self {
            Conn::Tcp(_) => None,
            Conn::Tls(tunnel) => tunnel.fault(),
        }
    }
}

/// Which way the payload goes on this socket.
pub(crate) enum Flow {
    Sending(Sending),
    Receiving(Receiving),
}

pub(crate) struct Socket {
    conn: Conn,
    name: String,
    /// Only the stage that opened the socket touches it.
    flow: RefCell<Flow>,
    link: Arc<Link>,
}

impl Socket {
    pub(crate) fn new(conn: Conn, name: String, flow: Flow, link: Arc<Link>) -> Socket {
        Socket {
            conn,
            name,
            flow: RefCell::new(flow),
            link,
        }
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }

    /// An error on the connection, with the TLS pump's reason when it has one: the local end
    /// of a tunnel only ever sees an end or a broken pipe.
    pub(crate) fn explain(&self, error: anyhow::Error) -> anyhow::Error {
        match self.conn.fault() {
            Some(fault) => error.context(format!("TLS: {fault}")),
            None => error,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// How much the next read may take (0: the stream ended, checked).
    pub(crate) fn read_budget(&self, max: usize) -> anyhow::Result<usize> {
        match &mut *self.flow.borrow_mut() {
            Flow::Receiving(receiving) => receiving.budget(self.as_fd(), max),
            Flow::Sending(_) => Ok(max),
        }
    }

    pub(crate) fn received(&self, len: usize, data: Option<&[u8]>) {
        if let Flow::Receiving(receiving) = &mut *self.flow.borrow_mut() {
            receiving.received(len, data);
        }
    }

    /// A read found the end of the connection: the stream's end, if it was announced.
    pub(crate) fn read_end(&self) -> anyhow::Result<()> {
        match &*self.flow.borrow() {
            Flow::Receiving(receiving) => {
                if let Some(digest) = receiving.digest() {
                    self.link.stats.digested(digest);
                }
                if let Some(fault) = self.conn.fault().filter(|_| !receiving.framed()) {
                    anyhow::bail!("TLS: {fault}");
                }
                receiving.closed()
            }
            Flow::Sending(_) => Ok(()),
        }
    }

    /// A read failed: a reset where a frame was due is a truncated stream.
    pub(crate) fn read_failed(&self, error: io::Error) -> anyhow::Error {
        if let Flow::Receiving(receiving) = &*self.flow.borrow()
            && receiving.framed()
            && error.raw_os_error() == Some(libc::ECONNRESET)
        {
            return receiving.truncated();
        }
        self.explain(anyhow::Error::new(error))
    }

    /// Before a chunk of `len` bytes is written: its header. `false`: given up.
    pub(crate) fn chunk(
        &self,
        len: usize,
        data: Option<&[u8]>,
        given_up: &dyn Fn() -> bool,
    ) -> io::Result<bool> {
        match &mut *self.flow.borrow_mut() {
            Flow::Sending(sending) => sending.frame(self.as_fd(), len, data, given_up),
            Flow::Receiving(_) => Ok(true),
        }
    }

    /// After the last chunk: the end of the stream and, framed, the receiver's answer.
    pub(crate) fn finish(&self, given_up: &dyn Fn() -> bool) -> anyhow::Result<()> {
        let wait = self.link.spec.peer_timeout;
        match &mut *self.flow.borrow_mut() {
            Flow::Sending(sending) => {
                let ended = sending.end(self.as_fd(), wait, given_up);
                if let Some(digest) = sending.digest() {
                    self.link.stats.digested(digest);
                }
                ended.map_err(|e| self.explain(e))
            }
            Flow::Receiving(_) => Ok(()),
        }
    }
}
