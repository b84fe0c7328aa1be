//! The sending end of a framed stream: a header before each chunk, the end frame after the
//! last, then the receiver's answer. With `--raw`, only the digest and the half-close.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::io::sys;
use crate::net::frame::{HEADER_LEN, Header, Kind, TRAILER_LEN, Trailer};
use crate::net::framed::{
    finalize, half_close, hasher, integrity, read_within, send_all, wait_for_close,
};

/// The sending end: a header before each chunk, the end frame after the last.
pub(crate) struct Sending {
    /// Headers and an end frame, else plain bytes (`--raw`).
    framed: bool,
    bytes: u64,
    digest: Option<Box<blake3::Hasher>>,
}

impl Sending {
    pub(crate) fn new(framed: bool, digest: bool) -> Self {
        Sending {
            framed,
            bytes: 0,
            digest: hasher(digest),
        }
    }

    /// The header of a chunk of `len` bytes, sent before its payload; `data` is the payload
    /// where it is in memory (for the digest, which the copy path guarantees). MSG_MORE holds
    /// the header back until the payload joins it in one segment. `false`: given up.
    pub(crate) fn frame(
        &mut self,
        fd: BorrowedFd<'_>,
        len: usize,
        data: Option<&[u8]>,
        given_up: &dyn Fn() -> bool,
    ) -> io::Result<bool> {
        if let (Some(hasher), Some(data)) = (&mut self.digest, data) {
            hasher.update(data);
        }
        self.bytes += len as u64;
        if !self.framed {
            return Ok(true);
        }
        let header = Header {
            kind: Kind::Data,
            len: len as u64,
        }
        .encode();
        match send_more(fd, &header) {
            Ok(n) if n == HEADER_LEN => Ok(true),
            Ok(n) => send_all(fd, &header[n..], given_up),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => send_all(fd, &header, given_up),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn digest(&self) -> Option<[u8; 32]> {
        finalize(&self.digest)
    }

    /// Sends the end frame, half-closes, and waits up to `wait` for the receiver's answer: only
    /// an acknowledgement of every byte (and digest) ends the stream well.
    pub(crate) fn end(
        &mut self,
        fd: BorrowedFd<'_>,
        wait: Duration,
        given_up: &dyn Fn() -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + wait;
        if !self.framed {
            half_close(fd)?;
            wait_for_close(fd, deadline, given_up);
            return Ok(());
        }
        let trailer = Trailer {
            bytes: self.bytes,
            digest: self.digest(),
        };
        let header = Header {
            kind: Kind::End,
            len: TRAILER_LEN as u64,
        };
        let mut end = header.encode().to_vec();
        end.extend_from_slice(&trailer.encode());
        if !send_all(fd, &end, given_up)? {
            anyhow::bail!("stopped before the end of the stream was sent");
        }
        half_close(fd)?;
        let mut answer = [0; HEADER_LEN];
        match read_within(fd, &mut answer, deadline, given_up) {
            Ok(true) => {}
            Ok(false) => anyhow::bail!("{} sent, but no acknowledgement came", self.bytes),
            Err(e) => {
                return Err(e).context(format!(
                    "{} bytes sent, but the receiver did not acknowledge",
                    self.bytes
                ));
            }
        }
        self.check_answer(Header::decode(answer))?;
        wait_for_close(fd, deadline, given_up);
        Ok(())
    }

    fn check_answer(&self, answer: Option<Header>) -> anyhow::Result<()> {
        match answer {
            Some(Header {
                kind: Kind::Ack,
                len,
            }) if len == self.bytes => Ok(()),
            Some(Header {
                kind: Kind::Ack,
                len,
            }) => Err(integrity(format!(
                "the receiver acknowledged {len} bytes of {} sent",
                self.bytes
            ))),
            Some(Header {
                kind: Kind::Nak,
                len,
            }) => Err(integrity(format!(
                "the receiver found the stream damaged (checksum or count mismatch after {len} bytes)"
            ))),
            _ => anyhow::bail!("the receiver answered the end of the stream with something else"),
        }
    }
}

fn send_more(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    let flags = libc::MSG_MORE | libc::MSG_NOSIGNAL;
    // SAFETY: the buffer is valid for its length.
    let sent = unsafe { libc::send(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), flags) };
    match sent {
        n if n >= 0 => Ok(n as usize),
        _ => {
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                // Not a TCP socket (a TLS tunnel's local end): a plain write does.
                Some(libc::EOPNOTSUPP | libc::ENOTSOCK) => sys::write(fd, bytes),
                _ => Err(error),
            }
        }
    }
}
