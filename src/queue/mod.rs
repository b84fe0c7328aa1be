//! The bounded queue between the reader and the writer, and the overload policies that act on it.
//!
//! The queue does not care what a slot holds (a buffer in memory or an internal pipe): it only
//! needs its length. Slots are recycled through a free list so that a long run allocates nothing
//! per chunk. Each side is woken only when the other one is actually waiting, which keeps the hot
//! path to one uncontended lock per chunk and side.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use std::{hint, thread};

use crate::cli::OnFull;
use crate::report::snapshot::Counters;

/// Rounds of backing off, with the lock released, before a stage sleeps on its condvar. The
/// other stage usually acts within microseconds, and a futex sleep and wake-up costs more than
/// that on both sides.
const BACK_OFF_ROUNDS: u32 = 8;

fn back_off(round: u32) {
    if round <= 4 {
        for _ in 0..(4 << round) {
            hint::spin_loop();
        }
    } else {
        thread::yield_now();
    }
}

/// What the queue needs to know of a slot.
pub trait Slot: Send {
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
/// record; in line mode a record longer than a chunk spans several chunks, and the policies must
/// keep or drop all of them together.
pub struct Item<S> {
    pub slot: S,
    pub len: usize,
    pub starts_record: bool,
    pub ends_record: bool,
}

/// What happened to a chunk the reader offered.
pub enum Push<S> {
    Queued,
    /// Dropped by the policy; the reader keeps the slot for its next read.
    Dropped(S),
    /// The queue was full under `fail`: the chunk was counted as dropped and the reader stops.
    Rejected,
    /// The output is gone or the relay is stopping: the chunk will never be written.
    Closed,
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub chunks: usize,
    pub bytes: usize,
    /// Slots that may exist at once: the queue's, plus those the two stages hold.
    pub slots: usize,
    /// The record delimiter in line mode, so that drops count records.
    pub delimiter: Option<u8>,
}

/// What the queue looks like right now, for stats and the stall watchdog.
#[derive(Clone, Copy, Debug, Default)]
pub struct View {
    pub chunks: usize,
    pub bytes: usize,
    pub peak_chunks: usize,
    pub peak_bytes: usize,
    pub reader_blocked: Duration,
    pub writer_idle: Duration,
    pub reader_waiting: bool,
    pub writer_waiting: bool,
    /// Bytes the writer has taken from the queue, written or not.
    pub taken_bytes: u64,
}

struct State<S> {
    items: VecDeque<Item<S>>,
    bytes: usize,
    free: Vec<S>,
    created: usize,
    input_done: bool,
    closed: bool,
    /// The writer has taken the head of the record now at the front, so the rest of that record
    /// cannot be dropped without cutting it.
    front_committed: bool,
    /// A record was dropped before its last chunk arrived: its remaining chunks go too.
    dropping_record: bool,
    reader_wait_start: Option<Instant>,
    writer_wait_start: Option<Instant>,
    reader_blocked: Duration,
    writer_idle: Duration,
    peak_chunks: usize,
    peak_bytes: usize,
    taken_bytes: u64,
}

pub struct Queue<S> {
    limits: Limits,
    state: Mutex<State<S>>,
    room: Condvar,
    data: Condvar,
}

impl<S: Slot> Queue<S> {
    pub fn new(limits: Limits) -> Self {
        let state = State {
            items: VecDeque::with_capacity(limits.chunks.min(1 << 16)),
            bytes: 0,
            free: Vec::new(),
            created: 0,
            input_done: false,
            closed: false,
            front_committed: false,
            dropping_record: false,
            reader_wait_start: None,
            writer_wait_start: None,
            reader_blocked: Duration::ZERO,
            writer_idle: Duration::ZERO,
            peak_chunks: 0,
            peak_bytes: 0,
            taken_bytes: 0,
        };
        Queue {
            limits,
            state: Mutex::new(state),
            room: Condvar::new(),
            data: Condvar::new(),
        }
    }

    /// Hands the queue every slot it may use, made up front.
    pub fn stock(&self, slots: Vec<S>) {
        let mut state = self.lock();
        state.created += slots.len();
        state.free.extend(slots);
    }

    pub fn capacity_chunks(&self) -> usize {
        self.limits.chunks
    }

    pub fn capacity_bytes(&self) -> usize {
        self.limits.bytes
    }

    fn lock(&self) -> MutexGuard<'_, State<S>> {
        // A poisoned lock means a stage panicked; the counters are still the best account we have.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the writer to take a chunk or return a slot: first a few rounds of backing
    /// off, then asleep on the condvar.
    fn wait_for_room<'a>(
        &'a self,
        mut state: MutexGuard<'a, State<S>>,
        round: &mut u32,
    ) -> MutexGuard<'a, State<S>> {
        if *round < BACK_OFF_ROUNDS {
            *round += 1;
            drop(state);
            back_off(*round);
            return self.lock();
        }
        state.reader_wait_start = Some(Instant::now());
        state = self.room.wait(state).unwrap_or_else(|e| e.into_inner());
        if let Some(start) = state.reader_wait_start.take() {
            state.reader_blocked += start.elapsed();
        }
        state
    }

    /// A slot to fill: a recycled one, a new one from `make` while fewer than the limit exist, or
    /// `None` once the relay is closing.
    pub fn acquire<E>(&self, make: impl FnOnce() -> Result<S, E>) -> Result<Option<S>, E> {
        let mut state = self.lock();
        let mut round = 0;
        loop {
            if state.closed {
                return Ok(None);
            }
            if let Some(slot) = state.free.pop() {
                return Ok(Some(slot));
            }
            if state.created < self.limits.slots {
                state.created += 1;
                drop(state);
                return make().map(Some);
            }
            state = self.wait_for_room(state, &mut round);
        }
    }

    /// Offers a filled chunk, applying the overload policy when the queue is full.
    pub fn push(&self, item: Item<S>, policy: OnFull, counters: &Counters) -> Push<S> {
        let mut state = self.lock();
        let mut round = 0;
        loop {
            if state.closed {
                return Push::Closed;
            }
            if state.dropping_record {
                state.dropping_record = !item.ends_record;
                counters.dropped(item.len, self.records(&item));
                return Push::Dropped(item.slot);
            }
            if self.fits(&state, item.len) {
                state.bytes += item.len;
                state.items.push_back(item);
                state.peak_chunks = state.peak_chunks.max(state.items.len());
                state.peak_bytes = state.peak_bytes.max(state.bytes);
                if state.writer_wait_start.is_some() {
                    self.data.notify_one();
                }
                return Push::Queued;
            }
            match policy {
                OnFull::Block => state = self.wait_for_room(state, &mut round),
                OnFull::Drop if item.starts_record => {
                    state.dropping_record = !item.ends_record;
                    counters.dropped(item.len, self.records(&item));
                    return Push::Dropped(item.slot);
                }
                // The head of this record is already accepted: dropping the rest would cut it.
                OnFull::Drop => state = self.wait_for_room(state, &mut round),
                OnFull::DropOldest => {
                    if !self.evict_oldest_record(&mut state, counters) {
                        state = self.wait_for_room(state, &mut round);
                    }
                }
                OnFull::Fail => {
                    counters.dropped(item.len, self.records(&item));
                    return Push::Rejected;
                }
            }
        }
    }

    fn fits(&self, state: &State<S>, len: usize) -> bool {
        state.items.is_empty()
            || (state.items.len() < self.limits.chunks && state.bytes + len <= self.limits.bytes)
    }

    /// Drops the oldest record the writer has not started on. Returns false when there is none.
    fn records(&self, item: &Item<S>) -> u64 {
        self.limits
            .delimiter
            .map_or(0, |d| item.slot.records(d, item.ends_record))
    }

    fn evict_oldest_record(&self, state: &mut State<S>, counters: &Counters) -> bool {
        let mut index = 0;
        if state.front_committed {
            while index < state.items.len() {
                index += 1;
                if state.items[index - 1].ends_record {
                    break;
                }
            }
        }
        if index >= state.items.len() {
            return false;
        }
        loop {
            let Some(item) = state.items.remove(index) else {
                // The record goes on past the queue: its later chunks must be dropped as they come.
                state.dropping_record = true;
                break;
            };
            state.bytes -= item.len;
            counters.dropped(item.len, self.records(&item));
            let ends = item.ends_record;
            state.free.push(item.slot);
            if ends {
                break;
            }
        }
        true
    }

    /// The reader is done: the writer drains what is queued, then stops.
    pub fn finish_input(&self) {
        let mut state = self.lock();
        state.input_done = true;
        self.data.notify_one();
    }

    /// The output is gone or the relay must stop now: whatever is queued will never be written.
    /// Returns the bytes thrown away.
    pub fn close(&self) -> usize {
        let mut state = self.lock();
        state.closed = true;
        let discarded = state.bytes;
        state.items.clear();
        state.bytes = 0;
        self.room.notify_all();
        self.data.notify_all();
        discarded
    }

    /// Returns the slot the writer has emptied, and waits for the next chunk. `None` once the
    /// input is done and the queue is empty, or the relay is closing.
    pub fn pop(&self, emptied: Option<S>) -> Option<Item<S>> {
        let mut state = self.lock();
        if let Some(slot) = emptied {
            state.free.push(slot);
        }
        let mut round = 0;
        loop {
            if state.closed {
                return None;
            }
            if let Some(item) = state.items.pop_front() {
                state.bytes -= item.len;
                state.taken_bytes += item.len as u64;
                state.front_committed = !item.ends_record;
                if state.reader_wait_start.is_some() {
                    self.room.notify_one();
                }
                return Some(item);
            }
            if state.input_done {
                return None;
            }
            if state.reader_wait_start.is_some() {
                // The reader may be waiting for a free slot rather than for room.
                self.room.notify_one();
            }
            if round < BACK_OFF_ROUNDS {
                round += 1;
                drop(state);
                back_off(round);
                state = self.lock();
                continue;
            }
            state.writer_wait_start = Some(Instant::now());
            state = self.data.wait(state).unwrap_or_else(|e| e.into_inner());
            if let Some(start) = state.writer_wait_start.take() {
                state.writer_idle += start.elapsed();
            }
        }
    }

    pub fn view(&self) -> View {
        let state = self.lock();
        let now = Instant::now();
        let ongoing = |start: Option<Instant>| start.map_or(Duration::ZERO, |s| now - s);
        View {
            chunks: state.items.len(),
            bytes: state.bytes,
            peak_chunks: state.peak_chunks,
            peak_bytes: state.peak_bytes,
            reader_blocked: state.reader_blocked + ongoing(state.reader_wait_start),
            writer_idle: state.writer_idle + ongoing(state.writer_wait_start),
            reader_waiting: state.reader_wait_start.is_some(),
            writer_waiting: state.writer_wait_start.is_some(),
            taken_bytes: state.taken_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    struct Bytes(Vec<u8>);

    impl Slot for Bytes {
        fn len(&self) -> usize {
            self.0.len()
        }

        fn records(&self, delimiter: u8, ends_record: bool) -> u64 {
            let ends = self.0.iter().filter(|&&b| b == delimiter).count() as u64;
            ends + u64::from(ends_record && self.0.last() != Some(&delimiter))
        }
    }

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

    fn queue(chunks: usize, bytes: usize) -> Queue<Bytes> {
        Queue::new(Limits {
            chunks,
            bytes,
            slots: chunks + 3,
            delimiter: Some(b'\n'),
        })
    }

    fn drain(queue: &Queue<Bytes>) -> Vec<Vec<u8>> {
        queue.finish_input();
        std::iter::from_fn(|| queue.pop(None).map(|i| i.slot.0)).collect()
    }

    #[test]
    fn drop_discards_the_newest() {
        let q = queue(2, usize::MAX);
        let c = Counters::default();
        for data in [b"a", b"b"] {
            assert!(matches!(
                q.push(whole(data), OnFull::Drop, &c),
                Push::Queued
            ));
        }
        assert!(matches!(
            q.push(whole(b"c"), OnFull::Drop, &c),
            Push::Dropped(_)
        ));
        assert_eq!(drain(&q), vec![b"a".to_vec(), b"b".to_vec()]);
        let s = c.totals();
        assert_eq!(
            (s.bytes_dropped, s.chunks_dropped, s.records_dropped),
            (1, 1, 1)
        );
    }

    #[test]
    fn drop_oldest_keeps_the_freshest() {
        let q = queue(2, usize::MAX);
        let c = Counters::default();
        for data in [b"a", b"b", b"c", b"d"] {
            assert!(matches!(
                q.push(whole(data), OnFull::DropOldest, &c),
                Push::Queued
            ));
        }
        assert_eq!(drain(&q), vec![b"c".to_vec(), b"d".to_vec()]);
        assert_eq!(c.totals().chunks_dropped, 2);
    }

    #[test]
    fn byte_bound_holds_with_small_chunks() {
        let q = queue(100, 4);
        let c = Counters::default();
        for data in [b"ab", b"cd"] {
            assert!(matches!(
                q.push(whole(data), OnFull::Drop, &c),
                Push::Queued
            ));
        }
        assert!(matches!(
            q.push(whole(b"e"), OnFull::Drop, &c),
            Push::Dropped(_)
        ));
        assert_eq!(q.view().bytes, 4);
    }

    #[test]
    fn fail_counts_the_rejected_chunk() {
        let q = queue(1, usize::MAX);
        let c = Counters::default();
        assert!(matches!(
            q.push(whole(b"a"), OnFull::Fail, &c),
            Push::Queued
        ));
        assert!(matches!(
            q.push(whole(b"bb"), OnFull::Fail, &c),
            Push::Rejected
        ));
        assert_eq!(c.totals().bytes_dropped, 2);
    }

    #[test]
    fn drop_oldest_removes_a_whole_record_and_its_tail() {
        let q = queue(3, usize::MAX);
        let c = Counters::default();
        assert!(matches!(
            q.push(item(b"r1a", true, false), OnFull::DropOldest, &c),
            Push::Queued
        ));
        assert!(matches!(
            q.push(item(b"r1b", false, false), OnFull::DropOldest, &c),
            Push::Queued
        ));
        assert!(matches!(
            q.push(item(b"r1c", false, false), OnFull::DropOldest, &c),
            Push::Queued
        ));
        // Full: the oldest record is r1, which has not ended, so its next chunk goes too.
        assert!(matches!(
            q.push(item(b"r1d\n", false, true), OnFull::DropOldest, &c),
            Push::Dropped(_)
        ));
        assert!(matches!(
            q.push(whole(b"r2\n"), OnFull::DropOldest, &c),
            Push::Queued
        ));
        assert_eq!(drain(&q), vec![b"r2\n".to_vec()]);
        let s = c.totals();
        assert_eq!(
            (s.chunks_dropped, s.records_dropped, s.bytes_dropped),
            (4, 1, 13)
        );
    }

    #[test]
    fn drop_oldest_never_cuts_a_record_the_writer_started() {
        let q = Arc::new(queue(2, usize::MAX));
        let c = Counters::default();
        assert!(matches!(
            q.push(item(b"h", true, false), OnFull::DropOldest, &c),
            Push::Queued
        ));
        let head = q.pop(None).unwrap();
        assert_eq!(head.slot.0, b"h");
        assert!(matches!(
            q.push(item(b"t\n", false, true), OnFull::DropOldest, &c),
            Push::Queued
        ));
        assert!(matches!(
            q.push(whole(b"x\n"), OnFull::DropOldest, &c),
            Push::Queued
        ));
        // Full; the tail of the started record must survive, so the next record is evicted.
        assert!(matches!(
            q.push(whole(b"y\n"), OnFull::DropOldest, &c),
            Push::Queued
        ));
        assert_eq!(drain(&q), vec![b"t\n".to_vec(), b"y\n".to_vec()]);
    }

    #[test]
    fn drop_waits_rather_than_cut_an_accepted_record() {
        let q = Arc::new(queue(1, usize::MAX));
        let c = Arc::new(Counters::default());
        assert!(matches!(
            q.push(item(b"h", true, false), OnFull::Drop, &c),
            Push::Queued
        ));
        let writer = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                q.pop(None).map(|i| i.slot.0)
            })
        };
        assert!(matches!(
            q.push(item(b"t\n", false, true), OnFull::Drop, &c),
            Push::Queued
        ));
        assert_eq!(writer.join().unwrap(), Some(b"h".to_vec()));
        assert!(q.view().reader_blocked > Duration::ZERO);
        assert_eq!(c.totals().bytes_dropped, 0);
    }

    #[test]
    fn close_releases_a_blocked_reader() {
        let q = Arc::new(queue(1, usize::MAX));
        let c = Arc::new(Counters::default());
        assert!(matches!(
            q.push(whole(b"a"), OnFull::Block, &c),
            Push::Queued
        ));
        let reader = {
            let (q, c) = (Arc::clone(&q), Arc::clone(&c));
            thread::spawn(move || matches!(q.push(whole(b"b"), OnFull::Block, &c), Push::Closed))
        };
        thread::sleep(Duration::from_millis(30));
        assert_eq!(q.close(), 1);
        assert!(reader.join().unwrap());
        assert!(q.pop(None).is_none());
    }

    #[test]
    fn slots_are_recycled_up_to_the_limit() {
        let q = queue(1, usize::MAX);
        let made = std::cell::Cell::new(0);
        let make = || -> Result<Bytes, ()> {
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
}
