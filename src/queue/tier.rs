//! What a second tier in front of the queue needs of it (the disk spool and the watermarks in
//! `crate::spool`): an offer that never waits and never applies the policy, waits for room or
//! for a drain that are woken by the writer like the reader's, and the fill the watermarks read.

use crate::queue::sync::Side;
use crate::queue::{Item, Payload, Queue, State};

/// What became of a chunk offered without waiting.
pub(crate) enum TryPush<P> {
    Queued,
    /// No room now: the chunk comes back, uncounted, for the spool.
    Full(Item<P>),
    /// The output is gone or the relay is stopping: counted as refused.
    Closed,
}

impl<P: Payload> Queue<P> {
    fn fits(&self, state: &State<P>, len: usize) -> bool {
        state.admission.fits(&state.storage, len)
    }

    /// Queues `item` if it fits now, else hands it back; the `--on-full` policy is the caller's.
    pub(crate) fn try_push(&self, item: Item<P>) -> TryPush<P> {
        let mut state = self.sync.lock();
        if state.closed {
            state.offered_bytes += item.len as u64;
            state.refused_bytes += item.len as u64;
            return TryPush::Closed;
        }
        if !self.fits(&state, item.len) {
            return TryPush::Full(item);
        }
        state.offered_bytes += item.len as u64;
        state.full_since = None;
        state.storage.push_back(item);
        self.sync.wake(&mut state, Side::Writer);
        drop(state);
        self.ring();
        TryPush::Queued
    }

    /// Whether a chunk of `len` bytes would be queued now without the policy.
    pub(crate) fn has_room(&self, len: usize) -> bool {
        let state = self.sync.lock();
        !state.closed && self.fits(&state, len)
    }

    /// Waits until a chunk of `len` bytes fits, on the replayer's own clock (its waits do not
    /// hold the producer back); false once the queue is closed.
    pub(crate) fn wait_room_to_replay(&self, len: usize) -> bool {
        let mut state = self.sync.lock();
        let mut round = 0;
        loop {
            if state.closed {
                return false;
            }
            if self.fits(&state, len) {
                return true;
            }
            state = self.sync.wait(state, Side::Replayer, &mut round);
        }
    }

    /// Waits as the reader (its wait is counted in `reader_blocked`) until `drained(chunks,
    /// bytes)` holds; it is asked again each time the writer takes a chunk. False once closed.
    pub(crate) fn wait_drained(&self, drained: impl Fn(usize, usize) -> bool) -> bool {
        let mut state = self.sync.lock();
        let mut round = 0;
        loop {
            if state.closed {
                return false;
            }
            if drained(state.storage.len(), state.storage.bytes()) {
                return true;
            }
            state = self.sync.wait(state, Side::Reader, &mut round);
        }
    }

    /// The chunks and bytes queued now.
    pub(crate) fn fill(&self) -> (usize, usize) {
        let state = self.sync.lock();
        (state.storage.len(), state.storage.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::OnFull;
    use crate::queue::{Limits, TestBytes};
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    fn whole(data: &[u8]) -> Item<TestBytes> {
        Item {
            slot: TestBytes(data.to_vec()),
            len: data.len(),
            starts_record: true,
            ends_record: true,
        }
    }

    fn queue(
        chunks: usize,
        policy: OnFull,
    ) -> (Queue<TestBytes>, Arc<crate::clock::manual::ManualClock>) {
        let clock = crate::clock::manual::ManualClock::new();
        let limits = Limits {
            chunks,
            bytes: usize::MAX,
            slots: chunks + 3,
            delimiter: None,
        };
        (Queue::new(limits, policy, clock.clone()), clock)
    }

    #[test]
    fn try_push_hands_back_what_does_not_fit_whatever_the_policy() {
        let (q, _) = queue(1, OnFull::DropOldest);
        assert!(matches!(q.try_push(whole(b"a")), TryPush::Queued));
        let Some(back) = (match q.try_push(whole(b"b")) {
            TryPush::Full(item) => Some(item),
            _ => None,
        }) else {
            panic!("a full queue must hand the chunk back");
        };
        assert_eq!(back.slot.0, b"b");
        let view = q.view();
        assert_eq!((view.offered_bytes, view.drops.chunks), (1, 0));
        q.close();
        assert!(matches!(q.try_push(whole(b"c")), TryPush::Closed));
        assert_eq!(q.view().refused_bytes, 1);
    }

    #[test]
    fn the_replayer_waits_for_room_on_its_own_clock() {
        let (q, clock) = queue(1, OnFull::Block);
        let q = Arc::new(q);
        assert!(matches!(q.try_push(whole(b"a")), TryPush::Queued));
        assert!(!q.has_room(1));
        let replayer = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.wait_room_to_replay(1))
        };
        // Wait, in real time, for the replayer to sleep, then let the writer take the chunk.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !q.sync.lock().waits.is_waiting(Side::Replayer) {
            assert!(std::time::Instant::now() < deadline, "never waited");
            thread::yield_now();
        }
        clock.advance(Duration::from_secs(2));
        assert!(q.pop(None).is_some());
        assert!(replayer.join().unwrap());
        assert_eq!(q.view().reader_blocked, Duration::ZERO);
    }

    #[test]
    fn a_drain_wait_ends_when_the_writer_took_enough() {
        let (q, _) = queue(4, OnFull::Block);
        let q = Arc::new(q);
        for data in [b"a", b"b", b"c"] {
            assert!(matches!(q.try_push(whole(data)), TryPush::Queued));
        }
        let reader = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.wait_drained(|chunks, _| chunks <= 1))
        };
        assert!(q.pop(None).is_some());
        assert!(q.pop(None).is_some());
        assert!(reader.join().unwrap());
        assert_eq!(q.fill(), (1, 1));
        q.close();
        assert!(!q.wait_drained(|_, _| false));
    }
}
