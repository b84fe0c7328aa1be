//! The data stages and what paces them, and their start: the one place that picks the slot type
//! and the framing, so that the supervisor only ever sees the queue through a `Probe`.

use std::os::unix::thread::JoinHandleExt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};

use anyhow::Context;

use crate::cli::OnFull;
use crate::clock;
use crate::io::endpoint::Unopened;
use crate::io::sys;
use crate::plan::{DataPath, PaceSpec, Plan};
use crate::queue::Queue;
use crate::report::counters::{Counters, SideTotals};
use crate::slot::memory::MemSlot;
use crate::slot::pipe::PipeSlot;
use crate::slot::ring::{self, Ring};
use crate::slot::{Share, Slot, Spill};
use crate::spool::marks::Gate;
use crate::spool::{self, Intake, Offers};
use crate::supervise::message::{Message, Stage, StageExit, StageId};
use crate::supervise::probe::Probe;
use dial::Dial;
use limiter::Limiter;
use outputs::OutputStage;
use pause::Pauses;
use reader::{Reader, ReaderExit};

pub(crate) mod dial;
mod fanout;
pub(crate) mod limiter;
mod lines;
mod merge;
mod outputs;
pub(crate) mod pause;
pub(crate) mod reader;
pub(crate) mod writer;

/// The running stages, as the supervisor holds them.
pub(crate) struct Stages {
    pub(crate) probe: Arc<dyn Probe>,
    pub(crate) controls: Arc<Controls>,
    pub(crate) counters: Arc<Counters>,
    /// Raised to ask the reader to stop, and a writer still opening its output to give up.
    pub(crate) stop: Arc<AtomicBool>,
    /// Kept unjoined, so that the thread handles stay valid for wake-ups: one reader, or one
    /// per merged input.
    readers: Vec<JoinHandle<()>>,
    /// Each merged input's own queue; none when the inputs are read one after another.
    pub(crate) input_queues: Vec<Arc<dyn Probe>>,
    /// One writer per output, in order.
    writers: Vec<OutputStage>,
    /// The data path started on; a side may still copy where the kernel refuses to splice.
    path: DataPath,
}

impl Stages {
    /// How a side moved its bytes so far, from its totals: `splice` or `copy`.
    pub(crate) fn path(&self, side: &SideTotals) -> &'static str {
        if side.copied {
            DataPath::Copy.name()
        } else {
            self.path.name()
        }
    }

    pub(crate) fn reader_threads(&self) -> impl Iterator<Item = libc::pthread_t> + '_ {
        self.readers.iter().map(|reader| reader.as_pthread_t())
    }

    pub(crate) fn writer_thread(&self, index: usize) -> libc::pthread_t {
        self.writers[index].thread.as_pthread_t()
    }

    /// Whether this writer is still opening its output.
    pub(crate) fn is_opening(&self, index: usize) -> bool {
        self.writers[index].opening.load(Ordering::Relaxed)
    }
}

/// How the reader cuts its input into chunks.
pub(crate) type ReadFn<S> =
    fn(Reader<'_, S>, &[Unopened], Option<u8>) -> anyhow::Result<ReaderExit>;

fn read_chunks<S: Slot>(
    reader: Reader<'_, S>,
    inputs: &[Unopened],
    _: Option<u8>,
) -> anyhow::Result<ReaderExit> {
    reader.run(inputs)
}

fn read_lines(
    reader: Reader<'_, MemSlot>,
    inputs: &[Unopened],
    delimiter: Option<u8>,
) -> anyhow::Result<ReaderExit> {
    reader.run_lines(inputs, delimiter.unwrap_or(b'\n'))
}

/// The slots a run starts with, the most a chunk in them may hold, and the path they make.
struct Stock<S> {
    slots: Vec<S>,
    chunk_size: usize,
    path: DataPath,
}

impl Stock<MemSlot> {
    /// Buffers in memory, made as the queue needs them.
    fn copy(plan: &Plan) -> Self {
        Stock {
            slots: Vec::new(),
            chunk_size: plan.chunk_size,
            path: DataPath::Copy,
        }
    }
}

/// Starts the reader and the writer on the plan's data path. A splice ring the kernel refuses
/// is reported to `note`, and the copy path is taken instead; so is one that would take more
/// than its share of the user's pipe budget, silently (see `slot::ring`).
pub(crate) fn start(
    plan: &Plan,
    inputs: Vec<Unopened>,
    outputs: Vec<Unopened>,
    tx: mpsc::Sender<Message>,
    note: impl FnOnce(anyhow::Error),
) -> anyhow::Result<Stages> {
    match plan.data_path {
        DataPath::Splice => match ring::make(plan.limits.slots, plan.chunk_size) {
            Ok(Ring::Splice { first, chunk_size }) => {
                let stock = Stock {
                    slots: vec![first],
                    chunk_size,
                    path: DataPath::Splice,
                };
                launch::<PipeSlot>(plan, stock, read_chunks, inputs, outputs, tx)
            }
            Ok(Ring::OverBudget) => {
                launch(plan, Stock::copy(plan), read_chunks, inputs, outputs, tx)
            }
            Err(e) => {
                note(anyhow::Error::new(e).context(format!(
                    "cannot make a ring of {} pipes for splice; using the copy path",
                    plan.limits.slots
                )));
                launch(plan, Stock::copy(plan), read_chunks, inputs, outputs, tx)
            }
        },
        DataPath::Copy => launch(plan, Stock::copy(plan), read_chunks, inputs, outputs, tx),
        DataPath::Lines { .. } => launch(plan, Stock::copy(plan), read_lines, inputs, outputs, tx),
    }
}

/// A limiter on `dial`, which starts at the plan's rate and may be turned while the run goes
/// on; the burst is `--burst`'s, else the default for whatever the rate is.
fn limiter(dial: &Arc<Dial>, plan: &Plan) -> Limiter {
    Limiter::dialed(Arc::clone(dial), plan.burst, clock::system())
}

/// What the control socket can turn while the run goes on: the reading side's rate, each
/// output's, and the pauses; and the gate that holds the writing side at the start.
pub(crate) struct Controls {
    pub(crate) input: Arc<Dial>,
    pub(crate) outputs: Vec<Arc<Dial>>,
    pub(crate) pauses: Pauses,
    pub(crate) start: Option<Arc<Gate>>,
}

impl Controls {
    fn new(plan: &Plan) -> Controls {
        let rate = |pace: Option<&PaceSpec>| Arc::new(Dial::new(pace.map(|p| p.rate)));
        Controls {
            input: rate(plan.read_pace.as_ref()),
            outputs: plan
                .lanes
                .iter()
                .map(|lane| rate(lane.pace.as_ref()))
                .collect(),
            pauses: Pauses::default(),
            start: spool::gate(plan),
        }
    }
}

pub(crate) fn spawn(
    name: &str,
    body: impl FnOnce() + Send + 'static,
) -> anyhow::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .with_context(|| format!("cannot start the {name} thread"))
}

fn done(tx: &mpsc::Sender<Message>, id: StageId, end: anyhow::Result<StageExit>) {
    let _ = tx.send(Message::StageDone { id, end });
}

/// What both sides share.
struct Shared<S> {
    queue: Arc<Queue<S>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    controls: Arc<Controls>,
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared {
            queue: Arc::clone(&self.queue),
            counters: Arc::clone(&self.counters),
            stop: Arc::clone(&self.stop),
            controls: Arc::clone(&self.controls),
        }
    }
}

/// Reads; a bug in a stage must end the run with an error, not leave it waiting forever.
pub(crate) fn read_guarded<S: Slot>(
    read: ReadFn<S>,
    reader: Reader<'_, S>,
    inputs: &[Unopened],
    delimiter: Option<u8>,
) -> anyhow::Result<ReaderExit> {
    panic::catch_unwind(AssertUnwindSafe(|| read(reader, inputs, delimiter)))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the reader stopped on an internal error")))
}

fn spawn_reader<S: Slot + 'static>(
    shared: Shared<S>,
    plan: &Plan,
    (chunk_size, intake): (usize, Option<Arc<dyn Offers<S>>>),
    read: ReadFn<S>,
    inputs: Vec<Unopened>,
    tx: mpsc::Sender<Message>,
) -> anyhow::Result<JoinHandle<()>> {
    let delimiter = plan.data_path.delimiter();
    let limiter = Some(limiter(&shared.controls.input, plan));
    spawn("reader", move || {
        let reader = Reader {
            queue: &shared.queue,
            pool: &shared.queue,
            intake: intake.as_deref(),
            counters: &shared.counters.inputs[0],
            chunk_size,
            limiter,
            stop: &shared.stop,
            pauses: &shared.controls.pauses,
        };
        let end = read_guarded(read, reader, &inputs, delimiter);
        match &intake {
            Some(intake) => intake.finish_input(),
            None => shared.queue.finish_input(),
        }
        if matches!(end, Ok(ReaderExit::Rejected)) {
            drop(inputs);
            // Refused input is refused at once: the producer must not block as under `block`.
            let _ = sys::release_stdin();
        }
        let id = StageId {
            stage: Stage::Reader,
            index: 0,
        };
        done(&tx, id, end.map(StageExit::Read));
    })
}

/// One reader per input under `--merge`; one for all of them otherwise.
fn reader_count(plan: &Plan, inputs: &[Unopened]) -> usize {
    match plan.merge {
        true => inputs.len().max(1),
        false => 1,
    }
}

/// The reading side as the run holds it: the reader threads (one, or one per merged input),
/// the merged inputs' own queues, and the probe that sees the whole data plane.
struct InputSide {
    readers: Vec<JoinHandle<()>>,
    queues: Vec<Arc<dyn Probe>>,
    probe: Arc<dyn Probe>,
}

/// Starts the reader, or the merged readers and their merger, in front of the queue that
/// `outputs` (the writers' probe) drains.
fn start_inputs<S: Share + Spill>(
    shared: &Shared<S>,
    plan: &Plan,
    (chunk_size, read): (usize, ReadFn<S>),
    inputs: Vec<Unopened>,
    (outputs, intake): (Arc<dyn Probe>, Option<Arc<Intake<S>>>),
    tx: mpsc::Sender<Message>,
) -> anyhow::Result<InputSide> {
    if reader_count(plan, &inputs) == 1 {
        let offers = intake.clone().map(|i| i as Arc<dyn Offers<S>>);
        let reader = spawn_reader(shared.clone(), plan, (chunk_size, offers), read, inputs, tx)?;
        return Ok(InputSide {
            readers: vec![reader],
            queues: Vec::new(),
            probe: spool::probe::with_intake(outputs, intake),
        });
    }
    let job = merge::MergeJob {
        plan,
        queue: &shared.queue,
        counters: &shared.counters,
        stop: &shared.stop,
        controls: &shared.controls,
        chunk_size,
        read,
    };
    let (readers, queues) = merge::start(job, inputs, tx)?;
    let probes = queues
        .iter()
        .map(|q| Arc::clone(q) as Arc<dyn Probe>)
        .collect();
    let merged = merge::MergeProbe {
        inner: outputs,
        inputs: queues,
    };
    Ok(InputSide {
        readers,
        queues: probes,
        probe: Arc::new(merged),
    })
}

/// Starts both sides on slots of type `S`, the queue stocked with `stock`.
fn launch<S: Share + Spill>(
    plan: &Plan,
    stock: Stock<S>,
    read: ReadFn<S>,
    inputs: Vec<Unopened>,
    outputs: Vec<Unopened>,
    tx: mpsc::Sender<Message>,
) -> anyhow::Result<Stages> {
    // Merged inputs apply the policy each to its own queue; the merger then waits for room.
    let policy = match reader_count(plan, &inputs) {
        1 => plan.policy,
        _ => OnFull::Block,
    };
    let shared = Shared {
        queue: Arc::new(Queue::new(plan.limits, policy, clock::system())),
        counters: Arc::new(Counters::new(reader_count(plan, &inputs), outputs.len())),
        stop: Arc::new(AtomicBool::new(false)),
        controls: Arc::new(Controls::new(plan)),
    };
    shared.queue.stock(stock.slots);
    let gate = shared.controls.start.clone();
    let intake = Intake::start(plan, &shared.queue, gate, stock.chunk_size, &tx)?;
    // The writers first: a reader that cannot be started leaves nothing read, while a reader
    // already reading when a writer cannot start would leave what it read unaccounted for.
    let (probe, writers) = outputs::start(
        plan,
        &shared.queue,
        &shared.counters,
        &shared.stop,
        &shared.controls,
        outputs,
        &tx,
    )?;
    let reading = (stock.chunk_size, read);
    let side = start_inputs(&shared, plan, reading, inputs, (probe, intake), tx)?;
    Ok(Stages {
        probe: side.probe,
        controls: shared.controls,
        counters: shared.counters,
        stop: shared.stop,
        readers: side.readers,
        input_queues: side.queues,
        writers,
        path: stock.path,
    })
}
