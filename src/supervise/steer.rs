//! The steering loop: it answers signals, writes interval records and the live line, watches for
//! stalls, and decides how the run ended. It never blocks in read or write, and it sees the data
//! plane only through its probe and the counters.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::plan::Plan;
use crate::queue::View;
use crate::report::accounts::Accounts;
use crate::report::counters::Totals;
use crate::report::progress::Waiting;
use crate::report::reporter::{Audience, Reporter};
use crate::report::snapshot::{Event, QueueStats, RunStats, Snapshot, Traffic};
use crate::stage::Stages;
use crate::stage::reader::ReaderExit;
use crate::supervise::message::{Message, Stage, StageExit};
use crate::supervise::outcome::{Outcome, Side, error_line, is_broken_pipe};
use crate::supervise::signals;
use crate::supervise::watch::{Watch, WriterState};

/// How often a stop request re-sends its wake-up to a reader blocked in read.
const WAKE_PERIOD: Duration = Duration::from_millis(20);
/// How long a forced exit waits for the reader to let go.
const READER_GRACE: Duration = Duration::from_secs(1);

pub(crate) struct Steering {
    plan: Plan,
    stages: Stages,
    start: Instant,
    reporter: Reporter,
    watch: Watch,
    reader_end: Option<anyhow::Result<StageExit>>,
    writer_end: Option<anyhow::Result<StageExit>>,
    stop_signal: Option<libc::c_int>,
    forced: Option<Outcome>,
}

impl Steering {
    pub(crate) fn new(plan: Plan, stages: Stages, reporter: Reporter, watch: Watch) -> Self {
        Steering {
            plan,
            stages,
            start: Instant::now(),
            reporter,
            watch,
            reader_end: None,
            writer_end: None,
            stop_signal: None,
            forced: None,
        }
    }

    fn snapshot(&self, event: Event, exit_status: Option<u8>) -> Snapshot {
        let totals = self.stages.counters.totals();
        self.snapshot_of(event, exit_status, &totals, &self.stages.probe.view())
    }

    fn snapshot_of(
        &self,
        event: Event,
        exit_status: Option<u8>,
        totals: &Totals,
        view: &View,
    ) -> Snapshot {
        let probe = &self.stages.probe;
        Snapshot {
            event,
            traffic: Traffic {
                accounts: Accounts::of(totals, view, event == Event::Exit),
                chunks_in: totals.input.chunks,
                chunks_out: totals.output.chunks,
                chunks_dropped: view.drops.chunks,
                records_dropped: view.drops.records,
            },
            queue: QueueStats {
                chunks: view.chunks,
                bytes: view.bytes,
                capacity_chunks: probe.capacity_chunks(),
                capacity_bytes: probe.capacity_bytes(),
                peak_chunks: view.peak_chunks,
                peak_bytes: view.peak_bytes,
            },
            run: RunStats {
                elapsed: self.start.elapsed(),
                reader_blocked: view.reader_blocked,
                writer_idle: view.writer_idle,
                throttled_read: totals.input.throttled,
                throttled_write: totals.output.throttled,
                output_closed: self.output_closed(),
                path_in: self.stages.path(&totals.input),
                path_out: self.stages.path(&totals.output),
                line_mode: self.plan.data_path.delimiter().is_some(),
            },
            rates: None,
            exit_status,
        }
    }

    fn output_closed(&self) -> bool {
        matches!(&self.writer_end, Some(Err(e)) if is_broken_pipe(e))
    }

    fn stop_reader(&self) {
        self.stages.stop.store(true, Ordering::Relaxed);
        if self.reader_end.is_none() {
            signals::wake(self.stages.reader_thread());
        }
    }

    fn on_stage_done(&mut self, stage: Stage, end: anyhow::Result<StageExit>) {
        match stage {
            Stage::Reader => self.reader_end = Some(end),
            Stage::Writer => {
                self.writer_end = Some(end);
                self.stop_reader();
            }
        }
    }

    fn on_message(&mut self, message: Message) {
        match message {
            Message::Signal(libc::SIGUSR1) => {
                let snapshot = self.snapshot(Event::Signal, None);
                self.reporter.emit(&snapshot, Audience::Operator);
            }
            Message::Signal(signal) if self.stop_signal.is_some() => {
                self.forced = Some(Outcome::Signalled(signal))
            }
            Message::Signal(signal) => {
                self.stop_signal = Some(signal);
                self.stop_reader();
            }
            Message::StageDone { id, end } => self.on_stage_done(id.stage, end),
        }
    }

    fn waiting(view: &View, throttled: bool) -> Waiting {
        if throttled {
            Waiting::Throttled
        } else if view.reader_waiting {
            Waiting::ReaderBlocked
        } else if view.writer_waiting {
            Waiting::WriterIdle
        } else {
            Waiting::Nobody
        }
    }

    /// One reading of the counters and the queue serves the interval record, the live line and
    /// the stall check, so all three tell the same moment.
    fn on_tick(&mut self, now: Instant) {
        let totals = self.stages.counters.totals();
        let view = self.stages.probe.view();
        if let Some(rates) = self.watch.interval_due(now, &totals) {
            let mut snapshot = self.snapshot_of(Event::Interval, None, &totals, &view);
            snapshot.rates = Some(rates);
            self.reporter.emit(&snapshot, Audience::Routine);
        }
        if let Some(progress) = self.watch.progress_due(now, &totals) {
            let snapshot = self.snapshot_of(Event::Interval, None, &totals, &view);
            let waiting = Self::waiting(&view, progress.throttled);
            self.reporter
                .draw_progress(&snapshot, progress.rate_out, waiting);
        }
        let writer = WriterState {
            has_data: view.chunks > 0 || view.taken_bytes > totals.output.bytes,
            reader_running: self.reader_end.is_none(),
        };
        if let Some(side) = self.watch.stalled(now, &totals, writer) {
            self.forced = Some(Outcome::Stalled(side));
        }
    }

    /// Ends a run that cannot finish by itself: the reader is released and joined, the writer is
    /// left where it is (it may be stuck in a write that will never return).
    fn force_stop(&mut self, rx: &mpsc::Receiver<Message>) {
        self.stages.stop.store(true, Ordering::Relaxed);
        self.stages.probe.close();
        let deadline = Instant::now() + READER_GRACE;
        while self.reader_end.is_none() && Instant::now() < deadline {
            signals::wake(self.stages.reader_thread());
            if let Ok(Message::StageDone { id, end }) = rx.recv_timeout(WAKE_PERIOD) {
                self.on_stage_done(id.stage, end);
            }
        }
    }

    fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let deadline = self.watch.next_deadline(now);
        let waking = self.stages.stop.load(Ordering::Relaxed) && self.reader_end.is_none();
        if waking {
            return Some(deadline.map_or(now + WAKE_PERIOD, |d| d.min(now + WAKE_PERIOD)));
        }
        deadline
    }

    pub(crate) fn steer(&mut self, rx: &mpsc::Receiver<Message>) {
        while self.forced.is_none() && (self.reader_end.is_none() || self.writer_end.is_none()) {
            let now = Instant::now();
            let received = match self.next_deadline(now) {
                Some(deadline) => rx.recv_timeout(deadline.saturating_duration_since(now)),
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(message) => self.on_message(message),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.stages.stop.load(Ordering::Relaxed) && self.reader_end.is_none() {
                        signals::wake(self.stages.reader_thread());
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

    /// Reports what went wrong, decides the outcome and prints the summary.
    pub(crate) fn finish(mut self) -> Outcome {
        let mut outcomes = Vec::new();
        if let Some(Ok(StageExit::Read(ReaderExit::Rejected))) = &self.reader_end {
            let capacity = self.stages.probe.capacity_chunks();
            let why = anyhow::anyhow!("the queue of {capacity} chunks is full (--on-full fail)");
            self.reporter.error(&why.context("input rejected"));
            outcomes.push(Outcome::Rejected);
        }
        if self.output_closed() {
            outcomes.push(Outcome::OutputClosed);
        }
        for line in self.error_lines() {
            self.reporter.line(&line);
            outcomes.push(Outcome::Failed);
        }
        outcomes.extend(self.stop_signal.map(Outcome::Signalled));
        if let Some(forced) = self.forced {
            if let Outcome::Stalled(side) = forced {
                self.report_stall(side);
            }
            outcomes.push(forced);
        }
        let outcome = Outcome::decide(outcomes);
        let snapshot = self.snapshot(Event::Exit, Some(outcome.exit_status()));
        self.reporter.emit(&snapshot, Audience::Routine);
        outcome
    }

    /// The reader's error and the writer's, but a closed output: that one has its own status.
    fn error_lines(&self) -> Vec<String> {
        let reader_error = self.reader_end.as_ref().and_then(|r| r.as_ref().err());
        let writer_error = match &self.writer_end {
            Some(Err(e)) if !is_broken_pipe(e) => Some(e),
            _ => None,
        };
        [reader_error, writer_error]
            .into_iter()
            .flatten()
            .map(error_line)
            .collect()
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
