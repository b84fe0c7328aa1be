//! bpipe: a bounded, observable buffer between a producer and a consumer.

pub mod cli;
pub mod endpoints;
pub mod limiter;
pub mod outcome;
pub mod progress;
pub mod queue;
pub mod reader;
pub mod relay;
pub mod report;
pub mod signals;
pub mod slot;
pub mod splice;
pub mod stats;
pub mod sys;
pub mod units;
pub mod watch;
pub mod writer;
