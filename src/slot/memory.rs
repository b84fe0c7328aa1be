//! The slot of the copy path: a buffer in memory.

use std::alloc::{self, Layout};
use std::io;
use std::os::fd::BorrowedFd;
use std::ptr;
use std::sync::Arc;

use crate::io::sys;
use crate::queue::Payload;
use crate::slot::read_back::Spares;
use crate::slot::{Outgoing, Share, Slot, Spill};
use crate::spool::sys as spool_sys;

/// A chunk buffer, allocated once and recycled.
pub(crate) struct MemSlot {
    buf: Box<[u8]>,
    len: usize,
    sent: usize,
}

/// A zeroed buffer, or an error where the allocator refuses it (a memory limit): zeroed pages
/// stay untouched until data lands in them, as with `vec![0; len]`, which would abort instead.
fn zeroed_buffer(len: usize) -> io::Result<Box<[u8]>> {
    if len == 0 {
        return Ok(Box::default());
    }
    let layout =
        Layout::array::<u8>(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    // SAFETY: the layout's size is not zero.
    let ptr = unsafe { alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        return Err(io::Error::from(io::ErrorKind::OutOfMemory));
    }
    // SAFETY: `ptr` holds `len` zeroed bytes from the global allocator with the layout a
    // `Box<[u8]>` of that length frees with.
    Ok(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(ptr, len)) })
}

impl MemSlot {
    pub(crate) fn with_capacity(capacity: usize) -> io::Result<Self> {
        Ok(MemSlot {
            buf: zeroed_buffer(capacity)?,
            len: 0,
            sent: 0,
        })
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Reads once into the free space after the data.
    pub(crate) fn read_from(&mut self, fd: BorrowedFd<'_>, max: usize) -> io::Result<usize> {
        let end = self.buf.len().min(self.len + max);
        let n = sys::read(fd, &mut self.buf[self.len..end])?;
        self.len += n;
        Ok(n)
    }

    /// Moves the bytes from `at` on to the start of `next`, keeping the first `at` here.
    pub(crate) fn split_off_into(&mut self, at: usize, next: &mut MemSlot) {
        let tail = &self.buf[at..self.len];
        next.buf[..tail.len()].copy_from_slice(tail);
        next.len = tail.len();
        next.sent = 0;
        self.len = at;
    }
}

impl Payload for MemSlot {
    fn len(&self) -> usize {
        self.len
    }

    fn records(&self, delimiter: u8, ends_record: bool) -> u64 {
        let data = self.data();
        let ends = memchr::memchr_iter(delimiter, data).count() as u64;
        ends + u64::from(ends_record && data.last().is_some_and(|&b| b != delimiter))
    }
}

impl Slot for MemSlot {
    fn new(chunk_size: usize) -> io::Result<Self> {
        MemSlot::with_capacity(chunk_size)
    }

    fn fill(&mut self, fd: BorrowedFd<'_>, max: usize, _: &mut ()) -> io::Result<usize> {
        self.read_from(fd, max)
    }

    fn clear(&mut self) -> io::Result<()> {
        self.len = 0;
        self.sent = 0;
        Ok(())
    }
}

impl Spill for MemSlot {
    fn spill(&mut self, file: BorrowedFd<'_>, at: u64, max: usize) -> io::Result<usize> {
        let end = self.len.min(self.sent + max);
        let n = spool_sys::pwrite(file, &self.buf[self.sent..end], at)?;
        self.sent += n;
        Ok(n)
    }

    fn refill(
        &mut self,
        file: BorrowedFd<'_>,
        at: u64,
        max: usize,
        _: &Arc<Spares>,
    ) -> io::Result<usize> {
        let end = self.buf.len().min(self.len + max);
        let n = spool_sys::pread(file, &mut self.buf[self.len..end], at)?;
        self.len += n;
        Ok(n)
    }
}

impl Share for MemSlot {
    type Lane = ();

    fn drain_from(
        &self,
        sent: usize,
        fd: BorrowedFd<'_>,
        max: usize,
        _: &mut (),
    ) -> io::Result<usize> {
        let end = self.len.min(sent + max);
        sys::write(fd, &self.buf[sent..end])
    }

    fn lane_copies(_: &()) -> bool {
        true
    }
}

impl Outgoing for MemSlot {
    type Stream = ();

    fn drain(&mut self, fd: BorrowedFd<'_>, max: usize, _: &mut ()) -> io::Result<usize> {
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

    fn copies(_: &()) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn fill_and_drain_move_bytes_through_partial_calls() {
        let (r, w) = io::pipe().unwrap();
        sys::write_all(w.as_fd(), b"hello world").unwrap();
        let mut slot = MemSlot::with_capacity(8).unwrap();
        assert_eq!(slot.fill(r.as_fd(), 100, &mut ()).unwrap(), 8);
        assert_eq!(slot.data(), b"hello wo");
        let (r2, w2) = io::pipe().unwrap();
        assert_eq!(slot.drain(w2.as_fd(), 3, &mut ()).unwrap(), 3);
        assert_eq!(slot.unsent(), Some(&b"lo wo"[..]));
        assert_eq!(slot.drain(w2.as_fd(), 100, &mut ()).unwrap(), 5);
        assert_eq!(slot.unsent_len(), 0);
        let mut out = [0u8; 16];
        assert_eq!(sys::read(r2.as_fd(), &mut out).unwrap(), 8);
        slot.clear().unwrap();
        assert_eq!(slot.len(), 0);
    }

    #[test]
    fn a_refused_allocation_is_an_error() {
        let error = MemSlot::with_capacity(usize::MAX / 2).err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::OutOfMemory);
        assert_eq!(MemSlot::with_capacity(0).unwrap().capacity(), 0);
    }

    #[test]
    fn split_moves_the_tail_to_the_next_slot() {
        let (r, w) = io::pipe().unwrap();
        sys::write_all(w.as_fd(), b"one\ntw").unwrap();
        let mut slot = MemSlot::with_capacity(16).unwrap();
        slot.read_from(r.as_fd(), 16).unwrap();
        let mut next = MemSlot::with_capacity(16).unwrap();
        slot.split_off_into(4, &mut next);
        assert_eq!(slot.data(), b"one\n");
        assert_eq!(next.data(), b"tw");
        assert_eq!(next.capacity(), 16);
    }
}
