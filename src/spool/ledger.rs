//! The spool's state under its lock, and what `--on-full` does to a chunk when the spool is full:
//! the queue's policies (`queue/policy.rs`) applied to the spooled records, the newest of which
//! are the newest accepted. Only whole records are dropped or evicted; the one exception, as in
//! the queue, is a record that has already left the spool in part: its rest waits for room.

use std::time::{Duration, Instant};

use crate::cli::OnFull;
use crate::queue::{Drops, Item, Payload};
use crate::spool::index::{Entry, Index};

/// What the policy made of a chunk the spool has no room for.
pub(crate) enum Full<P> {
    /// Wait for room, then offer it again.
    Wait(Item<P>),
    /// Room was made: offer it again.
    Again(Item<P>),
    /// Dropped and counted; the slot goes back to the reader.
    Dropped(P),
    /// Dropped and counted under `fail`: the reader stops. True when the record it leaves
    /// unfinished began before the spool, so that its head, with the replayer or in the queue,
    /// must be withdrawn there too.
    Rejected(bool),
}

pub(crate) struct Ledger {
    pub(crate) index: Index,
    /// What the replayer has taken from the spool and not yet queued: it is still ahead of
    /// every new chunk.
    pub(crate) in_flight: Option<Entry>,
    /// No more is written to the spool after an I/O error on it.
    pub(crate) usable: bool,
    pub(crate) input_done: bool,
    pub(crate) closed: bool,
    pub(crate) policy: OnFull,
    delimiter: Option<u8>,
    /// A record was dropped before its last chunk arrived: its remaining chunks go too.
    pub(crate) dropping_record: bool,
    pub(crate) drops: Drops,
    /// Bytes the reader offered, whatever became of them.
    pub(crate) offered: u64,
    /// Offered after the close: never spooled, never queued.
    pub(crate) refused: u64,
    /// Spooled, then thrown away by the close.
    pub(crate) discarded: u64,
    /// Written to the spool in all.
    pub(crate) spooled: u64,
    blocked_since: Option<Instant>,
    blocked: Duration,
    /// Who sleeps on the spool's condvars: a wake-up nobody waits for costs a system call.
    pub(crate) room_waiters: u32,
    pub(crate) replayer_waits: bool,
}

impl Ledger {
    /// A ledger for a spool of `capacity` bytes, whose chunks are read back into slots of
    /// `slot_size`.
    pub(crate) fn new(
        (capacity, slot_size): (u64, usize),
        policy: OnFull,
        delimiter: Option<u8>,
    ) -> Ledger {
        Ledger {
            index: Index::new(capacity, slot_size),
            in_flight: None,
            usable: true,
            input_done: false,
            closed: false,
            policy,
            delimiter,
            dropping_record: false,
            drops: Drops::default(),
            offered: 0,
            refused: 0,
            discarded: 0,
            spooled: 0,
            blocked_since: None,
            blocked: Duration::ZERO,
            room_waiters: 0,
            replayer_waits: false,
        }
    }

    /// Nothing spooled and nothing on its way back: a new chunk may go to the queue directly.
    pub(crate) fn idle(&self) -> bool {
        self.index.is_empty() && self.in_flight.is_none()
    }

    /// Accepted bytes the spool holds, those on their way back included.
    pub(crate) fn held(&self) -> u64 {
        self.index.bytes() + self.in_flight.map_or(0, |e| e.len as u64)
    }

    /// A record end is spooled or on its way back: the record the queue holds the head of is
    /// whole in the buffer.
    pub(crate) fn holds_record_end(&self) -> bool {
        self.index.holds_record_end() || self.in_flight.is_some_and(|e| e.ends_record)
    }

    pub(crate) fn waiting(&self) -> bool {
        self.blocked_since.is_some()
    }

    pub(crate) fn wait_begins(&mut self, now: Instant) {
        self.blocked_since.get_or_insert(now);
    }

    pub(crate) fn wait_ends(&mut self, now: Instant) {
        if let Some(since) = self.blocked_since.take() {
            self.blocked += now.saturating_duration_since(since);
        }
    }

    /// Time the reader waited for room in the spool, a wait in progress included.
    pub(crate) fn blocked(&self, now: Instant) -> Duration {
        let ongoing = self
            .blocked_since
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        self.blocked + ongoing
    }

    fn count(&mut self, bytes: usize, records: u64) {
        self.drops.bytes += bytes as u64;
        self.drops.chunks += 1;
        self.drops.records += records;
    }

    fn count_item<P: Payload>(&mut self, item: &Item<P>) {
        let records = self
            .delimiter
            .map_or(0, |d| item.slot.records(d, item.ends_record));
        self.count(item.len, records);
    }

    fn count_entries(&mut self, entries: &[Entry]) {
        for entry in entries {
            self.count(entry.len, entry.records);
        }
    }

    /// Drops `item`, and the rest of its record after it; the slot goes back to the reader.
    pub(crate) fn drop_item<P: Payload>(&mut self, item: Item<P>) -> P {
        self.dropping_record = !item.ends_record;
        self.count_item(&item);
        item.slot
    }

    /// The policy, for `item`, which does not fit.
    pub(crate) fn full<P: Payload>(&mut self, item: Item<P>) -> Full<P> {
        match self.policy {
            OnFull::Block => Full::Wait(item),
            OnFull::Drop if item.starts_record => Full::Dropped(self.drop_item(item)),
            OnFull::Drop => self.drop_open_record(item),
            OnFull::DropOldest => {
                if self.evict_oldest_record(item.ends_record) {
                    return Full::Again(item);
                }
                if !item.starts_record {
                    return self.drop_open_record(item);
                }
                // Only a record the replayer has begun is in the way: a whole record waits for
                // it, the head of a long one goes rather than evict the newest whole record.
                match item.ends_record {
                    true => Full::Wait(item),
                    false => Full::Dropped(self.drop_item(item)),
                }
            }
            OnFull::Fail => Full::Rejected(self.reject(&item)),
        }
    }

    /// Counts `item` dropped under `fail`, and withdraws the spooled part of the record it
    /// leaves unfinished, so that what gets through ends at a record boundary. True when that
    /// record began before the spool.
    fn reject<P: Payload>(&mut self, item: &Item<P>) -> bool {
        self.count_item(item);
        // The record this chunk leaves unfinished is lost too, and counted once.
        if self.delimiter.is_some() && !item.ends_record {
            self.drops.records += 1;
        }
        let began_before = !item.starts_record && self.index.open_record_began_before();
        let start = match began_before {
            true => Some(0),
            false => self.index.open_record_start(),
        };
        if let Some(start) = start {
            let withdrawn = self.index.withdraw_from(start);
            self.count_entries(&withdrawn);
        }
        began_before
    }

    /// `item` continues a record that cannot be kept whole: drop it with the record's spooled
    /// head, unless part of that record has left the spool already.
    fn drop_open_record<P: Payload>(&mut self, item: Item<P>) -> Full<P> {
        let Some(start) = self.index.open_record_start() else {
            return Full::Wait(item);
        };
        let withdrawn = self.index.withdraw_from(start);
        self.count_entries(&withdrawn);
        Full::Dropped(self.drop_item(item))
    }

    /// Evicts the oldest spooled record, if it is whole here and at the front of the ring (an
    /// eviction behind the front would free no room a chunk can use), never the newest whole
    /// one unless the chunk offered ends a record. False when there is none to evict.
    fn evict_oldest_record(&mut self, offered_ends_record: bool) -> bool {
        if self.index.is_reading() {
            return false;
        }
        let Some(count) = self.index.oldest_whole_record(!offered_ends_record) else {
            return false;
        };
        let evicted = self.index.evict_front(count);
        self.count_entries(&evicted);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::TestBytes;

    fn item(data: &[u8], starts: bool, ends: bool) -> Item<TestBytes> {
        Item {
            slot: TestBytes(data.to_vec()),
            len: data.len(),
            starts_record: starts,
            ends_record: ends,
        }
    }

    fn spool(ledger: &mut Ledger, data: &[u8], starts: bool, ends: bool) {
        let pos = ledger.index.reserve(data.len());
        let records = TestBytes(data.to_vec()).records(b'\n', ends);
        ledger.index.push(Entry {
            pos,
            len: data.len(),
            starts_record: starts,
            ends_record: ends,
            records,
        });
    }

    fn ledger(policy: OnFull) -> Ledger {
        Ledger::new((8, 1), policy, Some(b'\n'))
    }

    #[test]
    fn drop_takes_the_spooled_head_of_a_record_with_its_rest() {
        let mut ledger = ledger(OnFull::Drop);
        spool(&mut ledger, b"a\n", true, true);
        spool(&mut ledger, b"hhhh", true, false);
        assert!(matches!(
            ledger.full(item(b"tt\n", false, true)),
            Full::Dropped(_)
        ));
        assert_eq!(ledger.index.bytes(), 2);
        let d = ledger.drops;
        assert_eq!((d.bytes, d.chunks, d.records), (7, 2, 1));
        assert!(!ledger.dropping_record);
    }

    #[test]
    fn drop_waits_when_the_record_has_left_the_spool_in_part() {
        let mut ledger = ledger(OnFull::Drop);
        spool(&mut ledger, b"mmmm", false, false);
        assert!(matches!(
            ledger.full(item(b"t\n", false, true)),
            Full::Wait(_)
        ));
        assert_eq!(ledger.drops, Drops::default());
    }

    #[test]
    fn drop_oldest_evicts_the_front_record_but_spares_the_newest_whole_one() {
        let mut ledger = ledger(OnFull::DropOldest);
        spool(&mut ledger, b"a\n", true, true);
        spool(&mut ledger, b"bb\n", true, true);
        assert!(matches!(
            ledger.full(item(b"cc", true, false)),
            Full::Again(_)
        ));
        assert_eq!(ledger.index.front().unwrap().len, 3);
        // "bb\n" is the newest whole record: the head of a long one is dropped instead.
        assert!(matches!(
            ledger.full(item(b"cc", true, false)),
            Full::Dropped(_)
        ));
        assert!(ledger.dropping_record);
        assert!(matches!(
            ledger.full(item(b"d\n", true, true)),
            Full::Again(_)
        ));
        assert!(ledger.index.is_empty());
    }

    #[test]
    fn drop_oldest_waits_for_the_replayer_to_finish_reading() {
        let mut ledger = ledger(OnFull::DropOldest);
        spool(&mut ledger, b"a\n", true, true);
        spool(&mut ledger, b"b\n", true, true);
        ledger.index.take_front();
        assert!(matches!(
            ledger.full(item(b"c\n", true, true)),
            Full::Wait(_)
        ));
        ledger.index.read_done();
        assert!(matches!(
            ledger.full(item(b"c\n", true, true)),
            Full::Again(_)
        ));
    }

    #[test]
    fn fail_withdraws_the_open_record_and_counts_it_once() {
        let mut ledger = ledger(OnFull::Fail);
        spool(&mut ledger, b"a\n", true, true);
        spool(&mut ledger, b"hh", true, false);
        assert!(matches!(
            ledger.full(item(b"mm", false, false)),
            Full::Rejected(false)
        ));
        let d = ledger.drops;
        assert_eq!((d.bytes, d.chunks, d.records), (4, 2, 1));
        assert_eq!(ledger.index.bytes(), 2);
    }

    #[test]
    fn fail_withdraws_all_that_is_spooled_of_a_record_begun_before_the_spool() {
        let mut ledger = ledger(OnFull::Fail);
        spool(&mut ledger, b"mmmm", false, false);
        assert!(matches!(
            ledger.full(item(b"tt", false, false)),
            Full::Rejected(true)
        ));
        assert!(ledger.index.is_empty());
        let d = ledger.drops;
        assert_eq!((d.bytes, d.chunks, d.records), (6, 2, 1));
        // A chunk that starts its record leaves nothing before it to withdraw.
        let mut ledger = self::ledger(OnFull::Fail);
        spool(&mut ledger, b"a\n", true, true);
        assert!(matches!(
            ledger.full(item(b"hh", true, false)),
            Full::Rejected(false)
        ));
        assert_eq!(ledger.index.bytes(), 2);
    }

    #[test]
    fn the_blocked_clock_counts_a_wait_in_progress() {
        let mut ledger = ledger(OnFull::Block);
        let t0 = Instant::now();
        ledger.wait_begins(t0);
        assert!(ledger.waiting());
        assert_eq!(
            ledger.blocked(t0 + Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        ledger.wait_ends(t0 + Duration::from_secs(3));
        assert_eq!(
            ledger.blocked(t0 + Duration::from_secs(9)),
            Duration::from_secs(3)
        );
    }
}
