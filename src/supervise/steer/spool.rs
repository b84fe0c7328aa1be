//! What the steering does for the spool and the watermarks: it says at once what the spool
//! reports, knows the total once the input has ended under `--start-at`, and names the spool when
//! the input is rejected.

use crate::cli::units::human_bytes;
use crate::stage::reader::ReaderExit;
use crate::supervise::message::{Stage, StageExit, StageId};
use crate::supervise::steer::Steering;

impl Steering {
    /// A line about the spool; a fatal one (what was spooled cannot be read back) fails the run.
    pub(super) fn on_spool_line(&mut self, line: &str, fatal: bool) {
        self.reporter.line(line);
        self.spool_failed |= fatal;
    }

    /// Held at the start until the input ended, the writer has a known total to go: the live
    /// line shows a percentage and an ETA without `--size`.
    pub(super) fn on_input_end(&mut self, id: StageId, end: &anyhow::Result<StageExit>) {
        if let (Stage::Reader, Ok(StageExit::Read(ReaderExit::Eof))) = (id.stage, end)
            && self.plan.watermarks.start_at.is_some()
        {
            self.reporter
                .expect(self.stages.counters.totals().input.bytes);
        }
    }

    /// Why the input was rejected under `fail`: the queue is full, and the spool too if any.
    pub(super) fn rejection_why(&self) -> anyhow::Error {
        let capacity = self.stages.probe.capacity_chunks();
        match self.stages.probe.view().spool.max_bytes {
            0 => anyhow::anyhow!("the queue of {capacity} chunks is full (--on-full fail)"),
            spool => anyhow::anyhow!(
                "the queue of {capacity} chunks and the spool of {} are full (--on-full fail)",
                human_bytes(spool)
            ),
        }
    }
}
