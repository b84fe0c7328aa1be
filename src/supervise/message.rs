//! What the steering thread hears: signals, stages that are done, and the stats file's open.

use std::fs::File;
use std::sync::mpsc;

use crate::control::command::Command;

use crate::stage::reader::ReaderExit;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    Reader,
    Writer,
}

/// Which stage, and which one of its kind: several readers or writers can report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StageId {
    pub(crate) stage: Stage,
    pub(crate) index: usize,
}

/// How a stage that ended without an error ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StageExit {
    Read(ReaderExit),
    Wrote,
}

pub(crate) enum Message {
    Signal(libc::c_int),
    StageDone {
        id: StageId,
        end: anyhow::Result<StageExit>,
    },
    /// The stats file, a FIFO, was opened (or failed to open) on its own thread.
    StatsFileOpened(anyhow::Result<File>),
    /// A line about the spool, said at once: it failed and is given up (the run goes on), or,
    /// when `fatal`, what it held cannot be read back (the run has closed, and fails).
    Spool {
        line: String,
        fatal: bool,
    },
    /// A line about a network connection (an attempt, a peer refused), said at once.
    Note(String),
    /// A request on the control socket, and where its one-line reply goes.
    Control {
        command: Command,
        reply: mpsc::Sender<String>,
    },
}
