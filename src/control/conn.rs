//! One conversation with a relay's control socket: connect, send a request line, read the reply
//! line, every step bounded in time, so a relay that hangs cannot hang the client.

use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::control::json::{self, Value};
use crate::io::sys::describe;

/// A reply longer than this is not a bpipe's.
const MAX_REPLY: usize = 1 << 20;

pub(crate) struct Connection {
    stream: UnixStream,
    /// Read past the end of the last reply.
    pending: Vec<u8>,
    timeout: Duration,
    /// No step waits past this, whatever the timeout.
    until: Option<Instant>,
}

/// Why a conversation failed, in words for `... (<why>)`.
pub(crate) type Why = String;

/// A relay closes the connection of a user other than its own without a word.
const HUNG_UP: &str = "it hung up without answering, as a bpipe does to other users";

fn io_why(error: &io::Error, timeout: Duration) -> Why {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no answer within {}", humantime::format_duration(timeout))
        }
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => HUNG_UP.to_string(),
        _ => describe(error),
    }
}

/// One non-blocking connect(2). std's `UnixStream::connect` has no timeout, and a blocking
/// connect to a listener whose backlog is full waits for as long as that relay stays stuck.
fn try_connect(path: &Path) -> io::Result<UnixStream> {
    // SAFETY: an all-zero sockaddr_un is valid; the path is copied in below, NUL-terminated.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (slot, byte) in addr.sun_path.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    let flags = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    // SAFETY: socket(2) has no memory preconditions.
    let fd = unsafe { libc::socket(libc::AF_UNIX, flags, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2) and nothing else owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: addr is a valid sockaddr_un of `len` bytes that lives across the call.
    let done = unsafe { libc::connect(fd, (&raw const addr).cast::<libc::sockaddr>(), len) };
    if done != 0 {
        return Err(io::Error::last_os_error());
    }
    let stream = UnixStream::from(socket);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

impl Connection {
    /// Connects to the socket at `path`; every later step is bounded by `timeout` too.
    pub(crate) fn open(path: &Path, timeout: Duration) -> Result<Connection, Why> {
        use std::os::unix::fs::FileTypeExt;
        if std::fs::metadata(path).is_ok_and(|meta| !meta.file_type().is_socket()) {
            return Err("not a socket".to_string());
        }
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match try_connect(path) {
                Ok(stream) => break stream,
                // A full backlog: the relay has not accepted earlier clients yet.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(5));
                }
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                    return Err("nothing listens on the socket".to_string());
                }
                Err(e) => return Err(io_why(&e, timeout)),
            }
        };
        stream
            .set_write_timeout(Some(timeout))
            .map_err(|e| describe(&e))?;
        Ok(Connection {
            stream,
            pending: Vec::new(),
            timeout,
            until: None,
        })
    }

    /// Bounds every later step by `deadline` as well as by the timeout.
    pub(crate) fn finish_by(&mut self, deadline: Instant) {
        self.until = Some(deadline);
    }

    /// Sends `request` and returns the reply line, to be read with `check`.
    pub(crate) fn ask(&mut self, request: &str) -> Result<String, Why> {
        let line = format!("{request}\n");
        self.stream
            .write_all(line.as_bytes())
            .map_err(|e| io_why(&e, self.timeout))?;
        self.read_line()
    }

    fn read_line(&mut self) -> Result<String, Why> {
        let mut deadline = Instant::now() + self.timeout;
        if let Some(until) = self.until {
            deadline = deadline.min(until);
        }
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.pending) {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return String::from_utf8(line[..end].to_vec())
                    .map_err(|_| "its reply is not text".to_string());
            }
            if self.pending.len() > MAX_REPLY {
                return Err("its reply is too long to be a bpipe's".to_string());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io_why(&io::ErrorKind::TimedOut.into(), self.timeout));
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| describe(&e))?;
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(HUNG_UP.to_string()),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_why(&e, self.timeout)),
            }
        }
    }
}

/// A reply is a JSON object with a boolean `ok`: anything else is not a bpipe talking.
pub(crate) fn check(reply: &str) -> Result<Value<'_>, Why> {
    let short: String = reply.chars().take(40).collect();
    let not_ours = || format!("not a bpipe reply: '{short}'");
    let value = json::parse(reply).map_err(|_| not_ours())?;
    value
        .get("ok")
        .and_then(Value::as_bool)
        .ok_or_else(not_ours)?;
    Ok(value)
}

#[cfg(test)]
pub(crate) mod fake {
    //! A stand-in relay: a thread on a Unix socket in a scratch directory that answers each
    //! request line with a canned reply.

    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread;

    /// How the fake answers one request line: `None` says nothing (and holds the connection).
    pub(crate) type Answer = fn(&str) -> Option<String>;

    pub(crate) struct Fake {
        pub(crate) path: PathBuf,
        dir: PathBuf,
        /// Every request line received, in order.
        pub(crate) heard: Arc<Mutex<Vec<String>>>,
    }

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    impl Fake {
        pub(crate) fn start(answer: Answer) -> Fake {
            let dir = std::env::temp_dir().join(format!(
                "bpipe-fake-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("fake.sock");
            let listener = UnixListener::bind(&path).unwrap();
            let heard = Arc::new(Mutex::new(Vec::new()));
            let log = Arc::clone(&heard);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { return };
                    let log = Arc::clone(&log);
                    thread::spawn(move || serve(stream, answer, &log));
                }
            });
            Fake { path, dir, heard }
        }

        pub(crate) fn heard(&self) -> Vec<String> {
            self.heard.lock().unwrap().clone()
        }
    }

    fn serve(stream: std::os::unix::net::UnixStream, answer: Answer, log: &Mutex<Vec<String>>) {
        let mut writer = stream.try_clone().unwrap();
        let mut held = Vec::new();
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            log.lock().unwrap().push(line.clone());
            match answer(&line) {
                Some(reply) => {
                    if writer.write_all(format!("{reply}\n").as_bytes()).is_err() {
                        return;
                    }
                }
                // Keep the connection open without answering, as a stuck relay would.
                None => held.push(writer.try_clone().unwrap()),
            }
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::Fake;
    use super::*;

    const SHORT: Duration = Duration::from_millis(200);

    #[test]
    fn a_request_gets_its_reply_line() {
        let fake = Fake::start(|line| Some(format!(r#"{{"ok":true,"echo":"{line}"}}"#)));
        let mut conn = Connection::open(&fake.path, SHORT).unwrap();
        assert_eq!(conn.ask("stats").unwrap(), r#"{"ok":true,"echo":"stats"}"#);
        assert_eq!(
            conn.ask("pause out").unwrap(),
            r#"{"ok":true,"echo":"pause out"}"#
        );
        assert_eq!(fake.heard(), ["stats", "pause out"]);
    }

    #[test]
    fn a_silent_socket_times_out() {
        let fake = Fake::start(|_| None);
        let mut conn = Connection::open(&fake.path, SHORT).unwrap();
        let start = Instant::now();
        assert_eq!(conn.ask("stats").unwrap_err(), "no answer within 200ms");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_reply_that_is_not_a_bpipes_is_refused() {
        let fake = Fake::start(|_| Some("hello there".into()));
        let mut conn = Connection::open(&fake.path, SHORT).unwrap();
        let line = conn.ask("stats").unwrap();
        assert_eq!(
            check(&line).unwrap_err(),
            "not a bpipe reply: 'hello there'"
        );
        for bad in [r#"{"status":"fine"}"#, r#"{"ok":"yes"}"#, "[true]"] {
            assert!(
                check(bad).unwrap_err().starts_with("not a bpipe reply"),
                "{bad}"
            );
        }
        assert!(check(r#"{"ok":false,"error":"no"}"#).is_ok());
    }

    #[test]
    fn missing_and_dead_sockets_say_why() {
        let dir = std::env::temp_dir().join(format!("bpipe-conn-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("none.sock");
        assert_eq!(
            Connection::open(&missing, SHORT).err().unwrap(),
            "No such file or directory"
        );
        // A socket whose listener is gone, as a relay killed with -9 leaves it.
        let dead = dir.join("dead.sock");
        drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
        assert_eq!(
            Connection::open(&dead, SHORT).err().unwrap(),
            "nothing listens on the socket"
        );
        let file = dir.join("file");
        std::fs::write(&file, "").unwrap();
        assert_eq!(
            Connection::open(&file, SHORT).err().unwrap(),
            "not a socket"
        );
        let long = dir.join("x".repeat(200));
        assert_eq!(
            Connection::open(&long, SHORT).err().unwrap(),
            "File name too long"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_closed_connection_is_no_answer() {
        let dir = std::env::temp_dir().join(format!("bpipe-conn-close-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("closing.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let closer = std::thread::spawn(move || drop(listener.accept()));
        let mut conn = Connection::open(&path, SHORT).unwrap();
        closer.join().unwrap();
        let why = conn.ask("stats").unwrap_err();
        assert_eq!(why, HUNG_UP);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
