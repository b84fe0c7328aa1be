//! What bpipe reads from and writes to: the checks made before any file is opened, the opening,
//! the names messages give them, and the system calls bpipe makes on them.

pub(crate) mod check;
pub(crate) mod endpoint;
pub(crate) mod metrics_file;
pub(crate) mod name;
pub(crate) mod standard;
pub(crate) mod stats_file;
pub(crate) mod sys;
