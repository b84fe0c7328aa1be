//! The writer stage: takes chunks from the queue and writes them out, paced by the rate limit.

use std::io;
use std::sync::atomic::AtomicBool;

use crate::io::endpoint::Endpoint;
use crate::queue::Queue;
use crate::report::snapshot::Counters;
use crate::slot::memory::Chunk;
use crate::stage::limiter::Limiter;

/// What a rate limit on the output counts.
pub enum Pace {
    Bytes(Limiter),
    /// Records ending with this delimiter.
    Records(Limiter, u8),
}

pub struct Writer<'a, S> {
    pub queue: &'a Queue<S>,
    pub counters: &'a Counters,
    pub pace: Option<Pace>,
}

/// The writer never gives up on its own: it only stops when the queue closes.
static NEVER: AtomicBool = AtomicBool::new(false);

impl<S: Chunk> Writer<'_, S> {
    /// How much of the slot's unsent bytes the next write may carry, and what that costs the
    /// limiter. A write never exceeds half the burst, so a limited stream flows instead of lumping.
    fn next_piece(&self, slot: &S) -> (usize, u64) {
        let unsent = slot.unsent_len();
        match &self.pace {
            None => (unsent, 0),
            Some(Pace::Bytes(limiter)) => {
                let piece = unsent.min(limiter.step() as usize);
                (piece, piece as u64)
            }
            Some(Pace::Records(limiter, delimiter)) => {
                let data = slot.unsent().unwrap_or_default();
                let step = limiter.step() as usize;
                match memchr::memchr_iter(*delimiter, data)
                    .take(step)
                    .enumerate()
                    .last()
                {
                    Some((count, at)) => (at + 1, count as u64 + 1),
                    None => (unsent, 0),
                }
            }
        }
    }

    fn write_slot(
        &mut self,
        slot: &mut S,
        output: &Endpoint,
        stream: &mut S::Stream,
    ) -> io::Result<()> {
        while slot.unsent_len() > 0 {
            let (piece, cost) = self.next_piece(slot);
            if let Some(Pace::Bytes(limiter) | Pace::Records(limiter, _)) = &mut self.pace {
                self.counters
                    .writer_throttled(limiter.acquire(cost, &NEVER));
            }
            match slot.drain(output.fd(), piece, stream) {
                Ok(n) => {
                    self.counters.wrote(n);
                    if let (Some(Pace::Bytes(limiter)), true) = (&mut self.pace, n < piece) {
                        limiter.refund((piece - n) as u64);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if let Some(Pace::Bytes(limiter) | Pace::Records(limiter, _)) = &mut self.pace {
                        limiter.refund(cost);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes chunks until the input is done and the queue is empty. On a write error the queue
    /// is closed, so the reader stops, and what it held is counted as unsent.
    pub fn run(mut self, output: &Endpoint) -> io::Result<()> {
        let mut stream = S::Stream::default();
        let mut emptied = None;
        while let Some(item) = self.queue.pop(emptied.take()) {
            let mut slot = item.slot;
            if let Err(e) = self.write_slot(&mut slot, output, &mut stream) {
                self.counters.discarded(self.queue.close());
                return Err(e);
            }
            self.counters.chunk_out();
            emptied = Some(slot);
        }
        Ok(())
    }
}
