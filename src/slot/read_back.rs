//! A chunk read back from the spool into a slot pipe's place: held in memory and written out
//! from there. Two copies are unavoidable on the way back (the file's pages are not spliced out,
//! see `crate::spool::file`); held here, the replayer makes the first (pread) and the writer the
//! second (write), each on its own core, where a write into the slot pipe would put both on the
//! replayer.
//!
//! The buffer is the chunk's while it is in the queue, so memory holds what the slot pipe would
//! have held; once written it goes back to a few spares for the next chunks. Freed instead, it
//! would be handed back to the kernel and faulted in again a chunk later.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex};

use crate::io::sys;
use crate::spool::sys as spool_sys;

/// Spare buffers kept: a replayer and a writer that keep pace take one and give one back in
/// turn, so a few are enough; more would only hold memory after a burst.
const KEPT: usize = 4;

/// Buffers of chunks already written, for the next ones read back.
#[derive(Default)]
pub(crate) struct Spares {
    kept: Mutex<Vec<Vec<u8>>>,
}

impl Spares {
    fn take(&self) -> Vec<u8> {
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    fn give(&self, mut buffer: Vec<u8>) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < KEPT {
            buffer.clear();
            kept.push(buffer);
        }
    }
}

pub(crate) struct ReadBack {
    data: Vec<u8>,
    sent: usize,
    spares: Arc<Spares>,
}

impl ReadBack {
    pub(crate) fn new(spares: &Arc<Spares>) -> ReadBack {
        ReadBack {
            data: spares.take(),
            sent: 0,
            spares: Arc::clone(spares),
        }
    }

    /// One read appending at most `max` bytes from `file` at `at`.
    pub(crate) fn refill(
        &mut self,
        file: BorrowedFd<'_>,
        at: u64,
        max: usize,
    ) -> io::Result<usize> {
        spool_sys::pread_append(file, &mut self.data, max, at)
    }

    pub(crate) fn unsent(&self) -> &[u8] {
        &self.data[self.sent..]
    }

    /// One write of at most `max` of the unsent bytes to `fd`.
    pub(crate) fn drain(&mut self, fd: BorrowedFd<'_>, max: usize) -> io::Result<usize> {
        let n = self.drain_from(self.sent, fd, max)?;
        self.sent += n;
        Ok(n)
    }

    /// One write of at most `max` of the bytes from `sent` on to `fd`, for one of several
    /// outputs sharing the chunk.
    pub(crate) fn drain_from(
        &self,
        sent: usize,
        fd: BorrowedFd<'_>,
        max: usize,
    ) -> io::Result<usize> {
        let end = self.data.len().min(sent + max);
        sys::write(fd, &self.data[sent..end])
    }
}

impl Drop for ReadBack {
    fn drop(&mut self) {
        self.spares.give(std::mem::take(&mut self.data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_chunk_read_back_is_written_out_in_pieces() {
        let dir = std::env::temp_dir();
        let file = spool_sys::open_unnamed(&dir).unwrap();
        spool_sys::pwrite(file.as_fd(), b"read back", 10).unwrap();
        let spares = Arc::new(Spares::default());
        let mut back = ReadBack::new(&spares);
        assert_eq!(back.refill(file.as_fd(), 10, 4).unwrap(), 4);
        assert_eq!(back.refill(file.as_fd(), 14, 100).unwrap(), 5);
        assert_eq!(back.unsent(), b"read back");
        let (r, w) = io::pipe().unwrap();
        assert_eq!(back.drain_from(5, w.as_fd(), 100).unwrap(), 4);
        assert_eq!(back.drain(w.as_fd(), 5).unwrap(), 5);
        assert_eq!(back.unsent(), b"back");
        let mut buf = [0u8; 16];
        assert_eq!(sys::read(r.as_fd(), &mut buf).unwrap(), 9);
        assert_eq!(&buf[..9], b"backread ");
    }

    #[test]
    fn a_written_chunk_leaves_its_buffer_for_the_next_up_to_a_few() {
        let spares = Arc::new(Spares::default());
        let backs: Vec<ReadBack> = (0..KEPT + 2)
            .map(|_| {
                let mut back = ReadBack::new(&spares);
                back.data.reserve(100);
                back
            })
            .collect();
        drop(backs);
        assert_eq!(spares.kept.lock().unwrap().len(), KEPT);
        let again = ReadBack::new(&spares);
        assert!(again.data.is_empty() && again.data.capacity() >= 100);
        assert_eq!(spares.kept.lock().unwrap().len(), KEPT - 1);
    }
}
