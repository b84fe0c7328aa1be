//! What a queue slot must do for the stages, and the slot of the copy path: a buffer in memory.

use std::io;
use std::os::fd::RawFd;

use crate::io::sys;
use crate::queue::Slot;

/// A slot the stages can fill from a descriptor and drain into one.
pub trait Chunk: Slot + Sized {
    /// What a stage keeps per descriptor between calls (e.g. whether splice works on it).
    type Stream: Default;

    /// One read of at most `max` bytes from `fd`, appended to the slot; 0 at end of input.
    fn fill(&mut self, fd: RawFd, max: usize, stream: &mut Self::Stream) -> io::Result<usize>;

    /// One write of at most `max` of the slot's unsent bytes to `fd`.
    fn drain(&mut self, fd: RawFd, max: usize, stream: &mut Self::Stream) -> io::Result<usize>;

    /// Bytes not yet written.
    fn unsent_len(&self) -> usize;

    /// The unsent bytes themselves, where the slot holds them in memory.
    fn unsent(&self) -> Option<&[u8]>;

    /// Empties the slot for reuse, discarding what it holds.
    fn clear(&mut self) -> io::Result<()>;
}

/// A chunk buffer, allocated once and recycled.
pub struct MemSlot {
    buf: Box<[u8]>,
    len: usize,
    sent: usize,
}

impl MemSlot {
    pub fn new(capacity: usize) -> Self {
        MemSlot {
            buf: vec![0; capacity].into_boxed_slice(),
            len: 0,
            sent: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    pub fn data(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Reads once into the free space after the data.
    pub fn read_from(&mut self, fd: RawFd, max: usize) -> io::Result<usize> {
        let end = self.buf.len().min(self.len + max);
        let n = sys::read(fd, &mut self.buf[self.len..end])?;
        self.len += n;
        Ok(n)
    }

    /// Moves the bytes from `at` on to the start of `next`, keeping the first `at` here.
    pub fn split_off_into(&mut self, at: usize, next: &mut MemSlot) {
        let tail = &self.buf[at..self.len];
        next.buf[..tail.len()].copy_from_slice(tail);
        next.len = tail.len();
        next.sent = 0;
        self.len = at;
    }
}

impl Slot for MemSlot {
    fn len(&self) -> usize {
        self.len
    }

    fn records(&self, delimiter: u8, ends_record: bool) -> u64 {
        let data = self.data();
        let ends = memchr::memchr_iter(delimiter, data).count() as u64;
        ends + u64::from(ends_record && data.last().is_some_and(|&b| b != delimiter))
    }
}

impl Chunk for MemSlot {
    type Stream = ();

    fn fill(&mut self, fd: RawFd, max: usize, _: &mut ()) -> io::Result<usize> {
        self.read_from(fd, max)
    }

    fn drain(&mut self, fd: RawFd, max: usize, _: &mut ()) -> io::Result<usize> {
        let end = self.len.min(self.sent + max);
        let n = sys::write(fd, &self.buf[self.sent..end])?;
        self.sent += n;
        Ok(n)
    }

    fn unsent_len(&self) -> usize {
        self.len - self.sent
    }

    fn unsent(&self) -> Option<&[u8]> {
        Some(&self.buf[self.sent..self.len])
    }

    fn clear(&mut self) -> io::Result<()> {
        self.len = 0;
        self.sent = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (RawFd, RawFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) returns.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        (fds[0], fds[1])
    }

    #[test]
    fn fill_and_drain_move_bytes_through_partial_calls() {
        let (r, w) = pipe();
        sys::write_all(w, b"hello world").unwrap();
        let mut slot = MemSlot::new(8);
        assert_eq!(slot.fill(r, 100, &mut ()).unwrap(), 8);
        assert_eq!(slot.data(), b"hello wo");
        let (r2, w2) = pipe();
        assert_eq!(slot.drain(w2, 3, &mut ()).unwrap(), 3);
        assert_eq!(slot.unsent(), Some(&b"lo wo"[..]));
        assert_eq!(slot.drain(w2, 100, &mut ()).unwrap(), 5);
        assert_eq!(slot.unsent_len(), 0);
        let mut out = [0u8; 16];
        assert_eq!(sys::read(r2, &mut out).unwrap(), 8);
        slot.clear().unwrap();
        assert_eq!(slot.len(), 0);
        // SAFETY: each descriptor was opened above and is closed once.
        unsafe {
            for fd in [r, w, r2, w2] {
                libc::close(fd);
            }
        }
    }

    #[test]
    fn split_moves_the_tail_to_the_next_slot() {
        let (r, w) = pipe();
        sys::write_all(w, b"one\ntw").unwrap();
        let mut slot = MemSlot::new(16);
        slot.read_from(r, 16).unwrap();
        let mut next = MemSlot::new(16);
        slot.split_off_into(4, &mut next);
        assert_eq!(slot.data(), b"one\n");
        assert_eq!(next.data(), b"tw");
        assert_eq!(next.capacity(), 16);
        // SAFETY: each descriptor was opened above and is closed once.
        unsafe {
            libc::close(r);
            libc::close(w);
        }
    }
}
