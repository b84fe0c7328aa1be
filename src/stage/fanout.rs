//! Several outputs: a distributor takes each chunk from the queue and hands a share of it to
//! every output's lane, a queue of its own with its own policy, drained by its own writer. No
//! byte is copied: the shares point at one slot, which returns to the queue's pool when the last
//! output has written it (`slot::fanned`).

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::cli::{OnFull, SlowOutput};
use crate::clock;
use crate::queue::{Item, Limits, Push, Queue, View};
use crate::slot::Share;
use crate::slot::fanned::{self, Fanned};
use crate::supervise::probe::Probe;

/// An output's lane: under `drop` it skips what does not fit; under `block` and `detach` it
/// holds the distributor back (and `detach` ends that after `--detach-after`).
pub(crate) fn lane<P: Share>(limits: Limits, slow: SlowOutput) -> Arc<Queue<Fanned<P>>> {
    let policy = match slow {
        SlowOutput::Drop => OnFull::Drop,
        SlowOutput::Block | SlowOutput::Detach => OnFull::Block,
    };
    let limits = Limits {
        // Lanes never make slots: the shares come from the distributor.
        slots: usize::MAX,
        ..limits
    };
    Arc::new(Queue::new(limits, policy, clock::system()))
}

/// Hands every chunk to every lane still open, until the input is done (the lanes then finish
/// too) or the queue closes (and so do the lanes). When every lane has closed, nothing can be
/// written any more: the queue closes, which stops the reader.
fn distribute<P: Share>(queue: &Arc<Queue<P>>, lanes: &[Arc<Queue<Fanned<P>>>]) {
    while let Some(item) = queue.pop(None) {
        let shares = fanned::shares(item.slot, queue, lanes.len());
        let mut open = 0;
        for (lane, share) in lanes.iter().zip(shares) {
            let offered = Item {
                slot: share,
                len: item.len,
                starts_record: item.starts_record,
                ends_record: item.ends_record,
            };
            match lane.push(offered) {
                Push::Queued | Push::Dropped(_) | Push::Rejected => open += 1,
                Push::Closed => {}
            }
        }
        if open == 0 {
            queue.close();
        }
    }
    for lane in lanes {
        match queue.is_closed() {
            true => lane.close(),
            false => lane.finish_input(),
        }
    }
}

/// Runs the distributor; a bug in it closes everything rather than leaving the run waiting.
pub(crate) fn run_distributor<P: Share>(queue: Arc<Queue<P>>, lanes: Vec<Arc<Queue<Fanned<P>>>>) {
    if panic::catch_unwind(AssertUnwindSafe(|| distribute(&queue, &lanes))).is_err() {
        queue.close();
        lanes.iter().for_each(|lane| lane.close());
    }
}

/// The data plane as the supervisor sees it with several outputs: the queue, and every lane.
pub(crate) struct FanProbe<P: Share> {
    pub(crate) queue: Arc<Queue<P>>,
    pub(crate) lanes: Vec<Arc<Queue<Fanned<P>>>>,
}

impl<P: Share> Probe for FanProbe<P> {
    fn view(&self) -> View {
        self.queue.view()
    }

    fn close(&self) {
        self.queue.close();
        self.lanes.iter().for_each(|lane| lane.close());
    }

    fn capacity_chunks(&self) -> usize {
        self.queue.capacity_chunks()
    }

    fn capacity_bytes(&self) -> usize {
        self.queue.capacity_bytes()
    }

    fn lane_views(&self) -> Vec<View> {
        self.lanes.iter().map(|lane| lane.view()).collect()
    }

    fn close_lane(&self, index: usize) {
        if let Some(lane) = self.lanes.get(index) {
            lane.close();
        }
    }

    /// The policy for what the reader offers; the lanes keep their own (`slow=`).
    fn set_policy(&self, policy: OnFull) {
        self.queue.set_policy(policy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::Outgoing;
    use crate::slot::Slot;
    use crate::slot::memory::MemSlot;
    use std::io;
    use std::os::fd::AsFd;
    use std::thread;

    fn limits(chunks: usize) -> Limits {
        Limits {
            chunks,
            bytes: usize::MAX,
            slots: chunks * 3 + 5,
            delimiter: None,
        }
    }

    fn chunk(queue: &Queue<MemSlot>, data: &[u8]) -> Push<MemSlot> {
        let mut slot = queue.acquire(|| MemSlot::new(16)).unwrap().unwrap();
        let (r, w) = io::pipe().unwrap();
        crate::io::sys::write_all(w.as_fd(), data).unwrap();
        slot.fill(r.as_fd(), data.len(), &mut ()).unwrap();
        queue.push(Item {
            slot,
            len: data.len(),
            starts_record: true,
            ends_record: true,
        })
    }

    fn taken(lane: &Queue<Fanned<MemSlot>>) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| lane.pop(None))
            .map(|item| item.slot.unsent().unwrap().to_vec())
            .collect()
    }

    #[test]
    fn every_lane_gets_every_chunk_and_a_full_drop_lane_skips() {
        let queue = Arc::new(Queue::new(limits(4), OnFull::Block, clock::system()));
        let lanes = vec![
            lane::<MemSlot>(limits(4), SlowOutput::Block),
            lane::<MemSlot>(limits(1), SlowOutput::Drop),
        ];
        for data in [b"a", b"b", b"c"] {
            assert!(matches!(chunk(&queue, data), Push::Queued));
        }
        queue.finish_input();
        distribute(&queue, &lanes);
        assert_eq!(taken(&lanes[0]), [b"a", b"b", b"c"]);
        assert_eq!(taken(&lanes[1]), [b"a"]);
        assert_eq!(lanes[1].view().drops.chunks, 2);
        // Every share is gone: all three slots are back in the pool.
        let view = queue.view();
        assert_eq!((view.chunks, view.taken_bytes), (0, 3));
    }

    #[test]
    fn when_every_lane_is_closed_the_queue_closes() {
        let queue = Arc::new(Queue::new(limits(4), OnFull::Block, clock::system()));
        let lanes = vec![lane::<MemSlot>(limits(4), SlowOutput::Detach)];
        lanes[0].close();
        assert!(matches!(chunk(&queue, b"x"), Push::Queued));
        let distributor = {
            let (queue, lanes) = (Arc::clone(&queue), lanes.clone());
            thread::spawn(move || run_distributor(queue, lanes))
        };
        distributor.join().unwrap();
        assert!(queue.is_closed());
    }
}
