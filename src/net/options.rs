//! Socket options every connection gets: a peer that vanishes (a cable pulled, a host that
//! crashed) must become an error within `--peer-timeout`, whether bpipe is sending (unacknowledged
//! data: TCP_USER_TIMEOUT) or waiting for data (keep-alive probes). A peer that is slow but
//! answers is not an error: that is `--stall-timeout`'s business.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

fn set(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the descriptor is open for the borrow; the value is a c_int of the size given.
    let done = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    match done {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

fn seconds(d: Duration) -> libc::c_int {
    libc::c_int::try_from(d.as_secs().max(1)).unwrap_or(libc::c_int::MAX)
}

/// Keep-alive probes start after half the timeout of silence and come four times in the other
/// half; TCP_USER_TIMEOUT bounds how long sent data may stay unacknowledged.
pub(crate) fn tune(
    fd: BorrowedFd<'_>,
    peer_timeout: Duration,
    buffer: Option<usize>,
) -> io::Result<()> {
    let idle = peer_timeout / 2;
    set(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    set(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, seconds(idle))?;
    set(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPINTVL,
        seconds(idle / 4),
    )?;
    set(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 4)?;
    let millis = libc::c_int::try_from(peer_timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    set(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, millis)?;
    if let Some(size) = buffer {
        let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
        set(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, size)?;
        set(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, size)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    fn get(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: valid descriptor, buffer and length.
        let done = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&raw mut value).cast(),
                &raw mut len,
            )
        };
        assert_eq!(done, 0);
        value
    }

    #[test]
    fn the_peer_timeout_sets_keepalive_and_the_user_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        tune(stream.as_fd(), Duration::from_secs(60), Some(1 << 20)).unwrap();
        let fd = stream.as_fd();
        assert_eq!(get(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
        assert_eq!(get(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 30);
        assert_eq!(get(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 7);
        assert_eq!(get(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT), 60_000);
        // The kernel doubles what it is asked for, for its own bookkeeping.
        assert!(get(fd, libc::SOL_SOCKET, libc::SO_SNDBUF) >= 1 << 20);
    }
}
