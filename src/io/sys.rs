//! Thin, checked wrappers over the few system calls bpipe makes itself.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

fn check(ret: isize) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Waits until `fd` is ready for `events` (POLLIN, POLLOUT). A descriptor another program made
/// non-blocking answers EAGAIN instead of waiting; bpipe waits here as pv does, and never
/// changes the flags of a descriptor it shares. `Interrupted` is returned, not retried.
pub(crate) fn wait_ready(fd: BorrowedFd<'_>, events: libc::c_short) -> io::Result<()> {
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, and poll(2) writes only its revents.
    if unsafe { libc::poll(&mut poll, 1, -1) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `call` until it does not answer EAGAIN, waiting for `events` on `fd` in between.
pub(crate) fn when_ready<T>(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    mut call: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_ready(fd, events)?,
            other => return other,
        }
    }
}

/// One read(2); `Interrupted` is returned, not retried, so a stop request can be seen.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    when_ready(fd, libc::POLLIN, || {
        // SAFETY: the buffer is valid for writes of its whole length.
        check(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
    })
}

/// One write(2); `Interrupted` is returned, not retried.
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    when_ready(fd, libc::POLLOUT, || {
        // SAFETY: the buffer is valid for reads of its whole length.
        check(unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })
    })
}

/// Writes all of `buf`, through partial writes and EINTR.
pub(crate) fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One open(2), close-on-exec; `Interrupted` is returned, not retried as `File::open` does, so
/// that a stop can end a wait for a FIFO's other end.
pub(crate) fn open(path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let mode: libc::c_uint = 0o666;
    // SAFETY: the path is NUL-terminated; the mode is only read when O_CREAT is set.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What stat(2) says of a path, following symbolic links.
pub(crate) fn stat(path: &CStr) -> io::Result<libc::stat> {
    // SAFETY: an all-zero stat is a valid value to be overwritten by stat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and `st` is a valid, writable stat buffer.
    if unsafe { libc::stat(path.as_ptr(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: an all-zero stat is a valid value to be overwritten by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat buffer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// Whether bpipe's effective user and group may use the path as `mode` asks (`R_OK`, `W_OK`...).
pub(crate) fn access(path: &CStr, mode: libc::c_int) -> io::Result<()> {
    // SAFETY: the path is NUL-terminated.
    if unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr(), mode, libc::AT_EACCESS) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The kind of file behind a descriptor.
pub(crate) fn file_type(fd: BorrowedFd<'_>) -> io::Result<libc::mode_t> {
    Ok(fstat(fd)?.st_mode & libc::S_IFMT)
}

pub(crate) fn is_pipe(fd: BorrowedFd<'_>) -> bool {
    file_type(fd).is_ok_and(|t| t == libc::S_IFIFO)
}

/// Raises a pipe's capacity towards `bytes`, returning what the kernel granted. Only ever grows
/// it: a pipe shared with the producer or consumer must not lose capacity because of us.
pub(crate) fn grow_pipe(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    // SAFETY: F_GETPIPE_SZ takes no argument and only reads the descriptor's state.
    let current = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) } as isize)?;
    if current >= bytes {
        return Ok(current);
    }
    let wanted = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: F_SETPIPE_SZ takes an int and fails cleanly on anything but a pipe.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, wanted) } as isize)
}

/// Sets the capacity of a pipe bpipe owns to hold at least `bytes` (the kernel rounds up to a
/// power of two pages), shrinking it if need be, and returns what the kernel granted.
pub(crate) fn set_pipe_size(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    let wanted = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: F_SETPIPE_SZ takes an int and fails cleanly on anything but a pipe.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, wanted) } as isize)
}

/// Raises the soft limit on open descriptors to at least `needed`, as far as the hard limit
/// allows, and returns the limit in force: the splice ring holds two descriptors per slot.
pub(crate) fn raise_fd_limit(needed: u64) -> u64 {
    // SAFETY: an all-zero rlimit is valid, and getrlimit/setrlimit only read and write it.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < needed {
            let wanted = libc::rlimit {
                rlim_cur: needed.min(limit.rlim_max),
                ..limit
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                return wanted.rlim_cur;
            }
        }
        limit.rlim_cur
    }
}

/// Points standard input at /dev/null, so the producer learns at once (EPIPE) that nothing more
/// will be read, instead of blocking on a full pipe until bpipe exits.
pub(crate) fn release_stdin() -> io::Result<()> {
    let null = std::fs::File::open("/dev/null")?;
    // SAFETY: dup2 onto descriptor 0, which bpipe owns as its standard input; `null` stays
    // open until after the call.
    if unsafe { libc::dup2(null.as_raw_fd(), libc::STDIN_FILENO) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Strips Rust's " (os error N)" so messages read like the C tools': `No space left on device`.
pub(crate) fn describe(error: &io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_string(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_blocking_descriptor_is_waited_for() {
        use std::os::fd::AsFd;
        let (r, w) = io::pipe().unwrap();
        // SAFETY: F_SETFL on a descriptor this test owns.
        unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            write_all(w.as_fd(), b"late").unwrap();
        });
        let mut buf = [0u8; 8];
        assert_eq!(read(r.as_fd(), &mut buf).unwrap(), 4);
        writer.join().unwrap();
    }

    #[test]
    fn describe_drops_the_os_error_suffix() {
        let error = io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(describe(&error), "No space left on device");
        let custom = io::Error::other("plain");
        assert_eq!(describe(&custom), "plain");
    }

    #[test]
    fn pipes_grow_but_never_shrink() {
        use std::os::fd::AsFd;
        let (r, w) = io::pipe().unwrap();
        assert!(is_pipe(r.as_fd()));
        let grown = grow_pipe(w.as_fd(), 256 * 1024).unwrap();
        assert!(grown >= 64 * 1024);
        assert_eq!(grow_pipe(w.as_fd(), 4096).unwrap(), grown);
        assert!(set_pipe_size(w.as_fd(), 8192).unwrap() < grown);
        write_all(w.as_fd(), b"abc").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(read(r.as_fd(), &mut buf).unwrap(), 3);
    }
}
