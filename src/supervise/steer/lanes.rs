//! Each output's writer: how it ended, whether its lane has stayed full past --detach-after,
//! and whether it has something left to write.

use crate::queue::View;
use crate::report::counters::Totals;
use crate::supervise::message::StageExit;
use crate::supervise::outputs::WriterEnd;
use crate::supervise::signals;
use crate::supervise::steer::Steering;

impl Steering {
    pub(super) fn on_writer_done(&mut self, index: usize, end: anyhow::Result<StageExit>) {
        match self.outputs.ended(index, end) {
            WriterEnd::Done => {}
            WriterEnd::Detached(line) => self.reporter.line(&line),
            WriterEnd::Failed => self.stages.probe.close(),
        }
        if self.outputs.all_ended() {
            self.stop_reader();
        }
    }

    /// Lets go of a `slow=detach` output whose lane has been full for `--detach-after`.
    pub(super) fn check_detach(&mut self) {
        let limit = self.plan.detach_after;
        let lanes = self.stages.probe.lane_views();
        let full: Vec<usize> = self
            .outputs
            .detachable()
            .filter(|&i| lanes.get(i).is_some_and(|l| l.full_for >= limit))
            .collect();
        for index in full {
            self.stages.probe.close_lane(index);
            let why = format!(
                "its lane was full for {}",
                humantime::format_duration(limit)
            );
            let line = self.outputs.detach(index, &why);
            self.reporter.line(&line);
            signals::wake(self.stages.writer_thread(index));
        }
    }

    /// Whether a writer has something to write: queued for it, or taken and not yet written.
    pub(super) fn writers_have_data(&self, view: &View, totals: &Totals) -> bool {
        let lanes = self.stages.probe.lane_views();
        if lanes.is_empty() {
            return view.chunks > 0 || view.taken_bytes > totals.output.bytes;
        }
        let written = self.stages.counters.output_totals();
        view.chunks > 0
            || lanes
                .iter()
                .zip(written)
                .any(|(lane, out)| lane.chunks > 0 || lane.taken_bytes > out.bytes)
    }
}
