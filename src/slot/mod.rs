//! Queue slots: where a chunk lives between the reader and the writer. The stages fill and drain
//! a slot through this trait; the queue only measures it (`queue::Payload`).

use std::io;
use std::os::fd::BorrowedFd;

use crate::queue::Payload;

pub(crate) mod memory;
pub(crate) mod pipe;
pub(crate) mod ring;

/// A slot the stages can fill from a descriptor and drain into one.
pub(crate) trait Slot: Payload + Sized {
    /// What a stage keeps per descriptor between calls (e.g. whether splice works on it).
    type Stream: Default;

    /// A new, empty slot that holds a chunk of `chunk_size` bytes.
    fn new(chunk_size: usize) -> io::Result<Self>;

    /// One read of at most `max` bytes from `fd`, appended to the slot; 0 at end of input.
    fn fill(
        &mut self,
        fd: BorrowedFd<'_>,
        max: usize,
        stream: &mut Self::Stream,
    ) -> io::Result<usize>;

    /// One write of at most `max` of the slot's unsent bytes to `fd`.
    fn drain(
        &mut self,
        fd: BorrowedFd<'_>,
        max: usize,
        stream: &mut Self::Stream,
    ) -> io::Result<usize>;

    /// Bytes not yet written.
    fn unsent_len(&self) -> usize;

    /// The unsent bytes themselves, where the slot holds them in memory.
    fn unsent(&self) -> Option<&[u8]>;

    /// Empties the slot for reuse, discarding what it holds.
    fn clear(&mut self) -> io::Result<()>;

    /// Whether `stream` moves its bytes through memory with read and write (rather than splice).
    fn copies(stream: &Self::Stream) -> bool;
}
