//! Opening what bpipe reads and writes, and checking it before any byte moves.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::io::sys;

/// A descriptor bpipe reads or writes, with the name messages use for it. Standard input and
/// output are borrowed, never closed: other processes share them.
pub struct Endpoint {
    fd: RawFd,
    _file: Option<File>,
    pub name: String,
}

impl Endpoint {
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    fn borrowed(fd: RawFd, name: &str) -> Self {
        Endpoint {
            fd,
            _file: None,
            name: name.to_string(),
        }
    }

    fn owned(file: File, path: &Path) -> Self {
        Endpoint {
            fd: file.as_raw_fd(),
            _file: Some(file),
            name: path.display().to_string(),
        }
    }
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Opens every input up front, so that a missing or unreadable one stops bpipe before it writes.
pub fn open_inputs(files: &[PathBuf]) -> anyhow::Result<Vec<Endpoint>> {
    if files.is_empty() {
        return Ok(vec![Endpoint::borrowed(
            libc::STDIN_FILENO,
            "standard input",
        )]);
    }
    files
        .iter()
        .map(|path| {
            if is_stdin(path) {
                return Ok(Endpoint::borrowed(libc::STDIN_FILENO, "standard input"));
            }
            let name = path.display().to_string();
            let file = File::open(path).with_context(|| name.clone())?;
            if sys::file_type(file.as_raw_fd()).with_context(|| name.clone())? == libc::S_IFDIR {
                return Err(io::Error::from_raw_os_error(libc::EISDIR)).context(name);
            }
            Ok(Endpoint::owned(file, path))
        })
        .collect()
}

pub fn open_output(path: Option<&Path>, append: bool) -> anyhow::Result<Endpoint> {
    let Some(path) = path else {
        return Ok(Endpoint::borrowed(libc::STDOUT_FILENO, "standard output"));
    };
    let mut options = OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    let file = options
        .open(path)
        .with_context(|| path.display().to_string())?;
    Ok(Endpoint::owned(file, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_files_and_dash_mean_standard_input() {
        let inputs = open_inputs(&[]).unwrap();
        assert_eq!(inputs[0].fd(), libc::STDIN_FILENO);
        let inputs = open_inputs(&[PathBuf::from("-")]).unwrap();
        assert_eq!(inputs[0].name, "standard input");
    }

    #[test]
    fn bad_inputs_are_named() {
        let missing = open_inputs(&[PathBuf::from("/nonexistent/x")])
            .err()
            .unwrap();
        assert_eq!(missing.to_string(), "/nonexistent/x");
        let dir = open_inputs(&[PathBuf::from("/")]).err().unwrap();
        let root = dir.root_cause().downcast_ref::<io::Error>().unwrap();
        assert_eq!(root.raw_os_error(), Some(libc::EISDIR));
    }
}
