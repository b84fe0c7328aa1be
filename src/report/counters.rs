//! Counters the stages bump without locks, one set per side: per-output counters can be added
//! beside the output's without touching the input's.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What one side moved: bytes, chunks, the time its rate limit held it back, and whether it
/// copied through memory (the copy path, or a splice the kernel refused).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SideTotals {
    pub(crate) bytes: u64,
    pub(crate) chunks: u64,
    pub(crate) throttled: Duration,
    pub(crate) copied: bool,
}

/// One side's counters, on a cache line of its own so the two stages never contend on one.
#[derive(Default)]
#[repr(align(64))]
pub(crate) struct SideCounters {
    bytes: AtomicU64,
    chunks: AtomicU64,
    throttled_ns: AtomicU64,
    copied: AtomicBool,
}

impl SideCounters {
    pub(crate) fn moved(&self, bytes: usize) {
        add(&self.bytes, bytes as u64);
    }

    pub(crate) fn chunk(&self) {
        self.chunks(1);
    }

    pub(crate) fn chunks(&self, count: u64) {
        add(&self.chunks, count);
    }

    /// Time the rate limit held this side back. The limiter adds each slice of a wait as it
    /// passes, so a record taken during a long wait already counts it.
    pub(crate) fn throttled(&self, d: Duration) {
        add(&self.throttled_ns, nanos(d));
    }

    /// This side moved bytes with read and write rather than splice.
    pub(crate) fn copying(&self) {
        self.copied.store(true, Relaxed);
    }

    pub(crate) fn totals(&self) -> SideTotals {
        SideTotals {
            bytes: self.bytes.load(Relaxed),
            chunks: self.chunks.load(Relaxed),
            throttled: Duration::from_nanos(self.throttled_ns.load(Relaxed)),
            copied: self.copied.load(Relaxed),
        }
    }
}

pub(crate) struct Counters {
    /// One set per input read at once (`--merge`); one for inputs read one after another.
    pub(crate) inputs: Box<[SideCounters]>,
    /// One set per output, in the order the outputs were given.
    pub(crate) outputs: Box<[SideCounters]>,
}

/// Both sides' totals, read at one moment; the output's summed over the outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) input: SideTotals,
    pub(crate) output: SideTotals,
}

impl SideTotals {
    fn add(self, other: SideTotals) -> SideTotals {
        SideTotals {
            bytes: self.bytes + other.bytes,
            chunks: self.chunks + other.chunks,
            throttled: self.throttled + other.throttled,
            copied: self.copied || other.copied,
        }
    }
}

impl Counters {
    pub(crate) fn new(inputs: usize, outputs: usize) -> Counters {
        Counters {
            inputs: (0..inputs.max(1))
                .map(|_| SideCounters::default())
                .collect(),
            outputs: (0..outputs.max(1))
                .map(|_| SideCounters::default())
                .collect(),
        }
    }

    /// The outputs first: what a writer wrote can then never exceed what a later look at the
    /// queue says it took.
    pub(crate) fn totals(&self) -> Totals {
        let output = self
            .output_totals()
            .into_iter()
            .fold(SideTotals::default(), SideTotals::add);
        let input = self
            .input_totals()
            .into_iter()
            .fold(SideTotals::default(), SideTotals::add);
        Totals { input, output }
    }

    pub(crate) fn input_totals(&self) -> Vec<SideTotals> {
        self.inputs.iter().map(SideCounters::totals).collect()
    }

    pub(crate) fn output_totals(&self) -> Vec<SideTotals> {
        self.outputs.iter().map(SideCounters::totals).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_side_adds_up_on_its_own() {
        let c = Counters::new(1, 1);
        c.inputs[0].moved(10);
        c.inputs[0].chunk();
        c.outputs[0].moved(6);
        c.outputs[0].chunk();
        c.outputs[0].throttled(Duration::from_millis(3));
        c.outputs[0].copying();
        let t = c.totals();
        assert_eq!((t.input.bytes, t.input.chunks), (10, 1));
        assert_eq!((t.output.bytes, t.output.chunks), (6, 1));
        assert_eq!(t.input.throttled, Duration::ZERO);
        assert_eq!(t.output.throttled, Duration::from_millis(3));
        assert_eq!((t.input.copied, t.output.copied), (false, true));
    }

    #[test]
    fn the_output_totals_are_the_sum_of_the_outputs() {
        let c = Counters::new(1, 3);
        c.outputs[0].moved(5);
        c.outputs[2].moved(7);
        c.outputs[2].copying();
        let t = c.totals();
        assert_eq!((t.output.bytes, t.output.copied), (12, true));
        let each: Vec<u64> = c.output_totals().iter().map(|o| o.bytes).collect();
        assert_eq!(each, [5, 0, 7]);
    }
}
