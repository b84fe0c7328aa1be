//! bpipe: a bounded, observable buffer between a producer and a consumer.

pub mod cli;
pub(crate) mod clock;
pub mod control;
pub(crate) mod io;
pub(crate) mod net;
pub(crate) mod plan;
pub(crate) mod queue;
pub(crate) mod report;
pub(crate) mod slot;
pub(crate) mod spool;
pub(crate) mod stage;
pub mod supervise;
