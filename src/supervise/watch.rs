//! What the steering thread looks at between messages: when an interval record or a redraw of
//! the live line is due, the rates since the last one, and whether a side has stalled.

use std::time::{Duration, Instant};

use crate::report::counters::Totals;
use crate::report::snapshot::Rates;
use crate::supervise::outcome::Side;

/// How often the live line is redrawn.
const PROGRESS_PERIOD: Duration = Duration::from_millis(200);

/// The counters at some earlier moment, to measure rates against.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    totals: Totals,
}

impl Mark {
    fn rates(&self, now: Instant, totals: &Totals) -> Rates {
        let secs = now.duration_since(self.at).as_secs_f64();
        let per_sec = |bytes: u64| if secs > 0.0 { bytes as f64 / secs } else { 0.0 };
        Rates {
            input: per_sec(totals.input.bytes - self.totals.input.bytes),
            output: per_sec(totals.output.bytes - self.totals.output.bytes),
        }
    }
}

fn throttled(totals: &Totals) -> Duration {
    totals.input.throttled + totals.output.throttled
}

/// What the live line needs besides a snapshot.
pub(crate) struct Progress {
    pub(crate) rate_out: f64,
    pub(crate) throttled: bool,
}

/// What the writer is doing, for telling a stalled producer from a stalled consumer.
pub(crate) struct WriterState {
    /// The writer holds data it could not write yet, in the queue or in hand.
    pub(crate) has_data: bool,
    /// The reader is still reading.
    pub(crate) reader_running: bool,
}

pub(crate) struct Watch {
    interval: Option<Duration>,
    next_interval: Option<Instant>,
    last_interval: Mark,
    next_progress: Option<Instant>,
    last_progress: Mark,
    stall_timeout: Option<Duration>,
    seen: Totals,
    input_moved: Instant,
    output_moved: Instant,
}

impl Watch {
    pub(crate) fn new(
        interval: Option<Duration>,
        progress: bool,
        stall_timeout: Option<Duration>,
        now: Instant,
    ) -> Self {
        let start = Mark {
            at: now,
            totals: Totals::default(),
        };
        Watch {
            interval,
            next_interval: interval.map(|i| now + i),
            last_interval: start,
            next_progress: progress.then_some(now),
            last_progress: start,
            stall_timeout,
            seen: Totals::default(),
            input_moved: now,
            output_moved: now,
        }
    }

    pub(crate) fn stall_timeout(&self) -> Option<Duration> {
        self.stall_timeout
    }

    /// When something is next due, if ever.
    pub(crate) fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let stall_check = self
            .stall_timeout
            .map(|t| now + (t / 4).clamp(Duration::from_millis(10), Duration::from_millis(250)));
        [self.next_interval, self.next_progress, stall_check]
            .into_iter()
            .flatten()
            .min()
    }

    /// The rates since the last interval record, when the next one is due.
    pub(crate) fn interval_due(&mut self, now: Instant, totals: &Totals) -> Option<Rates> {
        let (interval, due) = self.interval.zip(self.next_interval)?;
        if now < due {
            return None;
        }
        let rates = self.last_interval.rates(now, totals);
        self.last_interval = Mark {
            at: now,
            totals: *totals,
        };
        // A late tick does not bunch records up: the next one is a whole interval away.
        let next = due + interval;
        self.next_interval = Some(if next <= now { now + interval } else { next });
        Some(rates)
    }

    /// The output rate and whether the limiter held data back, when a redraw is due.
    pub(crate) fn progress_due(&mut self, now: Instant, totals: &Totals) -> Option<Progress> {
        if self.next_progress.is_none_or(|due| now < due) {
            return None;
        }
        let progress = Progress {
            rate_out: self.last_progress.rates(now, totals).output,
            throttled: throttled(totals) > throttled(&self.last_progress.totals),
        };
        self.last_progress = Mark {
            at: now,
            totals: *totals,
        };
        self.next_progress = Some(now + PROGRESS_PERIOD);
        Some(progress)
    }

    /// The output stalls when the writer has data and has written nothing for the timeout; the
    /// input stalls when nothing moved at all while the writer had nothing to write.
    pub(crate) fn stalled(
        &mut self,
        now: Instant,
        totals: &Totals,
        writer: WriterState,
    ) -> Option<Side> {
        if totals.input.bytes != self.seen.input.bytes {
            self.input_moved = now;
        }
        if totals.output.bytes != self.seen.output.bytes {
            self.output_moved = now;
        }
        self.seen = *totals;
        let limit = self.stall_timeout?;
        let last_move = self.input_moved.max(self.output_moved);
        if writer.has_data && now.duration_since(self.output_moved) >= limit {
            Some(Side::Output)
        } else if !writer.has_data
            && writer.reader_running
            && now.duration_since(last_move) >= limit
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
        }
    }

    #[test]
    fn an_idle_producer_with_an_empty_queue_is_an_input_stall() {
        let t0 = Instant::now();
        let mut watch = Watch::new(None, false, Some(SEC), t0);
        assert_eq!(
            watch.stalled(t0 + SEC / 2, &totals(10, 10), writer(false)),
            None
        );
        assert_eq!(
            watch.stalled(t0 + SEC, &totals(10, 10), writer(false)),
            None
        );
        assert_eq!(
            watch.stalled(t0 + SEC * 3 / 2, &totals(10, 10), writer(false)),
            Some(Side::Input)
        );
    }

    #[test]
    fn a_consumer_that_stops_reading_is_an_output_stall_even_while_input_moves() {
        let t0 = Instant::now();
        let mut watch = Watch::new(None, false, Some(SEC), t0);
        watch.stalled(t0, &totals(100, 50), writer(true));
        // The reader keeps reading (and dropping), the writer writes nothing.
        assert_eq!(
            watch.stalled(t0 + SEC / 2, &totals(200, 50), writer(true)),
            None
        );
        assert_eq!(
            watch.stalled(t0 + SEC * 11 / 10, &totals(300, 50), writer(true)),
            Some(Side::Output)
        );
    }

    #[test]
    fn slow_movement_is_not_a_stall() {
        let t0 = Instant::now();
        let mut watch = Watch::new(None, true, Some(SEC), t0);
        for step in 1..10u32 {
            let now = t0 + SEC * step / 2;
            // Redraws of the live line must not hide movement from the stall check.
            watch.progress_due(now, &totals(u64::from(step), u64::from(step)));
            assert_eq!(
                watch.stalled(
                    now,
                    &totals(u64::from(step), u64::from(step)),
                    writer(false)
                ),
                None
            );
        }
    }

    #[test]
    fn no_timeout_no_stall() {
        let t0 = Instant::now();
        let mut watch = Watch::new(None, false, None, t0);
        assert_eq!(
            watch.stalled(t0 + SEC * 100, &totals(0, 0), writer(true)),
            None
        );
        assert_eq!(watch.next_deadline(t0), None);
    }

    #[test]
    fn intervals_carry_rates_and_do_not_bunch_up() {
        let t0 = Instant::now();
        let mut watch = Watch::new(Some(SEC), false, None, t0);
        assert!(watch.interval_due(t0 + SEC / 2, &totals(0, 0)).is_none());
        let rates = watch.interval_due(t0 + SEC, &totals(1000, 500)).unwrap();
        assert_eq!((rates.input, rates.output), (1000.0, 500.0));
        // Three intervals late: one record now, the next a whole interval later.
        assert!(
            watch
                .interval_due(t0 + SEC * 5, &totals(1000, 500))
                .is_some()
        );
        assert!(
            watch
                .interval_due(t0 + SEC * 5, &totals(1000, 500))
                .is_none()
        );
        assert_eq!(watch.next_deadline(t0 + SEC * 5), Some(t0 + SEC * 6));
    }

    #[test]
    fn progress_sees_throttling() {
        let t0 = Instant::now();
        let mut watch = Watch::new(None, true, None, t0);
        assert!(watch.progress_due(t0, &totals(0, 0)).is_some());
        assert!(watch.progress_due(t0 + SEC / 10, &totals(0, 0)).is_none());
        let mut throttled = totals(0, 400);
        throttled.output.throttled = SEC / 10;
        let progress = watch.progress_due(t0 + SEC / 5, &throttled).unwrap();
        assert!(progress.throttled);
        assert!((progress.rate_out - 2000.0).abs() < 1e-6);
    }
}
