//! The stall watchdog: a side stalls when no byte moved on it while it could have. Time its rate
//! limit held it back is not a stall, nor is time the whole process was stopped (Ctrl-Z of the
//! pipeline): only progress the kernel actually made, or could have made, counts.

use std::time::{Duration, Instant};

use crate::report::counters::{SideTotals, Totals};
use crate::supervise::outcome::Side;

/// What the writer is doing, for telling a stalled producer from a stalled consumer.
pub(crate) struct WriterState {
    /// The writer holds data it could not write yet, in the queue or in hand.
    pub(crate) has_data: bool,
    /// The reader is still reading.
    pub(crate) reader_running: bool,
    /// `--start-at` holds the writer back: its data is not the consumer's to take yet.
    pub(crate) held: bool,
}

pub(crate) struct StallWatch {
    timeout: Duration,
    seen: Totals,
    input_moved: Instant,
    output_moved: Instant,
    last_check: Instant,
    /// The writer was held at the last check.
    held: bool,
}

/// A side moved if bytes went through it or its rate limit held it back.
fn moved(now: &SideTotals, before: &SideTotals) -> bool {
    now.bytes != before.bytes || now.throttled != before.throttled
}

impl StallWatch {
    pub(crate) fn new(timeout: Duration, now: Instant) -> Self {
        StallWatch {
            timeout,
            seen: Totals::default(),
            input_moved: now,
            output_moved: now,
            last_check: now,
            held: false,
        }
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How often to look: often enough to see a stall soon after the timeout.
    pub(crate) fn period(&self) -> Duration {
        (self.timeout / 4).clamp(Duration::from_millis(10), Duration::from_millis(250))
    }

    /// A check much later than planned means the process was stopped (or starved) meanwhile:
    /// that time is nobody's stall.
    fn skip_gap(&mut self, now: Instant) {
        let gap = now.saturating_duration_since(self.last_check);
        let expected = self.period() * 2 + Duration::from_millis(500);
        if gap > expected {
            let lost = gap - self.period();
            self.input_moved += lost;
            self.output_moved += lost;
        }
        self.last_check = now;
    }

    /// Time the relay was paused on request is nobody's stall: both sides count as moving.
    pub(crate) fn excuse(&mut self, now: Instant) {
        self.input_moved = now;
        self.output_moved = now;
    }

    /// How long the output has not moved.
    pub(crate) fn output_quiet(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.output_moved)
    }

    /// The output stalls when the writer has data and has written nothing for the timeout; the
    /// input stalls when nothing moved at all while the writer had nothing to write.
    pub(crate) fn check(
        &mut self,
        now: Instant,
        totals: &Totals,
        writer: WriterState,
    ) -> Option<Side> {
        self.skip_gap(now);
        if moved(&totals.input, &self.seen.input) {
            self.input_moved = now;
        }
        if moved(&totals.output, &self.seen.output) {
            self.output_moved = now;
        }
        self.seen = *totals;
        // A writer held at the start has nothing to write yet, and its time from the moment it
        // is let go.
        if self.held && !writer.held {
            self.output_moved = now;
        }
        self.held = writer.held;
        let has_data = writer.has_data && !writer.held;
        let last_move = self.input_moved.max(self.output_moved);
        if has_data && self.output_quiet(now) >= self.timeout {
            Some(Side::Output)
        } else if !has_data
            && writer.reader_running
            && now.saturating_duration_since(last_move) >= self.timeout
        {
            Some(Side::Input)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);
    const TICK: Duration = Duration::from_millis(250);

    fn totals(bytes_in: u64, bytes_out: u64) -> Totals {
        let mut totals = Totals::default();
        totals.input.bytes = bytes_in;
        totals.output.bytes = bytes_out;
        totals
    }

    fn writer(has_data: bool) -> WriterState {
        WriterState {
            has_data,
            reader_running: true,
            held: false,
        }
    }

    /// Checks every tick from `from` to `to` with the same totals; the last answer.
    fn watch_until(
        watch: &mut StallWatch,
        t0: Instant,
        to: Duration,
        t: &Totals,
        data: bool,
    ) -> Option<Side> {
        let mut at = Duration::ZERO;
        let mut answer = None;
        while at <= to {
            answer = watch.check(t0 + at, t, writer(data));
            at += TICK;
        }
        answer
    }

    #[test]
    fn an_idle_producer_with_an_empty_queue_is_an_input_stall() {
        let t0 = Instant::now();
        let mut watch = StallWatch::new(SEC, t0);
        assert_eq!(
            watch_until(&mut watch, t0, SEC * 3 / 4, &totals(10, 10), false),
            None
        );
        assert_eq!(
            watch_until(&mut watch, t0, SEC * 3 / 2, &totals(10, 10), false),
            Some(Side::Input)
        );
    }

    #[test]
    fn a_consumer_that_stops_reading_is_an_output_stall_even_while_input_moves() {
        let t0 = Instant::now();
        let mut watch = StallWatch::new(SEC, t0);
        watch.check(t0, &totals(100, 50), writer(true));
        // The reader keeps reading (and dropping), the writer writes nothing.
        assert_eq!(watch.check(t0 + TICK, &totals(200, 50), writer(true)), None);
        assert_eq!(
            watch.check(t0 + TICK * 2, &totals(250, 50), writer(true)),
            None
        );
        assert_eq!(
            watch.check(t0 + TICK * 3, &totals(280, 50), writer(true)),
            None
        );
        assert_eq!(
            watch.check(t0 + TICK * 4, &totals(300, 50), writer(true)),
            Some(Side::Output)
        );
    }

    #[test]
    fn slow_movement_is_not_a_stall() {
        let t0 = Instant::now();
        let mut watch = StallWatch::new(SEC, t0);
        for step in 1..20u32 {
            let n = u64::from(step);
            assert_eq!(
                watch.check(t0 + TICK * step, &totals(n, n), writer(false)),
                None
            );
        }
    }

    #[test]
    fn time_held_back_by_a_rate_limit_is_not_a_stall() {
        let t0 = Instant::now();
        let mut watch = StallWatch::new(SEC, t0);
        let mut t = totals(10, 10);
        for step in 1..20u32 {
            t.output.throttled = TICK * step;
            assert_eq!(watch.check(t0 + TICK * step, &t, writer(true)), None);
        }
        for step in 1..20u32 {
            t.input.throttled = TICK * step;
            assert_eq!(
                watch.check(t0 + SEC * 5 + TICK * step, &t, writer(false)),
                None
            );
        }
    }

    #[test]
    fn a_writer_held_at_the_start_is_not_an_output_stall() {
        let t0 = Instant::now();
        let mut watch = StallWatch::new(SEC, t0);
        let held = || WriterState {
            has_data: true,
            reader_running: true,
            held: true,
        };
        // Input moves, the held writer does not: no stall for as long as it is held.
        for tick in 1..=20u32 {
            let t = totals(u64::from(tick), 0);
            assert_eq!(watch.check(t0 + TICK * tick, &t, held()), None);
        }
        // Let go, it has a timeout's time from then on.
        let t = totals(20, 0);
        for tick in 21..25u32 {
            assert_eq!(watch.check(t0 + TICK * tick, &t, writer(true)), None);
        }
        assert_eq!(
            watch.check(t0 + TICK * 25, &t, writer(true)),
            Some(Side::Output)
        );
        // Held, and the producer silent: the input stalled.
        let mut watch = StallWatch::new(SEC, t0);
        for tick in 1..4u32 {
            assert_eq!(watch.check(t0 + TICK * tick, &totals(0, 0), held()), None);
        }
        assert_eq!(
            watch.check(t0 + TICK * 4, &totals(0, 0), held()),
            Some(Side::Input)
        );
    }

    #[test]
    fn a_stopped_process_is_not_a_stall() {
        let t0 = Instant::now();
        let mut watch = StallWatch::new(SEC, t0);
        assert_eq!(watch.check(t0 + TICK, &totals(5, 5), writer(false)), None);
        // Stopped for a minute, then continued: the first check after is not a stall.
        assert_eq!(
            watch.check(t0 + SEC * 60, &totals(5, 5), writer(false)),
            None
        );
        assert_eq!(
            watch.check(t0 + SEC * 60 + TICK, &totals(5, 5), writer(false)),
            None
        );
        // A real stall afterwards is still seen.
        assert_eq!(
            watch_until(&mut watch, t0 + SEC * 60, SEC * 2, &totals(5, 5), false),
            Some(Side::Input)
        );
    }
}
