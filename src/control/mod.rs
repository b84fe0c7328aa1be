//! A running relay that can be asked and steered: its control socket, the line protocol it
//! speaks, and the client side of the same binary.

pub(crate) mod command;
pub(crate) mod dir;
pub(crate) mod reply;
pub(crate) mod server;
