//! The writer stage: takes chunks from the queue and writes them out, paced by the rate limit.

use std::io;
use std::sync::atomic::AtomicBool;

use crate::control::command::Side;
use crate::io::endpoint::Endpoint;
use crate::queue::Queue;
use crate::report::counters::SideCounters;
use crate::slot::Outgoing;
use crate::stage::limiter::Limiter;
use crate::stage::pause::Pauses;

/// What a rate limit on the output counts.
pub(crate) enum Pace {
    Bytes(Limiter),
    /// Records ending with this delimiter.
    Records(Limiter, u8),
}

impl Pace {
    fn limiter(&mut self) -> &mut Limiter {
        match self {
            Pace::Bytes(limiter) | Pace::Records(limiter, _) => limiter,
        }
    }

    fn limiter_ref(&self) -> &Limiter {
        match self {
            Pace::Bytes(limiter) | Pace::Records(limiter, _) => limiter,
        }
    }
}

pub(crate) struct Writer<'a, S> {
    pub(crate) queue: &'a Queue<S>,
    pub(crate) counters: &'a SideCounters,
    pub(crate) pace: Option<Pace>,
    pub(crate) pauses: &'a Pauses,
}

/// How far a slot got.
enum Written {
    Whole,
    /// The relay closed while a write was cut short: the rest stays unsent.
    Abandoned,
}

/// What a failed write to a socket adds to its error: how much went out before.
#[derive(Debug)]
pub(crate) struct Sent(pub(crate) u64);

impl std::fmt::Display for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes sent", self.0)
    }
}

/// The writer never gives up on its own: it only stops when the queue closes.
static NEVER: AtomicBool = AtomicBool::new(false);

fn records_in(data: &[u8], delimiter: u8) -> u64 {
    memchr::memchr_iter(delimiter, data).count() as u64
}

impl<S: Outgoing> Writer<'_, S> {
    /// How much of the slot's unsent bytes the next write may carry, and what that costs the
    /// limiter. A write never exceeds the limiter's step (a twentieth of a second at the rate),
    /// so a limited stream flows instead of lumping.
    fn next_piece(&self, slot: &S) -> (usize, u64) {
        let unsent = slot.unsent_len();
        match &self.pace {
            None => (unsent, 0),
            Some(pace) if pace.limiter_ref().is_unlimited() => (unsent, 0),
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

    /// What a write of `written` bytes out of a `piece` did not use of its `cost`: the slot's
    /// unsent bytes now start after what was written.
    fn unused(&self, slot: &S, piece: usize, cost: u64, written: usize) -> u64 {
        match &self.pace {
            Some(Pace::Bytes(_)) => (piece - written) as u64,
            Some(Pace::Records(_, delimiter)) => {
                let rest = &slot.unsent().unwrap_or_default()[..piece - written];
                records_in(rest, *delimiter).min(cost)
            }
            None => 0,
        }
    }

    /// Writes the slot out, unless the relay closes meanwhile: a forced end interrupts a write
    /// blocked on the consumer, and what the kernel took by then is counted, the rest not sent.
    fn write_slot(
        &mut self,
        slot: &mut S,
        output: &Endpoint,
        stream: &mut S::Stream,
    ) -> io::Result<Written> {
        let given_up = || self.queue.is_closed();
        if !output.chunk(slot.unsent_len(), slot.unsent(), &given_up)? {
            return Ok(Written::Abandoned);
        }
        while slot.unsent_len() > 0 {
            if !self.pauses.pass(Side::Out, || self.queue.is_closed()) {
                return Ok(Written::Abandoned);
            }
            let (piece, cost) = self.next_piece(slot);
            if let Some(pace) = &mut self.pace {
                let counters = self.counters;
                pace.limiter()
                    .acquire(cost, &NEVER, |waited| counters.throttled(waited));
            }
            let drained = slot.drain(output.as_fd(), piece, stream);
            if S::copies(stream) {
                self.counters.copying();
            }
            let (refund, cut_short) = match drained {
                Ok(n) => {
                    self.counters.moved(n);
                    (self.unused(slot, piece, cost, n), n < piece)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => (cost, true),
                Err(e) => return Err(e),
            };
            if let (Some(pace), 1..) = (&mut self.pace, refund) {
                pace.limiter().refund(refund);
            }
            if cut_short && self.queue.is_closed() {
                return Ok(Written::Abandoned);
            }
        }
        Ok(Written::Whole)
    }

    /// Writes chunks until the input is done and the queue is empty, then ends the stream. On a
    /// write error the queue is closed, so the reader stops.
    pub(crate) fn run(mut self, output: &Endpoint) -> anyhow::Result<()> {
        let mut stream = S::Stream::default();
        let mut emptied = None;
        while let Some(item) = self.queue.pop(emptied.take()) {
            let mut slot = item.slot;
            match self.write_slot(&mut slot, output, &mut stream) {
                Ok(Written::Whole) => self.counters.chunk(),
                Ok(Written::Abandoned) => return Ok(()),
                Err(e) => {
                    self.queue.close();
                    return Err(self.failed(output, e));
                }
            }
            emptied = slot.into_reusable();
        }
        output.finish(&|| self.queue.is_closed())
    }

    /// A failed write to a socket says how much went out before it.
    fn failed(&self, output: &Endpoint, error: io::Error) -> anyhow::Error {
        let error = anyhow::Error::new(error);
        match output {
            Endpoint::Socket(socket) => {
                let sent = self.counters.totals().bytes;
                socket.explain(error).context(Sent(sent))
            }
            _ => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::OnFull;
    use crate::clock::manual::ManualClock;
    use crate::io::sys;
    use crate::queue::Limits;
    use crate::slot::memory::MemSlot;
    use std::os::fd::AsFd;

    #[test]
    fn a_short_write_refunds_the_records_it_did_not_write() {
        let limits = Limits {
            chunks: 1,
            bytes: usize::MAX,
            slots: 4,
            delimiter: Some(b'\n'),
        };
        let queue = Queue::new(limits, OnFull::Block, ManualClock::new());
        let counters = SideCounters::default();
        // A hundred records a second: a write carries at most five records.
        let limiter = Limiter::new(100, 10, ManualClock::new());
        let writer = Writer {
            queue: &queue,
            counters: &counters,
            pace: Some(Pace::Records(limiter, b'\n')),
            pauses: &Pauses::default(),
        };
        let (input, feed) = io::pipe().unwrap();
        sys::write_all(feed.as_fd(), b"a\nb\nc\nd\ne\nf\n").unwrap();
        let mut slot = MemSlot::with_capacity(64).unwrap();
        slot.read_from(input.as_fd(), 64).unwrap();
        let (piece, cost) = writer.next_piece(&slot);
        assert_eq!((piece, cost), (10, 5));
        // The kernel takes "a\nb" only: record a is out, b to e are not.
        let (_sink, output) = io::pipe().unwrap();
        assert_eq!(slot.drain(output.as_fd(), 3, &mut ()).unwrap(), 3);
        assert_eq!(writer.unused(&slot, piece, cost, 3), 4);
    }
}
