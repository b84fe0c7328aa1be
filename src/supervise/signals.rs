//! Signals are answered by a thread of their own, so a snapshot or a stop request is served even
//! while both data stages sit blocked in read or write.

use std::io;
use std::thread;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

/// The signals bpipe acts on: USR1 asks for a snapshot, the others ask it to stop.
pub(crate) const HANDLED: [libc::c_int; 4] = [SIGUSR1, SIGINT, SIGTERM, SIGHUP];

/// Starts the signal thread, which passes every handled signal to `deliver`. Call it before any
/// other thread starts: USR1's default action would kill the process.
pub(crate) fn spawn(deliver: impl Fn(libc::c_int) + Send + 'static) -> io::Result<()> {
    let mut signals = Signals::new(HANDLED)?;
    install_wakeup_handler()?;
    thread::Builder::new()
        .name("bpipe-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                deliver(signal);
            }
        })?;
    Ok(())
}

/// A real-time signal that only ever interrupts a blocked system call of ours.
fn wakeup_signal() -> libc::c_int {
    libc::SIGRTMIN()
}

extern "C" fn ignore(_: libc::c_int) {}

/// A handler that does nothing, installed without SA_RESTART, so that the wake-up signal makes a
/// blocked read return EINTR instead of being silently restarted.
pub(crate) fn install_wakeup_handler() -> io::Result<()> {
    // SAFETY: an all-zero sigaction is a valid starting value; the handler is async-signal-safe
    // (it does nothing).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(wakeup_signal(), &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Interrupts whatever system call `thread` is blocked in (it sees EINTR).
pub(crate) fn wake(thread: libc::pthread_t) {
    // SAFETY: the thread handle comes from a JoinHandle that has not been joined yet.
    unsafe {
        libc::pthread_kill(thread, wakeup_signal());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::thread::JoinHandleExt;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn wake_interrupts_a_blocked_read() {
        use std::os::fd::AsFd;
        install_wakeup_handler().unwrap();
        let (r, w) = io::pipe().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 4];
            tx.send(crate::io::sys::read(r.as_fd(), &mut buf).map_err(|e| e.kind()))
                .unwrap();
        });
        let outcome = loop {
            wake(reader.as_pthread_t());
            if let Ok(outcome) = rx.recv_timeout(Duration::from_millis(20)) {
                break outcome;
            }
        };
        assert_eq!(outcome, Err(io::ErrorKind::Interrupted));
        reader.join().unwrap();
        drop(w);
    }
}
