//! The reader stage: reads the inputs in order and offers each chunk to the queue.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use crate::cli::units::human_bytes;
use crate::control::command::Side;
use crate::io::endpoint::{Endpoint, Unopened};
use crate::io::sys;
use crate::queue::{Item, Push, Queue};
use crate::report::counters::SideCounters;
use crate::slot::Slot;
use crate::spool::{GULP, Offers};
use crate::stage::limiter::Limiter;
use crate::stage::pause::Pauses;
use crate::supervise::outcome::io_error;

/// Why the reader stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReaderExit {
    /// Every input reached its end.
    Eof,
    /// A stop was requested (a signal, or another stage's failure).
    Stopped,
    /// The queue was full under `--on-full fail`.
    Rejected,
    /// The output is gone; nothing more can be written.
    Closed,
}

pub(crate) struct Reader<'a, S> {
    pub(crate) queue: &'a Queue<S>,
    /// Where slots come from: the queue itself, or with merged inputs the queue they merge
    /// into, whose writer frees them.
    pub(crate) pool: &'a Queue<S>,
    /// A spool or watermarks in front of the queue: chunks are offered there instead.
    pub(crate) intake: Option<&'a dyn Offers<S>>,
    pub(crate) counters: &'a SideCounters,
    /// The most one read may move.
    pub(crate) chunk_size: usize,
    pub(crate) limiter: Option<Limiter>,
    pub(crate) stop: &'a AtomicBool,
    pub(crate) pauses: &'a Pauses,
}

/// An interruption (a stop may be due) rather than a failure.
fn interrupted(error: &anyhow::Error) -> bool {
    io_error(error).is_some_and(|e| e.kind() == io::ErrorKind::Interrupted)
}

/// What became of an offered chunk.
pub(crate) enum Offer<S> {
    Queued,
    /// Dropped by the policy, or its bytes spooled: the reader reads into this slot next.
    Dropped(S),
    End(ReaderExit),
}

impl<S: Slot> Reader<'_, S> {
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// A slot to read into: the one kept from a drop, or one from the queue's pool.
    pub(crate) fn slot(
        &self,
        spare: &mut Option<S>,
        chunk_size: usize,
    ) -> anyhow::Result<Option<S>> {
        let mut slot = match spare.take() {
            Some(slot) => slot,
            None => match self.pool.acquire(|| S::new(chunk_size)).with_context(|| {
                format!(
                    "cannot allocate a queue slot of {}",
                    human_bytes(chunk_size as u64)
                )
            })? {
                Some(slot) => slot,
                None => return Ok(None),
            },
        };
        slot.clear().context("cannot empty a queue slot")?;
        Ok(Some(slot))
    }

    /// `max`, or less under a read-rate limit: a read never exceeds the limiter's step.
    fn limited(&self, max: usize) -> usize {
        match &self.limiter {
            Some(limiter) => max.min(limiter.step() as usize).max(1),
            None => max,
        }
    }

    /// Counts what a read brought and pays the limiter for it.
    fn paid(&mut self, n: usize) {
        self.counters.moved(n);
        let counters = self.counters;
        if let Some(limiter) = &mut self.limiter {
            limiter.acquire(n as u64, self.stop, |waited| counters.throttled(waited));
        }
    }

    /// One read of at most `max` bytes, paced by the read-rate limit. The limiter is paid after
    /// the read, for what it brought, and the chunk is offered only once paid: a short read
    /// (or the end of the input) costs no wait for bytes that never came, and no refund is
    /// needed. A stop cuts the wait short; what was read is still offered.
    pub(crate) fn read_once(
        &mut self,
        slot: &mut S,
        input: &Endpoint,
        max: usize,
        stream: &mut S::Stream,
    ) -> anyhow::Result<Option<usize>> {
        if !self.pauses.pass(Side::In, || self.stopping()) {
            return Ok(None);
        }
        let max = match input.read_budget(self.limited(max)) {
            Ok(0) => return self.ended(input),
            Ok(max) => max,
            Err(e) if interrupted(&e) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("read {}", input.name())),
        };
        let filled = slot.fill(input.as_fd(), max, stream);
        if S::copies(stream) {
            self.counters.copying();
        }
        match filled {
            Ok(0) => self.ended(input),
            Ok(n) => {
                let data = slot.unsent();
                input.received(n, data.map(|d| &d[d.len() - n..]));
                self.paid(n);
                Ok(Some(n))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(input.read_failed(e)).with_context(|| format!("read {}", input.name())),
        }
    }

    /// The input's end: for a network stream, only the end its sender announced.
    fn ended(&self, input: &Endpoint) -> anyhow::Result<Option<usize>> {
        input
            .read_end()
            .with_context(|| format!("read {}", input.name()))?;
        Ok(Some(0))
    }

    /// While every chunk goes to the spool, moves what a pipe input holds straight into it
    /// (`spool::direct`), paced and counted as reads of chunks: how many bytes (0 at the end of
    /// the input), or `None` to read a chunk instead.
    fn spool_directly(&mut self, input: &Endpoint) -> anyhow::Result<Option<usize>> {
        // A socket's stream is framed, frame by frame (`read_once`), never spooled whole.
        let Some(intake) = self
            .intake
            .filter(|_| !matches!(input, Endpoint::Socket(_)))
        else {
            return Ok(None);
        };
        if !self.pauses.pass(Side::In, || self.stopping()) {
            return Ok(None);
        }
        let max = self.limited(GULP.max(self.chunk_size));
        match intake.spool_from(input.as_fd(), max) {
            None => Ok(None),
            Some(Ok(n)) => {
                self.paid(n);
                self.counters.chunks(n.div_ceil(self.chunk_size) as u64);
                Ok(Some(n))
            }
            Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Some(Err(e)) => Err(e).with_context(|| format!("read {}", input.name())),
        }
    }

    pub(crate) fn offer(&self, slot: S, starts_record: bool, ends_record: bool) -> Offer<S> {
        let len = slot.len();
        self.counters.chunk();
        let item = Item {
            slot,
            len,
            starts_record,
            ends_record,
        };
        if let Some(intake) = self.intake {
            return intake.offer(item);
        }
        match self.queue.push(item) {
            Push::Queued => Offer::Queued,
            Push::Dropped(slot) => Offer::Dropped(slot),
            Push::Rejected => Offer::End(ReaderExit::Rejected),
            Push::Closed => Offer::End(ReaderExit::Closed),
        }
    }

    /// Opens an input when its turn comes, as cat does: a FIFO's open waits for its writer, who
    /// may be waiting for an earlier input to be read. `None` when a stop ended the wait.
    pub(crate) fn open(&self, input: &Unopened) -> anyhow::Result<Option<Endpoint>> {
        input.open(self.stop)
    }

    /// Relays the inputs chunk by chunk: a chunk is whatever one read returned.
    pub(crate) fn run(mut self, inputs: &[Unopened]) -> anyhow::Result<ReaderExit> {
        let mut spare = None;
        for input in inputs {
            let Some(input) = self.open(input)? else {
                return Ok(ReaderExit::Stopped);
            };
            let mut stream = S::Stream::default();
            // Only a pipe splices into the spool, and only on the splice path.
            let direct = self.intake.is_some() && sys::is_pipe(input.as_fd());
            loop {
                if self.stopping() {
                    return Ok(ReaderExit::Stopped);
                }
                if direct && !S::copies(&stream) {
                    match self.spool_directly(&input)? {
                        Some(0) => break,
                        Some(_) => continue,
                        None => {}
                    }
                }
                let Some(mut slot) = self.slot(&mut spare, self.chunk_size)? else {
                    return Ok(ReaderExit::Closed);
                };
                match self.read_once(&mut slot, &input, self.chunk_size, &mut stream)? {
                    Some(0) => {
                        spare = Some(slot);
                        break;
                    }
                    None => spare = Some(slot),
                    Some(_) => match self.offer(slot, true, true) {
                        Offer::Queued => {}
                        Offer::Dropped(slot) => spare = Some(slot),
                        Offer::End(end) => return Ok(end),
                    },
                }
            }
        }
        Ok(ReaderExit::Eof)
    }
}
