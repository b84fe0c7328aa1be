//! The two data stages and what paces them.

pub(crate) mod limiter;
pub(crate) mod reader;
pub(crate) mod writer;
