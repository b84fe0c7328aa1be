//! Black-box tests of the bpipe binary, as a user's scripts would run it.

mod observe;
mod policies;
mod relay;
mod signals;
mod usage;
mod util;
