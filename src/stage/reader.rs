//! The reader stage: reads the inputs in order and offers each chunk to the queue.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use crate::cli::OnFull;
use crate::io::endpoint::Endpoint;
use crate::queue::{Item, Push, Queue, Slot};
use crate::report::snapshot::Counters;
use crate::slot::memory::{Chunk, MemSlot};
use crate::stage::limiter::Limiter;

/// Why the reader stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// Every input reached its end.
    Eof,
    /// A stop was requested (a signal, or another stage's failure).
    Stopped,
    /// The queue was full under `--on-full fail`.
    Rejected,
    /// The output is gone; nothing more can be written.
    Closed,
}

pub struct Reader<'a, S> {
    pub queue: &'a Queue<S>,
    pub counters: &'a Counters,
    pub policy: OnFull,
    /// The most one read may move.
    pub chunk_size: usize,
    pub limiter: Option<Limiter>,
    pub stop: &'a AtomicBool,
}

/// Whether a chunk was taken, and the slot to read into next if the reader keeps it.
enum Offer<S> {
    Taken(Option<S>),
    End(ReadEnd),
}

impl<S: Chunk> Reader<'_, S> {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// A slot to read into: the one kept from a drop, or one from the queue's pool.
    fn slot(
        &self,
        spare: &mut Option<S>,
        make: &impl Fn() -> io::Result<S>,
    ) -> anyhow::Result<Option<S>> {
        let mut slot = match spare.take() {
            Some(slot) => slot,
            None => match self
                .queue
                .acquire(make)
                .context("cannot make a queue slot")?
            {
                Some(slot) => slot,
                None => return Ok(None),
            },
        };
        slot.clear().context("cannot empty a queue slot")?;
        Ok(Some(slot))
    }

    /// One read of at most `max` bytes, paced by the read-rate limit.
    fn read_once(
        &mut self,
        slot: &mut S,
        input: &Endpoint,
        max: usize,
        stream: &mut S::Stream,
    ) -> anyhow::Result<Option<usize>> {
        let max = match &mut self.limiter {
            Some(limiter) => {
                let max = max.min(limiter.step() as usize).max(1);
                self.counters
                    .reader_throttled(limiter.acquire(max as u64, self.stop));
                max
            }
            None => max,
        };
        // A stop cuts a throttled wait short: do not read once more after it.
        if self.stopping() {
            return Ok(None);
        }
        match slot.fill(input.fd(), max, stream) {
            Ok(n) => {
                if let Some(limiter) = &mut self.limiter {
                    limiter.refund((max - n) as u64);
                }
                self.counters.read(n);
                Ok(Some(n))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                if let Some(limiter) = &mut self.limiter {
                    limiter.refund(max as u64);
                }
                Ok(None)
            }
            Err(e) => Err(e).with_context(|| format!("read {}", input.name)),
        }
    }

    fn offer(&self, slot: S, starts_record: bool, ends_record: bool) -> Offer<S> {
        let len = slot.len();
        self.counters.chunk_in();
        let item = Item {
            slot,
            len,
            starts_record,
            ends_record,
        };
        match self.queue.push(item, self.policy, self.counters) {
            Push::Queued => Offer::Taken(None),
            Push::Dropped(slot) => Offer::Taken(Some(slot)),
            Push::Rejected => Offer::End(ReadEnd::Rejected),
            Push::Closed => {
                self.counters.discarded(len);
                Offer::End(ReadEnd::Closed)
            }
        }
    }

    /// Relays the inputs chunk by chunk: a chunk is whatever one read returned.
    pub fn run(
        mut self,
        inputs: &[Endpoint],
        make: impl Fn() -> io::Result<S>,
    ) -> anyhow::Result<ReadEnd> {
        let mut spare = None;
        for input in inputs {
            let mut stream = S::Stream::default();
            loop {
                if self.stopping() {
                    return Ok(ReadEnd::Stopped);
                }
                let Some(mut slot) = self.slot(&mut spare, &make)? else {
                    return Ok(ReadEnd::Closed);
                };
                match self.read_once(&mut slot, input, self.chunk_size, &mut stream)? {
                    Some(0) => {
                        spare = Some(slot);
                        break;
                    }
                    None => spare = Some(slot),
                    Some(_) => match self.offer(slot, true, true) {
                        Offer::Taken(kept) => spare = kept,
                        Offer::End(end) => return Ok(end),
                    },
                }
            }
        }
        Ok(ReadEnd::Eof)
    }
}

impl Reader<'_, MemSlot> {
    /// Line mode: chunks end after the last delimiter read, so policies act on whole records. A
    /// record longer than a chunk leaves in several chunks, marked so they are kept or dropped
    /// together; the last record is sent as it is even without a delimiter.
    pub fn run_lines(
        mut self,
        inputs: &[Endpoint],
        delimiter: u8,
        make: impl Fn() -> io::Result<MemSlot>,
    ) -> anyhow::Result<ReadEnd> {
        let mut spare = None;
        let Some(mut current) = self.slot(&mut spare, &make)? else {
            return Ok(ReadEnd::Closed);
        };
        let mut starts_record = true;
        let mut end = ReadEnd::Eof;
        'inputs: for input in inputs {
            loop {
                if self.stopping() {
                    end = ReadEnd::Stopped;
                    break 'inputs;
                }
                let before = current.len();
                let room = current.capacity() - before;
                let n = match self.read_once(&mut current, input, room, &mut ())? {
                    Some(0) => break,
                    Some(n) => n,
                    None => continue,
                };
                let boundary = memchr::memrchr(delimiter, &current.data()[before..before + n])
                    .map(|p| before + p + 1);
                let ends_record = match boundary {
                    Some(_) => true,
                    None if current.len() == current.capacity() => false,
                    None => continue,
                };
                let Some(mut next) = self.slot(&mut spare, &make)? else {
                    self.counters.discarded(current.len());
                    return Ok(ReadEnd::Closed);
                };
                if let Some(at) = boundary {
                    current.split_off_into(at, &mut next);
                }
                match self.offer(current, starts_record, ends_record) {
                    Offer::Taken(kept) => spare = kept,
                    Offer::End(end) => {
                        self.counters.discarded(next.len());
                        return Ok(end);
                    }
                }
                starts_record = ends_record;
                current = next;
            }
        }
        if !current.is_empty()
            && let Offer::End(early) = self.offer(current, starts_record, true)
        {
            return Ok(early);
        }
        Ok(end)
    }
}
