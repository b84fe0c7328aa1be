//! One test per fixed bug, named after it, so a regression points straight at what came back.
//! Grouped by the part of bpipe the bug was in.

mod endpoints;
mod limits;
mod parsers;
mod policies;
mod rates;
mod reports;
