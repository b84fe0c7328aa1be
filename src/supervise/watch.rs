//! What the steering thread looks at between messages: when an interval record or a redraw of
//! the live line is due, and the rates since the last one.

use std::time::{Duration, Instant};

use crate::report::counters::Totals;
use crate::report::snapshot::Rates;

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

pub(crate) struct Watch {
    interval: Option<Duration>,
    next_interval: Option<Instant>,
    last_interval: Mark,
    next_progress: Option<Instant>,
    last_progress: Mark,
}

impl Watch {
    pub(crate) fn new(interval: Option<Duration>, progress: bool, now: Instant) -> Self {
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
        }
    }

    /// When something is next due, if ever.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [self.next_interval, self.next_progress]
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

    #[test]
    fn intervals_carry_rates_and_do_not_bunch_up() {
        let t0 = Instant::now();
        let mut watch = Watch::new(Some(SEC), false, t0);
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
        assert_eq!(watch.next_deadline(), Some(t0 + SEC * 6));
    }

    #[test]
    fn progress_sees_throttling() {
        let t0 = Instant::now();
        let mut watch = Watch::new(None, true, t0);
        assert!(watch.progress_due(t0, &totals(0, 0)).is_some());
        assert!(watch.progress_due(t0 + SEC / 10, &totals(0, 0)).is_none());
        let mut throttled = totals(0, 400);
        throttled.output.throttled = SEC / 10;
        let progress = watch.progress_due(t0 + SEC / 5, &throttled).unwrap();
        assert!(progress.throttled);
        assert!((progress.rate_out - 2000.0).abs() < 1e-6);
    }

    #[test]
    fn nothing_due_without_interval_or_progress() {
        let watch = Watch::new(None, false, Instant::now());
        assert_eq!(watch.next_deadline(), None);
    }
}
