//! Both ends of bpipe's framed stream (`net/frame.rs` has the wire format): the hello, the
//! sender's frames, end and wait for the acknowledgement, and the receiver's frame-by-frame
//! reads, its check of the end and its answer. The payload itself is moved by the stages
//! (spliced or copied); only headers, trailers and hellos are read and written here.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::io::sys;
use crate::net::frame::{HEADER_LEN, HELLO_LEN, Header, Hello, Kind, Role, TRAILER_LEN, Trailer};
use crate::net::wait::{self, Ready};

/// How long a side waits for the other's hello: a peer that is not bpipe sends none.
pub(crate) const HELLO_WAIT: Duration = Duration::from_secs(1);

/// The stream that arrived is not the stream that was sent: exit status 6.
#[derive(Debug)]
pub(crate) struct Integrity(pub(crate) String);

impl fmt::Display for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for Integrity {}

pub(crate) fn integrity(why: String) -> anyhow::Error {
    anyhow::Error::new(Integrity(why)).context("integrity")
}

/// Whether an error says the stream was not delivered whole.
pub(crate) fn is_integrity(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.is::<Integrity>())
}

/// Reads until `buf` is full, keeping what came in `have` across interruptions (returned as
/// `Interrupted`, so that a stop can be seen); the end of the stream first is `UnexpectedEof`.
fn fill_exact(fd: BorrowedFd<'_>, buf: &mut [u8], have: &mut usize) -> io::Result<()> {
    while *have < buf.len() {
        match sys::read(fd, &mut buf[*have..])? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => *have += n,
        }
    }
    Ok(())
}

/// Writes all of `bytes`, unless `given_up` says to stop after an interruption: `false` then.
fn send_all(fd: BorrowedFd<'_>, mut bytes: &[u8], given_up: &dyn Fn() -> bool) -> io::Result<bool> {
    while !bytes.is_empty() {
        match sys::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted && given_up() => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Reads exactly `buf.len()` bytes before `deadline`; `Ok(false)` when it passed or a stop came.
fn read_within(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    deadline: Instant,
    given_up: &dyn Fn() -> bool,
) -> io::Result<bool> {
    let mut have = 0;
    while have < buf.len() {
        if wait::ready(fd, libc::POLLIN, Some(deadline), given_up)? != Ready::Yes {
            return Ok(false);
        }
        match fill_exact(fd, buf, &mut have) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => other?,
        }
    }
    Ok(true)
}

/// Says hello and reads the peer's: both sides speak first, so neither waits on the other.
/// Gives the peer's hello; `None` on a stop.
pub(crate) fn handshake(
    fd: BorrowedFd<'_>,
    ours: Hello,
    given_up: &dyn Fn() -> bool,
) -> anyhow::Result<Option<Hello>> {
    if !send_all(fd, &ours.encode(), given_up).context("cannot send the hello")? {
        return Ok(None);
    }
    let mut theirs = [0; HELLO_LEN];
    let deadline = Instant::now() + HELLO_WAIT;
    match read_within(fd, &mut theirs, deadline, given_up) {
        Ok(true) => {}
        Ok(false) if given_up() => return Ok(None),
        Ok(false) => anyhow::bail!(
            "no hello from the peer within {}: is it bpipe? (use --raw with nc, socat or mbuffer)",
            humantime::format_duration(HELLO_WAIT)
        ),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            anyhow::bail!(
                "the peer closed the connection before its hello (use --raw if it is not bpipe)"
            )
        }
        Err(e) => return Err(e).context("cannot read the peer's hello"),
    }
    let theirs = Hello::decode(&theirs).map_err(|e| anyhow::anyhow!("{e}"))?;
    if theirs.role == ours.role {
        let both = match ours.role {
            Role::Sends => "send",
            Role::Receives => "receive",
        };
        anyhow::bail!("both ends {both}: connect a bpipe output to a bpipe input");
    }
    Ok(Some(theirs))
}

/// Digest of every payload byte.
fn hasher(digest: bool) -> Option<Box<blake3::Hasher>> {
    digest.then(|| Box::new(blake3::Hasher::new()))
}

fn finalize(hasher: &Option<Box<blake3::Hasher>>) -> Option<[u8; 32]> {
    hasher.as_ref().map(|h| *h.finalize().as_bytes())
}

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

/// Half-closes: no more data from this side; the peer may still answer.
pub(crate) fn half_close(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: shutdown on an open socket.
    match unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Waits until the peer closes its side too (or the deadline): a close right after the last
/// write could otherwise turn into a reset that destroys what the peer had not read yet.
pub(crate) fn wait_for_close(fd: BorrowedFd<'_>, deadline: Instant, given_up: &dyn Fn() -> bool) {
    let mut sink = [0; 512];
    while let Ok(Ready::Yes) = wait::ready(fd, libc::POLLIN, Some(deadline), given_up) {
        match sys::read(fd, &mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::frame::VERSION;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    const NEVER: &dyn Fn() -> bool = &|| false;

    /// Sends `chunks` framed (the payload written as the stages would), then the end, on one
    /// thread; the receiver reads it all on this one. `tamper` changes the payload in flight.
    fn exchange(chunks: &[&[u8]], tamper: bool) -> (anyhow::Result<()>, anyhow::Result<Vec<u8>>) {
        let (sender_end, receiver_end) = UnixStream::pair().unwrap();
        let chunks: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
        let sender = std::thread::spawn(move || {
            let mut sending = Sending::new(true, true);
            let mut socket = sender_end;
            for chunk in &chunks {
                sending
                    .frame(socket.as_fd(), chunk.len(), Some(chunk), NEVER)
                    .unwrap();
                let mut payload = chunk.clone();
                if tamper {
                    payload[0] ^= 1;
                }
                socket.write_all(&payload).unwrap();
            }
            sending.end(socket.as_fd(), Duration::from_secs(5), NEVER)
        });
        let mut receiving = Receiving::new(true, true);
        let fd = receiver_end.as_fd();
        let mut got = Vec::new();
        let received = loop {
            match receiving.budget(fd, 7) {
                Ok(0) => break receiving.closed().map(|()| got),
                Ok(n) => {
                    let mut buf = vec![0; n];
                    let n = sys::read(fd, &mut buf).unwrap();
                    receiving.received(n, Some(&buf[..n]));
                    got.extend_from_slice(&buf[..n]);
                }
                Err(e) => break Err(e),
            }
        };
        drop(receiver_end);
        (sender.join().unwrap(), received)
    }

    #[test]
    fn a_whole_stream_is_acknowledged() {
        let (sent, received) = exchange(&[b"hello, ", b"world", b""], false);
        sent.unwrap();
        assert_eq!(received.unwrap(), b"hello, world");
    }

    #[test]
    fn a_damaged_byte_fails_both_ends() {
        let (sent, received) = exchange(&[b"hello, ", b"world"], true);
        let received = received.unwrap_err();
        assert!(is_integrity(&received));
        assert_eq!(received.root_cause().to_string(), "checksum mismatch");
        let sent = sent.unwrap_err();
        assert!(is_integrity(&sent), "{sent:#}");
    }

    #[test]
    fn an_end_of_connection_before_the_end_frame_is_a_truncation() {
        let (sender_end, receiver_end) = UnixStream::pair().unwrap();
        let mut sending = Sending::new(true, false);
        sending.frame(sender_end.as_fd(), 3, None, NEVER).unwrap();
        (&sender_end).write_all(b"abc").unwrap();
        drop(sender_end);
        let mut receiving = Receiving::new(true, false);
        let fd = receiver_end.as_fd();
        assert_eq!(receiving.budget(fd, 100).unwrap(), 3);
        let mut buf = [0; 3];
        assert_eq!(sys::read(fd, &mut buf).unwrap(), 3);
        receiving.received(3, None);
        let error = receiving.budget(fd, 100).unwrap_err();
        assert!(is_integrity(&error));
        assert_eq!(
            error.root_cause().to_string(),
            "stream truncated after 3 bytes"
        );
    }

    #[test]
    fn a_plain_stream_ends_where_the_connection_does() {
        let receiving = Receiving::new(false, false);
        assert!(receiving.closed().is_ok());
    }

    #[test]
    fn the_hello_tells_roles_and_foreign_peers_apart() {
        let hello = |role| Hello {
            version: VERSION,
            role,
            checksum: false,
        };
        let (a, b) = UnixStream::pair().unwrap();
        let peer =
            std::thread::spawn(move || handshake(b.as_fd(), hello(Role::Receives), NEVER).unwrap());
        let theirs = handshake(a.as_fd(), hello(Role::Sends), NEVER)
            .unwrap()
            .unwrap();
        assert_eq!(theirs.role, Role::Receives);
        assert_eq!(peer.join().unwrap().unwrap().role, Role::Sends);

        let (a, b) = UnixStream::pair().unwrap();
        let peer = std::thread::spawn(move || handshake(b.as_fd(), hello(Role::Sends), NEVER));
        let both = handshake(a.as_fd(), hello(Role::Sends), NEVER).unwrap_err();
        assert!(both.to_string().contains("both ends send"), "{both}");
        assert!(peer.join().unwrap().is_err());

        let (a, b) = UnixStream::pair().unwrap();
        (&b).write_all(b"GET / HTTP/1.1\r\n").unwrap();
        let foreign = handshake(a.as_fd(), hello(Role::Receives), NEVER).unwrap_err();
        assert!(foreign.to_string().contains("--raw"), "{foreign}");
    }

    #[test]
    fn a_silent_peer_is_not_bpipe_after_a_second() {
        let (a, _b) = UnixStream::pair().unwrap();
        let hello = Hello {
            version: VERSION,
            role: Role::Sends,
            checksum: false,
        };
        let start = Instant::now();
        let silent = handshake(a.as_fd(), hello, NEVER).unwrap_err();
        assert!(start.elapsed() >= HELLO_WAIT);
        assert!(
            silent
                .to_string()
                .starts_with("no hello from the peer within 1s"),
            "{silent}"
        );
    }
}
