//! How a run ended, the exit status that tells it, and the one-line form of an error.

use std::io::{self, Write};

/// Which side of the relay stopped moving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Input,
    Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// An I/O error was reported.
    Failed,
    /// The queue was full under `--on-full fail`.
    Rejected,
    /// Nothing moved for the stall timeout.
    Stalled(Side),
    /// The consumer closed its end early.
    OutputClosed,
    /// Stopped by this signal.
    Signalled(libc::c_int),
    /// An output was detached; the others got everything.
    Detached,
    /// A network stream did not arrive whole: truncated, or its checksum differs.
    Integrity,
}

impl Outcome {
    /// Which outcome tells a run's end when several happened: a signal or a stall outranks a
    /// stream that did not arrive whole, which outranks an I/O error, which outranks a closed
    /// output, which outranks a rejection, which outranks a detached output.
    fn rank(self) -> u8 {
        match self {
            Outcome::Done => 0,
            Outcome::Detached => 1,
            Outcome::Rejected => 2,
            Outcome::OutputClosed => 3,
            Outcome::Failed => 4,
            Outcome::Integrity => 5,
            Outcome::Signalled(_) | Outcome::Stalled(_) => 6,
        }
    }

    /// The outcome of highest rank; of equal ranks the later one, so a stall or a second
    /// signal that forced the end outranks the signal that asked for it.
    pub(crate) fn decide(outcomes: impl IntoIterator<Item = Outcome>) -> Outcome {
        outcomes
            .into_iter()
            .max_by_key(|o| o.rank())
            .unwrap_or(Outcome::Done)
    }

    pub fn exit_status(self) -> u8 {
        match self {
            Outcome::Done => 0,
            Outcome::Failed => 1,
            Outcome::Rejected => 3,
            Outcome::Stalled(_) => 4,
            Outcome::Detached => 5,
            Outcome::Integrity => 6,
            Outcome::OutputClosed => 141,
            Outcome::Signalled(signal) => 128u8.saturating_add(u8::try_from(signal).unwrap_or(127)),
        }
    }
}

/// Reports a bug as one `bpipe: internal error: ...` line instead of Rust's panic message, so
/// even a defect reads like every other error.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".to_string());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let _ = writeln!(io::stderr(), "bpipe: internal error: {what}{place}");
    }));
}

/// The I/O error at the root of a chain, if there is one.
pub(crate) fn io_error(error: &anyhow::Error) -> Option<&io::Error> {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<io::Error>())
}

pub(crate) fn is_broken_pipe(error: &anyhow::Error) -> bool {
    io_error(error).is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// Why an error happened: the C library's message for an I/O error, else the root cause.
pub(crate) fn reason(error: &anyhow::Error) -> String {
    match io_error(error) {
        Some(io) => crate::io::sys::describe(io),
        None => error.root_cause().to_string(),
    }
}

/// `bpipe: <what>: <why>`, where `why` reads like the C library's message.
pub fn error_line(error: &anyhow::Error) -> String {
    let why = reason(error);
    let what: Vec<String> = error
        .chain()
        .take_while(|cause| cause.downcast_ref::<io::Error>().is_none())
        .map(ToString::to_string)
        .collect();
    if what.is_empty() || (what.len() == 1 && io_error(error).is_none()) {
        format!("bpipe: {why}")
    } else {
        let what = if io_error(error).is_some() {
            &what[..]
        } else {
            &what[..what.len() - 1]
        };
        format!("bpipe: {}: {why}", what.join(": "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn statuses_follow_the_table() {
        assert_eq!(Outcome::Done.exit_status(), 0);
        assert_eq!(Outcome::Failed.exit_status(), 1);
        assert_eq!(Outcome::Rejected.exit_status(), 3);
        assert_eq!(Outcome::Detached.exit_status(), 5);
        assert_eq!(Outcome::Integrity.exit_status(), 6);
        assert_eq!(Outcome::Stalled(Side::Input).exit_status(), 4);
        assert_eq!(Outcome::OutputClosed.exit_status(), 141);
        assert_eq!(Outcome::Signalled(libc::SIGINT).exit_status(), 130);
        assert_eq!(Outcome::Signalled(libc::SIGTERM).exit_status(), 143);
        assert_eq!(Outcome::Signalled(libc::SIGHUP).exit_status(), 129);
    }

    #[test]
    fn the_highest_rank_decides_and_a_forced_end_wins_a_tie() {
        use Outcome::*;
        assert_eq!(Outcome::decide([]), Done);
        assert_eq!(Outcome::decide([Rejected, OutputClosed]), OutputClosed);
        assert_eq!(Outcome::decide([Detached, Done]), Detached);
        assert_eq!(Outcome::decide([Detached, Rejected]), Rejected);
        assert_eq!(Outcome::decide([OutputClosed, Failed, Rejected]), Failed);
        assert_eq!(Outcome::decide([Failed, Integrity, Failed]), Integrity);
        assert_eq!(
            Outcome::decide([Integrity, Signalled(libc::SIGINT)]),
            Signalled(libc::SIGINT)
        );
        assert_eq!(
            Outcome::decide([Failed, Signalled(libc::SIGTERM)]),
            Signalled(libc::SIGTERM)
        );
        assert_eq!(
            Outcome::decide([Signalled(libc::SIGTERM), Stalled(Side::Output)]),
            Stalled(Side::Output)
        );
        assert_eq!(
            Outcome::decide([Signalled(libc::SIGTERM), Signalled(libc::SIGINT)]),
            Signalled(libc::SIGINT)
        );
    }

    #[test]
    fn error_lines_name_what_and_why() {
        let full: anyhow::Result<()> =
            Err(io::Error::from_raw_os_error(libc::ENOSPC)).context("write standard output");
        assert_eq!(
            error_line(&full.unwrap_err()),
            "bpipe: write standard output: No space left on device"
        );
        let plain = anyhow::anyhow!("splice ring: refused").context("setup");
        assert_eq!(error_line(&plain), "bpipe: setup: splice ring: refused");
    }

    #[test]
    fn broken_pipe_is_found_in_the_chain() {
        let closed: anyhow::Result<()> =
            Err(io::Error::from(io::ErrorKind::BrokenPipe)).context("write");
        assert!(is_broken_pipe(&closed.unwrap_err()));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
