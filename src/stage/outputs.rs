//! The output side: one writer on the queue, or, with several outputs, a distributor and one
//! lane and writer per output (`fanout`). Each writer opens its own output, so that a FIFO's
//! wait for a reader holds up nothing else.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use anyhow::Context;

use crate::cli::RateUnit;
use crate::io::endpoint::{Endpoint, Unopened};
use crate::plan::Plan;
use crate::queue::Queue;
use crate::report::counters::Counters;
use crate::slot::{Outgoing, Share};
use crate::stage::dial::Dial;
use crate::stage::fanout::{self, FanProbe};
use crate::stage::writer::{Pace, Writer};
use crate::stage::{Controls, done, limiter, spawn};
use crate::supervise::message::{Message, Stage, StageExit, StageId};
use crate::supervise::probe::Probe;

/// A writer thread, and whether it is still opening its output: a FIFO's open waits for a
/// reader, and only a wake-up lets a stop reach it there.
pub(crate) struct OutputStage {
    pub(crate) thread: JoinHandle<()>,
    pub(crate) opening: Arc<AtomicBool>,
}

/// Every writer has a pace, limited or not: the control socket may set a rate at any time.
fn pace(dial: &Arc<Dial>, plan: &Plan) -> Option<Pace> {
    let limiter = limiter(dial, plan);
    Some(match plan.rate_unit {
        RateUnit::Bytes => Pace::Bytes(limiter),
        RateUnit::Lines => Pace::Records(limiter, plan.data_path.delimiter().unwrap_or(b'\n')),
    })
}

fn write<O: Outgoing>(writer: Writer<'_, O>, output: &Endpoint) -> anyhow::Result<StageExit> {
    let queue = writer.queue;
    match panic::catch_unwind(AssertUnwindSafe(|| writer.run(output))) {
        Ok(end) => end
            .map(|()| StageExit::Wrote)
            .with_context(|| format!("write {}", output.name())),
        Err(_) => {
            queue.close();
            Err(anyhow::anyhow!("the writer stopped on an internal error"))
        }
    }
}

/// One writer: the queue it drains, the counters it bumps, and the output it opens.
struct WriterJob<O> {
    queue: Arc<Queue<O>>,
    counters: Arc<Counters>,
    index: usize,
    stop: Arc<AtomicBool>,
    pace: Option<Pace>,
    controls: Arc<Controls>,
}

/// Without an output (a stop came first, or the open failed), the writer's queue closes and its
/// bytes are unsent.
fn spawn_writer<O: Outgoing + 'static>(
    job: WriterJob<O>,
    output: Unopened,
    tx: mpsc::Sender<Message>,
) -> anyhow::Result<OutputStage> {
    let opening = Arc::new(AtomicBool::new(true));
    let opened_flag = Arc::clone(&opening);
    let thread = spawn("writer", move || {
        let opened = output.open(&job.stop);
        opened_flag.store(false, Ordering::Relaxed);
        let end = match opened {
            Ok(Some(output)) => {
                let writer = Writer {
                    queue: &job.queue,
                    counters: &job.counters.outputs[job.index],
                    pace: job.pace,
                    pauses: &job.controls.pauses,
                };
                write(writer, &output)
            }
            Ok(None) => {
                job.queue.close();
                Ok(StageExit::Wrote)
            }
            Err(e) => {
                job.queue.close();
                Err(e)
            }
        };
        let id = StageId {
            stage: Stage::Writer,
            index: job.index,
        };
        done(&tx, id, end);
    })?;
    Ok(OutputStage { thread, opening })
}

/// Starts the writers (and the distributor, with several outputs) and returns the probe the
/// supervisor watches them through.
pub(crate) fn start<S: Share>(
    plan: &Plan,
    queue: &Arc<Queue<S>>,
    counters: &Arc<Counters>,
    stop: &Arc<AtomicBool>,
    controls: &Arc<Controls>,
    mut outputs: Vec<Unopened>,
    tx: &mpsc::Sender<Message>,
) -> anyhow::Result<(Arc<dyn Probe>, Vec<OutputStage>)> {
    let job = |index: usize| WriterJob {
        queue: Arc::clone(queue),
        counters: Arc::clone(counters),
        index,
        stop: Arc::clone(stop),
        pace: pace(&controls.outputs[index], plan),
        controls: Arc::clone(controls),
    };
    if outputs.len() == 1 {
        let output = outputs.pop().context("no output to write to")?;
        let writer = spawn_writer(job(0), output, tx.clone())?;
        return Ok((Arc::clone(queue) as Arc<dyn Probe>, vec![writer]));
    }
    let lanes: Vec<_> = plan
        .lanes
        .iter()
        .map(|lane| fanout::lane::<S>(plan.limits, lane.slow))
        .collect();
    let mut writers = Vec::with_capacity(outputs.len());
    for (index, (output, lane)) in outputs.into_iter().zip(&lanes).enumerate() {
        let WriterJob {
            counters,
            stop,
            pace,
            controls,
            ..
        } = job(index);
        let lane_job = WriterJob {
            queue: Arc::clone(lane),
            counters,
            index,
            stop,
            pace,
            controls,
        };
        writers.push(spawn_writer(lane_job, output, tx.clone())?);
    }
    let (main, fanned) = (Arc::clone(queue), lanes.clone());
    spawn("distributor", move || fanout::run_distributor(main, fanned))?;
    let probe = FanProbe {
        queue: Arc::clone(queue),
        lanes,
    };
    Ok((Arc::new(probe), writers))
}
