//! What bpipe reads and writes. An endpoint is checked up front (`io/check.rs`) and opened only
//! when its turn comes, by the stage that uses it: opening a FIFO waits for its other end, and
//! that wait must hold up neither the other files nor bpipe's answer to a signal. Once open, an
//! endpoint owns its resource and knows its name, and the writer tells it when the stream ends.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use crate::io::sys;
use crate::net::open::Unconnected;
use crate::net::socket::Socket;

/// The names messages give the standard streams.
pub(crate) const STDIN: &str = "standard input";
pub(crate) const STDOUT: &str = "standard output";

/// A descriptor bpipe reads or writes. Standard input and output are borrowed, never closed:
/// other processes share them.
pub(crate) enum Endpoint {
    Stdin,
    Stdout,
    File { file: File, name: String },
    Socket(Box<Socket>),
}

impl Endpoint {
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            // SAFETY: bpipe never closes its standard input or output, so they stay open for as
            // long as any borrow of the endpoint.
            Endpoint::Stdin => unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) },
            // SAFETY: as above.
            Endpoint::Stdout => unsafe { BorrowedFd::borrow_raw(libc::STDOUT_FILENO) },
            Endpoint::File { file, .. } => file.as_fd(),
            Endpoint::Socket(socket) => socket.as_fd(),
        }
    }

    /// The name messages use.
    pub(crate) fn name(&self) -> &str {
        match self {
            Endpoint::Stdin => STDIN,
            Endpoint::Stdout => STDOUT,
            Endpoint::File { name, .. } => name,
            Endpoint::Socket(socket) => socket.name(),
        }
    }

    /// How much the next read may take: `max`, or less where a network frame ends; 0 at the
    /// announced end of a network stream.
    pub(crate) fn read_budget(&self, max: usize) -> anyhow::Result<usize> {
        match self {
            Endpoint::Socket(socket) => socket.read_budget(max),
            _ => Ok(max),
        }
    }

    /// A read brought `len` bytes, `data` where they are in memory.
    pub(crate) fn received(&self, len: usize, data: Option<&[u8]>) {
        if let Endpoint::Socket(socket) = self {
            socket.received(len, data);
        }
    }

    /// A read found the end: a network stream checks it was the announced one.
    pub(crate) fn read_end(&self) -> anyhow::Result<()> {
        match self {
            Endpoint::Socket(socket) => socket.read_end(),
            _ => Ok(()),
        }
    }

    pub(crate) fn read_failed(&self, error: io::Error) -> anyhow::Error {
        match self {
            Endpoint::Socket(socket) => socket.read_failed(error),
            _ => error.into(),
        }
    }

    /// Before a chunk of `len` bytes is written: a network stream's frame header. `false`:
    /// `given_up` said to stop while it waited.
    pub(crate) fn chunk(
        &self,
        len: usize,
        data: Option<&[u8]>,
        given_up: &dyn Fn() -> bool,
    ) -> io::Result<bool> {
        match self {
            Endpoint::Socket(socket) => socket.chunk(len, data, given_up),
            _ => Ok(true),
        }
    }

    /// The end of the stream, after the last byte was written. Files and pipes need nothing
    /// more; a socket half-closes and, framed, waits for the receiver's acknowledgement.
    pub(crate) fn finish(&self, given_up: &dyn Fn() -> bool) -> anyhow::Result<()> {
        match self {
            Endpoint::Socket(socket) => socket.finish(given_up),
            _ => Ok(()),
        }
    }
}

/// A named file that passed its checks, with the flags it is opened with.
pub(crate) struct NamedFile {
    pub(crate) path: CString,
    /// Already quoted for messages (`io/name.rs`).
    pub(crate) name: String,
    pub(crate) flags: libc::c_int,
    /// A FIFO, whose open waits for the other end.
    pub(crate) fifo: bool,
}

impl NamedFile {
    /// Opens the file, waiting as long as a FIFO's other end takes to come; `None` when `stop`
    /// was raised first. A stop interrupts a waiting open with a wake-up signal (EINTR), so it
    /// is looked at again after every interruption.
    pub(crate) fn open(&self, stop: &AtomicBool) -> anyhow::Result<Option<File>> {
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            match sys::open(&self.path, self.flags) {
                Ok(fd) => return Ok(Some(File::from(fd))),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context(self.name.clone()),
            }
        }
    }
}

enum Kind {
    Stdin,
    Stdout,
    File(NamedFile),
    Tcp(Unconnected),
}

/// An endpoint that passed its checks and is not open yet.
pub(crate) struct Unopened {
    kind: Kind,
    /// The capacity a pipe on this side is raised to once open.
    pipe_size: usize,
}

impl Unopened {
    pub(crate) fn stdin(pipe_size: usize) -> Self {
        Unopened {
            kind: Kind::Stdin,
            pipe_size,
        }
    }

    pub(crate) fn stdout(pipe_size: usize) -> Self {
        Unopened {
            kind: Kind::Stdout,
            pipe_size,
        }
    }

    pub(crate) fn file(file: NamedFile, pipe_size: usize) -> Self {
        Unopened {
            kind: Kind::File(file),
            pipe_size,
        }
    }

    pub(crate) fn tcp(socket: Unconnected, pipe_size: usize) -> Self {
        Unopened {
            kind: Kind::Tcp(socket),
            pipe_size,
        }
    }

    pub(crate) fn name(&self) -> &str {
        match &self.kind {
            Kind::Stdin => STDIN,
            Kind::Stdout => STDOUT,
            Kind::File(file) => &file.name,
            Kind::Tcp(socket) => socket.name(),
        }
    }

    /// Opens the endpoint (see `NamedFile::open`; `None` when a stop came first) and raises the
    /// capacity of a pipe behind it: the benchmarks show that each read and write then moves
    /// more per call. A refusal is harmless: the pipe just stays as it was, and a pipe shared
    /// with the producer or consumer is only ever grown.
    pub(crate) fn open(&self, stop: &AtomicBool) -> anyhow::Result<Option<Endpoint>> {
        let endpoint = match &self.kind {
            Kind::Stdin => Endpoint::Stdin,
            Kind::Stdout => Endpoint::Stdout,
            Kind::File(named) => match named.open(stop)? {
                Some(file) => Endpoint::File {
                    file,
                    name: named.name.clone(),
                },
                None => return Ok(None),
            },
            Kind::Tcp(socket) => match socket.open(stop)? {
                Some(socket) => Endpoint::Socket(Box::new(socket)),
                None => return Ok(None),
            },
        };
        if sys::is_pipe(endpoint.as_fd()) {
            let _ = sys::grow_pipe(endpoint.as_fd(), self.pipe_size);
        }
        Ok(Some(endpoint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::thread::JoinHandleExt;
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    fn named(path: &str, flags: libc::c_int) -> NamedFile {
        NamedFile {
            path: CString::new(path).unwrap(),
            name: path.into(),
            flags,
            fifo: false,
        }
    }

    #[test]
    fn standard_input_is_borrowed_and_named() {
        let input = Unopened::stdin(4096);
        assert_eq!(input.name(), "standard input");
        let input = input.open(&AtomicBool::new(false)).unwrap().unwrap();
        assert_eq!(input.as_fd().as_raw_fd(), libc::STDIN_FILENO);
        assert_eq!(input.name(), "standard input");
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_named() {
        let missing = named("/nonexistent/x", libc::O_RDONLY);
        let error = missing.open(&AtomicBool::new(false)).unwrap_err();
        assert_eq!(error.to_string(), "/nonexistent/x");
    }

    #[test]
    fn nothing_is_opened_after_a_stop() {
        let file = named("/dev/null", libc::O_RDONLY);
        assert!(file.open(&AtomicBool::new(true)).unwrap().is_none());
    }

    #[test]
    fn a_stop_ends_a_wait_for_a_fifo_writer() {
        let dir = std::env::temp_dir().join(format!("bpipe-endpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let path = CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path and a valid mode.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        crate::supervise::signals::install_wakeup_handler().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let file = named(fifo.to_str().unwrap(), libc::O_RDONLY);
        let waiting = Arc::clone(&stop);
        let opener = std::thread::spawn(move || {
            tx.send(file.open(&waiting).unwrap().is_none()).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        stop.store(true, Ordering::Relaxed);
        let stopped = loop {
            crate::supervise::signals::wake(opener.as_pthread_t());
            if let Ok(stopped) = rx.recv_timeout(Duration::from_millis(20)) {
                break stopped;
            }
        };
        assert!(stopped);
        opener.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
