//! What can be known of the named files without opening any (opening a FIFO waits for its other
//! end): checked for every file before the first one is opened, so that a bad name stops bpipe
//! before an output is truncated or a byte moves, and an input that is also the output is
//! refused instead of being emptied, or grown until the disk is full.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, mpsc};

use anyhow::Context;

use crate::cli::Address;
use crate::net::Link;
use crate::net::frame::Role;
use crate::net::listen::Listener;
use crate::net::open::{self, Unconnected};
use crate::net::tls::Tls;
use crate::supervise::message::Message;

use crate::io::endpoint::{self, NamedFile, Unopened};
use crate::io::name::quoted;
use crate::io::{standard, sys};
use crate::plan::{InputSpec, OutputSpec, Plan};
use crate::slot::ring;

/// The endpoints of a run, checked and not yet open.
pub(crate) struct Checked {
    pub(crate) inputs: Vec<Unopened>,
    pub(crate) outputs: Vec<Unopened>,
    pub(crate) stats_file: Option<NamedFile>,
    /// What the network endpoints share, and their stats.
    pub(crate) link: Arc<Link>,
}

/// Network endpoints as they are checked: resolved or bound now, one listener for every input
/// that accepts on the same address (`--max-conns`).
struct Net {
    link: Arc<Link>,
    listeners: HashMap<Address, Arc<Listener>>,
}

impl Net {
    fn endpoint(&mut self, address: &Address, role: Role) -> anyhow::Result<Unconnected> {
        if !address.listens() {
            return Unconnected::dial(address, role, Arc::clone(&self.link));
        }
        let listener = match self.listeners.get(address) {
            Some(listener) => Arc::clone(listener),
            None => {
                let listener = Arc::new(open::bind(address, &self.link)?);
                self.listeners
                    .insert(address.clone(), Arc::clone(&listener));
                listener
            }
        };
        Ok(Unconnected::accept(
            address,
            listener,
            role,
            Arc::clone(&self.link),
        ))
    }
}

/// An endpoint, and what stat says of the file behind it when there is one already.
type Seen<T> = (T, Option<libc::stat>);

/// The capacity pipes on either side are raised to: the queue's, at most 1 MiB (the default
/// pipe-max-size) and at least a chunk, but never past pipe-max-size, which the kernel refuses.
fn pipe_size(plan: &Plan) -> usize {
    plan.limits
        .bytes
        .min(1 << 20)
        .max(plan.chunk_size)
        .min(ring::pipe_max_size())
}

/// Checks the inputs in order, then the outputs, then the stats file, then that no input is
/// also written to; the first problem found is the error, named.
pub(crate) fn check(plan: &Plan, notes: mpsc::Sender<Message>) -> anyhow::Result<Checked> {
    let pipe_size = pipe_size(plan);
    let mut net = Net {
        link: Arc::new(link(plan, notes)?),
        listeners: HashMap::new(),
    };
    let inputs = plan
        .inputs
        .iter()
        .map(|spec| input(spec, pipe_size, &mut net))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let outputs = plan
        .outputs
        .iter()
        .map(|spec| output(spec, pipe_size, &mut net))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let stats_file = plan
        .stats_file
        .as_deref()
        .map(|path| output_file(path, false))
        .transpose()?;
    let written = outputs
        .iter()
        .map(|(_, stat)| stat)
        .chain(stats_file.iter().map(|(_, stat)| stat));
    refuse_overlap(
        inputs.iter().map(|(input, stat)| (input.name(), stat)),
        written.flatten().collect(),
    )?;
    Ok(Checked {
        inputs: inputs.into_iter().map(|(input, _)| input).collect(),
        outputs: outputs.into_iter().map(|(output, _)| output).collect(),
        stats_file: stats_file.map(|(file, _)| file),
        link: net.link,
    })
}

/// What the network endpoints share; TLS's files are read now, so that a bad one stops bpipe
/// before any byte moves.
fn link(plan: &Plan, notes: mpsc::Sender<Message>) -> anyhow::Result<Link> {
    let addresses = plan.inputs.iter().filter_map(|i| match i {
        InputSpec::Tcp(address) => Some(address),
        _ => None,
    });
    let addresses: Vec<&Address> = addresses
        .chain(plan.outputs.iter().filter_map(|o| match o {
            OutputSpec::Tcp(address) => Some(address),
            _ => None,
        }))
        .collect();
    let listens = addresses.iter().any(|a| a.listens());
    let connects = addresses.iter().any(|a| !a.listens());
    let tls = Tls::load(&plan.net.tls, listens, connects)?;
    Ok(Link::new(plan.net.clone(), tls, notes))
}

fn input(spec: &InputSpec, pipe_size: usize, net: &mut Net) -> anyhow::Result<Seen<Unopened>> {
    match spec {
        InputSpec::Stdin => {
            let stat = standard_stream(libc::STDIN_FILENO, endpoint::STDIN)?;
            Ok((Unopened::stdin(pipe_size), stat))
        }
        InputSpec::File(path) => {
            let (file, stat) = input_file(path)?;
            Ok((Unopened::file(file, pipe_size), Some(stat)))
        }
        InputSpec::Tcp(address) => {
            let socket = net.endpoint(address, Role::Receives)?;
            Ok((Unopened::tcp(socket, pipe_size), None))
        }
    }
}

fn output(spec: &OutputSpec, pipe_size: usize, net: &mut Net) -> anyhow::Result<Seen<Unopened>> {
    match spec {
        OutputSpec::Stdout => {
            let stat = standard_stream(libc::STDOUT_FILENO, endpoint::STDOUT)?;
            Ok((Unopened::stdout(pipe_size), stat))
        }
        OutputSpec::File { path, append } => {
            let (file, stat) = output_file(path, *append)?;
            Ok((Unopened::file(file, pipe_size), stat))
        }
        OutputSpec::Tcp(address) => {
            let socket = net.endpoint(address, Role::Sends)?;
            Ok((Unopened::tcp(socket, pipe_size), None))
        }
    }
}

/// A standard stream must have been open when bpipe started: the runtime hides a closed one
/// behind /dev/null (`io/standard.rs`).
fn standard_stream(fd: libc::c_int, name: &str) -> anyhow::Result<Option<libc::stat>> {
    if standard::closed_at_start(fd) {
        return Err(io::Error::from_raw_os_error(libc::EBADF)).context(name.to_string());
    }
    // SAFETY: bpipe never closes its standard input or output.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    Ok(sys::fstat(fd).ok())
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

fn kind(stat: &libc::stat) -> libc::mode_t {
    stat.st_mode & libc::S_IFMT
}

fn is_a_directory(name: &str) -> anyhow::Error {
    anyhow::Error::new(io::Error::from_raw_os_error(libc::EISDIR)).context(name.to_string())
}

/// An input must exist, not be a directory, and be readable.
fn input_file(path: &Path) -> anyhow::Result<(NamedFile, libc::stat)> {
    let name = quoted(path);
    let c_path = c_path(path).with_context(|| name.clone())?;
    let stat = sys::stat(&c_path).with_context(|| name.clone())?;
    if kind(&stat) == libc::S_IFDIR {
        return Err(is_a_directory(&name));
    }
    sys::access(&c_path, libc::R_OK).with_context(|| name.clone())?;
    let file = NamedFile {
        path: c_path,
        name,
        flags: libc::O_RDONLY,
        fifo: kind(&stat) == libc::S_IFIFO,
    };
    Ok((file, stat))
}

/// An output must be a writable file that is not a directory, or a name its directory lets
/// bpipe create.
fn output_file(path: &Path, append: bool) -> anyhow::Result<Seen<NamedFile>> {
    let name = quoted(path);
    let c_path = c_path(path).with_context(|| name.clone())?;
    let stat = match sys::stat(&c_path) {
        Ok(stat) if kind(&stat) == libc::S_IFDIR => return Err(is_a_directory(&name)),
        Ok(stat) => {
            sys::access(&c_path, libc::W_OK).with_context(|| name.clone())?;
            Some(stat)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            let dir = path
                .parent()
                .filter(|dir| !dir.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let dir = self::c_path(dir).with_context(|| name.clone())?;
            sys::access(&dir, libc::W_OK | libc::X_OK).with_context(|| name.clone())?;
            None
        }
        Err(e) => return Err(e).context(name),
    };
    let mode = if append {
        libc::O_APPEND
    } else {
        libc::O_TRUNC
    };
    let flags = libc::O_WRONLY | libc::O_CREAT | mode;
    let fifo = stat.is_some_and(|stat| kind(&stat) == libc::S_IFIFO);
    let file = NamedFile {
        path: c_path,
        name,
        flags,
        fifo,
    };
    Ok((file, stat))
}

/// Refuses an input that is one of the regular files written to, as cat does: reading it
/// while it is truncated or appended to would empty it, or grow it without end.
fn refuse_overlap<'a>(
    inputs: impl Iterator<Item = (&'a str, &'a Option<libc::stat>)>,
    written: Vec<&libc::stat>,
) -> anyhow::Result<()> {
    let same = |a: &libc::stat, b: &libc::stat| a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    for (name, stat) in inputs {
        let Some(stat) = stat else { continue };
        if written
            .iter()
            .any(|out| kind(out) == libc::S_IFREG && same(stat, out))
        {
            return Err(anyhow::anyhow!("input file is output file").context(name.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::supervise::outcome::error_line;
    use clap::Parser;

    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("bpipe-check-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn file(&self, name: &str, data: &[u8]) -> String {
            let path = self.0.join(name);
            std::fs::write(&path, data).unwrap();
            path.to_str().unwrap().to_string()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn checked(args: &[&str]) -> anyhow::Result<Checked> {
        let cli = Cli::try_parse_from(["bpipe"].iter().chain(args)).unwrap();
        check(&Plan::from(&cli), mpsc::channel().0)
    }

    fn refusal(args: &[&str]) -> String {
        error_line(&checked(args).err().expect("a refusal"))
    }

    #[test]
    fn bad_names_are_named_with_the_reason() {
        let dir = Scratch::new("names");
        let root = dir.0.to_str().unwrap();
        let missing = format!("{root}/missing");
        assert_eq!(
            refusal(&[&missing]),
            format!("bpipe: {missing}: No such file or directory")
        );
        assert_eq!(refusal(&[root]), format!("bpipe: {root}: Is a directory"));
        assert_eq!(
            refusal(&["-o", root]),
            format!("bpipe: {root}: Is a directory")
        );
        let nowhere = format!("{missing}/out");
        assert_eq!(
            refusal(&["--stats-file", &nowhere]),
            format!("bpipe: {nowhere}: No such file or directory")
        );
    }

    #[test]
    fn outputs_that_do_not_exist_yet_are_created_later() {
        let dir = Scratch::new("later");
        let out = format!("{}/out", dir.0.to_str().unwrap());
        let checked = checked(&["-o", &out, "--stats-file", "relative.json"]).unwrap();
        assert_eq!(checked.outputs[0].name(), out);
        assert!(!std::path::Path::new(&out).exists());
        assert!(!std::path::Path::new("relative.json").exists());
    }

    #[test]
    fn an_input_that_is_written_to_is_refused() {
        let dir = Scratch::new("overlap");
        let f = dir.file("f", b"data");
        let other = dir.file("other", b"data");
        let expected = format!("bpipe: {f}: input file is output file");
        assert_eq!(refusal(&[&other, &f, "-o", &f]), expected);
        assert_eq!(refusal(&[&f, "-o", &f, "--append"]), expected);
        assert_eq!(refusal(&[&f, "--stats-file", &f]), expected);
        assert!(checked(&[&other, "-o", &f]).is_ok());
        assert!(checked(&["/dev/null", "-o", "/dev/null"]).is_ok());
        assert_eq!(std::fs::read(&f).unwrap(), b"data");
    }

    #[test]
    fn fifos_are_told_apart() {
        let dir = Scratch::new("fifo");
        let fifo = dir.0.join("fifo");
        let path = c_path(&fifo).unwrap();
        // SAFETY: a NUL-terminated path and a valid mode.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        let (file, _) = input_file(&fifo).unwrap();
        assert!(file.fifo);
        let (file, _) = output_file(&fifo, false).unwrap();
        assert!(file.fifo);
        let (file, _) = input_file(Path::new("/dev/null")).unwrap();
        assert!(!file.fifo);
    }
}
