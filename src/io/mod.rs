//! What bpipe reads from and writes to, and the system calls it makes on them.

pub(crate) mod endpoint;
pub(crate) mod sys;
