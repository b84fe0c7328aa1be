//! A token bucket with a cap, so a rate limit holds after idle time instead of bursting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::clock::SharedClock;

/// How long one sleep may last before the stop flag is looked at again.
const SLEEP_SLICE: Duration = Duration::from_millis(50);

pub(crate) struct Limiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    clock: SharedClock,
}

impl Limiter {
    /// `rate` units per second; at most `burst` units go out faster than that. Starts full.
    pub(crate) fn new(rate: u64, burst: u64, clock: SharedClock) -> Self {
        Limiter {
            rate: rate as f64,
            burst: burst as f64,
            tokens: burst as f64,
            last: clock.now(),
            clock,
        }
    }

    /// The most one `acquire` should ask for: half the burst. Waiting for a completely full
    /// bucket would lose to the cap whatever a late wake-up earned, and the rate would sag.
    pub(crate) fn step(&self) -> u64 {
        (self.burst as u64 / 2).max(1)
    }

    fn refill(&mut self) {
        let now = self.clock.now();
        self.deposit(now.duration_since(self.last).as_secs_f64() * self.rate);
        self.last = now;
    }

    /// Waits until `units` (at most the burst) may go, takes them, and returns how long it
    /// waited. Returns early, taking nothing, when `stop` is raised.
    pub(crate) fn acquire(&mut self, units: u64, stop: &AtomicBool) -> Duration {
        let units = (units as f64).min(self.burst);
        let start = self.clock.now();
        self.refill();
        while self.tokens < units {
            if stop.load(Ordering::Relaxed) {
                return self.clock.now() - start;
            }
            let wait = Duration::from_secs_f64((units - self.tokens) / self.rate);
            self.clock.sleep(wait.min(SLEEP_SLICE));
            self.refill();
        }
        self.tokens -= units;
        self.clock.now() - start
    }

    /// Gives back units that were taken but not used (a read or write that moved less).
    pub(crate) fn refund(&mut self, units: u64) {
        self.deposit(units as f64);
    }

    /// The one place tokens are added, so the cap holds for time earned and refunds alike.
    fn deposit(&mut self, units: f64) {
        self.tokens = (self.tokens + units).min(self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::clock::manual::ManualClock;
    use std::sync::Arc;
    use std::thread;

    static NEVER: AtomicBool = AtomicBool::new(false);

    fn limiter(rate: u64, burst: u64) -> (Limiter, Arc<ManualClock>) {
        let clock = ManualClock::new();
        (Limiter::new(rate, burst, clock.clone()), clock)
    }

    #[test]
    fn a_full_bucket_lets_the_burst_through_at_once() {
        let (mut limiter, _) = limiter(1000, 500);
        assert_eq!(limiter.acquire(500, &NEVER), Duration::ZERO);
        let waited = limiter.acquire(100, &NEVER);
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        // The wait sleeps in slices: it may end one slice late, never early.
        assert!(
            waited <= Duration::from_millis(100) + SLEEP_SLICE,
            "{waited:?}"
        );
    }

    #[test]
    fn idle_time_earns_no_more_than_the_burst() {
        let (mut limiter, clock) = limiter(10_000, 1000);
        limiter.acquire(1000, &NEVER);
        clock.advance(Duration::from_secs(3));
        assert_eq!(limiter.acquire(1000, &NEVER), Duration::ZERO);
        // Three idle seconds earned 30 000 units, but the bucket holds 1000: this one waits.
        let waited = limiter.acquire(1000, &NEVER);
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
    }

    #[test]
    fn late_wake_ups_do_not_slow_the_average() {
        let (mut limiter, clock) = limiter(100_000, 10_000);
        let start = clock.now();
        let mut sent = 0;
        while sent < 50_000 {
            let step = limiter.step();
            limiter.acquire(step, &NEVER);
            sent += step;
            // A consumer that takes its time, as a real write would.
            clock.advance(Duration::from_millis(3));
        }
        // 50 000 units at 100 000/s, less the 10 000 the full bucket gave at once: 0.4 s.
        let secs = (clock.now() - start).as_secs_f64();
        assert!(secs < 0.42, "50 000 units at 100 000/s took {secs:.3}s");
    }

    #[test]
    fn stop_cuts_a_wait_in_progress_short() {
        let (mut limiter, clock) = limiter(1, 10);
        limiter.acquire(10, &NEVER);
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || limiter.acquire(10, &stop))
        };
        // Raise the stop only once the ten-second wait has begun.
        while clock.sleeps.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        stop.store(true, Ordering::SeqCst);
        let waited = waiter.join().unwrap();
        assert!(waited < Duration::from_secs(9), "{waited:?}");
    }

    #[test]
    fn refunds_never_exceed_the_burst() {
        let (mut limiter, _) = limiter(1, 10);
        assert_eq!(limiter.acquire(10, &NEVER), Duration::ZERO);
        limiter.refund(100);
        assert_eq!(limiter.acquire(10, &NEVER), Duration::ZERO);
        // Had the refund overfilled the bucket, this would go at once too.
        let waited = limiter.acquire(10, &NEVER);
        assert!(waited >= Duration::from_secs(10), "{waited:?}");
        assert_eq!(limiter.step(), 5);
    }
}
