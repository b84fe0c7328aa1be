//! Queue slots: where a chunk lives between the reader and the writer.

pub(crate) mod memory;
pub(crate) mod pipe;
