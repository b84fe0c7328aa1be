//! Counting what moved and telling it: counters, stats records and where they go.

pub(crate) mod progress;
pub(crate) mod reporter;
pub(crate) mod snapshot;
