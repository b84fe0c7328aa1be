//! The data plane as the supervisor sees it with a spool or watermarks in front of the queue:
//! the inner probe's view with the intake's part added, and a close that reaches the spool and
//! the writer held at the start too.

use std::sync::Arc;

use crate::cli::OnFull;
use crate::queue::View;
use crate::slot::Spill;
use crate::spool::Intake;
use crate::supervise::probe::Probe;

/// `probe`, with the intake's part added when there is an intake.
pub(crate) fn with_intake<S: Spill + Sync + 'static>(
    probe: Arc<dyn Probe>,
    intake: Option<Arc<Intake<S>>>,
) -> Arc<dyn Probe> {
    match intake {
        Some(intake) => Arc::new(SpoolProbe {
            inner: probe,
            intake,
        }),
        None => probe,
    }
}

pub(crate) struct SpoolProbe<S> {
    pub(crate) inner: Arc<dyn Probe>,
    pub(crate) intake: Arc<Intake<S>>,
}

impl<S: Spill + Sync> Probe for SpoolProbe<S> {
    fn view(&self) -> View {
        self.intake.amend(self.inner.view())
    }

    fn close(&self) {
        self.intake.close();
        self.inner.close();
        self.intake.settle();
    }

    fn capacity_chunks(&self) -> usize {
        self.inner.capacity_chunks()
    }

    fn capacity_bytes(&self) -> usize {
        self.inner.capacity_bytes()
    }

    fn lane_views(&self) -> Vec<View> {
        self.inner.lane_views()
    }

    fn close_lane(&self, index: usize) {
        self.inner.close_lane(index);
    }

    /// The spool applies the policy when it is full; the queue, when the spool has failed.
    fn set_policy(&self, policy: OnFull) {
        self.intake.set_policy(policy);
        self.inner.set_policy(policy);
    }
}
