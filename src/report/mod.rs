//! Counting what moved and telling it: counters per side, the accounts, the stats record and
//! its renderings, and where they go.

use std::io;

use crate::report::snapshot::Snapshot;

pub(crate) mod accounts;
pub(crate) mod counters;
pub(crate) mod human;
pub(crate) mod json;
pub(crate) mod parts;
pub(crate) mod progress;
pub(crate) mod prometheus;
pub(crate) mod reporter;
pub(crate) mod snapshot;

/// One way to write a stats record: each appends one whole line.
pub(crate) trait Render: Send {
    fn render(&self, snapshot: &Snapshot, out: &mut Vec<u8>) -> io::Result<()>;

    /// A note: something bpipe tells that is neither a stats record nor an error (a path it
    /// could not take, say), in the same form as the records.
    fn note(&self, message: &str, out: &mut Vec<u8>) -> io::Result<()>;
}
