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
use crate::net::framed::{Receiving, Sending};

/// Which way the payload goes on this socket.
pub(crate) enum Flow {
    Sending(Sending),
    Receiving(Receiving),
}

pub(crate) struct Socket {
    stream: TcpStream,
    name: String,
    /// Only the stage that opened the socket touches it.
    flow: RefCell<Flow>,
    link: Arc<Link>,
}

impl Socket {
    pub(crate) fn new(stream: TcpStream, name: String, flow: Flow, link: Arc<Link>) -> Socket {
        Socket {
            stream,
            name,
            flow: RefCell::new(flow),
            link,
        }
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
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
        anyhow::Error::new(error)
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
                ended
            }
            Flow::Receiving(_) => Ok(()),
        }
    }
}
