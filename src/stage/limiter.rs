//! A token bucket with a cap, so a rate limit holds after idle time instead of bursting, cut
//! into small steps, so a low rate flows evenly instead of in lumps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::clock::SharedClock;
use crate::plan::default_burst;
use crate::stage::dial::Dial;

/// How long one sleep may last before the stop flag is looked at again and the time waited so
/// far is reported: a long wait shows in the stats while it lasts, at most this late.
const SLEEP_SLICE: Duration = Duration::from_millis(50);

/// How much of a second one read or write may carry: at any rate but the lowest, twenty steps a
/// second, each small enough for the stream to look even (pv paces in tenths of a second).
const STEP_SECONDS: f64 = 0.05;

/// The rate and the burst are two separate knobs. The burst caps what idle time saves up; the
/// step (what one read or write may carry) follows the rate alone. A tiny burst therefore does
/// not shrink the writes to a unit each, with a syscall and a sleep per byte: a step larger than
/// the burst waits once for its whole deficit (the bucket goes below zero and the caller sleeps
/// until it is back at zero), so every step costs at most one sleep. The data still goes out no
/// sooner than the rate has earned it: what a step carries was paid for by the wait before it.
pub(crate) struct Limiter {
    /// Units per second; zero is no limit.
    rate: f64,
    burst: f64,
    /// Below zero while a step waits for its deficit; above the burst only by a refund.
    tokens: f64,
    last: Instant,
    clock: SharedClock,
    /// Where a new rate may come from while the run goes on, and the burst to give it (the
    /// one `--burst` gave, else the default for that rate).
    dial: Option<(Arc<Dial>, Option<u64>)>,
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
            dial: None,
        }
    }

    /// A limiter that follows `dial`, starting at its rate (perhaps none).
    pub(crate) fn dialed(dial: Arc<Dial>, burst: Option<u64>, clock: SharedClock) -> Self {
        let rate = dial.rate();
        let burst_now = burst.unwrap_or_else(|| default_burst(rate));
        let mut limiter = Limiter::new(rate, burst_now, clock);
        limiter.dial = Some((dial, burst));
        limiter
    }

    fn dialed_rate(&self) -> f64 {
        match &self.dial {
            Some((dial, _)) => dial.rate() as f64,
            None => self.rate,
        }
    }

    /// Whether nothing is being limited now: no rate on the dial.
    pub(crate) fn is_unlimited(&self) -> bool {
        self.dialed_rate() == 0.0
    }

    /// Takes up a new rate from the dial. What was earned so far at the old rate is kept, but
    /// no burst is given with the change: a lifted limit must not start with a lump.
    fn follow_dial(&mut self) {
        let Some((dial, burst)) = &self.dial else {
            return;
        };
        let rate = dial.rate();
        if rate as f64 == self.rate {
            return;
        }
        let burst = burst.unwrap_or_else(|| default_burst(rate));
        self.refill();
        self.rate = rate as f64;
        self.burst = burst as f64;
        self.tokens = self.tokens.min(0.0);
    }

    /// The most one `acquire` should ask for: a twentieth of a second at the rate, at least one
    /// unit. Below twenty units a second each step is one unit, the smoothest there is.
    pub(crate) fn step(&self) -> u64 {
        match self.dialed_rate() {
            0.0 => u64::MAX,
            rate => ((rate * STEP_SECONDS) as u64).max(1),
        }
    }

    fn refill(&mut self) {
        let now = self.clock.now();
        let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
        // Time earns up to the burst, and never takes away what a refund put above it.
        self.tokens = (self.tokens + earned).min(self.burst.max(self.tokens));
        self.last = now;
    }

    /// Takes `units` and waits until the rate has earned them, telling `waited` each slice of
    /// the wait as it passes. Returns early, taking nothing, when `stop` is raised.
    pub(crate) fn acquire(
        &mut self,
        units: u64,
        stop: &AtomicBool,
        mut waited: impl FnMut(Duration),
    ) {
        self.follow_dial();
        if self.rate == 0.0 {
            return;
        }
        self.refill();
        self.tokens -= units as f64;
        // A millionth of a unit short is float rounding, not a reason for another sleep.
        while self.tokens < -1e-6 {
            if stop.load(Ordering::Relaxed) {
                self.refund(units);
                return;
            }
            self.follow_dial();
            if self.rate == 0.0 {
                return;
            }
            let before = self.last;
            // Rounded up, so a sleep never ends short of the deficit by a part of a nanosecond.
            let deficit = Duration::from_nanos((-self.tokens / self.rate * 1e9).ceil() as u64);
            self.clock.sleep(deficit.min(SLEEP_SLICE));
            self.refill();
            waited(self.last - before);
        }
    }

    /// Gives back units that were taken but not used (a read or write that moved less). They
    /// were paid for by a wait already, so they may lift the bucket above a burst smaller than
    /// a step; otherwise the cap holds.
    pub(crate) fn refund(&mut self, units: u64) {
        let units = units as f64;
        let cap = self.burst.max(units).max(self.tokens);
        self.tokens = (self.tokens + units).min(cap);
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

    /// Acquires `units` and returns how long the wait was, as the stats would count it.
    fn take(limiter: &mut Limiter, units: u64) -> Duration {
        let mut waited = Duration::ZERO;
        limiter.acquire(units, &NEVER, |d| waited += d);
        waited
    }

    #[test]
    fn a_full_bucket_lets_the_burst_through_at_once() {
        let (mut limiter, _) = limiter(1000, 500);
        assert_eq!(take(&mut limiter, 500), Duration::ZERO);
        assert_eq!(take(&mut limiter, 100), Duration::from_millis(100));
    }

    #[test]
    fn idle_time_earns_no_more_than_the_burst() {
        let (mut limiter, clock) = limiter(10_000, 1000);
        take(&mut limiter, 1000);
        clock.advance(Duration::from_secs(3));
        assert_eq!(take(&mut limiter, 1000), Duration::ZERO);
        // Three idle seconds earned 30 000 units, but the bucket holds 1000: this one waits.
        assert_eq!(take(&mut limiter, 1000), Duration::from_millis(100));
    }

    #[test]
    fn late_wake_ups_do_not_slow_the_average() {
        let (mut limiter, clock) = limiter(100_000, 10_000);
        let start = clock.now();
        let mut sent = 0;
        while sent < 50_000 {
            let step = limiter.step();
            take(&mut limiter, step);
            sent += step;
            // A consumer that takes its time, as a real write would.
            clock.advance(Duration::from_millis(3));
        }
        // 50 000 units at 100 000/s, less the 10 000 the full bucket gave at once: 0.4 s.
        let secs = (clock.now() - start).as_secs_f64();
        assert!(secs < 0.42, "50 000 units at 100 000/s took {secs:.3}s");
    }

    #[test]
    fn steps_follow_the_rate_not_the_burst() {
        // A second's worth at 1K/s goes in twenty steps, not in one write of the burst.
        assert_eq!(limiter(1024, 1024).0.step(), 51);
        assert_eq!(limiter(1024, 64 << 10).0.step(), 51);
        // At a unit a second, a unit at a time; a tiny burst does not shrink a step.
        assert_eq!(limiter(1, 1).0.step(), 1);
        assert_eq!(limiter(1 << 20, 1).0.step(), 52_428);
    }

    #[test]
    fn a_low_rate_goes_out_evenly() {
        let (mut limiter, clock) = limiter(1024, 102);
        let start = clock.now();
        let mut sent_at = Vec::new();
        for _ in 0..40 {
            let step = limiter.step();
            take(&mut limiter, step);
            sent_at.push(((clock.now() - start).as_secs_f64(), step));
        }
        // The burst (two steps) at once, then one step every twentieth of a second.
        for pair in sent_at[2..].windows(2) {
            let gap = pair[1].0 - pair[0].0;
            assert!((gap - 51.0 / 1024.0).abs() < 1e-6, "{sent_at:?}");
        }
        let (secs, _) = sent_at[39];
        assert!(
            (secs - (40.0 * 51.0 - 102.0) / 1024.0).abs() < 1e-6,
            "{secs}"
        );
    }

    #[test]
    fn a_step_above_a_tiny_burst_waits_once_for_its_deficit() {
        let (mut limiter, clock) = limiter(1 << 20, 1);
        let start = clock.now();
        let step = limiter.step();
        let mut sent = 0;
        while sent < 1 << 20 {
            take(&mut limiter, step);
            sent += step;
        }
        // One sleep per step (a step is 50 ms): 21 steps, not a million sleeps of a byte each.
        assert_eq!(clock.sleeps.load(Ordering::SeqCst), 21);
        // And the rate holds: 21 steps at 1 MiB/s, less the one unit the bucket started with.
        let secs = (clock.now() - start).as_secs_f64();
        let expected = (21.0 * step as f64 - 1.0) / f64::from(1 << 20);
        assert!((secs - expected).abs() < 1e-6, "{secs} vs {expected}");
    }

    #[test]
    fn a_long_wait_is_told_as_it_passes() {
        let (mut limiter, _) = limiter(1, 1);
        take(&mut limiter, 1);
        let mut told = Vec::new();
        limiter.acquire(1, &NEVER, |d| told.push(d));
        // A second's wait told slice by slice, so the stats see it before it ends.
        assert_eq!(told.len(), 20, "{told:?}");
        assert!(told.iter().all(|d| *d == SLEEP_SLICE), "{told:?}");
    }

    #[test]
    fn stop_cuts_a_wait_in_progress_short() {
        let (mut limiter, clock) = limiter(1, 10);
        take(&mut limiter, 10);
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut waited = Duration::ZERO;
                limiter.acquire(10, &stop, |d| waited += d);
                (waited, limiter)
            })
        };
        // Raise the stop only once the ten-second wait has begun.
        while clock.sleeps.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        stop.store(true, Ordering::SeqCst);
        let (waited, mut limiter) = waiter.join().unwrap();
        assert!(waited < Duration::from_secs(9), "{waited:?}");
        // Cut short, it took nothing: what the wait earned is still there.
        let earned = waited.as_secs_f64().floor() as u64;
        if earned > 0 {
            assert_eq!(take(&mut limiter, earned), Duration::ZERO);
        }
    }

    #[test]
    fn refunds_give_back_what_was_paid_and_no_more_than_the_burst() {
        let (mut limiter, _) = limiter(1, 10);
        assert_eq!(take(&mut limiter, 10), Duration::ZERO);
        limiter.refund(4);
        assert_eq!(take(&mut limiter, 4), Duration::ZERO);
        limiter.refund(4);
        limiter.refund(10);
        assert_eq!(take(&mut limiter, 10), Duration::ZERO);
        // Had the refunds overfilled the bucket, this would go at once too.
        assert_eq!(take(&mut limiter, 10), Duration::from_secs(10));
    }

    #[test]
    fn a_refund_above_a_tiny_burst_is_kept() {
        let (mut limiter, clock) = limiter(1000, 1);
        assert_eq!(take(&mut limiter, 500), Duration::from_millis(499));
        // The write moved 200 of the 500 paid for: the other 300 go without a second wait.
        limiter.refund(300);
        clock.advance(Duration::from_secs(1));
        assert_eq!(take(&mut limiter, 300), Duration::ZERO);
        assert_eq!(take(&mut limiter, 1), Duration::from_millis(1));
    }
}
