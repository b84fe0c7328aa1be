//! The control socket: a Unix socket only this user (or root) may use, a thread that accepts on
//! it, and one thread per connection that reads request lines, hands each to the steering loop
//! and writes its reply. The steering loop answers at once whatever the stages are doing.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::control::command::Command;
use crate::control::dir;
use crate::control::reply::Reply;
use crate::plan::ControlSpec;
use crate::supervise::message::Message;

/// The longest request line: every request is a few words.
const MAX_LINE: u64 = 4096;
/// How long a connection waits for the steering loop, which only stops answering at exit.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// The socket, removed when the relay ends.
pub(crate) struct Server {
    path: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Starts answering on the socket the plan names. The default place failing turns control off
/// (with a note); a path given with --control failing is an error.
pub(crate) fn start(
    spec: &ControlSpec,
    tx: mpsc::Sender<Message>,
    note: impl FnOnce(anyhow::Error),
) -> anyhow::Result<Option<Server>> {
    match spec {
        ControlSpec::Off => Ok(None),
        ControlSpec::At(path) => listen(path, tx)
            .with_context(|| format!("control socket {}", path.display()))
            .map(Some),
        ControlSpec::Default => {
            // Finding the relays that run also removes the sockets of those that died.
            let _ = dir::running();
            let path = dir::socket_dir().map(|_| dir::socket_for(std::process::id()));
            match path.and_then(|path| listen(&path, tx)) {
                Ok(server) => Ok(Some(server)),
                Err(e) => {
                    note(e.context("control socket off"));
                    Ok(None)
                }
            }
        }
    }
}

/// Removes what is in the way: a socket nobody answers on (left by a relay killed with -9).
fn clear_the_way(path: &Path) -> anyhow::Result<()> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        bail!("exists and is not a socket");
    }
    if UnixStream::connect(path).is_ok() {
        bail!("another bpipe answers there");
    }
    fs::remove_file(path)?;
    Ok(())
}

fn listen(path: &Path, tx: mpsc::Sender<Message>) -> anyhow::Result<Server> {
    clear_the_way(path)?;
    let listener = UnixListener::bind(path)?;
    let server = Server {
        path: path.to_path_buf(),
    };
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    thread::Builder::new()
        .name("control".into())
        .spawn(move || accept(listener, tx))
        .context("cannot start the control thread")?;
    Ok(server)
}

/// The user id of the process at the other end.
fn peer_uid(stream: &UnixStream) -> Option<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED fills a ucred of the length given, on a socket this thread owns.
    let done = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (done == 0).then_some(cred.uid)
}

/// Only this user and root may steer the relay; anyone else is closed on at once.
fn allowed(stream: &UnixStream) -> bool {
    // SAFETY: getuid cannot fail.
    let me = unsafe { libc::getuid() };
    peer_uid(stream).is_some_and(|uid| uid == me || uid == 0)
}

fn accept(listener: UnixListener, tx: mpsc::Sender<Message>) {
    for stream in listener.incoming().flatten() {
        if !allowed(&stream) {
            continue;
        }
        let tx = tx.clone();
        let _ = thread::Builder::new()
            .name("control-client".into())
            .spawn(move || serve(stream, &tx));
    }
}

/// One request to the steering loop, and its answer.
fn ask(tx: &mpsc::Sender<Message>, command: Command) -> String {
    let (reply, answer) = mpsc::channel();
    if tx.send(Message::Control { command, reply }).is_err() {
        return Reply::error("the relay is ending");
    }
    answer
        .recv_timeout(ANSWER_WITHIN)
        .unwrap_or_else(|_| Reply::error("the relay did not answer"))
}

fn serve(stream: UnixStream, tx: &mpsc::Sender<Message>) {
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut writer = writer;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        match (&mut reader).take(MAX_LINE).read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if !line.ends_with('\n') && line.len() as u64 >= MAX_LINE => {
                let _ = writeln!(writer, "{}", Reply::error("request too long"));
                return;
            }
            Ok(_) => {}
        }
        let reply = match Command::parse(line.trim()) {
            // Answered before the relay starts stopping: it may be gone before it could answer.
            Ok(Command::Stop) => {
                let ok = writeln!(writer, "{}", Reply::ok().done());
                let _ = ask(tx, Command::Stop);
                if ok.is_err() {
                    return;
                }
                continue;
            }
            Ok(command) => ask(tx, command),
            Err(why) => Reply::error(&why),
        };
        if writeln!(writer, "{reply}").is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    fn temp_socket(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("bpipe-server-{name}-{}.sock", std::process::id()))
    }

    #[test]
    fn requests_reach_the_steering_loop_and_bad_ones_do_not() {
        let path = temp_socket("ask");
        let (tx, rx) = mpsc::channel();
        let server = listen(&path, tx).unwrap();
        let steering = thread::spawn(move || {
            if let Ok(Message::Control { command, reply }) = rx.recv() {
                assert_eq!(command, Command::Stats);
                reply
                    .send(Reply::ok().text("seen", "stats").done())
                    .unwrap();
            }
        });
        let mut stream = UnixStream::connect(&path).unwrap();
        writeln!(stream, "frobnicate").unwrap();
        writeln!(stream, "stats").unwrap();
        let mut lines = BufReader::new(stream).lines();
        let refused = lines.next().unwrap().unwrap();
        assert!(
            refused.starts_with(r#"{"ok":false,"error":"unknown request"#),
            "{refused}"
        );
        assert_eq!(
            lines.next().unwrap().unwrap(),
            r#"{"ok":true,"seen":"stats"}"#
        );
        steering.join().unwrap();
        drop(server);
        assert!(!path.exists(), "the socket is removed at the end");
    }

    #[test]
    fn a_socket_in_use_is_refused_and_a_stale_one_replaced() {
        let path = temp_socket("stale");
        let (tx, _rx) = mpsc::channel();
        let first = listen(&path, tx.clone()).unwrap();
        let error = listen(&path, tx.clone()).err().unwrap().to_string();
        assert!(error.contains("another bpipe answers there"), "{error}");
        // A socket left behind with nobody listening (a relay killed with -9).
        std::mem::forget(first);
        let _ = fs::remove_file(&path);
        drop(UnixListener::bind(&path).unwrap());
        let second = listen(&path, tx).unwrap();
        drop(second);
    }

    #[test]
    fn a_file_in_the_way_is_not_removed() {
        let path = temp_socket("file");
        fs::write(&path, b"mine").unwrap();
        let (tx, _rx) = mpsc::channel();
        let error = listen(&path, tx).err().unwrap().to_string();
        assert!(error.contains("not a socket"), "{error}");
        assert_eq!(fs::read(&path).unwrap(), b"mine");
        fs::remove_file(&path).unwrap();
    }
}
