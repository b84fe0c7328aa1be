//! Wires the stages together and steers a run: signals, stats records, the stall watchdog, and
//! the order of shutdown.

use std::fs::File;
use std::io::{self, IsTerminal};
use std::os::unix::thread::JoinHandleExt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context;

pub mod outcome;
pub(crate) mod signals;
pub(crate) mod watch;

use crate::cli::units::human_bytes;
use crate::cli::{Cli, OnFull, RateUnit};
use crate::io::endpoint::{self, Endpoint};
use crate::io::sys;
use crate::queue::{Limits, Queue, View};
use crate::report::progress::Waiting;
use crate::report::reporter::Reporter;
use crate::report::snapshot::{Counters, Event, Snapshot, Totals};
use crate::slot::memory::{Chunk, MemSlot};
use crate::slot::pipe::{self, PipeSlot};
use crate::stage::limiter::Limiter;
use crate::stage::reader::{ReadEnd, Reader};
use crate::stage::writer::{Pace, Writer};
use crate::supervise::outcome::{Outcome, Side, error_line, is_broken_pipe};
use crate::supervise::watch::{Watch, WriterState};

/// How often a stop request re-sends its wake-up to a reader blocked in read.
const WAKE_PERIOD: Duration = Duration::from_millis(20);
/// How long a forced exit waits for the reader to let go.
const READER_GRACE: Duration = Duration::from_secs(1);

enum Message {
    Signal(libc::c_int),
    ReaderDone(anyhow::Result<ReadEnd>),
    WriterDone(anyhow::Result<()>),
}

/// What both stages share.
struct Shared<S> {
    queue: Queue<S>,
    counters: Counters,
    stop: AtomicBool,
}

/// The run's settings, worked out once from the flags.
struct Plan {
    chunk_size: usize,
    limits: Limits,
    policy: OnFull,
    path: &'static str,
}

impl Plan {
    fn new(cli: &Cli) -> Self {
        let max_buffer = cli
            .max_buffer
            .map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
        let chunk_size = cli.chunk_size.min(max_buffer);
        let chunks = cli.chunks as usize;
        let bytes = chunks.saturating_mul(chunk_size).min(max_buffer);
        Plan {
            chunk_size,
            // A slot in the queue for each chunk, one in each stage's hands, and one more for line
            // mode, which reads ahead into the next slot before it hands a chunk over.
            limits: Limits {
                chunks,
                bytes,
                slots: chunks + 3,
                delimiter: cli.line_mode().then(|| cli.delimiter()),
            },
            policy: cli.policy(),
            path: "copy",
        }
    }
}

struct Run<S> {
    shared: Arc<Shared<S>>,
    plan: Plan,
    start: Instant,
    reporter: Reporter,
    watch: Watch,
    reader_thread: libc::pthread_t,
    reader_end: Option<anyhow::Result<ReadEnd>>,
    writer_end: Option<anyhow::Result<()>>,
    stop_signal: Option<libc::c_int>,
    forced: Option<Outcome>,
}

impl<S: Chunk + 'static> Run<S> {
    fn snapshot(&self, event: Event, exit_status: Option<u8>) -> Snapshot {
        // The counters first: the writer's bytes out can then never exceed what the view says
        // it took.
        let totals = self.shared.counters.totals();
        self.snapshot_of(event, exit_status, totals, self.shared.queue.view())
    }

    fn snapshot_of(
        &self,
        event: Event,
        exit_status: Option<u8>,
        totals: Totals,
        view: View,
    ) -> Snapshot {
        let mut bytes_unsent = totals.bytes_discarded;
        if event == Event::Exit {
            // What the queue and the writer still hold will not be written any more.
            bytes_unsent += view.bytes as u64 + view.taken_bytes.saturating_sub(totals.bytes_out);
        }
        Snapshot {
            event,
            elapsed: self.start.elapsed(),
            totals,
            queue_chunks: view.chunks,
            queue_bytes: view.bytes,
            queue_capacity_chunks: self.shared.queue.capacity_chunks(),
            queue_capacity_bytes: self.shared.queue.capacity_bytes(),
            queue_peak_chunks: view.peak_chunks,
            queue_peak_bytes: view.peak_bytes,
            reader_blocked: view.reader_blocked,
            writer_idle: view.writer_idle,
            bytes_unsent,
            output_closed: self.output_closed(),
            path: self.plan.path,
            line_mode: self.plan.limits.delimiter.is_some(),
            rates: None,
            exit_status,
        }
    }

    fn output_closed(&self) -> bool {
        matches!(&self.writer_end, Some(Err(e)) if is_broken_pipe(e))
    }

    fn stop_reader(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if self.reader_end.is_none() {
            signals::wake(self.reader_thread);
        }
    }

    fn on_message(&mut self, message: Message) {
        match message {
            Message::Signal(libc::SIGUSR1) => {
                // An operator asked for it: shown even under -q.
                let snapshot = self.snapshot(Event::Signal, None);
                self.reporter.emit(&snapshot, true);
            }
            Message::Signal(signal) if self.stop_signal.is_some() => {
                self.forced = Some(Outcome::Signalled(signal))
            }
            Message::Signal(signal) => {
                self.stop_signal = Some(signal);
                self.stop_reader();
            }
            Message::ReaderDone(end) => self.reader_end = Some(end),
            Message::WriterDone(end) => {
                self.writer_end = Some(end);
                self.stop_reader();
            }
        }
    }

    /// One reading of the counters and the queue serves the interval record, the live line and
    /// the stall check, so all three tell the same moment.
    fn on_tick(&mut self, now: Instant) {
        let totals = self.shared.counters.totals();
        let view = self.shared.queue.view();
        if let Some(rates) = self.watch.interval_due(now, &totals) {
            let mut snapshot = self.snapshot_of(Event::Interval, None, totals, view);
            snapshot.rates = Some(rates);
            self.reporter.emit(&snapshot, false);
        }
        if let Some(progress) = self.watch.progress_due(now, &totals) {
            let snapshot = self.snapshot_of(Event::Interval, None, totals, view);
            let waiting = if progress.throttled {
                Waiting::Throttled
            } else if view.reader_waiting {
                Waiting::ReaderBlocked
            } else if view.writer_waiting {
                Waiting::WriterIdle
            } else {
                Waiting::Nobody
            };
            self.reporter
                .draw_progress(&snapshot, progress.rate_out, waiting);
        }
        let writer = WriterState {
            has_data: view.chunks > 0 || view.taken_bytes > totals.bytes_out,
            reader_running: self.reader_end.is_none(),
        };
        if let Some(side) = self.watch.stalled(now, &totals, writer) {
            self.forced = Some(Outcome::Stalled(side));
        }
    }

    /// Ends a run that cannot finish by itself: the reader is released and joined, the writer is
    /// left where it is (it may be stuck in a write that will never return).
    fn force_stop(&mut self, rx: &mpsc::Receiver<Message>) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let discarded = self.shared.queue.close();
        self.shared.counters.discarded(discarded);
        let deadline = Instant::now() + READER_GRACE;
        while self.reader_end.is_none() && Instant::now() < deadline {
            signals::wake(self.reader_thread);
            match rx.recv_timeout(WAKE_PERIOD) {
                Ok(Message::ReaderDone(end)) => self.reader_end = Some(end),
                Ok(Message::WriterDone(end)) => self.writer_end = Some(end),
                Ok(Message::Signal(_)) | Err(_) => {}
            }
        }
    }

    fn steer(&mut self, rx: &mpsc::Receiver<Message>) {
        while self.forced.is_none() && (self.reader_end.is_none() || self.writer_end.is_none()) {
            let now = Instant::now();
            let mut deadline = self.watch.next_deadline(now);
            let waking = self.shared.stop.load(Ordering::Relaxed) && self.reader_end.is_none();
            if waking {
                deadline = Some(deadline.map_or(now + WAKE_PERIOD, |d| d.min(now + WAKE_PERIOD)));
            }
            let received = match deadline {
                Some(deadline) => rx.recv_timeout(deadline.saturating_duration_since(now)),
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(message) => self.on_message(message),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if waking {
                        signals::wake(self.reader_thread);
                    }
                    self.on_tick(Instant::now());
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if self.forced.is_some() {
            self.force_stop(rx);
        }
    }

    /// Reports what went wrong and decides the outcome: a signal or a stall outranks an I/O
    /// error, which outranks a closed output, which outranks a rejection.
    fn finish(mut self) -> Outcome {
        let mut outcome = Outcome::Done;
        if let Some(Ok(ReadEnd::Rejected)) = &self.reader_end {
            let capacity = self.shared.queue.capacity_chunks();
            let why = anyhow::anyhow!("the queue of {capacity} chunks is full (--on-full fail)");
            self.reporter.error(&why.context("input rejected"));
            outcome = Outcome::Rejected;
        }
        if self.output_closed() {
            outcome = Outcome::OutputClosed;
        }
        let reader_error = self.reader_end.as_ref().and_then(|r| r.as_ref().err());
        let errors: Vec<String> = [reader_error, self.writer_error()]
            .into_iter()
            .flatten()
            .map(error_line)
            .collect();
        for line in &errors {
            self.reporter.line(line);
            outcome = Outcome::Failed;
        }
        if let Some(signal) = self.stop_signal {
            outcome = Outcome::Signalled(signal);
        }
        if let Some(forced) = self.forced {
            if let Outcome::Stalled(side) = forced {
                self.report_stall(side);
            }
            outcome = forced;
        }
        let snapshot = self.snapshot(Event::Exit, Some(outcome.exit_status()));
        self.reporter.emit(&snapshot, false);
        outcome
    }

    fn writer_error(&self) -> Option<&anyhow::Error> {
        match &self.writer_end {
            Some(Err(e)) if !is_broken_pipe(e) => Some(e),
            _ => None,
        }
    }

    fn report_stall(&mut self, side: Side) {
        let limit = humantime::format_duration(self.watch.stall_timeout().unwrap_or_default());
        let why = match side {
            Side::Input => anyhow::anyhow!(
                "nothing read for {limit}: the producer sent nothing and the queue is empty"
            )
            .context("input stalled"),
            Side::Output => {
                anyhow::anyhow!("nothing written for {limit}: the consumer is not reading")
                    .context("output stalled")
            }
        };
        self.reporter.error(&why);
    }
}

fn open_stats_file(cli: &Cli) -> anyhow::Result<Option<File>> {
    cli.stats_file
        .as_ref()
        .map(|path| File::create(path).with_context(|| path.display().to_string()))
        .transpose()
}

/// Raises the capacity of pipes on either side to the queue's (at most 1 MiB, the default
/// pipe-max-size, and at least a chunk), so that each read and write can move more per call: the
/// benchmarks show it. Refusals are harmless: the pipe just stays as it was.
fn grow_pipes(inputs: &[Endpoint], output: &Endpoint, limits: &Limits, chunk_size: usize) {
    let size = limits.bytes.min(1 << 20).max(chunk_size);
    for fd in inputs.iter().chain([output]).map(Endpoint::fd) {
        if sys::is_pipe(fd) {
            let _ = sys::grow_pipe(fd, size);
        }
    }
}

fn burst(cli: &Cli, rate: u64, chunk_size: usize, unit: RateUnit) -> u64 {
    cli.burst.unwrap_or(match unit {
        RateUnit::Bytes => (chunk_size as u64).max(rate / 10),
        RateUnit::Lines => (rate / 10).max(1),
    })
}

/// Runs the relay to its end and returns how it ended; the summary has been printed.
pub fn run(cli: &Cli) -> anyhow::Result<Outcome> {
    let (tx, rx) = mpsc::channel();
    let signal_tx = tx.clone();
    signals::spawn(move |signal| {
        let _ = signal_tx.send(Message::Signal(signal));
    })
    .context("cannot install signal handlers")?;
    let inputs = endpoint::open_inputs(&cli.files)?;
    let output = endpoint::open_output(cli.output.as_deref(), cli.append)?;
    let stats_file = open_stats_file(cli)?;
    let plan = Plan::new(cli);
    grow_pipes(&inputs, &output, &plan.limits, plan.chunk_size);
    let progress = cli.progress && io::stderr().is_terminal();
    let reporter = Reporter::new(cli.stats_format, cli.quiet, stats_file, cli.size);
    let watch = Watch::new(cli.interval, progress, cli.stall_timeout, Instant::now());
    let paces = paces(cli, plan.chunk_size);
    let chunk_size = plan.chunk_size;
    let mut setup = Setup {
        plan,
        inputs,
        output,
        reporter,
        watch,
        paces,
        channel: (tx, rx),
    };
    if !cli.no_splice && setup.plan.limits.delimiter.is_none() {
        match pipe::ring(setup.plan.limits.slots, chunk_size) {
            Ok(ring) => {
                setup.plan.path = "splice";
                let refuse = || Err(io::Error::other("every slot of the splice ring is in use"));
                return relay(
                    setup,
                    ring,
                    move |reader: Reader<'_, PipeSlot>, inputs: &[Endpoint]| {
                        reader.run(inputs, refuse)
                    },
                );
            }
            Err(e) if !cli.quiet => {
                let why = anyhow::Error::new(e).context(format!(
                    "cannot make {} pipes of {} for the splice ring; using the copy path",
                    setup.plan.limits.slots,
                    human_bytes(chunk_size as u64)
                ));
                setup.reporter.error(&why);
            }
            Err(_) => {}
        }
    }
    let make = move || Ok(MemSlot::new(chunk_size));
    if let Some(delimiter) = setup.plan.limits.delimiter {
        relay(
            setup,
            Vec::new(),
            move |reader: Reader<'_, MemSlot>, inputs: &[Endpoint]| {
                reader.run_lines(inputs, delimiter, make)
            },
        )
    } else {
        relay(
            setup,
            Vec::new(),
            move |reader: Reader<'_, MemSlot>, inputs: &[Endpoint]| reader.run(inputs, make),
        )
    }
}

/// The read-rate limiter and the output pace.
fn paces(cli: &Cli, chunk_size: usize) -> (Option<Limiter>, Option<Pace>) {
    let read = cli.read_rate.map(|rate| {
        let burst = match cli.rate_unit {
            RateUnit::Bytes => burst(cli, rate, chunk_size, RateUnit::Bytes),
            RateUnit::Lines => (chunk_size as u64).max(rate / 10),
        };
        Limiter::new(rate, burst, crate::clock::system())
    });
    let write = cli.rate_limit.map(|rate| {
        let limiter = Limiter::new(
            rate,
            burst(cli, rate, chunk_size, cli.rate_unit),
            crate::clock::system(),
        );
        match cli.rate_unit {
            RateUnit::Bytes => Pace::Bytes(limiter),
            RateUnit::Lines => Pace::Records(limiter, cli.delimiter()),
        }
    });
    (read, write)
}

/// Everything a run needs before its threads start.
struct Setup {
    plan: Plan,
    inputs: Vec<Endpoint>,
    output: Endpoint,
    reporter: Reporter,
    watch: Watch,
    paces: (Option<Limiter>, Option<Pace>),
    channel: (mpsc::Sender<Message>, mpsc::Receiver<Message>),
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> anyhow::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .with_context(|| format!("cannot start the {name} thread"))
}

/// Starts the reader and the writer on slots of type `S`, steers the run, and reports its end.
fn relay<S: Chunk + 'static>(
    setup: Setup,
    slots: Vec<S>,
    read: impl FnOnce(Reader<'_, S>, &[Endpoint]) -> anyhow::Result<ReadEnd> + Send + 'static,
) -> anyhow::Result<Outcome> {
    let Setup {
        plan,
        inputs,
        output,
        reporter,
        watch,
        paces,
        channel: (tx, rx),
    } = setup;
    let (read_limiter, pace) = paces;
    let shared = Arc::new(Shared {
        queue: Queue::new(plan.limits),
        counters: Counters::default(),
        stop: AtomicBool::new(false),
    });
    shared.queue.stock(slots);
    let reader_thread = {
        let (shared, tx, policy, chunk_size) = (
            Arc::clone(&shared),
            tx.clone(),
            plan.policy,
            plan.chunk_size,
        );
        spawn("reader", move || {
            let reader = Reader {
                queue: &shared.queue,
                counters: &shared.counters,
                policy,
                chunk_size,
                limiter: read_limiter,
                stop: &shared.stop,
            };
            // A bug in a stage must end the run with an error, not leave it waiting forever.
            let end = panic::catch_unwind(AssertUnwindSafe(|| read(reader, &inputs)))
                .unwrap_or_else(|_| {
                    Err(anyhow::anyhow!("the reader stopped on an internal error"))
                });
            shared.queue.finish_input();
            let _ = tx.send(Message::ReaderDone(end));
        })?
    };
    {
        let shared = Arc::clone(&shared);
        spawn("writer", move || {
            let writer = Writer {
                queue: &shared.queue,
                counters: &shared.counters,
                pace,
            };
            let end = match panic::catch_unwind(AssertUnwindSafe(|| writer.run(&output))) {
                Ok(end) => end.with_context(|| format!("write {}", output.name)),
                Err(_) => {
                    shared.counters.discarded(shared.queue.close());
                    Err(anyhow::anyhow!("the writer stopped on an internal error"))
                }
            };
            let _ = tx.send(Message::WriterDone(end));
        })?;
    }
    let mut run = Run {
        shared,
        plan,
        start: Instant::now(),
        reporter,
        watch,
        reader_thread: reader_thread.as_pthread_t(),
        reader_end: None,
        writer_end: None,
        stop_signal: None,
        forced: None,
    };
    run.steer(&rx);
    Ok(run.finish())
}
