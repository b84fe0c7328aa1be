//! The supervisor's view of the data plane: it looks at the queue and can close it, whatever
//! the queue's slots are.

use crate::cli::OnFull;
use crate::queue::{Payload, Queue, View};

pub(crate) trait Probe: Send + Sync {
    fn view(&self) -> View;
    /// Stops the data plane: whatever is queued will never be written.
    fn close(&self);
    fn capacity_chunks(&self) -> usize;
    fn capacity_bytes(&self) -> usize;
    /// Each output's lane, where there are several outputs; none with one.
    fn lane_views(&self) -> Vec<View> {
        Vec::new()
    }
    /// Closes one output's lane: its writer stops, the others go on.
    fn close_lane(&self, _index: usize) {}
    /// What `--on-full` does from now on.
    fn set_policy(&self, policy: OnFull);
}

impl<P: Payload> Probe for Queue<P> {
    fn view(&self) -> View {
        Queue::view(self)
    }

    fn close(&self) {
        Queue::close(self);
    }

    fn capacity_chunks(&self) -> usize {
        Queue::capacity_chunks(self)
    }

    fn capacity_bytes(&self) -> usize {
        Queue::capacity_bytes(self)
    }

    fn set_policy(&self, policy: OnFull) {
        Queue::set_policy(self, policy);
    }
}
