//! A finished TLS connection handed to the stages as a plain descriptor: the local end of a
//! socket pair, which they read, write and splice as any other. TLS cannot be spliced, so a
//! pump thread relays between the pair's other end and the TLS connection over TCP.

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::anyhow;
use rustls::Connection;

use crate::io::sys::describe;

/// Plaintext taken from the stage, and ciphertext taken from the socket, per system call: big
/// enough that a record (16 KiB) costs no system call of its own.
const CHUNK: usize = 256 * 1024;

/// How long a dropped tunnel waits for the pump to send what it still holds before cutting the
/// connection: a peer that stopped reading must not hold bpipe's exit.
const LINGER: Duration = Duration::from_secs(5);

type Fault = Arc<Mutex<Option<String>>>;

/// A completed TLS connection seen as a plain local stream.
pub(crate) struct Tunnel {
    local: UnixStream,
    /// A second handle on the pump's socket, to cut a flush that outlasts `LINGER`.
    tcp: TcpStream,
    fault: Fault,
    /// Disconnected once the pump has ended. In a mutex only so that a tunnel can be shared
    /// between threads (a receiver alone cannot be).
    ended: Mutex<mpsc::Receiver<()>>,
    pump: Option<JoinHandle<()>>,
}

impl Tunnel {
    /// The plaintext end: read, write, splice, shutdown(SHUT_WR) it.
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.local.as_fd()
    }

    /// Why the pump ended in error, if it did. It is recorded before the pump shuts the local
    /// end, so a stage that sees EOF or EPIPE there can ask right after.
    pub(crate) fn fault(&self) -> Option<String> {
        self.fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Tunnel {
    /// Ends the local stream as an end of data (the pump sends close_notify after what it
    /// holds), then waits for the pump, at most `LINGER` before cutting the connection.
    fn drop(&mut self) {
        let _ = self.local.shutdown(Shutdown::Both);
        let ended = self.ended.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Err(RecvTimeoutError::Timeout) = ended.recv_timeout(LINGER) {
            let _ = self.tcp.shutdown(Shutdown::Both);
        }
        if let Some(pump) = self.pump.take() {
            let _ = pump.join();
        }
    }
}

/// Starts the pump on a connection whose handshake is complete.
pub(super) fn start(mut conn: Connection, tcp: TcpStream) -> anyhow::Result<Tunnel> {
    let fail = |e: io::Error| anyhow!("TLS: cannot start the relay: {}", describe(&e));
    let (local, far) = UnixStream::pair().map_err(fail)?;
    let cut = tcp.try_clone().map_err(fail)?;
    // A whole chunk is encrypted at once and sent in one writev, instead of the default
    // 64 KiB limit making the stage's chunk several rounds.
    conn.set_buffer_limit(None);
    let fault = Fault::default();
    let pump = Pump {
        conn,
        tcp,
        local: far,
        fault: Arc::clone(&fault),
        chunk: vec![0; CHUNK],
        plain: Vec::with_capacity(CHUNK),
        sending: true,
        receiving: true,
        peer_closed: false,
    };
    let (ended_tx, ended) = mpsc::channel::<()>();
    let handle = thread::Builder::new()
        .name("tls-pump".to_string())
        .spawn(move || {
            let _ended = ended_tx;
            pump.run();
        })
        .map_err(fail)?;
    Ok(Tunnel {
        local,
        tcp: cut,
        fault,
        ended: Mutex::new(ended),
        pump: Some(handle),
    })
}

struct Pump {
    conn: Connection,
    tcp: TcpStream,
    local: UnixStream,
    fault: Fault,
    chunk: Vec<u8>,
    /// Plaintext from the peer not yet given to the stage.
    plain: Vec<u8>,
    /// The stage → peer direction is open.
    sending: bool,
    /// The peer → stage direction is open.
    receiving: bool,
    peer_closed: bool,
}

impl Pump {
    fn run(mut self) {
        if let Err(why) = self.relay() {
            *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
            let _ = self.local.shutdown(Shutdown::Both);
        }
        // The tunnel's second handle keeps the socket open: the peer must see the end now.
        let _ = self.tcp.shutdown(Shutdown::Both);
    }

    /// Both directions in one thread, until both are closed (or the stage is gone).
    fn relay(&mut self) -> Result<(), String> {
        // Plaintext may have come in with the end of the handshake.
        let state = self.conn.process_new_packets().map_err(|e| e.to_string())?;
        self.peer_closed = state.peer_has_closed();
        take_plaintext(&mut self.conn, &mut self.plain);
        self.deliver()?;
        while self.sending || self.receiving {
            let [local, tcp] = self.wait()?;
            let ready = libc::POLLIN | libc::POLLHUP | libc::POLLERR;
            if self.sending && local & ready != 0 {
                self.send()?;
            }
            if self.receiving && tcp & ready != 0 {
                self.receive()?;
            }
            if !self.sending && local & libc::POLLHUP != 0 {
                // The tunnel was dropped: nobody takes what may still come from the peer.
                return Ok(());
            }
        }
        Ok(())
    }

    /// The events on [local, tcp]. The local end is watched even when done sending: its
    /// hang-up says that the tunnel was dropped.
    fn wait(&self) -> Result<[libc::c_short; 2], String> {
        let pollfd = |fd, events| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let mut fds = [
            pollfd(
                self.local.as_raw_fd(),
                if self.sending { libc::POLLIN } else { 0 },
            ),
            // Negative: not watched, so a socket in error cannot wake a pump that only sends.
            pollfd(
                if self.receiving {
                    self.tcp.as_raw_fd()
                } else {
                    -1
                },
                libc::POLLIN,
            ),
        ];
        // SAFETY: two valid pollfds, and poll(2) writes only their revents.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok([0, 0]),
                _ => Err(describe(&e)),
            };
        }
        Ok([fds[0].revents, fds[1].revents])
    }

    /// Stage → peer: one read, encrypted whole and sent. The stage's end of stream is the
    /// TLS end of stream (close_notify), then TCP's.
    fn send(&mut self) -> Result<(), String> {
        let n = match self.local.read(&mut self.chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(describe(&e)),
        };
        if n == 0 {
            self.conn.send_close_notify();
            self.flush()?;
            let _ = self.tcp.shutdown(Shutdown::Write);
            self.sending = false;
            return Ok(());
        }
        self.conn
            .writer()
            .write_all(&self.chunk[..n])
            .map_err(|e| describe(&e))?;
        self.flush()
    }

    /// Sends every queued record. Blocking is fine here: the reverse direction carries only a
    /// hello and an acknowledgement, which fit in the socket buffers.
    fn flush(&mut self) -> Result<(), String> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(describe(&e)),
            }
        }
        Ok(())
    }

    /// Peer → stage: one read of whatever the socket holds, decrypted, then given to the stage
    /// in one write.
    fn receive(&mut self) -> Result<(), String> {
        let n = match self.tcp.read(&mut self.chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(describe(&e)),
        };
        if n == 0 {
            // A close_notify would have closed this direction before TCP's end.
            return Err("peer closed without close_notify".to_string());
        }
        let mut rest = &self.chunk[..n];
        while !rest.is_empty() {
            // rustls takes at most one record's worth per call, and holds little plaintext:
            // each piece is decrypted and taken out before the next.
            let taken = self.conn.read_tls(&mut rest).map_err(|e| describe(&e))?;
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // Tell the peer why with the alert rustls queued.
                    let _ = self.flush();
                    return Err(e.to_string());
                }
            };
            self.peer_closed = state.peer_has_closed();
            take_plaintext(&mut self.conn, &mut self.plain);
            if taken == 0 {
                // After close_notify rustls takes nothing more.
                break;
            }
        }
        // An alert or a key update may be queued; once our close_notify is sent, nothing more
        // can go, and trying would only turn a clean end into a broken pipe.
        if self.sending {
            self.flush()?;
        }
        self.deliver()
    }

    /// Gives the stage the plaintext taken so far; after the peer's close_notify, the stage's
    /// end of stream.
    fn deliver(&mut self) -> Result<(), String> {
        if !self.plain.is_empty() {
            let written = (&self.local).write_all(&self.plain);
            self.plain.clear();
            written.map_err(|e| describe(&e))?;
        }
        if self.peer_closed && self.receiving {
            let _ = self.local.shutdown(Shutdown::Write);
            self.receiving = false;
        }
        Ok(())
    }
}

/// Moves the connection's decrypted plaintext into `plain`.
fn take_plaintext(conn: &mut Connection, plain: &mut Vec<u8>) {
    let mut reader = conn.reader();
    while let Ok(chunk) = reader.fill_buf() {
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        plain.extend_from_slice(chunk);
        reader.consume(n);
    }
}
