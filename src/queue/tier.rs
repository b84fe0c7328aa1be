//! What a second tier in front of the queue needs of it (the disk spool and the watermarks in
//! `crate::spool`): an offer that never waits and never applies the policy, waits for room or
//! for a drain that are woken by the writer like the reader's, and the fill the watermarks read.
//! Under `--on-full fail` in line mode, a record is whole in the buffer once its end is in the
//! tier, and a record the tier rejected is withdrawn from the queue too.

use std::sync::Weak;

use crate::queue::sync::Side;
use crate::queue::{Item, Payload, Queue, State};

/// What became of a chunk offered without waiting.
pub(crate) enum TryPush<P> {
    Queued,
    /// No room now: the chunk comes back, uncounted, for the spool.
    Full(Item<P>),
    /// It continues a record dropped or withdrawn: counted as dropped, the slot comes back.
    Dropped(P),
    /// The output is gone or the relay is stopping: counted as refused.
    Closed,
}

/// A tier in front of the queue, as the queue asks it.
pub(crate) trait Upstream: Send + Sync {
    /// The tier holds the end of a record: the record the queue holds the head of is whole.
    fn holds_record_end(&self) -> bool;
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
        let len = item.len as u64;
        let item = match state.admission.drop_continuation(item) {
            Ok(slot) => {
                state.offered_bytes += len;
                return TryPush::Dropped(slot);
            }
            Err(item) => item,
        };
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

    /// The tier in front can tell whether it holds a record end; set once, before any chunk.
    pub(crate) fn set_upstream(&self, upstream: Weak<dyn Upstream>) {
        let _ = self.upstream.set(upstream);
    }

    /// Whether the tier in front holds the end of the record the queue holds the head of. Asked
    /// under the queue's lock, which may be held while the tier's is taken, never the reverse.
    pub(super) fn record_end_upstream(&self) -> bool {
        self.upstream
            .get()
            .and_then(Weak::upgrade)
            .is_some_and(|tier| tier.holds_record_end())
    }

    /// A record end reached the tier in front: a writer held back from a record's head (under
    /// `fail` in line mode) may take it now. Called without the tier's lock.
    pub(crate) fn record_end_arrived(&self) {
        let mut state = self.sync.lock();
        if state.admission.holds_partial_records() {
            self.sync.wake(&mut state, Side::Writer);
        }
    }

    /// Under `fail`, the tier in front rejected a chunk continuing the record whose head is
    /// queued: the head is withdrawn, and any piece still on its way is dropped on arrival.
    /// Called without the tier's lock.
    pub(crate) fn withdraw_open_record(&self) {
        let mut state = self.sync.lock();
        let State {
            storage,
            admission,
            lane,
            ..
        } = &mut *state;
        admission.withdraw_open_record(storage, lane);
        self.sync.wake(&mut state, Side::Reader);
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
    use crate::queue::{Limits, Next, TestBytes};
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

    fn piece(data: &[u8], starts: bool, ends: bool) -> Item<TestBytes> {
        Item {
            slot: TestBytes(data.to_vec()),
            len: data.len(),
            starts_record: starts,
            ends_record: ends,
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
            delimiter: Some(b'\n'),
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

    /// A tier that holds a record end, or not, as the test says.
    struct Tier(std::sync::atomic::AtomicBool);

    impl Upstream for Tier {
        fn holds_record_end(&self) -> bool {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    #[test]
    fn under_fail_a_record_whose_end_is_in_the_tier_may_be_taken() {
        let (q, _) = queue(4, OnFull::Fail);
        let tier = Arc::new(Tier(false.into()));
        let upstream: Arc<dyn Upstream> = tier.clone();
        q.set_upstream(Arc::downgrade(&upstream));
        assert!(matches!(
            q.try_push(piece(b"he", true, false)),
            TryPush::Queued
        ));
        assert!(matches!(q.try_pop(), Next::Empty), "a head held back");
        tier.0.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(
            matches!(q.try_pop(), Next::Item(_)),
            "its end is in the tier"
        );
    }

    #[test]
    fn a_withdrawn_record_goes_whole_from_the_queue_and_on_its_way() {
        let (q, _) = queue(4, OnFull::Fail);
        assert!(matches!(
            q.try_push(piece(b"a\n", true, true)),
            TryPush::Queued
        ));
        assert!(matches!(
            q.try_push(piece(b"he", true, false)),
            TryPush::Queued
        ));
        assert!(matches!(
            q.try_push(piece(b"ad", false, false)),
            TryPush::Queued
        ));
        q.withdraw_open_record();
        assert_eq!(q.fill(), (1, 2));
        // A piece the replayer was carrying arrives after the withdrawal: it goes too.
        assert!(matches!(
            q.try_push(piece(b"mid", false, false)),
            TryPush::Dropped(_)
        ));
        let drops = q.view().drops;
        assert_eq!((drops.bytes, drops.chunks, drops.records), (7, 3, 0));
        q.finish_input();
        let Next::Item(first) = q.try_pop() else {
            panic!("the whole record is written");
        };
        assert_eq!(first.slot.0, b"a\n");
        assert!(matches!(q.try_pop(), Next::Done));
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
