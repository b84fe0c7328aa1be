//! The bounded queue between the reader and the writer, in three parts: `storage` (the chunks,
//! their bytes and peaks, the free slots, what the consumer took), `policy` (admission when the
//! queue is full, and its drop tallies) and `sync` (the lock, the condvars and the wait clocks).
//!
//! The queue does not care what a slot holds (a buffer in memory or an internal pipe): it only
//! measures it. Slots are recycled so that a long run allocates nothing per chunk. Each side is
//! woken only when the other one is actually waiting, which keeps the hot path to one
//! uncontended lock per chunk and side.

use std::io;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::cli::OnFull;
use crate::clock::SharedClock;
use crate::spool::SpoolView;
use bell::Bell;

pub(crate) mod bell;
#[cfg(test)]
mod model_tests;
mod policy;
mod storage;
mod sync;
mod tier;

pub(crate) use policy::Drops;
use policy::{Admission, Decision};
use storage::{Lane, Storage};
use sync::{Clocked, Side, Sync, Waits};
pub(crate) use tier::{TryPush, Upstream};

/// What the queue needs to know of a slot.
pub(crate) trait Payload: Send {
    /// Bytes the slot holds.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many records the slot holds the end of: one per delimiter, plus one for a last
    /// record that ends without a delimiter.
    fn records(&self, delimiter: u8, ends_record: bool) -> u64;
}

/// A filled slot and where it sits among records. Outside line mode every chunk is a whole
/// record; in line mode a record longer than a chunk spans several chunks.
pub(crate) struct Item<P> {
    pub(crate) slot: P,
    pub(crate) len: usize,
    pub(crate) starts_record: bool,
    pub(crate) ends_record: bool,
}

/// What happened to a chunk the reader offered.
pub(crate) enum Push<P> {
    Queued,
    /// Dropped by the policy; the reader keeps the slot for its next read.
    Dropped(P),
    /// The queue was full under `fail`: the chunk was counted as dropped and the reader stops.
    Rejected,
    /// The output is gone or the relay is stopping: the chunk will never be written.
    Closed,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) chunks: usize,
    pub(crate) bytes: usize,
    /// Slots that may exist at once: the queue's, plus those the two stages hold.
    pub(crate) slots: usize,
    /// The record delimiter in line mode, so that drops count records.
    pub(crate) delimiter: Option<u8>,
}

/// What a look at the queue without waiting found.
pub(crate) enum Next<P> {
    Item(Item<P>),
    /// Nothing to take yet.
    Empty,
    /// Nothing more will come: the input is done and all of it taken, or the queue closed.
    Done,
}

/// What the queue looks like right now, for stats, the stall watchdog and the accounts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct View {
    pub(crate) chunks: usize,
    pub(crate) bytes: usize,
    pub(crate) peak_chunks: usize,
    pub(crate) peak_bytes: usize,
    pub(crate) reader_blocked: Duration,
    pub(crate) writer_idle: Duration,
    pub(crate) reader_waiting: bool,
    pub(crate) writer_waiting: bool,
    /// The producer has said it is done.
    pub(crate) input_done: bool,
    /// How long every chunk offered has had to wait for room: the consumer is behind.
    pub(crate) full_for: Duration,
    pub(crate) drops: Drops,
    /// Bytes the reader offered, whatever became of them.
    pub(crate) offered_bytes: u64,
    /// Bytes offered after the queue closed: never queued, never written.
    pub(crate) refused_bytes: u64,
    /// Queued bytes thrown away when the queue closed.
    pub(crate) discarded_bytes: u64,
    /// Bytes the writer has taken from the queue, written or not.
    pub(crate) taken_bytes: u64,
    /// The disk spool and the watermarks in front of the queue, when there are any.
    pub(crate) spool: SpoolView,
}

struct State<P> {
    storage: Storage<P>,
    admission: Admission,
    lane: Lane,
    waits: Waits,
    input_done: bool,
    closed: bool,
    /// Since when every chunk offered has had to wait for room.
    full_since: Option<Instant>,
    offered_bytes: u64,
    refused_bytes: u64,
    discarded_bytes: u64,
}

impl<P> Clocked for State<P> {
    fn waits(&mut self) -> &mut Waits {
        &mut self.waits
    }
}

pub(crate) struct Queue<P> {
    limits: Limits,
    sync: Sync<State<P>>,
    /// Rung when a chunk is queued or the input ends, for a consumer of several queues.
    bell: Option<Arc<Bell>>,
    /// A tier in front (the spool), asked whether it holds a record end.
    upstream: OnceLock<Weak<dyn Upstream>>,
}

impl<P: Payload> Queue<P> {
    pub(crate) fn new(limits: Limits, policy: OnFull, clock: SharedClock) -> Self {
        let state = State {
            storage: Storage::new(limits.chunks),
            admission: Admission::new(policy, limits.delimiter, limits.chunks, limits.bytes),
            lane: Lane::default(),
            waits: Waits::default(),
            input_done: false,
            closed: false,
            full_since: None,
            offered_bytes: 0,
            refused_bytes: 0,
            discarded_bytes: 0,
        };
        Queue {
            limits,
            sync: Sync::new(state, clock),
            bell: None,
            upstream: OnceLock::new(),
        }
    }

    pub(crate) fn with_bell(mut self, bell: Arc<Bell>) -> Self {
        self.bell = Some(bell);
        self
    }

    fn ring(&self) {
        if let Some(bell) = &self.bell {
            bell.ring();
        }
    }

    /// Hands the queue slots made up front.
    pub(crate) fn stock(&self, slots: Vec<P>) {
        self.sync.lock().storage.stock(slots);
    }

    pub(crate) fn capacity_chunks(&self) -> usize {
        self.limits.chunks
    }

    pub(crate) fn capacity_bytes(&self) -> usize {
        self.limits.bytes
    }

    /// A slot to fill: a recycled one, a new one from `make` while fewer than the limit exist, or
    /// `None` once the relay is closing. Once `make` is refused (a pipe budget other programs
    /// share), no more are made and the slots that exist are waited for; the error is returned
    /// when none exists, and always for memory: a memory limit is the user's to hear of.
    pub(crate) fn acquire(&self, make: impl Fn() -> io::Result<P>) -> io::Result<Option<P>> {
        let mut state = self.sync.lock();
        let mut round = 0;
        loop {
            if state.closed {
                return Ok(None);
            }
            if let Some(slot) = state.storage.take_free() {
                return Ok(Some(slot));
            }
            if state.storage.reserve_new(self.limits.slots) {
                drop(state);
                let error = match make() {
                    Ok(slot) => return Ok(Some(slot)),
                    Err(error) => error,
                };
                state = self.sync.lock();
                if !state.storage.refuse_new() || error.kind() == io::ErrorKind::OutOfMemory {
                    return Err(error);
                }
                continue;
            }
            state = self.sync.wait(state, Side::Reader, &mut round);
        }
    }

    /// Offers a filled chunk, applying the overload policy when the queue is full.
    pub(crate) fn push(&self, mut item: Item<P>) -> Push<P> {
        let mut state = self.sync.lock();
        state.offered_bytes += item.len as u64;
        let mut round = 0;
        let mut waited = false;
        loop {
            if state.closed {
                state.refused_bytes += item.len as u64;
                return Push::Closed;
            }
            let State {
                storage,
                admission,
                lane,
                ..
            } = &mut *state;
            match admission.admit(item, storage, lane) {
                Decision::Admit(admitted) => {
                    if !waited {
                        state.full_since = None;
                    }
                    state.storage.push_back(admitted);
                    self.sync.wake(&mut state, Side::Writer);
                    drop(state);
                    self.ring();
                    return Push::Queued;
                }
                Decision::Dropped(slot) => return Push::Dropped(slot),
                Decision::Rejected => return Push::Rejected,
                Decision::Wait(waiting) => {
                    item = waiting;
                    waited = true;
                    if state.full_since.is_none() {
                        state.full_since = Some(self.sync.now());
                    }
                    state = self.sync.wait(state, Side::Reader, &mut round);
                }
            }
        }
    }

    /// The reader is done: the writer drains what is queued, then stops.
    pub(crate) fn finish_input(&self) {
        let mut state = self.sync.lock();
        state.input_done = true;
        self.sync.wake(&mut state, Side::Writer);
        drop(state);
        self.ring();
    }

    /// The output is gone or the relay must stop now: whatever is queued will never be written.
    pub(crate) fn close(&self) {
        let mut state = self.sync.lock();
        state.closed = true;
        let discarded = state.storage.clear();
        state.discarded_bytes += discarded as u64;
        self.sync.wake_all();
        drop(state);
        self.ring();
    }

    /// The front chunk if the consumer may take it now, without waiting.
    pub(crate) fn try_pop(&self) -> Next<P> {
        let mut state = self.sync.lock();
        if state.closed {
            return Next::Done;
        }
        if self.may_take(&state)
            && let Some(item) = state.storage.pop_front()
        {
            state.lane.take(&item);
            self.sync.wake(&mut state, Side::Reader);
            return Next::Item(item);
        }
        match state.input_done {
            true => Next::Done,
            false => Next::Empty,
        }
    }

    /// A new policy for chunks offered from now on; a reader waiting for room looks again.
    pub(crate) fn set_policy(&self, policy: OnFull) {
        let mut state = self.sync.lock();
        state.admission.set_policy(policy);
        self.sync.wake(&mut state, Side::Reader);
    }

    /// Takes back a slot the consumer handed on (shared by several outputs) once all are done.
    pub(crate) fn recycle(&self, slot: P) {
        let mut state = self.sync.lock();
        state.storage.recycle(slot);
        self.sync.wake(&mut state, Side::Reader);
    }

    /// A slot handed on is gone for good: another may be made in its place.
    pub(crate) fn forget_slot(&self) {
        let mut state = self.sync.lock();
        state.storage.forget();
        self.sync.wake(&mut state, Side::Reader);
    }

    /// The relay is stopping: nothing more will be written.
    pub(crate) fn is_closed(&self) -> bool {
        self.sync.lock().closed
    }

    /// Returns the slot the writer has emptied, and waits for the next chunk. `None` once the
    /// input is done and the queue is empty, or the relay is closing.
    pub(crate) fn pop(&self, emptied: Option<P>) -> Option<Item<P>> {
        let mut state = self.sync.lock();
        if let Some(slot) = emptied {
            state.storage.recycle(slot);
        }
        let mut round = 0;
        loop {
            if state.closed {
                return None;
            }
            if self.may_take(&state)
                && let Some(item) = state.storage.pop_front()
            {
                state.lane.take(&item);
                self.sync.wake(&mut state, Side::Reader);
                return Some(item);
            }
            if state.input_done {
                return None;
            }
            // The reader may be waiting for a free slot rather than for room.
            self.sync.wake(&mut state, Side::Reader);
            state = self.sync.wait(state, Side::Writer, &mut round);
        }
    }

    /// Whether the consumer may take the front chunk now: always, unless the policy holds
    /// records back until they are whole in the buffer (the queue, or the tier in front for
    /// its end) and the front one is not yet.
    fn may_take(&self, state: &State<P>) -> bool {
        !state.admission.holds_partial_records()
            || state.input_done
            || state.lane.inside_record
            || (0..state.storage.len())
                .any(|i| state.storage.get(i).is_some_and(|item| item.ends_record))
            || self.record_end_upstream()
    }

    pub(crate) fn view(&self) -> View {
        let state = self.sync.lock();
        let now = self.sync.now();
        let (peak_chunks, peak_bytes) = state.storage.peaks();
        View {
            chunks: state.storage.len(),
            bytes: state.storage.bytes(),
            peak_chunks,
            peak_bytes,
            reader_blocked: state.waits.total(Side::Reader, now),
            writer_idle: state.waits.total(Side::Writer, now),
            reader_waiting: state.waits.is_waiting(Side::Reader),
            input_done: state.input_done,
            full_for: state
                .full_since
                .map_or(Duration::ZERO, |since| now.saturating_duration_since(since)),
            writer_waiting: state.waits.is_waiting(Side::Writer),
            drops: state.admission.drops(),
            offered_bytes: state.offered_bytes,
            refused_bytes: state.refused_bytes,
            discarded_bytes: state.discarded_bytes,
            taken_bytes: state.lane.taken_bytes,
            spool: SpoolView::default(),
        }
    }
}

/// A payload of plain bytes, for tests that drive a queue by hand.
#[cfg(test)]
pub(crate) struct TestBytes(pub(crate) Vec<u8>);

#[cfg(test)]
impl Payload for TestBytes {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn records(&self, delimiter: u8, ends_record: bool) -> u64 {
        let ends = self.0.iter().filter(|&&b| b == delimiter).count() as u64;
        ends + u64::from(ends_record && self.0.last() != Some(&delimiter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::manual::ManualClock;
    use std::sync::Arc;
    use std::thread;

    use TestBytes as Bytes;

    fn item(data: &[u8], starts: bool, ends: bool) -> Item<Bytes> {
        Item {
            slot: Bytes(data.to_vec()),
            len: data.len(),
            starts_record: starts,
            ends_record: ends,
        }
    }

    fn whole(data: &[u8]) -> Item<Bytes> {
        item(data, true, true)
    }

    fn queue_with(chunks: usize, bytes: usize, policy: OnFull) -> (Queue<Bytes>, Arc<ManualClock>) {
        let clock = ManualClock::new();
        let limits = Limits {
            chunks,
            bytes,
            slots: chunks + 3,
            delimiter: Some(b'\n'),
        };
        (Queue::new(limits, policy, clock.clone()), clock)
    }

    fn queue(chunks: usize, bytes: usize, policy: OnFull) -> Queue<Bytes> {
        queue_with(chunks, bytes, policy).0
    }

    fn drain(queue: &Queue<Bytes>) -> Vec<Vec<u8>> {
        queue.finish_input();
        std::iter::from_fn(|| queue.pop(None).map(|i| i.slot.0)).collect()
    }

    fn queued(push: Push<Bytes>) -> bool {
        matches!(push, Push::Queued)
    }

    /// Waits (in real time, bounded) until the reader sleeps in the queue.
    fn until_reader_waits(q: &Queue<Bytes>) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !q.view().reader_waiting {
            assert!(
                std::time::Instant::now() < deadline,
                "the reader never waited"
            );
            thread::yield_now();
        }
    }

    #[test]
    fn drop_discards_the_newest() {
        let q = queue(2, usize::MAX, OnFull::Drop);
        assert!(queued(q.push(whole(b"a"))));
        assert!(queued(q.push(whole(b"b"))));
        assert!(matches!(q.push(whole(b"c")), Push::Dropped(_)));
        assert_eq!(drain(&q), vec![b"a".to_vec(), b"b".to_vec()]);
        let drops = q.view().drops;
        assert_eq!((drops.bytes, drops.chunks, drops.records), (1, 1, 1));
    }

    #[test]
    fn drop_oldest_keeps_the_freshest() {
        let q = queue(2, usize::MAX, OnFull::DropOldest);
        for data in [b"a", b"b", b"c", b"d"] {
            assert!(queued(q.push(whole(data))));
        }
        assert_eq!(drain(&q), vec![b"c".to_vec(), b"d".to_vec()]);
        assert_eq!(q.view().drops.chunks, 2);
    }

    #[test]
    fn byte_bound_holds_with_small_chunks() {
        let q = queue(100, 4, OnFull::Drop);
        assert!(queued(q.push(whole(b"ab"))));
        assert!(queued(q.push(whole(b"cd"))));
        assert!(matches!(q.push(whole(b"e")), Push::Dropped(_)));
        assert_eq!(q.view().bytes, 4);
    }

    #[test]
    fn fail_counts_the_rejected_chunk() {
        let q = queue(1, usize::MAX, OnFull::Fail);
        assert!(queued(q.push(whole(b"a"))));
        assert!(matches!(q.push(whole(b"bb")), Push::Rejected));
        assert_eq!(q.view().drops.bytes, 2);
    }

    #[test]
    fn drop_oldest_removes_a_whole_record_and_its_tail() {
        let q = queue(3, usize::MAX, OnFull::DropOldest);
        assert!(queued(q.push(item(b"r1a", true, false))));
        assert!(queued(q.push(item(b"r1b", false, false))));
        assert!(queued(q.push(item(b"r1c", false, false))));
        // Full: the oldest record is r1, which has not ended, so its next chunk goes too.
        assert!(matches!(
            q.push(item(b"r1d\n", false, true)),
            Push::Dropped(_)
        ));
        assert!(queued(q.push(whole(b"r2\n"))));
        assert_eq!(drain(&q), vec![b"r2\n".to_vec()]);
        let drops = q.view().drops;
        assert_eq!((drops.chunks, drops.records, drops.bytes), (4, 1, 13));
    }

    #[test]
    fn drop_oldest_never_cuts_a_record_the_writer_started() {
        let q = queue(2, usize::MAX, OnFull::DropOldest);
        assert!(queued(q.push(item(b"h", true, false))));
        let head = q.pop(None).unwrap();
        assert_eq!(head.slot.0, b"h");
        assert!(queued(q.push(item(b"t\n", false, true))));
        assert!(queued(q.push(whole(b"x\n"))));
        // Full; the tail of the started record must survive, so the next record is evicted.
        assert!(queued(q.push(whole(b"y\n"))));
        assert_eq!(drain(&q), vec![b"t\n".to_vec(), b"y\n".to_vec()]);
    }

    #[test]
    fn drop_waits_for_the_rest_of_a_record_the_writer_started() {
        let (q, clock) = queue_with(1, usize::MAX, OnFull::Drop);
        let q = Arc::new(q);
        assert!(queued(q.push(item(b"h", true, false))));
        assert_eq!(q.pop(None).unwrap().slot.0, b"h");
        assert!(queued(q.push(item(b"m", false, false))));
        let writer = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                until_reader_waits(&q);
                clock.advance(Duration::from_secs(1));
                q.pop(None).map(|i| i.slot.0)
            })
        };
        assert!(queued(q.push(item(b"t\n", false, true))));
        assert_eq!(writer.join().unwrap(), Some(b"m".to_vec()));
        assert_eq!(q.view().reader_blocked, Duration::from_secs(1));
        assert_eq!(q.view().drops, Drops::default());
        assert_eq!(drain(&q), vec![b"t\n".to_vec()]);
    }

    #[test]
    fn drop_withdraws_a_long_record_the_writer_has_not_started() {
        let q = queue(2, usize::MAX, OnFull::Drop);
        assert!(queued(q.push(whole(b"a\n"))));
        assert!(queued(q.push(item(b"h", true, false))));
        // Full, and the record cannot be kept whole: its head goes, and so does its rest.
        assert!(matches!(q.push(item(b"m", false, false)), Push::Dropped(_)));
        assert!(matches!(
            q.push(item(b"t\n", false, true)),
            Push::Dropped(_)
        ));
        assert!(queued(q.push(whole(b"b\n"))));
        assert_eq!(drain(&q), vec![b"a\n".to_vec(), b"b\n".to_vec()]);
        let drops = q.view().drops;
        assert_eq!((drops.chunks, drops.records, drops.bytes), (3, 1, 4));
    }

    #[test]
    fn drop_oldest_prefers_a_newer_record_that_fits_the_queue() {
        let q = queue(2, usize::MAX, OnFull::DropOldest);
        assert!(queued(q.push(item(b"fre", true, false))));
        assert!(queued(q.push(item(b"sh\n", false, true))));
        // The queue is full of one record; the next fits the queue as well, so it is kept
        // (whether it will fit is only known at its end: it is the freshest data).
        assert!(queued(q.push(item(b"new", true, false))));
        assert!(queued(q.push(item(b"er\n", false, true))));
        assert_eq!(drain(&q), vec![b"new".to_vec(), b"er\n".to_vec()]);
    }

    #[test]
    fn drop_oldest_keeps_the_freshest_whole_record_over_one_too_long_for_the_queue() {
        let q = queue(4, 12, OnFull::DropOldest);
        assert!(queued(q.push(whole(b"fresh\n"))));
        // Thirteen bytes can never be held by a twelve-byte queue: that record goes, whole.
        assert!(matches!(
            q.push(item(b"1234567890123", true, false)),
            Push::Dropped(_)
        ));
        assert!(matches!(
            q.push(item(b"0\n", false, true)),
            Push::Dropped(_)
        ));
        assert!(queued(q.push(whole(b"last\n"))));
        assert_eq!(drain(&q), vec![b"fresh\n".to_vec(), b"last\n".to_vec()]);
    }

    #[test]
    fn fail_withdraws_the_unfinished_record_and_holds_it_from_the_writer() {
        let q = queue(3, usize::MAX, OnFull::Fail);
        assert!(queued(q.push(whole(b"a\n"))));
        assert!(queued(q.push(item(b"h", true, false))));
        assert_eq!(q.pop(None).unwrap().slot.0, b"a\n");
        assert!(queued(q.push(item(b"m", false, false))));
        assert!(queued(q.push(item(b"n", false, false))));
        assert!(matches!(q.push(item(b"t\n", false, true)), Push::Rejected));
        assert_eq!(drain(&q), Vec::<Vec<u8>>::new());
        let drops = q.view().drops;
        assert_eq!((drops.chunks, drops.records, drops.bytes), (4, 1, 5));
    }

    #[test]
    fn close_releases_a_blocked_reader() {
        let q = Arc::new(queue(1, usize::MAX, OnFull::Block));
        assert!(queued(q.push(whole(b"a"))));
        let reader = {
            let q = Arc::clone(&q);
            thread::spawn(move || matches!(q.push(whole(b"b")), Push::Closed))
        };
        until_reader_waits(&q);
        q.close();
        assert!(reader.join().unwrap());
        assert!(q.pop(None).is_none());
        let view = q.view();
        assert_eq!((view.discarded_bytes, view.refused_bytes), (1, 1));
    }

    #[test]
    fn slots_are_recycled_up_to_the_limit() {
        let q = queue(1, usize::MAX, OnFull::Block);
        let made = std::cell::Cell::new(0);
        let make = || -> io::Result<Bytes> {
            made.set(made.get() + 1);
            Ok(Bytes(Vec::new()))
        };
        for _ in 0..4 {
            assert!(q.acquire(make).unwrap().is_some());
        }
        assert_eq!(made.get(), 4);
        q.finish_input();
        assert!(q.pop(Some(Bytes(Vec::new()))).is_none());
        assert!(q.acquire(make).unwrap().is_some());
        assert_eq!(made.get(), 4);
    }

    #[test]
    fn a_refused_slot_waits_for_one_that_exists() {
        let q = Arc::new(queue(4, usize::MAX, OnFull::Block));
        let refuse = || -> io::Result<Bytes> { Err(io::Error::from_raw_os_error(libc::EPERM)) };
        let refused = q.acquire(refuse).err().map(|e| e.raw_os_error());
        assert_eq!(refused, Some(Some(libc::EPERM)), "no slot exists");
        let first = q.acquire(|| Ok(Bytes(b"a".to_vec()))).unwrap();
        assert!(queued(q.push(whole(&first.unwrap().0))));
        let reader = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.acquire(refuse).map(|slot| slot.map(|s| s.0)))
        };
        until_reader_waits(&q);
        let popped = q.pop(None).unwrap();
        let writer = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.pop(Some(popped.slot)).is_none())
        };
        assert_eq!(reader.join().unwrap().unwrap(), Some(b"a".to_vec()));
        q.finish_input();
        assert!(writer.join().unwrap());
    }

    #[test]
    fn a_refused_allocation_is_an_error_even_while_slots_exist() {
        let q = queue(4, usize::MAX, OnFull::Block);
        assert!(q.acquire(|| Ok(Bytes(Vec::new()))).unwrap().is_some());
        let oom = q.acquire(|| Err(io::Error::from(io::ErrorKind::OutOfMemory)));
        assert_eq!(
            oom.err().map(|e| e.kind()),
            Some(io::ErrorKind::OutOfMemory)
        );
    }

    #[test]
    fn the_writer_idle_clock_counts_a_wait_in_progress() {
        let (q, clock) = queue_with(1, usize::MAX, OnFull::Block);
        let q = Arc::new(q);
        let writer = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.pop(None).map(|i| i.slot.0))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !q.view().writer_waiting {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer never waited"
            );
            thread::yield_now();
        }
        clock.advance(Duration::from_millis(300));
        assert_eq!(q.view().writer_idle, Duration::from_millis(300));
        assert!(queued(q.push(whole(b"x"))));
        assert_eq!(writer.join().unwrap(), Some(b"x".to_vec()));
        assert_eq!(q.view().writer_idle, Duration::from_millis(300));
    }
}
