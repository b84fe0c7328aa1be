//! Network endpoints.

// Wired in by the TCP endpoints; until then only the unit tests reach it.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod tls;
