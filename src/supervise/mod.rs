//! The supervisor: it opens the endpoints, starts the stages, and steers the run from a thread
//! of its own (signals, stats records, the stall watch, the order of shutdown).

use std::fs::File;
use std::io::{self, IsTerminal};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::Context;

use crate::cli::Cli;
use crate::io::endpoint::{self, Endpoint};
use crate::io::sys;
use crate::plan::Plan;
use crate::report::reporter::Reporter;
use crate::slot::ring;
use crate::stage;
use message::Message;
use outcome::Outcome;
use steer::Steering;
use watch::Watch;

pub(crate) mod message;
pub mod outcome;
pub(crate) mod probe;
pub(crate) mod signals;
mod steer;
pub(crate) mod watch;

fn open_stats_file(plan: &Plan) -> anyhow::Result<Option<File>> {
    plan.stats_file
        .as_ref()
        .map(|path| File::create(path).with_context(|| path.display().to_string()))
        .transpose()
}

/// Raises the capacity of pipes on either side to the queue's (at most 1 MiB, the default
/// pipe-max-size, and at least a chunk, but never past pipe-max-size, which the kernel would
/// refuse), so that each read and write can move more per call: the benchmarks show it.
/// Refusals are harmless: the pipe just stays as it was.
fn grow_pipes(endpoints: &[&Endpoint], plan: &Plan) {
    let size = plan
        .limits
        .bytes
        .min(1 << 20)
        .max(plan.chunk_size)
        .min(ring::pipe_max_size());
    for endpoint in endpoints {
        if sys::is_pipe(endpoint.as_fd()) {
            let _ = sys::grow_pipe(endpoint.as_fd(), size);
        }
    }
}

/// Runs the relay to its end and returns how it ended; the summary has been printed.
pub fn run(cli: &Cli) -> anyhow::Result<Outcome> {
    let (tx, rx) = mpsc::channel();
    let signal_tx = tx.clone();
    signals::spawn(move |signal| {
        let _ = signal_tx.send(Message::Signal(signal));
    })
    .context("cannot install signal handlers")?;
    let plan = Plan::from(cli);
    let inputs = endpoint::open_inputs(&plan.inputs)?;
    let outputs = endpoint::open_outputs(&plan.outputs)?;
    let stats_file = open_stats_file(&plan)?;
    grow_pipes(&inputs.iter().chain(&outputs).collect::<Vec<_>>(), &plan);
    let progress = plan.progress && io::stderr().is_terminal();
    let mut reporter = Reporter::new(
        plan.stats_format,
        plan.quiet,
        stats_file,
        plan.expected_size,
    );
    let watch = Watch::new(plan.interval, progress, plan.stall_timeout, Instant::now());
    let stages = stage::start(&plan, inputs, outputs, tx, |note| reporter.note(&note))?;
    let mut steering = Steering::new(plan, stages, reporter, watch);
    steering.steer(&rx);
    Ok(steering.finish())
}
