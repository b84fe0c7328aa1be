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

    fn drop_item<P: Payload>(&mut self, item: Item<P>) -> Decision<P> {
        self.dropping_record = !item.ends_record;
        self.count_drop(&item);
        Decision::Dropped(item.slot)
    }

    fn fits<P: Payload>(&self, storage: &Storage<P>, len: usize) -> bool {
        storage.is_empty()
            || (storage.len() < self.max_chunks && storage.bytes() + len <= self.max_bytes)
    }

    /// Decides what becomes of `item`, evicting from `storage` under drop-oldest.
    pub(crate) fn admit<P: Payload>(
        &mut self,
        item: Item<P>,
        storage: &mut Storage<P>,
        lane: &Lane,
    ) -> Decision<P> {
        loop {
            // Also after an eviction that took the head of the record this chunk continues.
            if self.dropping_record {
                return self.drop_item(item);
            }
            if self.fits(storage, item.len) {
                return Decision::Admit(item);
            }
            match self.policy {
                OnFull::Block => return Decision::Wait(item),
                OnFull::Drop if item.starts_record => return self.drop_item(item),
                // The head of this record is already accepted: dropping the rest would cut it.
                OnFull::Drop => return Decision::Wait(item),
                OnFull::DropOldest => {
                    if !self.evict_oldest_record(storage, lane) {
                        return Decision::Wait(item);
                    }
                }
                OnFull::Fail => {
                    self.count_drop(&item);
                    return Decision::Rejected;
                }
            }
        }
    }

    /// Drops the oldest record the consumer has not started on. Returns false when there is
    /// none.
    fn evict_oldest_record<P: Payload>(&mut self, storage: &mut Storage<P>, lane: &Lane) -> bool {
        let mut index = 0;
        if lane.inside_record {
            while let Some(item) = storage.get(index) {
                index += 1;
                if item.ends_record {
                    break;
                }
            }
        }
        if index >= storage.len() {
            return false;
        }
        loop {
            let Some(item) = storage.remove(index) else {
                // The record goes on past the queue: its later chunks must be dropped as they come.
                self.dropping_record = true;
                break;
            };
            self.count_drop(&item);
            let ends = item.ends_record;
            storage.recycle(item.slot);
            if ends {
                break;
            }
        }
        true
    }
}
