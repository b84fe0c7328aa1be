//! What ends a live `bpipe --top`: q on the keyboard, or SIGINT, SIGTERM or SIGHUP, after which
//! the terminal is left as it was found.

use std::io::{self, IsTerminal};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// How often the stop flag is looked at while no key comes.
const TICK: Duration = Duration::from_millis(50);

pub(crate) struct Keys {
    stop: Arc<AtomicBool>,
    /// The terminal's settings before q could be read without Enter; restored on drop.
    saved: Option<libc::termios>,
}

/// Keys without Enter and without echo; Ctrl-C still sends SIGINT.
fn cbreak(fd: i32) -> io::Result<libc::termios> {
    // SAFETY: an all-zero termios is a valid buffer for tcgetattr to fill.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open, and saved lives across the call.
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut raw = saved;
    raw.c_lflag &= !(libc::ICANON | libc::ECHO);
    raw.c_cc[libc::VMIN] = 1;
    raw.c_cc[libc::VTIME] = 0;
    // SAFETY: as above.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(saved)
}

/// Whether this process owns the terminal: changing its settings from the background would
/// stop it (SIGTTOU), as under `timeout` or `&`; there only the signals end it.
fn in_foreground(fd: i32) -> bool {
    // SAFETY: neither call has memory preconditions.
    unsafe { libc::tcgetpgrp(fd) == libc::getpgrp() }
}

impl Keys {
    pub(crate) fn start() -> io::Result<Keys> {
        let stop = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            signal_hook::flag::register(signal, Arc::clone(&stop))?;
        }
        let stdin = io::stdin();
        let saved = match stdin.is_terminal() && in_foreground(stdin.as_raw_fd()) {
            true => Some(cbreak(stdin.as_raw_fd())?),
            false => None,
        };
        Ok(Keys { stop, saved })
    }

    /// Waits `wait`; true as soon as q is pressed or a stop signal came.
    pub(crate) fn quit_within(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let tick = left.min(TICK);
            match self.saved {
                Some(_) if key_ready(tick) => {
                    if read_keys().contains(&b'q') {
                        return true;
                    }
                }
                Some(_) => {}
                None => thread::sleep(tick),
            }
        }
    }
}

/// Whether standard input has something to read within `wait` (false when a signal cut the
/// wait short: the caller looks at its flag).
fn key_ready(wait: Duration) -> bool {
    let mut ready = libc::pollfd {
        fd: io::stdin().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: poll(2) on one pollfd that lives across the call.
    unsafe { libc::poll(&mut ready, 1, millis) > 0 }
}

/// What was typed, read straight from the descriptor: std's buffer in front of it would hide
/// keys from the next poll.
fn read_keys() -> Vec<u8> {
    let mut keys = [0u8; 64];
    // SAFETY: reads into a buffer of the length given, which lives across the call.
    let n = unsafe {
        libc::read(
            io::stdin().as_raw_fd(),
            keys.as_mut_ptr().cast(),
            keys.len(),
        )
    };
    keys[..usize::try_from(n).unwrap_or(0)].to_vec()
}

impl Drop for Keys {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            // SAFETY: restores settings read from the same descriptor by tcgetattr.
            unsafe { libc::tcsetattr(io::stdin().as_raw_fd(), libc::TCSANOW, saved) };
        }
    }
}
