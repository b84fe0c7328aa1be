//! Waiting on a socket for a bounded time, in a way a stop reaches: accept, connect and the
//! hello all wait here rather than in a blocking call that retries after a signal.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ready {
    Yes,
    TimedOut,
    Stopped,
}

/// A stop that comes between the check and the poll is seen at the next slice, whatever
/// becomes of the wake-up signal.
const SLICE: Duration = Duration::from_millis(200);

/// Waits until `fd` has one of `events` (POLLIN, POLLOUT), `deadline` passes, or `stopped`
/// says to give up. An error or hang-up on the socket counts as ready: the call that follows
/// says what.
pub(crate) fn ready(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    deadline: Option<Instant>,
    stopped: &dyn Fn() -> bool,
) -> io::Result<Ready> {
    loop {
        if stopped() {
            return Ok(Ready::Stopped);
        }
        let now = Instant::now();
        let slice = match deadline {
            Some(deadline) if deadline <= now => return Ok(Ready::TimedOut),
            Some(deadline) => (deadline - now).min(SLICE),
            None => SLICE,
        };
        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        };
        let millis = slice.as_millis().max(1) as libc::c_int;
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&raw mut poll, 1, millis) } {
            1.. => return Ok(Ready::Yes),
            0 => {}
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn ready_when_readable_else_timed_out_or_stopped() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let never = || false;
        let soon = Some(Instant::now() + Duration::from_millis(30));
        assert_eq!(
            ready(b.as_fd(), libc::POLLIN, soon, &never).unwrap(),
            Ready::TimedOut
        );
        a.write_all(b"x").unwrap();
        assert_eq!(
            ready(b.as_fd(), libc::POLLIN, None, &never).unwrap(),
            Ready::Yes
        );
        assert_eq!(
            ready(b.as_fd(), libc::POLLIN, None, &|| true).unwrap(),
            Ready::Stopped
        );
    }
}
