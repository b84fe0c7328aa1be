//! bpipe's framed stream (`net/frame.rs` has the wire format): the hello both sides say, what
//! a damaged stream is (status 6), and the reads and writes both ends make of headers,
//! trailers and answers (`send.rs` is the sending end, `receive.rs` the receiving end). The
//! payload itself is moved by the stages (spliced or copied), never here.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::io::sys;
use crate::net::frame::{HELLO_LEN, Hello, Role};
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
pub(super) fn fill_exact(fd: BorrowedFd<'_>, buf: &mut [u8], have: &mut usize) -> io::Result<()> {
    while *have < buf.len() {
        match sys::read(fd, &mut buf[*have..])? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => *have += n,
        }
    }
    Ok(())
}

/// Writes all of `bytes`, unless `given_up` says to stop after an interruption: `false` then.
pub(super) fn send_all(
    fd: BorrowedFd<'_>,
    mut bytes: &[u8],
    given_up: &dyn Fn() -> bool,
) -> io::Result<bool> {
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
pub(super) fn read_within(
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
pub(super) fn hasher(digest: bool) -> Option<Box<blake3::Hasher>> {
    digest.then(|| Box::new(blake3::Hasher::new()))
}

pub(super) fn finalize(hasher: &Option<Box<blake3::Hasher>>) -> Option<[u8; 32]> {
    hasher.as_ref().map(|h| *h.finalize().as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::frame::VERSION;
    use crate::net::receive::Receiving;
    use crate::net::send::Sending;
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
