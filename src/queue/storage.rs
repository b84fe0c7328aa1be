//! The queue's storage: the chunks in order with their byte count and peaks, the free slots kept
//! for reuse, and what the one consumer has taken. A disk spool would be a second storage tier
//! behind this one; one lane per output would replace the single `Lane`.

use std::collections::VecDeque;

use crate::queue::{Item, Payload};

pub(crate) struct Storage<P> {
    items: VecDeque<Item<P>>,
    bytes: usize,
    peak_chunks: usize,
    peak_bytes: usize,
    free: Vec<P>,
    /// Slots made so far, free or in use.
    created: usize,
    /// No more slots than this are made: lowered to what exists when one is refused.
    ceiling: usize,
}

impl<P: Payload> Storage<P> {
    pub(crate) fn new(chunks: usize) -> Self {
        Storage {
            items: VecDeque::with_capacity(chunks.min(1 << 16)),
            bytes: 0,
            peak_chunks: 0,
            peak_bytes: 0,
            free: Vec::new(),
            created: 0,
            ceiling: usize::MAX,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn peaks(&self) -> (usize, usize) {
        (self.peak_chunks, self.peak_bytes)
    }

    pub(crate) fn push_back(&mut self, item: Item<P>) {
        self.bytes += item.len;
        self.items.push_back(item);
        self.peak_chunks = self.peak_chunks.max(self.items.len());
        self.peak_bytes = self.peak_bytes.max(self.bytes);
    }

    pub(crate) fn pop_front(&mut self) -> Option<Item<P>> {
        let item = self.items.pop_front()?;
        self.bytes -= item.len;
        Some(item)
    }

    pub(crate) fn get(&self, index: usize) -> Option<&Item<P>> {
        self.items.get(index)
    }

    pub(crate) fn remove(&mut self, index: usize) -> Option<Item<P>> {
        let item = self.items.remove(index)?;
        self.bytes -= item.len;
        Some(item)
    }

    /// Empties the queue, recycling the slots; returns the bytes thrown away.
    pub(crate) fn clear(&mut self) -> usize {
        let bytes = self.bytes;
        while let Some(item) = self.pop_front() {
            self.free.push(item.slot);
        }
        bytes
    }

    pub(crate) fn recycle(&mut self, slot: P) {
        self.free.push(slot);
    }

    pub(crate) fn forget(&mut self) {
        self.created = self.created.saturating_sub(1);
    }

    pub(crate) fn stock(&mut self, slots: Vec<P>) {
        self.created += slots.len();
        self.free.extend(slots);
    }

    pub(crate) fn take_free(&mut self) -> Option<P> {
        self.free.pop()
    }

    /// Counts one more slot as made, unless `limit` exist already.
    pub(crate) fn reserve_new(&mut self, limit: usize) -> bool {
        let room = self.created < limit.min(self.ceiling);
        self.created += usize::from(room);
        room
    }

    /// Takes back a reservation whose slot could not be made, and makes no more while others
    /// exist. False when none exists, so none will ever come free.
    pub(crate) fn refuse_new(&mut self) -> bool {
        self.created -= 1;
        if self.created == 0 {
            return false;
        }
        self.ceiling = self.created;
        true
    }
}

/// What the consumer has taken from the queue.
#[derive(Default)]
pub(crate) struct Lane {
    /// Bytes taken, written or not.
    pub(crate) taken_bytes: u64,
    /// The consumer has taken the head of the record now at the front, so the rest of that
    /// record cannot be dropped without cutting it.
    pub(crate) inside_record: bool,
}

impl Lane {
    pub(crate) fn take<P>(&mut self, item: &Item<P>) {
        self.taken_bytes += item.len as u64;
        self.inside_record = !item.ends_record;
    }
}
