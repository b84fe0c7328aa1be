//! The supervisor: it checks the endpoints, starts the stages, and steers the run from a thread
//! of its own (signals, stats records, the stall watch, the order of shutdown).

use std::io::{self, IsTerminal};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::Context;

use crate::cli::Cli;
use crate::control::server;
use crate::io::check;
use crate::io::stats_file::StatsFile;
use crate::plan::Plan;
use crate::report::reporter::Reporter;
use crate::stage;
use message::Message;
use metrics::Metrics;
use outcome::Outcome;
use outputs::Outputs;
use steer::Steering;
use watch::Watch;

mod drain;
pub(crate) mod message;
mod metrics;
pub mod outcome;
mod outputs;
pub(crate) mod probe;
pub(crate) mod signals;
mod stall;
mod steer;
pub(crate) mod watch;

/// Runs the relay to its end and returns how it ended; the summary has been printed. Every
/// named file is checked before any is opened; the stages open theirs when they need them, and
/// a stats file that is a FIFO is opened on a thread of its own, so that no open holds up the
/// steering, which answers signals.
pub fn run(cli: &Cli) -> anyhow::Result<Outcome> {
    let (tx, rx) = mpsc::channel();
    let signal_tx = tx.clone();
    signals::spawn(move |signal| {
        let _ = signal_tx.send(Message::Signal(signal));
    })
    .context("cannot install signal handlers")?;
    let plan = Plan::from(cli);
    let checked = check::check(&plan, tx.clone())?;
    let stats_tx = tx.clone();
    let stats_file = checked
        .stats_file
        .map(|file| {
            StatsFile::open(file, move |opened| {
                let _ = stats_tx.send(Message::StatsFileOpened(opened));
            })
        })
        .transpose()?;
    let progress = plan.progress && io::stderr().is_terminal();
    let mut reporter = Reporter::new(
        plan.stats_format,
        plan.quiet,
        stats_file,
        plan.expected_size,
    );
    let watch = Watch::new(plan.interval, progress, Instant::now());
    // Before the stages: a --control path that cannot be used stops bpipe before any byte moves.
    let _control = server::start(&plan.control, tx.clone(), |note| reporter.note(&note))?;
    let metrics = Metrics::new(&plan.metrics, Instant::now())?;
    let names = checked
        .outputs
        .iter()
        .map(|o| o.name().to_string())
        .collect();
    let outputs = Outputs::new(&plan, names);
    let input_names = checked
        .inputs
        .iter()
        .map(|i| i.name().to_string())
        .collect();
    let link = checked.link;
    let stages = stage::start(&plan, checked.inputs, checked.outputs, tx, |note| {
        reporter.note(&note)
    })?;
    let mut steering = Steering::new(
        plan,
        stages,
        (input_names, outputs, link),
        reporter,
        (watch, metrics),
    );
    steering.steer(&rx);
    Ok(steering.finish())
}
