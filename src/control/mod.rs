//! A running relay that can be asked and steered: its control socket, the line protocol it
//! speaks, and the client side of the same binary.

pub mod client;
pub(crate) mod command;
mod conn;
pub(crate) mod dir;
pub(crate) mod http;
mod json;
mod keys;
pub(crate) mod reply;
pub(crate) mod server;
pub mod top;
