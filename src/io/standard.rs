//! Whether standard input and output were open when bpipe started. Rust's runtime opens
//! /dev/null on a closed descriptor 0, 1 or 2 before `main`, so without this bpipe would read
//! nothing from a closed standard input, or write into the void and call it a success, where
//! cat fails with EBADF. The look is taken from the ELF init array, which the C library runs
//! before Rust's runtime starts.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};

/// Bit `fd` is set when descriptor `fd` (0 or 1) was closed at start.
static CLOSED_AT_START: AtomicU8 = AtomicU8::new(0);

extern "C" fn record_closed_descriptors() {
    for fd in [libc::STDIN_FILENO, libc::STDOUT_FILENO] {
        // SAFETY: F_GETFD only reads the descriptor's flags; it fails with EBADF on a closed one.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            CLOSED_AT_START.fetch_or(1 << fd, Ordering::Relaxed);
        }
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static RECORD_CLOSED_DESCRIPTORS: extern "C" fn() = record_closed_descriptors;

/// Whether standard input (0) or output (1) was closed when the process started.
pub(crate) fn closed_at_start(fd: RawFd) -> bool {
    CLOSED_AT_START.load(Ordering::Relaxed) & (1 << fd) != 0
}
