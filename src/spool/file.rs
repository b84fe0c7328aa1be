//! The spool file: a ring of `--spool-max` bytes in a file without a name. Positions only grow;
//! a position's place in the file is the position modulo the capacity, so a chunk may wrap
//! around the end in two pieces. Disk space is reserved ahead, a segment at a time, so a full
//! disk shows as an error before a byte of a chunk has moved.
//!
//! Chunks are read back by copying, never spliced out of the file: a pipe slot filled that way
//! would share the file's pages, and when the ring comes round to them the bytes would change
//! under the slot, or under the consumer's pipe after it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Context;

use crate::io::name::quoted;
use crate::slot::Spill;
use crate::slot::read_back::Spares;
use crate::spool::sys;

/// How much disk is reserved at a time.
const SEGMENT: u64 = 4 << 20;

pub(crate) struct SpoolFile {
    fd: OwnedFd,
    dir: PathBuf,
    capacity: u64,
    /// Bytes from the start of the file reserved so far; only the reader reserves.
    reserved: AtomicU64,
    /// The file system reserves space (fallocate works on it).
    reserves: AtomicBool,
    /// Buffers that pipe slots hold chunks read back in.
    spares: Arc<Spares>,
}

/// The pieces of the file that `len` bytes at position `pos` occupy: one, or two when they wrap.
fn pieces(capacity: u64, pos: u64, len: usize) -> [(u64, usize); 2] {
    let at = pos % capacity;
    let first = (len as u64).min(capacity - at) as usize;
    [(at, first), (0, len - first)]
}

impl SpoolFile {
    /// Makes the file in `dir`. A directory that does not exist, is not one, or cannot be
    /// written is an error here, before any byte moves.
    pub(crate) fn open(dir: &Path, capacity: u64) -> anyhow::Result<SpoolFile> {
        let fd = sys::open_unnamed(dir).with_context(|| Self::name_of(dir))?;
        Ok(SpoolFile {
            fd,
            dir: dir.to_path_buf(),
            capacity,
            reserved: AtomicU64::new(0),
            reserves: AtomicBool::new(true),
            spares: Arc::default(),
        })
    }

    fn name_of(dir: &Path) -> String {
        format!("spool {}", quoted(dir))
    }

    /// `spool DIR`, as messages name the spool.
    pub(crate) fn name(&self) -> String {
        Self::name_of(&self.dir)
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Makes sure the file's first `end` bytes are reserved, a segment or more at a time.
    fn reserve(&self, end: u64) -> io::Result<()> {
        let reserved = self.reserved.load(Ordering::Relaxed);
        if end <= reserved || !self.reserves.load(Ordering::Relaxed) {
            return Ok(());
        }
        let upto = end.max(reserved + SEGMENT).min(self.capacity);
        match sys::reserve(self.fd.as_fd(), reserved, upto - reserved)? {
            true => self.reserved.store(upto, Ordering::Relaxed),
            false => self.reserves.store(false, Ordering::Relaxed),
        }
        Ok(())
    }

    /// Moves the `len` unsent bytes of `slot` to position `pos`. Returns how many moved, which
    /// are in the file even when an error stopped the rest.
    pub(crate) fn write<S: Spill>(
        &self,
        slot: &mut S,
        pos: u64,
        len: usize,
    ) -> (usize, io::Result<()>) {
        let mut moved = 0;
        for (at, piece) in pieces(self.capacity, pos, len) {
            if let Err(e) = self.reserve(at + piece as u64) {
                return (moved, Err(e));
            }
            let mut done = 0;
            while done < piece {
                match slot.spill(self.fd.as_fd(), at + done as u64, piece - done) {
                    Ok(0) => return (moved, Err(io::Error::from(io::ErrorKind::WriteZero))),
                    Ok(n) => {
                        done += n;
                        moved += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return (moved, Err(e)),
                }
            }
        }
        (moved, Ok(()))
    }

    /// Moves at most `len` bytes that the pipe `input` holds now to position `pos`, stopping
    /// when it is empty: how many moved (0 at the end of the input), which are in the file even
    /// when an error stopped the rest. `WouldBlock` when the pipe held nothing.
    pub(crate) fn take_from(
        &self,
        input: BorrowedFd<'_>,
        pos: u64,
        len: usize,
    ) -> (usize, io::Result<()>) {
        let mut moved = 0;
        for (at, piece) in pieces(self.capacity, pos, len) {
            if let Err(e) = self.reserve(at + piece as u64) {
                return (moved, Err(e));
            }
            let mut done = 0;
            while done < piece {
                let fd = self.fd.as_fd();
                match sys::splice_ready_to_file(input, fd, at + done as u64, piece - done) {
                    Ok(0) => return (moved, Ok(())),
                    Ok(n) => {
                        done += n;
                        moved += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && moved > 0 => {
                        return (moved, Ok(()));
                    }
                    Err(e) => return (moved, Err(e)),
                }
            }
        }
        (moved, Ok(()))
    }

    /// Appends the `len` bytes at position `pos` to `slot`.
    pub(crate) fn read<S: Spill>(&self, slot: &mut S, pos: u64, len: usize) -> io::Result<()> {
        for (at, piece) in pieces(self.capacity, pos, len) {
            let mut done = 0;
            while done < piece {
                let fd = self.fd.as_fd();
                match slot.refill(fd, at + done as u64, piece - done, &self.spares) {
                    Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Payload;
    use crate::slot::memory::MemSlot;
    use crate::slot::pipe::PipeSlot;
    use crate::slot::{Outgoing, Slot};

    fn mem(data: &[u8]) -> MemSlot {
        let (r, w) = std::io::pipe().unwrap();
        crate::io::sys::write_all(w.as_fd(), data).unwrap();
        let mut slot = MemSlot::with_capacity(64).unwrap();
        slot.fill(r.as_fd(), data.len(), &mut ()).unwrap();
        slot
    }

    #[test]
    fn a_chunk_wraps_around_the_end_of_the_ring() {
        assert_eq!(pieces(10, 7, 5), [(7, 3), (0, 2)]);
        assert_eq!(pieces(10, 12, 5), [(2, 5), (0, 0)]);
        let file = SpoolFile::open(&std::env::temp_dir(), 10).unwrap();
        let mut slot = mem(b"abcde");
        let (moved, done) = file.write(&mut slot, 7, 5);
        assert_eq!(moved, 5);
        done.unwrap();
        assert_eq!(slot.unsent_len(), 0);
        let mut back = MemSlot::with_capacity(64).unwrap();
        file.read(&mut back, 7, 5).unwrap();
        assert_eq!(back.data(), b"abcde");
        // The reservation never goes past the capacity.
        assert_eq!(file.reserved.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn pipe_slots_spool_with_splice() {
        let file = SpoolFile::open(&std::env::temp_dir(), 1 << 20).unwrap();
        let (r, w) = std::io::pipe().unwrap();
        crate::io::sys::write_all(w.as_fd(), b"through the file").unwrap();
        let mut slot = PipeSlot::new(4096).unwrap();
        slot.fill(r.as_fd(), 4096, &mut Default::default()).unwrap();
        let (moved, done) = file.write(&mut slot, 100, 16);
        assert_eq!(moved, 16);
        done.unwrap();
        assert_eq!(slot.len(), 0);
        file.read(&mut slot, 100, 16).unwrap();
        let (out_r, out_w) = std::io::pipe().unwrap();
        slot.drain(out_w.as_fd(), 4096, &mut Default::default())
            .unwrap();
        let mut buf = [0u8; 32];
        let n = crate::io::sys::read(out_r.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"through the file");
    }

    /// The ring comes round to a chunk already read back into a pipe slot: the slot keeps its
    /// bytes (a slot refilled by splice would show the new ones).
    #[test]
    fn a_pipe_slot_read_back_keeps_its_bytes_when_the_ring_comes_round() {
        let file = SpoolFile::open(&std::env::temp_dir(), 1 << 20).unwrap();
        let (r, w) = std::io::pipe().unwrap();
        crate::io::sys::write_all(w.as_fd(), &[7u8; 3000]).unwrap();
        let mut slot = PipeSlot::new(4096).unwrap();
        slot.fill(r.as_fd(), 4096, &mut Default::default()).unwrap();
        file.write(&mut slot, 0, 3000).1.unwrap();
        file.read(&mut slot, 0, 3000).unwrap();
        assert_eq!(slot.len(), 3000);
        // Written over, the file does not change what the slot holds.
        let mut other = mem(&[9u8; 64]);
        file.write(&mut other, 0, 64).1.unwrap();
        let (out_r, out_w) = std::io::pipe().unwrap();
        slot.drain(out_w.as_fd(), 4096, &mut Default::default())
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = crate::io::sys::read(out_r.as_fd(), &mut buf).unwrap();
        assert!(buf[..n].iter().all(|&b| b == 7));
    }

    #[test]
    fn a_missing_directory_is_named() {
        let error = SpoolFile::open(Path::new("/nonexistent/spool"), 100)
            .err()
            .unwrap();
        assert_eq!(
            crate::supervise::outcome::error_line(&error),
            "bpipe: spool /nonexistent/spool: No such file or directory"
        );
    }
}
