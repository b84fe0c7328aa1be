//! What the steering thread hears: signals, and stages that are done.

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
}
