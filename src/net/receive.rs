//! The receiving end of a framed stream: reads each header, lets the stage read the payload,
//! checks the end and answers it. With `--raw`, the connection's end is the stream's.

use std::io;
use std::os::fd::BorrowedFd;

use anyhow::Context;

use crate::net::frame::{HEADER_LEN, Header, Kind, TRAILER_LEN, Trailer};
use crate::net::framed::{fill_exact, finalize, half_close, hasher, integrity, send_all};

/// The receiving end: reads each header, lets the stage read the payload, checks the end.
pub(crate) struct Receiving {
    framed: bool,
    bytes: u64,
    /// Payload of the current frame still to read.
    left: u64,
    header: [u8; HEADER_LEN],
    have: usize,
    /// The end frame's header came: its trailer is being read.
    in_trailer: bool,
    trailer: [u8; TRAILER_LEN],
    trailer_have: usize,
    digest: Option<Box<blake3::Hasher>>,
    ended: bool,
}

impl Receiving {
    pub(crate) fn new(framed: bool, digest: bool) -> Self {
        Receiving {
            framed,
            bytes: 0,
            left: 0,
            header: [0; HEADER_LEN],
            have: 0,
            in_trailer: false,
            trailer: [0; TRAILER_LEN],
            trailer_have: 0,
            digest: hasher(digest),
            ended: false,
        }
    }

    pub(crate) fn digest(&self) -> Option<[u8; 32]> {
        finalize(&self.digest)
    }

    /// How much the next read may take: `max` or less, within the current frame; 0 once the
    /// end was received, checked and acknowledged.
    pub(crate) fn budget(&mut self, fd: BorrowedFd<'_>, max: usize) -> anyhow::Result<usize> {
        if !self.framed {
            return Ok(max);
        }
        while self.left == 0 && !self.ended {
            self.next_frame(fd)?;
        }
        Ok(if self.ended {
            0
        } else {
            self.left.min(max as u64) as usize
        })
    }

    fn next_frame(&mut self, fd: BorrowedFd<'_>) -> anyhow::Result<()> {
        if !self.in_trailer {
            let read = fill_exact(fd, &mut self.header, &mut self.have);
            self.settle(read)?;
            self.have = 0;
            match Header::decode(self.header) {
                Some(Header {
                    kind: Kind::Data,
                    len,
                }) => {
                    self.left = len;
                    return Ok(());
                }
                Some(Header {
                    kind: Kind::End, ..
                }) => self.in_trailer = true,
                _ => anyhow::bail!("the sender's stream is damaged: a frame header makes no sense"),
            }
        }
        let read = fill_exact(fd, &mut self.trailer, &mut self.trailer_have);
        self.settle(read)?;
        self.ended = true;
        self.check_end(fd, Trailer::decode(&self.trailer))
    }

    /// A header or trailer read: the connection's end or a reset there is a truncated stream.
    fn settle(&self, read: io::Result<()>) -> anyhow::Result<()> {
        match read {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(self.truncated()),
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => Err(self.truncated()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e.into()),
            other => Ok(other?),
        }
    }

    /// Acknowledges a stream that arrived whole, refuses one that did not; either way the
    /// sender hears it, then this side half-closes.
    fn check_end(&self, fd: BorrowedFd<'_>, trailer: Trailer) -> anyhow::Result<()> {
        let ours = self.digest();
        let problem = if trailer.bytes != self.bytes {
            Some(format!(
                "the sender sent {} bytes, {} arrived",
                trailer.bytes, self.bytes
            ))
        } else if trailer.digest.is_some() && ours.is_some() && trailer.digest != ours {
            Some("checksum mismatch".to_string())
        } else {
            None
        };
        let kind = if problem.is_some() {
            Kind::Nak
        } else {
            Kind::Ack
        };
        let answer = Header {
            kind,
            len: self.bytes,
        }
        .encode();
        let sent = send_all(fd, &answer, &|| false).and_then(|_| half_close(fd));
        match problem {
            Some(problem) => Err(integrity(problem)),
            None => sent.context("cannot acknowledge the end of the stream"),
        }
    }

    /// What a stream that ended without its end frame is.
    pub(crate) fn truncated(&self) -> anyhow::Error {
        integrity(format!("stream truncated after {} bytes", self.bytes))
    }

    /// The stage read `data` (its `len` bytes) of the current frame.
    pub(crate) fn received(&mut self, len: usize, data: Option<&[u8]>) {
        if let (Some(hasher), Some(data)) = (&mut self.digest, data) {
            hasher.update(data);
        }
        self.bytes += len as u64;
        if self.framed {
            self.left -= len as u64;
        }
    }

    /// The connection ended (or was reset) where the stage read payload: fine for plain bytes,
    /// a truncated stream when framed, unless the end frame came first.
    pub(crate) fn closed(&self) -> anyhow::Result<()> {
        match self.framed && !self.ended {
            true => Err(self.truncated()),
            false => Ok(()),
        }
    }

    pub(crate) fn framed(&self) -> bool {
        self.framed
    }
}
