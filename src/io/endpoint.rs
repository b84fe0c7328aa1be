//! What bpipe reads and writes: each endpoint owns its resource and knows its name, and the
//! writer tells it when the stream has ended.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use anyhow::Context;

use crate::io::sys;
use crate::plan::{InputSpec, OutputSpec};

/// A descriptor bpipe reads or writes. Standard input and output are borrowed, never closed:
/// other processes share them.
pub(crate) enum Endpoint {
    Stdin,
    Stdout,
    File { file: File, name: String },
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
        }
    }

    /// The name messages use.
    pub(crate) fn name(&self) -> &str {
        match self {
            Endpoint::Stdin => "standard input",
            Endpoint::Stdout => "standard output",
            Endpoint::File { name, .. } => name,
        }
    }

    /// The end of the stream, after the last byte was written. Files and pipes need nothing
    /// more; a socket will half-close here.
    pub(crate) fn finish(&self) -> io::Result<()> {
        Ok(())
    }

    fn file(file: File, path: &Path) -> Self {
        Endpoint::File {
            file,
            name: path.display().to_string(),
        }
    }
}

/// Opens every input up front, so that a missing or unreadable one stops bpipe before it writes.
pub(crate) fn open_inputs(specs: &[InputSpec]) -> anyhow::Result<Vec<Endpoint>> {
    specs
        .iter()
        .map(|spec| {
            let path = match spec {
                InputSpec::Stdin => return Ok(Endpoint::Stdin),
                InputSpec::File(path) => path,
            };
            let name = path.display().to_string();
            let file = File::open(path).with_context(|| name.clone())?;
            if sys::file_type(file.as_fd()).with_context(|| name.clone())? == libc::S_IFDIR {
                return Err(io::Error::from_raw_os_error(libc::EISDIR)).context(name);
            }
            Ok(Endpoint::file(file, path))
        })
        .collect()
}

pub(crate) fn open_outputs(specs: &[OutputSpec]) -> anyhow::Result<Vec<Endpoint>> {
    specs.iter().map(open_output).collect()
}

fn open_output(spec: &OutputSpec) -> anyhow::Result<Endpoint> {
    let (path, append) = match spec {
        OutputSpec::Stdout => return Ok(Endpoint::Stdout),
        OutputSpec::File { path, append } => (path, *append),
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
    Ok(Endpoint::file(file, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn standard_input_is_borrowed_and_named() {
        let inputs = open_inputs(&[InputSpec::Stdin]).unwrap();
        assert_eq!(inputs[0].as_fd().as_raw_fd(), libc::STDIN_FILENO);
        assert_eq!(inputs[0].name(), "standard input");
    }

    #[test]
    fn bad_inputs_are_named() {
        let missing = open_inputs(&[InputSpec::File("/nonexistent/x".into())])
            .err()
            .unwrap();
        assert_eq!(missing.to_string(), "/nonexistent/x");
        let dir = open_inputs(&[InputSpec::File("/".into())]).err().unwrap();
        let root = dir.root_cause().downcast_ref::<io::Error>().unwrap();
        assert_eq!(root.raw_os_error(), Some(libc::EISDIR));
    }
}
