//! What the spool holds, in memory: each spooled chunk's place in the ring and where it sits
//! among records, so that drops and evictions keep whole records as the queue's do; and how much
//! of the ring is in use.
//!
//! Small chunks that follow each other are kept as one entry, as long as it fits in a slot and
//! holds whole records (or pieces of one record): a producer that trickles lines would otherwise
//! cost an entry per line, and the index would grow with the spool instead of with its chunks.

use std::collections::VecDeque;

/// One spooled chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) pos: u64,
    pub(crate) len: usize,
    pub(crate) starts_record: bool,
    pub(crate) ends_record: bool,
    /// The records it holds the end of, in line mode, for the drop tallies.
    pub(crate) records: u64,
}

pub(crate) struct Index {
    entries: VecDeque<Entry>,
    capacity: u64,
    /// The most one entry may hold: what a slot holds, for the replayer to read it back into.
    max_entry: usize,
    /// Where the next chunk goes: the end of what is written, or being written.
    tail: u64,
    /// The chunk the replayer is reading: its bytes are in use until the read is done.
    reading: Option<u64>,
    /// Bytes in `entries`.
    bytes: u64,
    peak: u64,
    /// Entries that end a record: whether a record the queue holds the head of is whole in the
    /// buffer is asked under the queue's lock, and must not walk the index.
    ends: usize,
}

impl Index {
    pub(crate) fn new(capacity: u64, max_entry: usize) -> Index {
        Index {
            entries: VecDeque::new(),
            capacity,
            max_entry,
            tail: 0,
            reading: None,
            bytes: 0,
            peak: 0,
            ends: 0,
        }
    }

    /// The oldest position still in use.
    fn head(&self) -> u64 {
        self.reading
            .or(self.entries.front().map(|e| e.pos))
            .unwrap_or(self.tail)
    }

    /// Bytes of the ring in use: spooled, being written, or being read back.
    pub(crate) fn used(&self) -> u64 {
        self.tail - self.head()
    }

    pub(crate) fn peak(&self) -> u64 {
        self.peak
    }

    /// Bytes spooled and not yet taken by the replayer.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn front(&self) -> Option<&Entry> {
        self.entries.front()
    }

    /// Some spooled chunk ends a record.
    pub(crate) fn holds_record_end(&self) -> bool {
        self.ends > 0
    }

    /// Takes `entries` out of the counts, once they have left the index.
    fn forget(&mut self, entries: &[Entry]) {
        self.bytes -= entries.iter().map(|e| e.len as u64).sum::<u64>();
        self.ends -= entries.iter().filter(|e| e.ends_record).count();
    }

    pub(crate) fn fits(&self, len: usize) -> bool {
        self.used() + len as u64 <= self.capacity
    }

    /// Takes `len` bytes at the tail for a chunk about to be written; returns its position.
    pub(crate) fn reserve(&mut self, len: usize) -> u64 {
        let pos = self.tail;
        self.tail += len as u64;
        pos
    }

    /// Gives back the tail from `pos` on: a write that failed there.
    pub(crate) fn unreserve(&mut self, pos: u64) {
        self.tail = pos;
    }

    /// Records a chunk written at the position `reserve` gave, joining it to the newest entry
    /// where both hold whole records, or both pieces of one record, and together fit a slot.
    pub(crate) fn push(&mut self, entry: Entry) {
        self.bytes += entry.len as u64;
        self.peak = self.peak.max(self.used());
        let max_entry = self.max_entry;
        if let Some(last) = self.entries.back_mut()
            && last.pos + last.len as u64 == entry.pos
            && last.len + entry.len <= max_entry
        {
            let whole = last.ends_record && entry.starts_record && entry.ends_record;
            let one_record = !last.ends_record && !entry.starts_record;
            if whole || one_record {
                self.ends -= usize::from(last.ends_record);
                self.ends += usize::from(entry.ends_record);
                last.len += entry.len;
                last.ends_record = entry.ends_record;
                last.records += entry.records;
                return;
            }
        }
        self.ends += usize::from(entry.ends_record);
        self.entries.push_back(entry);
    }

    /// Hands the oldest chunk to the replayer, whose read keeps its bytes in use.
    pub(crate) fn take_front(&mut self) -> Option<Entry> {
        let entry = self.entries.pop_front()?;
        self.forget(&[entry]);
        self.reading = Some(entry.pos);
        Some(entry)
    }

    pub(crate) fn read_done(&mut self) {
        self.reading = None;
    }

    pub(crate) fn is_reading(&self) -> bool {
        self.reading.is_some()
    }

    /// Empties the index; returns the bytes thrown away.
    pub(crate) fn clear(&mut self) -> u64 {
        let bytes = self.bytes;
        self.entries.clear();
        self.bytes = 0;
        self.ends = 0;
        bytes
    }

    /// The entries of the record the reader is still sending, if its head is among them (the
    /// whole of what was sent of it is here): the index of its first entry.
    pub(crate) fn open_record_start(&self) -> Option<usize> {
        let start = self
            .entries
            .iter()
            .rposition(|e| e.ends_record)
            .map_or(0, |i| i + 1);
        self.entries
            .get(start)
            .is_some_and(|e| e.starts_record)
            .then_some(start)
    }

    /// Whether the record a chunk that does not start one continues began before the spool: no
    /// spooled chunk starts or ends a record, so all of them are its middle, and its head is
    /// with the replayer or in the queue.
    pub(crate) fn open_record_began_before(&self) -> bool {
        self.ends == 0 && self.entries.iter().all(|e| !e.starts_record)
    }

    /// Removes the entries from `start` on, the newest, giving back their space.
    pub(crate) fn withdraw_from(&mut self, start: usize) -> Vec<Entry> {
        let removed: Vec<Entry> = self.entries.drain(start..).collect();
        if let Some(first) = removed.first() {
            self.tail = first.pos;
        }
        self.forget(&removed);
        removed
    }

    /// The oldest spooled record, if the front entry starts it and it is whole here, and if it is
    /// not the newest whole record while `keep_newest` says to spare that one: how many entries
    /// it spans.
    pub(crate) fn oldest_whole_record(&self, keep_newest: bool) -> Option<usize> {
        if !self.entries.front()?.starts_record {
            return None;
        }
        let end = self.entries.iter().position(|e| e.ends_record)?;
        let newer_whole = self.entries.iter().skip(end + 1).any(|e| e.ends_record);
        (!keep_newest || newer_whole).then_some(end + 1)
    }

    /// Removes the `count` oldest entries.
    pub(crate) fn evict_front(&mut self, count: usize) -> Vec<Entry> {
        let removed: Vec<Entry> = self.entries.drain(..count).collect();
        self.forget(&removed);
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(index: &mut Index, len: usize, starts: bool, ends: bool) -> u64 {
        let pos = index.reserve(len);
        index.push(Entry {
            pos,
            len,
            starts_record: starts,
            ends_record: ends,
            records: u64::from(ends),
        });
        pos
    }

    #[test]
    fn the_ring_is_in_use_from_the_oldest_chunk_or_the_one_being_read() {
        let mut index = Index::new(10, 4);
        spool(&mut index, 4, true, true);
        spool(&mut index, 4, true, true);
        assert!(!index.fits(3));
        let first = index.take_front().unwrap();
        assert_eq!((first.pos, index.used(), index.bytes()), (0, 8, 4));
        assert!(!index.fits(3), "the chunk being read still holds its bytes");
        index.read_done();
        assert!(index.fits(6));
        assert_eq!(spool(&mut index, 6, true, true), 8);
        assert_eq!((index.used(), index.peak()), (10, 10));
    }

    #[test]
    fn small_whole_records_share_an_entry_up_to_a_slot() {
        let mut index = Index::new(100, 10);
        for _ in 0..5 {
            spool(&mut index, 3, true, true);
        }
        // 3 + 3 + 3 fit a slot of 10; the fourth starts an entry, the fifth joins it.
        assert_eq!(index.take_front().map(|e| (e.len, e.records)), Some((9, 3)));
        index.read_done();
        assert_eq!(index.front().map(|e| e.len), Some(6));
        // The head of a long record never joins whole records, its pieces join each other.
        spool(&mut index, 2, true, false);
        spool(&mut index, 2, false, false);
        spool(&mut index, 2, false, true);
        index.take_front();
        let long = index.take_front().unwrap();
        assert_eq!(
            (long.len, long.starts_record, long.ends_record),
            (6, true, true)
        );
    }

    #[test]
    fn withdrawing_the_open_record_gives_back_the_tail() {
        let mut index = Index::new(100, 5);
        spool(&mut index, 5, true, true);
        assert_eq!(index.open_record_start(), None);
        spool(&mut index, 5, true, false);
        spool(&mut index, 5, false, false);
        assert_eq!(index.open_record_start(), Some(1));
        let removed = index.withdraw_from(1);
        assert_eq!(removed.len(), 2);
        assert_eq!((index.used(), index.bytes()), (5, 5));
        assert_eq!(spool(&mut index, 1, true, true), 5);
    }

    #[test]
    fn a_record_whose_head_left_is_not_open_here() {
        let mut index = Index::new(100, 5);
        assert!(index.open_record_began_before());
        spool(&mut index, 5, false, false);
        assert_eq!(index.open_record_start(), None);
        assert_eq!(index.oldest_whole_record(false), None);
        assert!(index.open_record_began_before());
        assert!(!index.holds_record_end());
        spool(&mut index, 2, false, true);
        assert!(index.holds_record_end());
        assert!(!index.open_record_began_before());
        spool(&mut index, 2, true, false);
        assert!(!index.open_record_began_before());
    }

    #[test]
    fn the_record_ends_are_counted_through_joins_and_removals() {
        let mut index = Index::new(100, 6);
        spool(&mut index, 2, true, false);
        spool(&mut index, 2, false, false);
        assert!(!index.holds_record_end());
        // Joined to the entry before it, the end is counted once.
        spool(&mut index, 2, false, true);
        assert_eq!((index.entries.len(), index.ends), (1, 1));
        spool(&mut index, 2, true, true);
        assert_eq!((index.entries.len(), index.ends), (2, 2));
        index.take_front();
        index.read_done();
        assert_eq!(index.ends, 1);
        spool(&mut index, 2, true, false);
        index.withdraw_from(1);
        assert_eq!(index.ends, 1);
        index.evict_front(1);
        assert!(!index.holds_record_end());
        spool(&mut index, 2, true, true);
        index.clear();
        assert!(!index.holds_record_end());
    }

    #[test]
    fn the_oldest_whole_record_spares_the_newest_when_asked() {
        let mut index = Index::new(100, 5);
        spool(&mut index, 5, true, false);
        spool(&mut index, 5, false, true);
        assert_eq!(index.oldest_whole_record(false), Some(2));
        assert_eq!(index.oldest_whole_record(true), None);
        spool(&mut index, 5, true, true);
        assert_eq!(index.oldest_whole_record(true), Some(2));
        assert_eq!(index.evict_front(2).len(), 2);
        assert_eq!((index.used(), index.bytes()), (5, 5));
    }
}
