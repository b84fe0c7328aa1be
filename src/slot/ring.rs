//! The splice ring: the slot pipes of the zero-copy path, sized within what the kernel grants.

use std::io;

use crate::io::sys;
use crate::slot::Slot;
use crate::slot::pipe::PipeSlot;

/// The kernel's own default for `/proc/sys/fs/pipe-max-size`.
const DEFAULT_PIPE_MAX_SIZE: usize = 1 << 20;

/// The largest pipe an unprivileged process may ask for: beyond it F_SETPIPE_SZ wants
/// CAP_SYS_RESOURCE, which even root may lack (in a container, say).
fn pipe_max_size() -> usize {
    std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(DEFAULT_PIPE_MAX_SIZE)
}

/// The slot pipes, and the most a chunk in one of them may hold.
pub(crate) struct Ring {
    pub(crate) slots: Vec<PipeSlot>,
    pub(crate) chunk_size: usize,
}

/// The ring of slot pipes, made up front so that a refusal shows before any byte moves. A slot
/// pipe holds a chunk of at most pipe-max-size (1 MiB by default): a larger `--chunk-size` gives
/// smaller chunks on this path, each still moved by one splice, rather than no splice at all.
pub(crate) fn make(slots: usize, chunk_size: usize) -> io::Result<Ring> {
    // Two descriptors a slot, and some to spare for the rest of the process.
    let needed = 2 * slots as u64 + 64;
    let limit = sys::raise_fd_limit(needed);
    if limit < needed {
        return Err(io::Error::other(format!(
            "they need {needed} open files and the limit is {limit}"
        )));
    }
    let chunk_size = chunk_size.min(pipe_max_size());
    let slots = (0..slots)
        .map(|_| PipeSlot::new(chunk_size))
        .collect::<io::Result<_>>()?;
    Ok(Ring { slots, chunk_size })
}
