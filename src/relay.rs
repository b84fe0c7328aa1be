//! Wires the stages together and steers a run: signals, stats records, the stall watchdog, and
//! the order of shutdown.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::{Cli, OnFull, RateUnit, StatsFormat};
use crate::endpoints::{self, Endpoint};
use crate::limiter::Limiter;
use crate::outcome::{Outcome, Side, error_line, is_broken_pipe};
use crate::progress::{self, Waiting};
use crate::queue::{Limits, Queue};
use crate::reader::{ReadEnd, Reader};
use crate::signals;
use crate::slot::{Chunk, MemSlot};
use crate::splice::{self, PipeSlot};
use crate::stats::{Counters, Event, Rates, Snapshot, Totals};
use crate::sys;
use crate::units::human_bytes;
use crate::writer::{Pace, Writer};

/// How often a stop request re-sends its wake-up to a reader blocked in read.
const WAKE_PERIOD: Duration = Duration::from_millis(20);
/// How often the live line is redrawn.
const PROGRESS_PERIOD: Duration = Duration::from_millis(200);
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
    line_mode: bool,
    delimiter: u8,
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
            line_mode: cli.line_mode(),
            delimiter: cli.delimiter(),
            policy: cli.policy(),
            path: "copy",
        }
    }
}

/// Where stats records go, and the state of the live line.
struct Reporter {
    format: StatsFormat,
    quiet: bool,
    file: Option<File>,
    progress_drawn: bool,
    expected: Option<u64>,
}

impl Reporter {
    fn emit(&mut self, snapshot: &Snapshot, to_stderr: bool) {
        let mut stderr = io::stderr().lock();
        self.clear_progress(&mut stderr);
        if to_stderr {
            let mut line = Vec::with_capacity(512);
            let rendered = match self.format {
                StatsFormat::Human => snapshot.write_human(&mut line),
                StatsFormat::Json => snapshot.write_json(&mut line),
            };
            // Stats are a courtesy: a closed or full stderr must not stop the data.
            if rendered.is_ok() {
                let _ = stderr.write_all(&line);
            }
        }
        if let Some(file) = &mut self.file {
            let mut line = Vec::with_capacity(512);
            if snapshot.write_json(&mut line).is_ok() {
                let _ = file.write_all(&line);
            }
        }
    }

    fn clear_progress(&mut self, stderr: &mut impl Write) {
        if self.progress_drawn {
            let _ = stderr.write_all(b"\r\x1b[K");
            self.progress_drawn = false;
        }
    }

    fn draw_progress(&mut self, snapshot: &Snapshot, rate_out: f64, waiting: Waiting) {
        let line = progress::render(snapshot, rate_out, self.expected, waiting);
        let _ = io::stderr()
            .lock()
            .write_all(format!("\r\x1b[K{line}").as_bytes());
        self.progress_drawn = true;
    }

    fn error(&mut self, error: &anyhow::Error) {
        self.error_line(&error_line(error));
    }

    fn error_line(&mut self, line: &str) {
        let mut stderr = io::stderr().lock();
        self.clear_progress(&mut stderr);
        let _ = writeln!(stderr, "{line}");
    }
}

/// Watches the counters between messages: interval records, the live line, stalls.
struct Watch {
    interval: Option<Duration>,
    next_interval: Option<Instant>,
    next_progress: Option<Instant>,
    stall_timeout: Option<Duration>,
    last_totals: Totals,
    last_sample: Instant,
    last_progress_totals: Totals,
    last_progress: Instant,
    input_moved: Instant,
    output_moved: Instant,
}

impl Watch {
    fn new(cli: &Cli, progress: bool, now: Instant) -> Self {
        Watch {
            interval: cli.interval,
            next_interval: cli.interval.map(|i| now + i),
            next_progress: progress.then_some(now),
            stall_timeout: cli.stall_timeout,
            last_totals: Totals::default(),
            last_sample: now,
            last_progress_totals: Totals::default(),
            last_progress: now,
            input_moved: now,
            output_moved: now,
        }
    }

    fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let stall_check = self
            .stall_timeout
            .map(|t| now + (t / 4).clamp(Duration::from_millis(10), Duration::from_millis(250)));
        [self.next_interval, self.next_progress, stall_check]
            .into_iter()
            .flatten()
            .min()
    }
}

fn rate(bytes: u64, since: Duration) -> f64 {
    let secs = since.as_secs_f64();
    if secs > 0.0 { bytes as f64 / secs } else { 0.0 }
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
        let totals = self.shared.counters.totals();
        let view = self.shared.queue.view();
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
            line_mode: self.plan.line_mode,
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

    fn on_tick(&mut self, now: Instant) {
        let totals = self.shared.counters.totals();
        if self.watch.next_interval.is_some_and(|t| now >= t) {
            let since = now - self.watch.last_sample;
            let mut snapshot = self.snapshot(Event::Interval, None);
            snapshot.rates = Some(Rates {
                input: rate(totals.bytes_in - self.watch.last_totals.bytes_in, since),
                output: rate(totals.bytes_out - self.watch.last_totals.bytes_out, since),
            });
            let to_stderr = !self.reporter.quiet;
            self.reporter.emit(&snapshot, to_stderr);
            self.watch.last_totals = totals;
            self.watch.last_sample = now;
            let interval = self.watch.interval.unwrap_or(Duration::MAX);
            self.watch.next_interval = self.watch.next_interval.map(|t| (t + interval).max(now));
        }
        if self.watch.next_progress.is_some_and(|t| now >= t) {
            self.draw_progress(now, totals);
        }
        if totals.bytes_in != self.watch.last_progress_totals.bytes_in {
            self.watch.input_moved = now;
        }
        if totals.bytes_out != self.watch.last_progress_totals.bytes_out {
            self.watch.output_moved = now;
        }
        if self.watch.next_progress.is_none() {
            self.watch.last_progress_totals = totals;
        }
        if let Some(limit) = self.watch.stall_timeout {
            self.check_stall(now, limit, totals);
        }
    }

    fn draw_progress(&mut self, now: Instant, totals: Totals) {
        let since = now - self.watch.last_progress;
        let previous = self.watch.last_progress_totals;
        let snapshot = self.snapshot(Event::Interval, None);
        let view = self.shared.queue.view();
        let waiting = if totals.throttled > previous.throttled {
            Waiting::Throttled
        } else if view.reader_waiting {
            Waiting::ReaderBlocked
        } else if view.writer_waiting {
            Waiting::WriterIdle
        } else {
            Waiting::Nobody
        };
        let rate_out = rate(totals.bytes_out - previous.bytes_out, since);
        self.reporter.draw_progress(&snapshot, rate_out, waiting);
        self.watch.last_progress_totals = totals;
        self.watch.last_progress = now;
        self.watch.next_progress = Some(now + PROGRESS_PERIOD);
    }

    /// Output stalls when the writer has data and has written nothing for the timeout; input
    /// stalls when nothing moved at all while the queue sat empty with the writer waiting.
    fn check_stall(&mut self, now: Instant, limit: Duration, totals: Totals) {
        let view = self.shared.queue.view();
        let writer_has_data = view.chunks > 0 || view.taken_bytes > totals.bytes_out;
        let moved = self.watch.input_moved.max(self.watch.output_moved);
        if writer_has_data && now - self.watch.output_moved >= limit {
            self.forced = Some(Outcome::Stalled(Side::Output));
        } else if !writer_has_data && self.reader_end.is_none() && now - moved >= limit {
            self.forced = Some(Outcome::Stalled(Side::Input));
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
            self.reporter.error_line(line);
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
        let to_stderr = !self.reporter.quiet;
        self.reporter.emit(&snapshot, to_stderr);
        outcome
    }

    fn writer_error(&self) -> Option<&anyhow::Error> {
        match &self.writer_end {
            Some(Err(e)) if !is_broken_pipe(e) => Some(e),
            _ => None,
        }
    }

    fn report_stall(&mut self, side: Side) {
        let limit = humantime::format_duration(self.watch.stall_timeout.unwrap_or_default());
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
    let inputs = endpoints::open_inputs(&cli.files)?;
    let output = endpoints::open_output(cli.output.as_deref(), cli.append)?;
    let stats_file = open_stats_file(cli)?;
    let plan = Plan::new(cli);
    grow_pipes(&inputs, &output, &plan.limits, plan.chunk_size);
    let progress = cli.progress && io::stderr().is_terminal();
    let reporter = Reporter {
        format: cli.stats_format,
        quiet: cli.quiet,
        file: stats_file,
        progress_drawn: false,
        expected: cli.size,
    };
    let watch = Watch::new(cli, progress, Instant::now());
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
    if !cli.no_splice && !setup.plan.line_mode {
        match splice::ring(setup.plan.limits.slots, chunk_size) {
            Ok(ring) => {
                setup.plan.path = "splice";
                let refuse = || Err(io::Error::other("every slot of the splice ring is in use"));
                return Ok(relay(
                    setup,
                    ring,
                    move |reader: Reader<'_, PipeSlot>, inputs: &[Endpoint]| {
                        reader.run(inputs, refuse)
                    },
                ));
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
    let outcome = if setup.plan.line_mode {
        let delimiter = setup.plan.delimiter;
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
    };
    Ok(outcome)
}

/// The read-rate limiter and the output pace.
fn paces(cli: &Cli, chunk_size: usize) -> (Option<Limiter>, Option<Pace>) {
    let read = cli.read_rate.map(|rate| {
        let burst = match cli.rate_unit {
            RateUnit::Bytes => burst(cli, rate, chunk_size, RateUnit::Bytes),
            RateUnit::Lines => (chunk_size as u64).max(rate / 10),
        };
        Limiter::new(rate, burst)
    });
    let write = cli.rate_limit.map(|rate| {
        let limiter = Limiter::new(rate, burst(cli, rate, chunk_size, cli.rate_unit));
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

fn spawn<T: Send + 'static>(
    name: &str,
    body: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .unwrap_or_else(|e| {
            // Without its two threads bpipe cannot run at all; there is nothing to relay yet.
            let _ = writeln!(
                io::stderr(),
                "bpipe: cannot start the {name} thread: {}",
                sys::describe(&e)
            );
            std::process::exit(1)
        })
}

/// Starts the reader and the writer on slots of type `S`, steers the run, and reports its end.
fn relay<S: Chunk + 'static>(
    setup: Setup,
    slots: Vec<S>,
    read: impl FnOnce(Reader<'_, S>, &[Endpoint]) -> anyhow::Result<ReadEnd> + Send + 'static,
) -> Outcome {
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
        queue: Queue::new(Limits { ..plan.limits }),
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
            let end = read(reader, &inputs);
            shared.queue.finish_input();
            let _ = tx.send(Message::ReaderDone(end));
        })
    };
    {
        let shared = Arc::clone(&shared);
        spawn("writer", move || {
            let writer = Writer {
                queue: &shared.queue,
                counters: &shared.counters,
                pace,
            };
            let end = writer
                .run(&output)
                .with_context(|| format!("write {}", output.name));
            let _ = tx.send(Message::WriterDone(end));
        });
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
    run.finish()
}
