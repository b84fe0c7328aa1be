//! Connecting, within a retry budget: a receiver that is not listening yet (it starts a moment
//! later, or restarts) is tried again after a growing delay with jitter, so that many senders
//! do not retry in step, and never more often than every 100 ms.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::net::wait::{self, Ready};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(2);

/// How long and how often to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Retry {
    pub(crate) budget: Duration,
    /// At most this many attempts after the first; `None`: as many as the budget allows.
    pub(crate) retries: Option<u32>,
}

/// What became of the attempts.
pub(crate) enum Dialed {
    Connected(TcpStream),
    Stopped,
    /// The last attempt's error, and how many attempts were made.
    GaveUp(io::Error, u32),
}

/// Errors a later attempt may not meet: nobody listening yet, or no route yet.
fn worth_retrying(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(
            libc::ECONNREFUSED
                | libc::ENETUNREACH
                | libc::EHOSTUNREACH
                | libc::ETIMEDOUT
                | libc::ECONNRESET
                | libc::ECONNABORTED
        )
    )
}

/// The delay before attempt `attempt + 1`: doubling from 100 ms to a cap of 2 s, then moved by
/// up to a quarter either way, never below 100 ms.
pub(crate) fn delay(attempt: u32, seed: u64) -> Duration {
    let doubled = FIRST_DELAY.saturating_mul(1 << attempt.saturating_sub(1).min(8));
    let base = doubled.min(MAX_DELAY);
    // splitmix64: jitter needs no more than a well-mixed number.
    let mut z = seed.wrapping_add(u64::from(attempt).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    let unit = (z ^ (z >> 31)) as f64 / u64::MAX as f64;
    base.mul_f64(0.75 + unit / 2.0).max(FIRST_DELAY)
}

fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large enough and suitably aligned for any sockaddr.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn set_blocking(fd: &OwnedFd, blocking: bool) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on an open descriptor.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    let flags = match blocking {
        true => flags & !libc::O_NONBLOCK,
        false => flags | libc::O_NONBLOCK,
    };
    // SAFETY: as above.
    match unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } {
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}

fn pending_error(fd: &OwnedFd) -> io::Result<()> {
    let mut error: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid descriptor, buffer and length.
    let done = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut error).cast(),
            &raw mut len,
        )
    };
    match (done, error) {
        (-1, _) => Err(io::Error::last_os_error()),
        (_, 0) => Ok(()),
        (_, error) => Err(io::Error::from_raw_os_error(error)),
    }
}

/// One connection attempt to one address, waiting at most until `deadline`; `None` on a stop.
fn attempt(
    addr: &SocketAddr,
    deadline: Instant,
    stop: &AtomicBool,
) -> io::Result<Option<TcpStream>> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket creation; the descriptor is owned at once.
    let raw = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    set_blocking(&socket, false)?;
    let (storage, len) = sockaddr(addr);
    // SAFETY: the address and its length come from `sockaddr`.
    if unsafe { libc::connect(raw, (&raw const storage).cast(), len) } != 0 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(error);
        }
        match wait::ready(socket.as_fd(), libc::POLLOUT, Some(deadline), &|| {
            stop.load(Ordering::Relaxed)
        })? {
            Ready::Yes => pending_error(&socket)?,
            Ready::TimedOut => return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT)),
            Ready::Stopped => return Ok(None),
        }
    }
    set_blocking(&socket, true)?;
    Ok(Some(TcpStream::from(socket)))
}

/// Sleeps, unless a stop comes first: `false` then.
fn pause(delay: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + delay;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
    !stop.load(Ordering::Relaxed)
}

/// Tries each address in turn, again and again within the budget. `attempted` hears of every
/// attempt that failed and the delay before the next one (`None`: it was the last).
pub(crate) fn dial(
    addrs: &[SocketAddr],
    retry: Retry,
    stop: &AtomicBool,
    mut attempted: impl FnMut(u32, &io::Error, Option<Duration>),
) -> Dialed {
    let start = Instant::now();
    let deadline = start + retry.budget;
    let seed = u64::from(std::process::id()) ^ start.elapsed().as_nanos() as u64;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut last = io::Error::from_raw_os_error(libc::EADDRNOTAVAIL);
        for addr in addrs {
            match attempt(addr, deadline, stop) {
                Ok(Some(stream)) => return Dialed::Connected(stream),
                Ok(None) => return Dialed::Stopped,
                Err(error) => last = error,
            }
        }
        // The last delay is cut to what is left of the budget, so that the budget is used
        // whole, but never below the floor.
        let left = deadline.saturating_duration_since(Instant::now());
        let next = delay(attempts, seed).min(left);
        let more = retry.retries.is_none_or(|n| attempts <= n)
            && worth_retrying(&last)
            && next >= FIRST_DELAY;
        attempted(attempts, &last, more.then_some(next));
        if !more {
            return Dialed::GaveUp(last, attempts);
        }
        if !pause(next, stop) {
            return Dialed::Stopped;
        }
    }
}

/// A connection from a chosen local address, as a client on another address of the machine
/// would make it.
#[cfg(test)]
pub(crate) fn bind_and_connect(from: SocketAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let domain = if to.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket creation, owned at once.
    let socket = unsafe { OwnedFd::from_raw_fd(libc::socket(domain, libc::SOCK_STREAM, 0)) };
    let (local, local_len) = sockaddr(&from);
    let (remote, remote_len) = sockaddr(&to);
    // SAFETY: addresses and lengths from `sockaddr`.
    if unsafe { libc::bind(socket.as_raw_fd(), (&raw const local).cast(), local_len) } != 0
        // SAFETY: as above.
        || unsafe { libc::connect(socket.as_raw_fd(), (&raw const remote).cast(), remote_len) } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpStream::from(socket))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn delays_double_to_a_cap_with_jitter_and_never_below_100ms() {
        for seed in 0..200 {
            let d1 = delay(1, seed);
            assert!(
                d1 >= Duration::from_millis(100) && d1 <= Duration::from_millis(125),
                "{d1:?}"
            );
            let d3 = delay(3, seed);
            assert!(
                d3 >= Duration::from_millis(300) && d3 <= Duration::from_millis(500),
                "{d3:?}"
            );
            let d20 = delay(20, seed);
            assert!(
                d20 >= Duration::from_millis(1500) && d20 <= Duration::from_millis(2500),
                "{d20:?}"
            );
        }
        assert_ne!(delay(4, 1), delay(4, 2));
    }

    fn closed_port() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }

    #[test]
    fn a_listening_port_connects_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let retry = Retry {
            budget: Duration::from_secs(5),
            retries: None,
        };
        let dialed = dial(
            &[listener.local_addr().unwrap()],
            retry,
            &AtomicBool::new(false),
            |_, _, _| panic!("no failed attempt expected"),
        );
        assert!(matches!(dialed, Dialed::Connected(_)));
    }

    #[test]
    fn a_refused_connection_is_retried_within_the_count() {
        let retry = Retry {
            budget: Duration::from_secs(30),
            retries: Some(2),
        };
        let mut heard = Vec::new();
        let dialed = dial(
            &[closed_port()],
            retry,
            &AtomicBool::new(false),
            |n, e, next| heard.push((n, e.raw_os_error(), next.is_some())),
        );
        let Dialed::GaveUp(error, 3) = dialed else {
            panic!("expected three attempts")
        };
        assert_eq!(error.raw_os_error(), Some(libc::ECONNREFUSED));
        let refused = Some(libc::ECONNREFUSED);
        assert_eq!(
            heard,
            [(1, refused, true), (2, refused, true), (3, refused, false)]
        );
    }

    #[test]
    fn the_budget_bounds_the_attempts() {
        let retry = Retry {
            budget: Duration::from_millis(700),
            retries: None,
        };
        let start = Instant::now();
        let dialed = dial(
            &[closed_port()],
            retry,
            &AtomicBool::new(false),
            |_, _, _| {},
        );
        let Dialed::GaveUp(_, attempts) = dialed else {
            panic!("expected to give up")
        };
        assert!((4..=5).contains(&attempts), "{attempts} attempts");
        let spent = start.elapsed();
        assert!(
            spent >= Duration::from_millis(600) && spent < Duration::from_millis(800),
            "{spent:?}"
        );
    }

    #[test]
    fn a_stop_ends_the_retries() {
        let retry = Retry {
            budget: Duration::from_secs(30),
            retries: None,
        };
        let dialed = dial(
            &[closed_port()],
            retry,
            &AtomicBool::new(true),
            |_, _, _| {},
        );
        assert!(matches!(dialed, Dialed::Stopped));
    }
}
