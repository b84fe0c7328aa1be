//! What the supervisor knows of each output: how its writer ended, and whether it was detached.
//! With several outputs, one that fails under `slow=detach` (or whose lane stays full too long)
//! is let go while the others carry on; any other failure ends the run as with one output.

use crate::cli::SlowOutput;
use crate::plan::Plan;
use crate::stage::writer::Sent;
use crate::supervise::message::StageExit;
use crate::supervise::outcome::{Outcome, is_broken_pipe, reason};

/// What the supervisor must do about a writer that ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriterEnd {
    /// It wrote everything, or stopped because the relay is stopping.
    Done,
    /// It was let go: the line says so; the others carry on.
    Detached(String),
    /// It failed: the run ends.
    Failed,
}

/// A write to a socket failed: its error says how much was sent (`stage/writer.rs`).
fn sent_on_a_socket(error: &anyhow::Error) -> bool {
    error.downcast_ref::<Sent>().is_some()
}

pub(crate) struct Outputs {
    names: Vec<String>,
    slow: Vec<SlowOutput>,
    ends: Vec<Option<anyhow::Result<StageExit>>>,
    detached: Vec<bool>,
}

impl Outputs {
    pub(crate) fn new(plan: &Plan, names: Vec<String>) -> Outputs {
        let count = names.len();
        Outputs {
            names,
            slow: plan.lanes.iter().map(|lane| lane.slow).collect(),
            ends: (0..count).map(|_| None).collect(),
            detached: vec![false; count],
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    pub(crate) fn name(&self, index: usize) -> &str {
        &self.names[index]
    }

    fn several(&self) -> bool {
        self.len() > 1
    }

    pub(crate) fn all_ended(&self) -> bool {
        self.ends.iter().all(Option::is_some)
    }

    pub(crate) fn has_ended(&self, index: usize) -> bool {
        self.ends[index].is_some()
    }

    /// The outputs whose lanes are let go when they stay full, and not yet.
    pub(crate) fn detachable(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len())
            .filter(|&i| self.several() && self.slow[i] == SlowOutput::Detach && !self.detached[i])
    }

    pub(crate) fn is_detached(&self, index: usize) -> bool {
        self.detached[index]
    }

    /// Outputs let go whose writers have not yet stopped.
    pub(crate) fn detached_running(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(|&i| self.detached[i] && self.ends[i].is_none())
    }

    /// Lets an output go (its lane stayed full, its write failed, or on request); returns the
    /// line that says so.
    pub(crate) fn detach(&mut self, index: usize, why: &str) -> String {
        self.detached[index] = true;
        format!("bpipe: {}: detached: {why}", self.names[index])
    }

    pub(crate) fn ended(&mut self, index: usize, end: anyhow::Result<StageExit>) -> WriterEnd {
        let verdict = match &end {
            Ok(_) => WriterEnd::Done,
            Err(_) if self.detached[index] => WriterEnd::Done,
            Err(e) if self.detachable().any(|i| i == index) => {
                WriterEnd::Detached(self.detach(index, &reason(e)))
            }
            Err(_) => WriterEnd::Failed,
        };
        self.ends[index] = Some(end);
        verdict
    }

    /// `open`, `done`, `detached` or `failed`, as the stats say.
    pub(crate) fn state(&self, index: usize) -> &'static str {
        match (&self.ends[index], self.detached[index]) {
            (_, true) => "detached",
            (None, false) => "open",
            (Some(Ok(_)), false) => "done",
            (Some(Err(_)), false) => "failed",
        }
    }

    /// Failures that end the run, but for a closed output: that one has its own status.
    pub(crate) fn errors(&self) -> impl Iterator<Item = &anyhow::Error> {
        self.failures().filter(|e| !is_broken_pipe(e))
    }

    /// Closed outputs, with several (the status alone cannot tell which one it was), and a
    /// connection the peer closed (the line says how much was sent).
    pub(crate) fn closed(&self) -> impl Iterator<Item = &anyhow::Error> {
        let several = self.several();
        self.failures()
            .filter(move |e| is_broken_pipe(e) && (several || sent_on_a_socket(e)))
    }

    fn failures(&self) -> impl Iterator<Item = &anyhow::Error> {
        self.ends
            .iter()
            .zip(&self.detached)
            .filter_map(|(end, &detached)| match end {
                Some(Err(e)) if !detached => Some(e),
                _ => None,
            })
    }

    pub(crate) fn output_closed(&self) -> bool {
        self.ends
            .iter()
            .zip(&self.detached)
            .any(|(end, &detached)| !detached && matches!(end, Some(Err(e)) if is_broken_pipe(e)))
    }

    /// Detached outputs make the run's status 5 while another got everything; with none left,
    /// the run failed.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        let detached = self.detached.iter().filter(|&&d| d).count();
        match detached {
            0 => None,
            n if n == self.len() => Some(Outcome::Failed),
            _ => Some(Outcome::Detached),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::io;

    fn outputs(args: &[&str]) -> Outputs {
        let cli =
            crate::cli::Cli::try_parse_from(std::iter::once("bpipe").chain(args.iter().copied()));
        let plan = Plan::from(&cli.unwrap());
        let names = (0..plan.outputs.len()).map(|i| format!("out{i}")).collect();
        Outputs::new(&plan, names)
    }

    fn broken_pipe() -> anyhow::Result<StageExit> {
        Err(anyhow::Error::new(io::Error::from_raw_os_error(libc::EPIPE)).context("write out1"))
    }

    #[test]
    fn a_failed_detach_output_is_let_go_and_the_run_ends_with_five() {
        let mut o = outputs(&["-o", "a", "-o", "b,slow=detach"]);
        assert_eq!(o.ended(0, Ok(StageExit::Wrote)), WriterEnd::Done);
        let end = o.ended(1, broken_pipe());
        assert!(
            matches!(&end, WriterEnd::Detached(line) if line.starts_with("bpipe: out1: detached: ")),
            "{end:?}"
        );
        assert_eq!((o.state(0), o.state(1)), ("done", "detached"));
        assert_eq!(o.errors().count(), 0);
        assert!(!o.output_closed());
        assert_eq!(o.outcome(), Some(Outcome::Detached));
    }

    #[test]
    fn a_failed_block_output_ends_the_run_and_is_named() {
        let mut o = outputs(&["-o", "a", "-o", "b"]);
        assert_eq!(o.ended(1, broken_pipe()), WriterEnd::Failed);
        assert!(o.output_closed());
        assert_eq!((o.errors().count(), o.closed().count()), (0, 1));
        assert_eq!(o.state(1), "failed");
        assert_eq!(o.outcome(), None);
    }

    #[test]
    fn one_output_is_never_detached_and_a_closed_pipe_has_no_line() {
        let mut o = outputs(&["--slow-output", "detach"]);
        assert_eq!(o.detachable().count(), 0);
        assert_eq!(o.ended(0, broken_pipe()), WriterEnd::Failed);
        assert_eq!((o.errors().count(), o.closed().count()), (0, 0));
        assert!(o.output_closed());
    }

    #[test]
    fn every_output_detached_is_a_failure() {
        let mut o = outputs(&["-o", "a", "-o", "b", "--slow-output", "detach"]);
        o.detach(0, "slow");
        o.detach(1, "slow");
        assert_eq!(o.outcome(), Some(Outcome::Failed));
        assert_eq!(o.detached_running().count(), 2);
    }
}
