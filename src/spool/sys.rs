//! The system calls of the spool file: a file without a name, space reserved ahead, and I/O at
//! offsets (pwrite, pread, splice into the file), never a memory map, so that a full disk is an
//! error at a call and never a signal. Nothing is spliced out of the file: a pipe filled that way
//! shares the file's pages, and the ring writes over them.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn check(ret: isize) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

fn offset(offset: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))
}

fn open(path: &CString, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: the path is NUL-terminated; the mode is read with O_TMPFILE and O_CREAT.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new file in `dir` that no name points to, so nothing is left behind after any exit: made
/// with O_TMPFILE, or where the file system lacks it, created under a fresh name and unlinked
/// at once.
pub(crate) fn open_unnamed(dir: &Path) -> io::Result<OwnedFd> {
    let c_dir = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    match open(&c_dir, libc::O_TMPFILE | libc::O_RDWR) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => {}
        other => return other,
    }
    for attempt in 0..100u32 {
        let name = format!(".bpipe-spool-{}-{attempt}", std::process::id());
        let path = dir.join(name);
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        match open(&c_path, libc::O_CREAT | libc::O_EXCL | libc::O_RDWR) {
            Ok(fd) => {
                std::fs::remove_file(&path)?;
                return Ok(fd);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from(io::ErrorKind::AlreadyExists))
}

/// Reserves `len` bytes of disk at `at`, growing the file: a full disk answers ENOSPC here,
/// before a byte is written. `Ok(false)` where the file system cannot reserve (then a full disk
/// shows at the write instead).
pub(crate) fn reserve(fd: BorrowedFd<'_>, at: u64, len: u64) -> io::Result<bool> {
    let (at, len) = (offset(at)?, offset(len)?);
    loop {
        // SAFETY: fallocate on an open descriptor with mode 0 only allocates.
        match unsafe { libc::fallocate(fd.as_raw_fd(), 0, at, len) } {
            0 => return Ok(true),
            _ => match io::Error::last_os_error() {
                e if e.kind() == io::ErrorKind::Interrupted => continue,
                e if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(false),
                e => return Err(e),
            },
        }
    }
}

/// One pwrite(2) of `buf` at `at`.
pub(crate) fn pwrite(fd: BorrowedFd<'_>, buf: &[u8], at: u64) -> io::Result<usize> {
    let at = offset(at)?;
    // SAFETY: the buffer is valid for reads of its whole length.
    check(unsafe { libc::pwrite(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), at) })
}

/// One pread(2) into `buf` from `at`.
pub(crate) fn pread(fd: BorrowedFd<'_>, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let at = offset(at)?;
    // SAFETY: the buffer is valid for writes of its whole length.
    check(unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), at) })
}

/// One pread(2) of at most `max` bytes from `at`, appended to `buf` without zeroing the room
/// first: the kernel fills it, and only what it filled becomes part of `buf`.
pub(crate) fn pread_append(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    max: usize,
    at: u64,
) -> io::Result<usize> {
    let at = offset(at)?;
    buf.reserve(max);
    let room = buf.spare_capacity_mut();
    // SAFETY: `room` is valid for writes of `max` bytes, its length at least that after reserve.
    let n = check(unsafe { libc::pread(fd.as_raw_fd(), room.as_mut_ptr().cast(), max, at) })?;
    // SAFETY: pread initialised the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// One splice(2) of at most `len` bytes from a pipe into the file at `at`.
pub(crate) fn splice_to_file(
    pipe: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    at: u64,
    len: usize,
) -> io::Result<usize> {
    splice_with(pipe, file, at, len, libc::SPLICE_F_MOVE)
}

/// As `splice_to_file`, of what the pipe holds now: `WouldBlock` when it is empty.
pub(crate) fn splice_ready_to_file(
    pipe: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    at: u64,
    len: usize,
) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    splice_with(pipe, file, at, len, flags)
}

fn splice_with(
    pipe: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    at: u64,
    len: usize,
    flags: libc::c_uint,
) -> io::Result<usize> {
    let mut at = offset(at)?;
    // SAFETY: both descriptors are open; the file's offset is ours and not advanced.
    check(unsafe {
        libc::splice(
            pipe.as_raw_fd(),
            std::ptr::null_mut(),
            file.as_raw_fd(),
            &mut at,
            len,
            flags,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn an_unnamed_file_leaves_nothing_in_its_directory() {
        let dir = std::env::temp_dir().join(format!("bpipe-spool-sys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fd = open_unnamed(&dir).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        reserve(fd.as_fd(), 0, 8192).unwrap();
        assert_eq!(pwrite(fd.as_fd(), b"spooled", 4096).unwrap(), 7);
        let mut buf = [0u8; 7];
        assert_eq!(pread(fd.as_fd(), &mut buf, 4096).unwrap(), 7);
        assert_eq!(&buf, b"spooled");
        let missing = open_unnamed(&dir.join("missing")).unwrap_err();
        assert_eq!(missing.raw_os_error(), Some(libc::ENOENT));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn splice_moves_a_pipe_into_the_file_at_an_offset() {
        let dir = std::env::temp_dir();
        let fd = open_unnamed(&dir).unwrap();
        let (r, w) = io::pipe().unwrap();
        crate::io::sys::write_all(w.as_fd(), b"zero copy").unwrap();
        assert_eq!(splice_to_file(r.as_fd(), fd.as_fd(), 100, 64).unwrap(), 9);
        let mut buf = [0u8; 5];
        assert_eq!(pread(fd.as_fd(), &mut buf, 104).unwrap(), 5);
        assert_eq!(&buf, b" copy");
    }
}
