//! Black-box tests of the bpipe binary, as a user's scripts would run it.

mod control;
mod control_client;
mod fanout;
mod generated;
mod merge;
mod metrics;
mod net;
mod observe;
mod policies;
mod readme;
mod regression;
mod relay;
mod signals;
mod splice;
mod spool;
mod tls;
mod usage;
mod util;
