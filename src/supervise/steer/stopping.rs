//! Stopping: asking the reader to stop, waking the stages a stop must reach, the drain after a
//! stop signal and its deadline, and the forced end of a run that cannot finish by itself.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use crate::cli::units::human_bytes;
use crate::report::accounts::Accounts;
use crate::supervise::message::Message;
use crate::supervise::outcome::Outcome;
use crate::supervise::signals;
use crate::supervise::steer::{READER_GRACE, Steering, WAKE_PERIOD};

impl Steering {
    pub(super) fn stop_reader(&self) {
        self.stages.stop.store(true, Ordering::Relaxed);
        self.wake_stages();
    }

    /// Writers still opening their outputs, FIFOs without a reader yet.
    pub(super) fn opening_writers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.outputs.len()).filter(|&i| !self.outputs.has_ended(i) && self.stages.is_opening(i))
    }

    /// Writers that have not stopped yet.
    pub(super) fn running_writers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.outputs.len()).filter(|&i| !self.outputs.has_ended(i))
    }

    /// Interrupts the system calls a stop must reach: the reader's, the writers' opens (not
    /// their writes: what was accepted still goes out), and every call of a detached writer.
    pub(super) fn wake_stages(&self) {
        if self.stages.stop.load(Ordering::Relaxed) && self.reader_end.is_none() {
            self.stages.reader_threads().for_each(signals::wake);
        }
        if self.stages.stop.load(Ordering::Relaxed) {
            self.opening_writers()
                .for_each(|i| signals::wake(self.stages.writer_thread(i)));
        }
        self.outputs
            .detached_running()
            .for_each(|i| signals::wake(self.stages.writer_thread(i)));
    }

    /// A stop was asked for and a stage it must reach may still be blocked, or a detached
    /// output's writer may still be blocked on its consumer.
    pub(super) fn waking(&self) -> bool {
        let stopping = self.stages.stop.load(Ordering::Relaxed)
            && (self.reader_end.is_none() || self.opening_writers().next().is_some());
        stopping || self.outputs.detached_running().next().is_some()
    }

    /// Bounds the drain after a stop signal by `--drain-timeout`, and says so when there is
    /// anything to drain: a service manager's stop must not wait on a slow rate or consumer, and
    /// an operator must not wait without knowing why.
    pub(super) fn start_drain(&mut self) {
        let timeout = self.plan.drain_timeout;
        self.drain_deadline = Instant::now().checked_add(timeout);
        let held = Accounts::held(&self.stages.counters.totals(), &self.stages.probe.view());
        if held > 0 {
            self.reporter.note(&anyhow::anyhow!(
                "draining {} (at most {}; send the signal again to stop now)",
                human_bytes(held),
                humantime::format_duration(timeout)
            ));
        }
    }

    /// A drain past its deadline ends as a second signal would: the rest is unsent.
    pub(super) fn check_drain(&mut self, now: Instant) {
        if self.drain_deadline.is_some_and(|deadline| now >= deadline) {
            self.forced = self.stop_signal.map(Outcome::Signalled);
        }
    }

    /// Ends a run that cannot finish by itself. The reader is released and joined; the writer
    /// is interrupted, so that a write blocked on a consumer that takes nothing returns what the
    /// kernel took (and `bytes_out` tells exactly what the consumer gets), then gives up. A
    /// writer stuck where no signal reaches is left there after the grace period.
    pub(super) fn force_stop(&mut self, rx: &mpsc::Receiver<Message>) {
        self.stages.stop.store(true, Ordering::Relaxed);
        self.stages.probe.close();
        let deadline = Instant::now() + READER_GRACE;
        while (self.reader_end.is_none() || !self.outputs.all_ended()) && Instant::now() < deadline
        {
            if self.reader_end.is_none() {
                self.stages.reader_threads().for_each(signals::wake);
            }
            self.running_writers()
                .for_each(|i| signals::wake(self.stages.writer_thread(i)));
            if let Ok(Message::StageDone { id, end }) = rx.recv_timeout(WAKE_PERIOD) {
                self.on_stage_done(id, end);
            }
        }
    }
}
