//! A token bucket with a cap, so a rate limit holds after idle time instead of bursting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long one sleep may last before the stop flag is looked at again.
const SLEEP_SLICE: Duration = Duration::from_millis(50);

pub struct Limiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Limiter {
    /// `rate` units per second; at most `burst` units go out faster than that. Starts full.
    pub fn new(rate: u64, burst: u64) -> Self {
        Limiter {
            rate: rate as f64,
            burst: burst as f64,
            tokens: burst as f64,
            last: Instant::now(),
        }
    }

    /// The most one `acquire` should ask for: half the burst. Waiting for a completely full
    /// bucket would lose to the cap whatever a late wake-up earned, and the rate would sag.
    pub fn step(&self) -> u64 {
        (self.burst as u64 / 2).max(1)
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.last = now;
    }

    /// Waits until `units` (at most the burst) may go, takes them, and returns how long it
    /// waited. Returns early, taking nothing, when `stop` is raised.
    pub fn acquire(&mut self, units: u64, stop: &AtomicBool) -> Duration {
        let units = (units as f64).min(self.burst);
        let start = Instant::now();
        self.refill();
        while self.tokens < units {
            if stop.load(Ordering::Relaxed) {
                return start.elapsed();
            }
            let wait = Duration::from_secs_f64((units - self.tokens) / self.rate);
            thread::sleep(wait.min(SLEEP_SLICE));
            self.refill();
        }
        self.tokens -= units;
        start.elapsed()
    }

    /// Gives back units that were taken but not used (a read or write that moved less).
    pub fn refund(&mut self, units: u64) {
        self.tokens = (self.tokens + units as f64).min(self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_lets_the_burst_through_at_once() {
        let stop = AtomicBool::new(false);
        let mut limiter = Limiter::new(1000, 500);
        assert!(limiter.acquire(500, &stop) < Duration::from_millis(20));
        let waited = limiter.acquire(100, &stop);
        assert!(waited >= Duration::from_millis(80), "{waited:?}");
    }

    #[test]
    fn idle_time_earns_no_more_than_the_burst() {
        let stop = AtomicBool::new(false);
        let mut limiter = Limiter::new(10_000, 1000);
        limiter.acquire(1000, &stop);
        thread::sleep(Duration::from_millis(300));
        let start = Instant::now();
        limiter.acquire(1000, &stop);
        limiter.acquire(1000, &stop);
        assert!(
            start.elapsed() >= Duration::from_millis(90),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn late_wake_ups_do_not_slow_the_average() {
        let stop = AtomicBool::new(false);
        let mut limiter = Limiter::new(100_000, 10_000);
        let start = Instant::now();
        let mut sent = 0;
        while sent < 50_000 {
            let step = limiter.step();
            limiter.acquire(step, &stop);
            sent += step;
            // A consumer that takes its time, as a real write would.
            thread::sleep(Duration::from_millis(3));
        }
        let secs = start.elapsed().as_secs_f64();
        assert!(secs < 0.55, "50 000 units at 100 000/s took {secs:.3}s");
    }

    #[test]
    fn stop_cuts_a_long_wait_short() {
        let stop = AtomicBool::new(true);
        let mut limiter = Limiter::new(1, 10);
        limiter.acquire(10, &stop);
        assert!(limiter.acquire(10, &stop) < Duration::from_millis(200));
    }

    #[test]
    fn refunds_never_exceed_the_burst() {
        let stop = AtomicBool::new(false);
        let mut limiter = Limiter::new(1, 10);
        limiter.refund(100);
        assert!(limiter.acquire(10, &stop) < Duration::from_millis(20));
        assert_eq!(limiter.step(), 5);
    }
}
