//! Queue slots: where a chunk lives between the reader and the writer. The stages fill and drain
//! a slot through this trait; the queue only measures it (`queue::Payload`).

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use crate::queue::Payload;
use read_back::Spares;

pub(crate) mod fanned;
pub(crate) mod memory;
pub(crate) mod pipe;
pub(crate) mod read_back;
pub(crate) mod ring;

/// What the writer needs of what it writes: a slot of its own, or one output's share of a slot
/// that several outputs write (`fanned`).
pub(crate) trait Outgoing: Payload {
    /// What a stage keeps per descriptor between calls (e.g. whether splice works on it).
    type Stream: Default + Send;

    /// One write of at most `max` of the unsent bytes to `fd`.
    fn drain(
        &mut self,
        fd: BorrowedFd<'_>,
        max: usize,
        stream: &mut Self::Stream,
    ) -> io::Result<usize>;

    /// Bytes not yet written.
    fn unsent_len(&self) -> usize;

    /// The unsent bytes themselves, where they are in memory.
    fn unsent(&self) -> Option<&[u8]>;

    /// Whether `stream` moves its bytes through memory with read and write (rather than splice).
    fn copies(stream: &Self::Stream) -> bool;

    /// What the writer hands back to the queue once it is written: the slot for reuse, or
    /// nothing for a share, whose slot goes home when the last share is done.
    fn into_reusable(self) -> Option<Self>
    where
        Self: Sized,
    {
        Some(self)
    }
}

/// A slot the stages can fill from a descriptor and drain into one.
pub(crate) trait Slot: Outgoing + Sized {
    /// A new, empty slot that holds a chunk of `chunk_size` bytes.
    fn new(chunk_size: usize) -> io::Result<Self>;

    /// One read of at most `max` bytes from `fd`, appended to the slot; 0 at end of input.
    fn fill(
        &mut self,
        fd: BorrowedFd<'_>,
        max: usize,
        stream: &mut Self::Stream,
    ) -> io::Result<usize>;

    /// Empties the slot for reuse, discarding what it holds.
    fn clear(&mut self) -> io::Result<()>;
}

/// A slot whose bytes can go to a spool file and come back (`crate::spool`), at offsets and
/// without a memory map: out with pwrite, or splice for a pipe (no copy through bpipe's memory);
/// back with pread into memory, copied: a pipe refilled by splice would share the file's pages,
/// and the spool writes over them when its ring comes round.
pub(crate) trait Spill: Slot {
    /// One call moving at most `max` of the unsent bytes into `file` at `at`; the bytes moved
    /// are no longer the slot's.
    fn spill(&mut self, file: BorrowedFd<'_>, at: u64, max: usize) -> io::Result<usize>;

    /// One read appending at most `max` bytes from `file` at `at`; a slot that is not memory
    /// itself (a pipe) holds them in a buffer from `spares`.
    fn refill(
        &mut self,
        file: BorrowedFd<'_>,
        at: u64,
        max: usize,
        spares: &Arc<Spares>,
    ) -> io::Result<usize>;
}

/// A slot several outputs can write without taking its bytes away from each other.
pub(crate) trait Share: Slot + Sync + 'static {
    /// What one output keeps to write its share (for a pipe, a pipe of its own).
    type Lane: Default + Send;

    /// One write of at most `max` of the bytes from `sent` on to `fd`, leaving the slot as is.
    fn drain_from(
        &self,
        sent: usize,
        fd: BorrowedFd<'_>,
        max: usize,
        lane: &mut Self::Lane,
    ) -> io::Result<usize>;

    /// As `drain_from`, when no other output shares the slot any more: it may take the bytes
    /// away (a pipe is then drained itself, not duplicated first).
    fn drain_last(
        &mut self,
        sent: usize,
        fd: BorrowedFd<'_>,
        max: usize,
        lane: &mut Self::Lane,
    ) -> io::Result<usize> {
        self.drain_from(sent, fd, max, lane)
    }

    fn lane_copies(lane: &Self::Lane) -> bool;
}
