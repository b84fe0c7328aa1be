//! Admission: what happens to a chunk offered to a full queue, by the `--on-full` policy, and
//! the tallies of what the policy dropped. In line mode a record longer than a chunk spans
//! several chunks, and the policy keeps or drops all of them together.

use crate::cli::OnFull;
use crate::queue::storage::{Lane, Storage};
use crate::queue::{Item, Payload};

/// What the policy dropped so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Drops {
    pub(crate) bytes: u64,
    pub(crate) chunks: u64,
    pub(crate) records: u64,
}

/// The policy's answer to one offer.
pub(crate) enum Decision<P> {
    /// There is room: queue it.
    Admit(Item<P>),
    /// Dropped and counted; the slot goes back to the reader.
    Dropped(P),
    /// Wait for room, then offer it again.
    Wait(Item<P>),
    /// Dropped and counted under `fail`: the reader stops.
    Rejected,
}

pub(crate) struct Admission {
    policy: OnFull,
    delimiter: Option<u8>,
    max_chunks: usize,
    max_bytes: usize,
    /// A record was dropped before its last chunk arrived: its remaining chunks go too.
    dropping_record: bool,
    drops: Drops,
}

impl Admission {
    pub(crate) fn new(
        policy: OnFull,
        delimiter: Option<u8>,
        max_chunks: usize,
        max_bytes: usize,
    ) -> Self {
        Admission {
            policy,
            delimiter,
            max_chunks,
            max_bytes,
            dropping_record: false,
            drops: Drops::default(),
        }
    }

    pub(crate) fn set_policy(&mut self, policy: OnFull) {
        self.policy = policy;
    }

    pub(crate) fn drops(&self) -> Drops {
        self.drops
    }

    fn count_drop<P: Payload>(&mut self, item: &Item<P>) {
        self.drops.bytes += item.len as u64;
        self.drops.chunks += 1;
        self.drops.records += self
            .delimiter
            .map_or(0, |d| item.slot.records(d, item.ends_record));
    }

    /// Drops and counts `item`, and the rest of its record after it; the slot is the reader's.
    fn drop_item<P: Payload>(&mut self, item: Item<P>) -> P {
        self.dropping_record = !item.ends_record;
        self.count_drop(&item);
        item.slot
    }

    pub(super) fn fits<P: Payload>(&self, storage: &Storage<P>, len: usize) -> bool {
        storage.is_empty()
            || (storage.len() < self.max_chunks && storage.bytes() + len <= self.max_bytes)
    }

    /// Decides what becomes of `item`, evicting from `storage` under drop-oldest. A record
    /// that cannot be kept whole is dropped whole: its queued head is withdrawn unless the
    /// consumer has started on it, in which case its rest waits for room.
    pub(crate) fn admit<P: Payload>(
        &mut self,
        item: Item<P>,
        storage: &mut Storage<P>,
        lane: &Lane,
    ) -> Decision<P> {
        loop {
            // Also after a withdrawal that took the head of the record this chunk continues.
            if self.dropping_record {
                return Decision::Dropped(self.drop_item(item));
            }
            if self.fits(storage, item.len) {
                return Decision::Admit(item);
            }
            match self.policy {
                OnFull::Block => return Decision::Wait(item),
                OnFull::Drop if item.starts_record => {
                    return Decision::Dropped(self.drop_item(item));
                }
                OnFull::Drop => return self.drop_current_record(item, storage, lane),
                OnFull::DropOldest => {
                    let newest_may_go = item.ends_record || self.record_may_fit(storage, &item);
                    if self.evict_oldest_record(storage, lane, newest_may_go) {
                        continue;
                    }
                    if !item.starts_record {
                        return self.drop_current_record(item, storage, lane);
                    }
                    // Only the record the consumer is writing is in the way: a whole record
                    // waits for it, the head of a long one goes rather than evict the freshest.
                    if item.ends_record {
                        return Decision::Wait(item);
                    }
                    return Decision::Dropped(self.drop_item(item));
                }
                OnFull::Fail => {
                    self.count_drop(&item);
                    // The record this chunk leaves unfinished is lost too, and counted once.
                    if self.delimiter.is_some() && !item.ends_record {
                        self.drops.records += 1;
                    }
                    if !writer_in_current_record(storage, lane) {
                        self.withdraw_current_record(storage);
                    }
                    return Decision::Rejected;
                }
            }
        }
    }

    /// Under `fail` in line mode the consumer only starts a record once it is whole in the
    /// queue, so that what `fail` lets through ends at a record boundary.
    pub(crate) fn holds_partial_records(&self) -> bool {
        self.policy == OnFull::Fail && self.delimiter.is_some()
    }

    /// Under `fail`, a tier in front rejected a chunk that continues the record whose head is
    /// here: the head is withdrawn as `admit` would (unless the consumer is writing it), and a
    /// piece of that record still on its way from the tier is dropped on arrival.
    pub(crate) fn withdraw_open_record<P: Payload>(
        &mut self,
        storage: &mut Storage<P>,
        lane: &Lane,
    ) {
        if writer_in_current_record(storage, lane) {
            return;
        }
        self.withdraw_current_record(storage);
        self.dropping_record = true;
    }

    /// A chunk from a tier in front, dropped and counted if it continues a record dropped or
    /// withdrawn here, as `admit` would; handed back otherwise.
    pub(crate) fn drop_continuation<P: Payload>(&mut self, item: Item<P>) -> Result<P, Item<P>> {
        if !self.dropping_record {
            return Err(item);
        }
        Ok(self.drop_item(item))
    }

    /// `item` continues a record that cannot be kept whole: drop it with the record's queued
    /// head, unless the consumer is already writing that record.
    fn drop_current_record<P: Payload>(
        &mut self,
        item: Item<P>,
        storage: &mut Storage<P>,
        lane: &Lane,
    ) -> Decision<P> {
        if writer_in_current_record(storage, lane) {
            return Decision::Wait(item);
        }
        self.withdraw_current_record(storage);
        Decision::Dropped(self.drop_item(item))
    }

    /// Removes the queued head of the record the reader is still sending, counting it dropped.
    fn withdraw_current_record<P: Payload>(&mut self, storage: &mut Storage<P>) {
        let start = last_record_end(storage);
        while storage.len() > start {
            if let Some(item) = storage.remove(start) {
                self.count_drop(&item);
                storage.recycle(item.slot);
            }
        }
    }

    /// Whether the record `item` continues (or starts), with what of it is queued, could still
    /// be held whole by an empty queue: while it could, it is the freshest data and may push
    /// out the newest whole record; once it cannot, it will be dropped whole, and the newest
    /// whole record is what gets through.
    fn record_may_fit<P: Payload>(&self, storage: &Storage<P>, item: &Item<P>) -> bool {
        let start = last_record_end(storage);
        let queued: usize = (start..storage.len())
            .filter_map(|i| storage.get(i).map(|queued| queued.len))
            .sum();
        storage.len() - start < self.max_chunks && queued + item.len <= self.max_bytes
    }

    /// Drops the oldest whole record the consumer has not started on; unless `newest_may_go`,
    /// never the newest whole one, which may be all that gets through. Returns false when
    /// there is none to drop.
    fn evict_oldest_record<P: Payload>(
        &mut self,
        storage: &mut Storage<P>,
        lane: &Lane,
        newest_may_go: bool,
    ) -> bool {
        let whole = whole_records(storage, lane);
        let candidates = if newest_may_go {
            whole.len()
        } else {
            whole.len().saturating_sub(1)
        };
        let Some(&(start, end)) = whole.first().filter(|_| candidates > 0) else {
            return false;
        };
        for _ in start..end {
            if let Some(item) = storage.remove(start) {
                self.count_drop(&item);
                storage.recycle(item.slot);
            }
        }
        true
    }
}

/// The index after the last chunk that ends a record: from there on, the queued head of the
/// record the reader is still sending.
fn last_record_end<P: Payload>(storage: &Storage<P>) -> usize {
    (0..storage.len())
        .rev()
        .find(|&i| storage.get(i).is_some_and(|item| item.ends_record))
        .map_or(0, |i| i + 1)
}

/// The consumer has taken the head of the record the reader is still sending.
fn writer_in_current_record<P: Payload>(storage: &Storage<P>, lane: &Lane) -> bool {
    lane.inside_record && last_record_end(storage) == 0
}

/// The spans `start..end` of the whole records in the queue that the consumer has not started
/// on, oldest first.
fn whole_records<P: Payload>(storage: &Storage<P>, lane: &Lane) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    let mut writers = lane.inside_record;
    for index in 0..storage.len() {
        if storage.get(index).is_some_and(|item| item.ends_record) {
            if !writers {
                spans.push((start, index + 1));
            }
            writers = false;
            start = index + 1;
        }
    }
    spans
}
