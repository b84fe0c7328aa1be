//! The zero-copy path: each queue slot is an internal pipe, filled from the input and drained
//! into the output with splice(2), so the data never enters bpipe's memory.
//!
//! Each stream falls back to read/write on its own the first time the kernel refuses to splice
//! it (`EINVAL` for an `O_APPEND` output or a terminal, `ENOSYS`, `EOPNOTSUPP`): the slot pipe
//! is then filled with `write` or drained with `read`, and the queue never notices.
//!
//! A chunk read back from the spool is held in memory instead of the pipe (`read_back.rs`).

use std::fs::File;
use std::io::{self, PipeReader, PipeWriter};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr;
use std::sync::{Arc, OnceLock};

use crate::io::sys;
use crate::queue::Payload;
use crate::slot::read_back::{ReadBack, Spares};
use crate::slot::{Outgoing, Share, Slot, Spill};
use crate::spool::sys as spool_sys;

pub(crate) struct PipeSlot {
    reader: PipeReader,
    writer: PipeWriter,
    /// Bytes not yet written, in the pipe or in `read_back`.
    len: usize,
    /// What the pipe holds: no fill asks for more, so a write into it never waits for a drain.
    capacity: usize,
    /// A chunk read back from the spool, while it is being written: the pipe is then empty.
    read_back: Option<ReadBack>,
}

/// What the read/write fallback moves per call.
const FALLBACK_BUFFER: usize = 128 * 1024;

/// The smallest slot pipe: two 4 KiB pages, the least the kernel gives a new pipe.
pub(crate) const MIN_PIPE: usize = 8 * 1024;

/// Whether splice works for a stream, and the buffer its fallback copies through.
#[derive(Default)]
pub(crate) struct Stream {
    copy: Option<Vec<u8>>,
}

impl Stream {
    fn splices(&self) -> bool {
        self.copy.is_none()
    }

    /// Takes up the fallback after `error`, or returns the error when it is not a refusal.
    fn fall_back(&mut self, error: io::Error) -> io::Result<()> {
        match error.raw_os_error() {
            Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => {
                self.copy = Some(vec![0; FALLBACK_BUFFER]);
                Ok(())
            }
            _ => Err(error),
        }
    }

    /// One read of at most `max` bytes from `from`, all of it written to `to`. `taken` learns
    /// the count between the two, when the bytes have left `from` and exist only here.
    fn copy(
        &mut self,
        from: BorrowedFd<'_>,
        to: BorrowedFd<'_>,
        max: usize,
        taken: impl FnOnce(usize),
    ) -> io::Result<usize> {
        let buf = self.copy.get_or_insert_with(|| vec![0; FALLBACK_BUFFER]);
        let limit = max.min(buf.len());
        let n = sys::read(from, &mut buf[..limit])?;
        taken(n);
        sys::write_all(to, &buf[..n])?;
        Ok(n)
    }
}

fn splice_with(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    len: usize,
    flags: libc::c_uint,
) -> io::Result<usize> {
    let (from, to) = (from.as_raw_fd(), to.as_raw_fd());
    // SAFETY: both descriptors are open; null offsets use and advance the files' own offsets.
    let moved = unsafe { libc::splice(from, ptr::null_mut(), to, ptr::null_mut(), len, flags) };
    if moved < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(moved as usize)
    }
}

fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    splice_with(from, to, len, libc::SPLICE_F_MOVE)
}

/// Tops a slot up with whatever more the input has ready right now, without waiting: the first
/// splice already waited for data, so promptness is kept, and a fast producer fills whole slots.
/// SPLICE_F_NONBLOCK only makes the pipe sides non-blocking: a socket input would still wait
/// for more data, holding back what the slot has, so the input is asked first whether it has
/// any. The input's own flags, shared with other processes, are left alone.
fn top_up(from: BorrowedFd<'_>, to: BorrowedFd<'_>, mut room: usize) -> usize {
    let mut moved = 0;
    while room > 0 && readable_now(from) {
        match splice_with(
            from,
            to,
            room,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        ) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                moved += n;
                room -= n;
            }
        }
    }
    moved
}

fn readable_now(fd: BorrowedFd<'_>) -> bool {
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; a zero timeout never waits.
    unsafe { libc::poll(&raw mut poll, 1, 0) == 1 && poll.revents & libc::POLLIN != 0 }
}

fn dev_null() -> io::Result<BorrowedFd<'static>> {
    static DEV_NULL: OnceLock<File> = OnceLock::new();
    if let Some(file) = DEV_NULL.get() {
        return Ok(file.as_fd());
    }
    let file = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    Ok(DEV_NULL.get_or_init(|| file).as_fd())
}

impl Payload for PipeSlot {
    fn len(&self) -> usize {
        self.len
    }

    fn records(&self, _: u8, _: bool) -> u64 {
        // Line mode reads the data, so it never runs on pipe slots.
        0
    }
}

impl Slot for PipeSlot {
    /// A pipe that holds at least `chunk_size` bytes, and not much more: the pipe budget counts
    /// every page. Fails when the kernel will not grant that (`/proc/sys/fs/pipe-max-size`, or
    /// the per-user pipe budget).
    fn new(chunk_size: usize) -> io::Result<PipeSlot> {
        let (reader, writer) = io::pipe()?;
        let capacity = sys::set_pipe_size(writer.as_fd(), chunk_size.max(MIN_PIPE))?;
        Ok(PipeSlot {
            reader,
            writer,
            len: 0,
            capacity,
            read_back: None,
        })
    }

    fn fill(&mut self, fd: BorrowedFd<'_>, max: usize, stream: &mut Stream) -> io::Result<usize> {
        let max = max.min(self.capacity - self.len);
        let slot = self.writer.as_fd();
        if stream.splices() {
            match sys::when_ready(fd, libc::POLLIN, || splice(fd, slot, max)) {
                Ok(0) => return Ok(0),
                Ok(n) => {
                    let n = n + top_up(fd, slot, max - n);
                    self.len += n;
                    return Ok(n);
                }
                Err(e) => stream.fall_back(e)?,
            }
        }
        // The slot pipe has room for `max`, so writing into it cannot wait half-way.
        let n = stream.copy(fd, slot, max, |_| {})?;
        self.len += n;
        Ok(n)
    }

    fn clear(&mut self) -> io::Result<()> {
        if self.read_back.take().is_some() {
            self.len = 0;
        }
        while self.len > 0 {
            let n = splice(self.reader.as_fd(), dev_null()?, self.len)?;
            self.len -= n;
        }
        Ok(())
    }
}

impl Spill for PipeSlot {
    /// Only what the reader filled is spilled, so the bytes are in the pipe.
    fn spill(&mut self, file: BorrowedFd<'_>, at: u64, max: usize) -> io::Result<usize> {
        let n = spool_sys::splice_to_file(self.reader.as_fd(), file, at, max.min(self.len))?;
        self.len -= n;
        Ok(n)
    }

    /// Refills an empty slot, or one refilled before (a chunk in two pieces of the ring).
    fn refill(
        &mut self,
        file: BorrowedFd<'_>,
        at: u64,
        max: usize,
        spares: &Arc<Spares>,
    ) -> io::Result<usize> {
        let n = self
            .read_back
            .get_or_insert_with(|| ReadBack::new(spares))
            .refill(file, at, max)?;
        self.len += n;
        Ok(n)
    }
}

impl PipeSlot {
    /// One write of at most `max` bytes of a chunk read back; its buffer goes once written.
    fn drain_read_back(&mut self, fd: BorrowedFd<'_>, max: usize) -> Option<io::Result<usize>> {
        let read_back = self.read_back.as_mut()?;
        let written = read_back.drain(fd, max);
        if let Ok(n) = written {
            self.len -= n;
            if self.len == 0 {
                self.read_back = None;
            }
        }
        Some(written)
    }
}

impl Outgoing for PipeSlot {
    type Stream = Stream;

    fn drain(&mut self, fd: BorrowedFd<'_>, max: usize, stream: &mut Stream) -> io::Result<usize> {
        let max = max.min(self.len);
        if let Some(written) = self.drain_read_back(fd, max) {
            return written;
        }
        let slot = self.reader.as_fd();
        if stream.splices() {
            match sys::when_ready(fd, libc::POLLOUT, || splice(slot, fd, max)) {
                Ok(n) => {
                    self.len -= n;
                    return Ok(n);
                }
                Err(e) => stream.fall_back(e)?,
            }
        }
        // Once out of the slot pipe the bytes are no longer the slot's, whatever the write does.
        let len = &mut self.len;
        stream.copy(slot, fd, max, |n| *len -= n)
    }

    fn unsent_len(&self) -> usize {
        self.len
    }

    fn unsent(&self) -> Option<&[u8]> {
        self.read_back.as_ref().map(ReadBack::unsent)
    }

    fn copies(stream: &Stream) -> bool {
        !stream.splices()
    }
}

/// One output's pipe for its share of a slot pipe: tee(2) duplicates the slot's pages into it
/// without copying them and without taking them from the slot, and it drains as a slot does.
#[derive(Default)]
pub(crate) struct LanePipe {
    pipe: Option<PipeSlot>,
    stream: Stream,
}

impl PipeSlot {
    /// Duplicates the whole slot into `lane`, which is empty and at least as large, so one tee
    /// takes it all: a second tee would start over from the slot's first byte.
    fn tee_into(&self, lane: &mut PipeSlot) -> io::Result<()> {
        let (from, to) = (self.reader.as_raw_fd(), lane.writer.as_raw_fd());
        // SAFETY: both descriptors are open pipes owned by the two slots.
        let teed = unsafe { libc::tee(from, to, self.len, 0) };
        match teed {
            n if n < 0 => Err(io::Error::last_os_error()),
            n if n as usize == self.len => {
                lane.len = self.len;
                Ok(())
            }
            n => Err(io::Error::other(format!(
                "tee duplicated {n} of a chunk's {} bytes",
                self.len
            ))),
        }
    }
}

impl Share for PipeSlot {
    type Lane = LanePipe;

    fn drain_from(
        &self,
        sent: usize,
        fd: BorrowedFd<'_>,
        max: usize,
        lane: &mut LanePipe,
    ) -> io::Result<usize> {
        if let Some(read_back) = &self.read_back {
            return read_back.drain_from(sent, fd, max);
        }
        let pipe = match &mut lane.pipe {
            Some(pipe) => pipe,
            None => lane.pipe.insert(PipeSlot::new(self.capacity)?),
        };
        if sent == 0 && pipe.len == 0 {
            self.tee_into(pipe)?;
        }
        pipe.drain(fd, max, &mut lane.stream)
    }

    /// The slot pipe holds the bytes not yet written, unless they were duplicated into the
    /// lane's pipe while others shared the slot.
    fn drain_last(
        &mut self,
        sent: usize,
        fd: BorrowedFd<'_>,
        max: usize,
        lane: &mut LanePipe,
    ) -> io::Result<usize> {
        if let Some(read_back) = &self.read_back {
            return read_back.drain_from(sent, fd, max);
        }
        match &mut lane.pipe {
            Some(pipe) if pipe.len > 0 => pipe.drain(fd, max, &mut lane.stream),
            _ => self.drain(fd, max, &mut lane.stream),
        }
    }

    fn lane_copies(lane: &LanePipe) -> bool {
        !lane.stream.splices()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_moves_bytes_by_splice() {
        let (in_r, in_w) = io::pipe().unwrap();
        let (out_r, out_w) = io::pipe().unwrap();
        sys::write_all(in_w.as_fd(), b"spliced bytes").unwrap();
        let mut slot = PipeSlot::new(64 * 1024).unwrap();
        let mut stream = Stream::default();
        assert_eq!(slot.fill(in_r.as_fd(), 1000, &mut stream).unwrap(), 13);
        assert_eq!(slot.len(), 13);
        assert_eq!(slot.drain(out_w.as_fd(), 5, &mut stream).unwrap(), 5);
        assert_eq!(slot.drain(out_w.as_fd(), 100, &mut stream).unwrap(), 8);
        assert!(
            stream.copy.is_none(),
            "splice between pipes must not fall back"
        );
        let mut buf = [0u8; 32];
        assert_eq!(sys::read(out_r.as_fd(), &mut buf).unwrap(), 13);
        assert_eq!(&buf[..13], b"spliced bytes");
    }

    #[test]
    fn an_append_output_falls_back_to_copying() {
        let path = std::env::temp_dir().join(format!("bpipe-splice-append-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let (in_r, in_w) = io::pipe().unwrap();
        sys::write_all(in_w.as_fd(), b"appended").unwrap();
        let mut slot = PipeSlot::new(4096).unwrap();
        let mut reading = Stream::default();
        let mut writing = Stream::default();
        slot.fill(in_r.as_fd(), 4096, &mut reading).unwrap();
        while slot.len() > 0 {
            slot.drain(file.as_fd(), 4096, &mut writing).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"appended");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_fill_never_asks_for_more_than_the_pipe_holds() {
        let (in_r, in_w) = io::pipe().unwrap();
        let mut slot = PipeSlot::new(4096).unwrap();
        let capacity = slot.capacity;
        sys::grow_pipe(in_w.as_fd(), 2 * capacity).unwrap();
        sys::write_all(in_w.as_fd(), &vec![1u8; capacity + 100]).unwrap();
        let mut copying = Stream {
            copy: Some(vec![0; FALLBACK_BUFFER]),
        };
        // Writing more than the pipe holds would wait for a drain that never comes: here, with
        // the slot pipe non-blocking, it would fail instead.
        let fd = slot.writer.as_raw_fd();
        // SAFETY: F_SETFL on an open descriptor this test owns.
        assert_eq!(
            unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) },
            0
        );
        assert_eq!(
            slot.fill(in_r.as_fd(), capacity + 100, &mut copying)
                .unwrap(),
            capacity
        );
    }

    /// A chunk read back from the spool is written from memory, to one output or shared by
    /// several, and the slot is a pipe again once cleared.
    #[test]
    fn a_chunk_read_back_is_written_from_memory() {
        let file = spool_sys::open_unnamed(&std::env::temp_dir()).unwrap();
        spool_sys::pwrite(file.as_fd(), b"from the spool", 0).unwrap();
        let spares = Arc::new(Spares::default());
        let mut slot = PipeSlot::new(4096).unwrap();
        assert_eq!(slot.refill(file.as_fd(), 0, 4, &spares).unwrap(), 4);
        assert_eq!(slot.refill(file.as_fd(), 4, 100, &spares).unwrap(), 10);
        assert_eq!(slot.unsent(), Some(&b"from the spool"[..]));
        let (r, w) = io::pipe().unwrap();
        let mut lane = LanePipe::default();
        assert_eq!(slot.drain_from(0, w.as_fd(), 100, &mut lane).unwrap(), 14);
        assert_eq!(slot.drain(w.as_fd(), 5, &mut Stream::default()).unwrap(), 5);
        assert_eq!(
            slot.drain(w.as_fd(), 100, &mut Stream::default()).unwrap(),
            9
        );
        assert_eq!((slot.len(), slot.unsent()), (0, None));
        let mut buf = [0u8; 32];
        assert_eq!(sys::read(r.as_fd(), &mut buf).unwrap(), 28);
        assert_eq!(&buf[..28], b"from the spoolfrom the spool");
        slot.refill(file.as_fd(), 0, 4, &spares).unwrap();
        slot.clear().unwrap();
        let (in_r, in_w) = io::pipe().unwrap();
        sys::write_all(in_w.as_fd(), b"piped").unwrap();
        assert_eq!(
            slot.fill(in_r.as_fd(), 4096, &mut Stream::default())
                .unwrap(),
            5
        );
        assert_eq!(slot.unsent(), None);
    }

    #[test]
    fn clear_discards_what_a_slot_holds() {
        let (in_r, in_w) = io::pipe().unwrap();
        sys::write_all(in_w.as_fd(), &[7u8; 3000]).unwrap();
        let mut slot = PipeSlot::new(4096).unwrap();
        slot.fill(in_r.as_fd(), 4096, &mut Stream::default())
            .unwrap();
        slot.clear().unwrap();
        assert_eq!(slot.len(), 0);
        sys::write_all(in_w.as_fd(), b"next").unwrap();
        slot.fill(in_r.as_fd(), 4096, &mut Stream::default())
            .unwrap();
        let (out_r, out_w) = io::pipe().unwrap();
        slot.drain(out_w.as_fd(), 4096, &mut Stream::default())
            .unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(sys::read(out_r.as_fd(), &mut buf).unwrap(), 4);
    }
}
