//! The stats record of a moment: the queue's view and the counters, read once, with each
//! input's and output's part, and what the relay is doing.

use std::time::{Duration, Instant};

use crate::net;
use crate::queue::{Drops, View};
use crate::report::accounts::Accounts;
use crate::report::counters::Totals;
use crate::report::parts::{self, InputTally, OutputTally, Part};
use crate::report::snapshot::{Event, NetView, QueueStats, RunStats, Snapshot, Traffic};
use crate::supervise::steer::Steering;

/// How recently a rate limit must have held data back for the relay to be called throttled.
const THROTTLED_RECENTLY: Duration = Duration::from_millis(250);

impl Steering {
    pub(super) fn snapshot(&self, event: Event, exit_status: Option<u8>) -> Snapshot {
        let totals = self.stages.counters.totals();
        self.snapshot_of(event, exit_status, &totals, &self.stages.probe.view())
    }

    pub(super) fn snapshot_of(
        &self,
        event: Event,
        exit_status: Option<u8>,
        totals: &Totals,
        view: &View,
    ) -> Snapshot {
        let probe = &self.stages.probe;
        let at_exit = event == Event::Exit;
        let queue_accounts = Accounts::of(totals, view, at_exit);
        let (outputs, accounts, dropped) = self.output_parts(&queue_accounts, view, at_exit);
        Snapshot {
            event,
            inputs: self.input_parts(totals, view),
            outputs,
            traffic: Traffic {
                accounts,
                chunks_in: totals.input.chunks,
                chunks_out: totals.output.chunks,
                chunks_dropped: dropped.chunks,
                records_dropped: dropped.records,
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
                paused: self.stages.controls.pauses.paused_for(Instant::now()),
                state: self.state(view, totals),
            },
            spool: view.spool,
            rates: None,
            exit_status,
            net: self.net_view(),
        }
    }

    fn net_view(&self) -> NetView {
        let stats = &self.link.stats;
        NetView {
            connect_attempts: stats.connect_attempts(),
            checksum: stats.digest(),
            checksum_alg: self.plan.net.checksum.then_some(net::CHECKSUM_ALG),
        }
    }

    /// Each output's part of a record, and the record's accounts and dropped records: the
    /// queue's with one output, the sums over the outputs with several.
    fn output_parts(
        &self,
        queue: &Accounts,
        view: &View,
        at_exit: bool,
    ) -> (Vec<Part>, Accounts, Drops) {
        let written = self.stages.counters.output_totals();
        let lanes = self.stages.probe.lane_views();
        let tallies: Vec<OutputTally> = (0..self.outputs.len())
            .map(|i| OutputTally {
                name: self.outputs.name(i),
                written: written[i],
                lane: lanes.get(i).copied(),
                state: self.outputs.state(i),
            })
            .collect();
        parts::outputs(&tallies, queue, view, at_exit)
    }

    /// The inputs' parts: one for inputs read one after another, named after the first; one
    /// per input when they are merged.
    fn input_parts(&self, totals: &Totals, view: &View) -> Vec<Part> {
        let queues = &self.stages.input_queues;
        if queues.is_empty() {
            let state = match &self.reader_end {
                None => "open",
                Some(Ok(_)) => "done",
                Some(Err(_)) => "failed",
            };
            let name = self.input_names.first().map_or("", String::as_str);
            let tally = InputTally {
                name,
                read: totals.input,
                queue: *view,
                state,
            };
            return parts::inputs(&[tally]);
        }
        let read = self.stages.counters.input_totals();
        let tallies: Vec<InputTally> = queues
            .iter()
            .zip(&self.input_names)
            .zip(read)
            .map(|((queue, name), read)| {
                let queue = queue.view();
                let state = if queue.input_done { "done" } else { "open" };
                InputTally {
                    name,
                    read,
                    queue,
                    state,
                }
            })
            .collect();
        parts::inputs(&tallies)
    }

    pub(super) fn output_closed(&self) -> bool {
        self.outputs.output_closed()
    }

    /// `paused`, `held` (the writer waits for --start-at), `throttled`, `blocked` (the reader
    /// waits for room: the output side is slow), `idle` (the writer waits for data: the input
    /// side is slow) or `running`.
    fn state(&self, view: &View, totals: &Totals) -> &'static str {
        let throttled = totals.input.throttled + totals.output.throttled;
        let (seen, at) = self.throttle_seen.get();
        let now = Instant::now();
        if throttled > seen {
            self.throttle_seen.set((throttled, now));
        }
        let recently = throttled > seen || now.saturating_duration_since(at) < THROTTLED_RECENTLY;
        if self.stages.controls.pauses.is_paused() {
            "paused"
        } else if view.spool.holding {
            "held"
        } else if recently && !throttled.is_zero() {
            "throttled"
        } else if view.reader_waiting {
            "blocked"
        } else if view.writer_waiting {
            "idle"
        } else {
            "running"
        }
    }
}
