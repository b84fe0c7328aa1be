//! The steering loop: it answers signals, writes interval records and the live line, watches for
//! stalls, and decides how the run ended. It never blocks in read or write, and it sees the data
//! plane only through its probe and the counters.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::net::{Link, framed};
use crate::plan::Plan;
use crate::queue::View;
use crate::report::counters::Totals;
use crate::report::progress::Waiting;
use crate::report::reporter::{Audience, Reporter};
use crate::report::snapshot::Event;
use crate::stage::Stages;
use crate::stage::reader::ReaderExit;
use crate::supervise::drain::{self, Drain};
use crate::supervise::message::{Message, Stage, StageExit, StageId};
use crate::supervise::metrics::Metrics;
use crate::supervise::outcome::{Outcome, Side, error_line};
use crate::supervise::outputs::Outputs;
use crate::supervise::signals;
use crate::supervise::stall::{StallWatch, WriterState};
use crate::supervise::watch::Watch;

/// How often a stop request re-sends its wake-up to a stage blocked in read or open.
const WAKE_PERIOD: Duration = Duration::from_millis(20);
/// How long a forced exit waits for the reader to let go.
const READER_GRACE: Duration = Duration::from_secs(1);
/// How often full lanes are looked at for `--detach-after`: a tenth of it, within these.
const DETACH_CHECK_MIN: Duration = Duration::from_millis(10);
const DETACH_CHECK_MAX: Duration = Duration::from_millis(100);

mod control;
mod lanes;
mod record;
mod spool;
mod stopping;

pub(crate) struct Steering {
    plan: Plan,
    stages: Stages,
    start: Instant,
    reporter: Reporter,
    watch: Watch,
    metrics: Option<Metrics>,
    stall: Option<StallWatch>,
    reader_end: Option<anyhow::Result<StageExit>>,
    /// The inputs' names, for their parts of the records.
    input_names: Vec<String>,
    outputs: Outputs,
    stop_signal: Option<libc::c_int>,
    forced: Option<Outcome>,
    /// The input was refused under `fail`: what was accepted drains while it moves.
    rejected: Option<Drain>,
    /// After a stop signal, when the drain ends whether or not it is done.
    drain_deadline: Option<Instant>,
    /// The throttled time last seen, and when it last grew.
    throttle_seen: Cell<(Duration, Instant)>,
    /// When the control socket last asked for the stats, and the totals then: the rates of
    /// the next answer are since then.
    last_query: Option<(Instant, Totals)>,
    /// What was spooled could not be read back.
    spool_failed: bool,
    /// The network endpoints' settings and stats.
    link: Arc<Link>,
}

impl Steering {
    pub(crate) fn new(
        plan: Plan,
        stages: Stages,
        (input_names, outputs, link): (Vec<String>, Outputs, Arc<Link>),
        reporter: Reporter,
        (watch, metrics): (Watch, Option<Metrics>),
    ) -> Self {
        let start = Instant::now();
        Steering {
            input_names,
            outputs,
            stall: plan.stall_timeout.map(|t| StallWatch::new(t, start)),
            plan,
            stages,
            start,
            reporter,
            watch,
            metrics,
            reader_end: None,
            stop_signal: None,
            forced: None,
            rejected: None,
            drain_deadline: None,
            throttle_seen: Cell::new((Duration::ZERO, start)),
            last_query: None,
            spool_failed: false,
            link,
        }
    }

    /// Records go to a stats file that is a FIFO once a reader opens it: the run waits for that
    /// reader before it ends, unless a signal stops it.
    fn awaiting_stats_reader(&self) -> bool {
        self.stop_signal.is_none() && self.reporter.stats_file_waiting()
    }

    fn on_stage_done(&mut self, id: StageId, end: anyhow::Result<StageExit>) {
        if let (Stage::Reader, Ok(StageExit::Read(ReaderExit::Rejected))) = (id.stage, &end) {
            self.report_rejection();
        }
        self.on_input_end(id, &end);
        match id.stage {
            Stage::Reader => self.reader_end = Some(end),
            Stage::Writer => self.on_writer_done(id.index, end),
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
                // A paused side would hold the drain up to its deadline.
                self.stages.controls.pauses.set(None, false, Instant::now());
                self.stop_signal = Some(signal);
                self.stop_reader();
                self.start_drain();
            }
            Message::StageDone { id, end } => self.on_stage_done(id, end),
            Message::StatsFileOpened(opened) => self.reporter.stats_file_opened(opened),
            Message::Spool { line, fatal } => self.on_spool_line(&line, fatal),
            Message::Control { command, reply } => self.on_control(command, reply),
            Message::Note(line) => self.reporter.note(&anyhow::anyhow!(line)),
        }
    }

    fn waiting(view: &View, throttled: bool) -> Waiting {
        if view.spool.holding {
            Waiting::Held
        } else if throttled {
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
        self.tick_metrics(now, &totals, &view);
        self.check_stall(now, &totals, &view);
        self.check_detach();
        if let Some(drain) = &mut self.rejected
            && drain.stuck(totals.output.bytes, now)
        {
            self.forced = Some(Outcome::Rejected);
        }
    }

    /// Renders the metrics when they are due, from the same reading as the other records.
    fn tick_metrics(&mut self, now: Instant, totals: &Totals, view: &View) {
        if !self.metrics.as_ref().is_some_and(|m| m.due(now)) {
            return;
        }
        let snapshot = self.snapshot_of(Event::Interval, None, totals, view);
        if let Some(error) = self
            .metrics
            .as_mut()
            .and_then(|m| m.on_tick(now, &snapshot))
        {
            self.reporter.note(&error);
        }
    }

    fn check_stall(&mut self, now: Instant, totals: &Totals, view: &View) {
        let has_data = self.writers_have_data(view, totals);
        let paused = self.stages.controls.pauses.is_paused();
        let Some(stall) = &mut self.stall else {
            return;
        };
        if paused {
            stall.excuse(now);
            return;
        }
        let writer = WriterState {
            has_data,
            reader_running: self.reader_end.is_none(),
            held: view.spool.holding,
        };
        if let Some(side) = stall.check(now, totals, writer) {
            self.forced = Some(Outcome::Stalled(side));
        } else if has_data && stall.output_quiet(now) >= stall.timeout() / 2 {
            // A blocking write counts its bytes only when it returns: interrupted, it returns
            // what the consumer has taken so far, so a slow consumer is not a stalled one.
            self.running_writers()
                .for_each(|i| signals::wake(self.stages.writer_thread(i)));
        }
    }

    /// Says at once that the input was refused, and starts watching the drain.
    fn report_rejection(&mut self) {
        let why = self.rejection_why();
        self.reporter.error(&why.context("input rejected"));
        let bytes_out = self.stages.counters.totals().output.bytes;
        self.rejected = Some(Drain::new(bytes_out, Instant::now()));
    }

    /// When the loop must look again even if no message comes: the earliest of what is due.
    fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let periods = [
            self.stall.as_ref().map(StallWatch::period),
            self.rejected.as_ref().map(|_| drain::PATIENCE / 10),
            self.waking().then_some(WAKE_PERIOD),
            self.outputs
                .detachable()
                .next()
                .map(|_| (self.plan.detach_after / 10).clamp(DETACH_CHECK_MIN, DETACH_CHECK_MAX)),
        ];
        let checks = periods.into_iter().flatten().map(|period| now + period);
        checks
            .chain(self.watch.next_deadline())
            .chain(self.metrics.as_ref().and_then(Metrics::next_deadline))
            .chain(self.drain_deadline)
            .min()
    }

    pub(crate) fn steer(&mut self, rx: &mpsc::Receiver<Message>) {
        while self.forced.is_none()
            && (self.reader_end.is_none()
                || !self.outputs.all_ended()
                || self.awaiting_stats_reader())
        {
            let now = Instant::now();
            let received = match self.next_deadline(now) {
                Some(deadline) => rx.recv_timeout(deadline.saturating_duration_since(now)),
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(message) => self.on_message(message),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.waking() {
                        self.wake_stages();
                    }
                    self.on_tick(Instant::now());
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            self.check_drain(Instant::now());
        }
        if self.forced.is_some() {
            self.force_stop(rx);
        }
    }

    /// Reports what went wrong, decides the outcome and prints the summary.
    pub(crate) fn finish(mut self) -> Outcome {
        let mut outcomes = Vec::new();
        if self.rejected.is_some() {
            outcomes.push(Outcome::Rejected);
        }
        if self.output_closed() {
            outcomes.push(Outcome::OutputClosed);
        }
        for (line, outcome) in self.error_lines() {
            self.reporter.line(&line);
            outcomes.push(outcome);
        }
        if self.spool_failed {
            outcomes.push(Outcome::Failed);
        }
        let closed: Vec<String> = self.outputs.closed().map(error_line).collect();
        closed.iter().for_each(|line| self.reporter.line(line));
        outcomes.extend(self.outputs.outcome());
        outcomes.extend(self.stop_signal.map(Outcome::Signalled));
        if let Some(forced) = self.forced {
            if let Outcome::Stalled(side) = forced {
                self.report_stall(side);
            }
            outcomes.push(forced);
        }
        let outcome = Outcome::decide(outcomes);
        let snapshot = self.snapshot(Event::Exit, Some(outcome.exit_status()));
        if let Some(error) = self.metrics.as_mut().and_then(|m| m.at_exit(&snapshot)) {
            self.reporter.note(&error);
        }
        self.reporter.emit(&snapshot, Audience::Routine);
        outcome
    }

    /// The reader's error and the writers' (see `Outputs::errors`), each with the outcome it
    /// stands for: a stream that did not arrive whole, or an I/O error.
    fn error_lines(&self) -> Vec<(String, Outcome)> {
        let reader_error = self.reader_end.as_ref().and_then(|r| r.as_ref().err());
        reader_error
            .into_iter()
            .chain(self.outputs.errors())
            .map(|error| {
                let outcome = match framed::is_integrity(error) {
                    true => Outcome::Integrity,
                    false => Outcome::Failed,
                };
                (error_line(error), outcome)
            })
            .collect()
    }

    fn report_stall(&mut self, side: Side) {
        let timeout = self.stall.as_ref().map(StallWatch::timeout);
        let limit = humantime::format_duration(timeout.unwrap_or_default());
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
