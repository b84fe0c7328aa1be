//! Time as the timing code sees it: the system's clock in a run, a hand-driven one in unit tests,
//! so that rate limits and wait clocks are tested exactly instead of by sleeping.

use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) trait Clock: Send + Sync {
    fn now(&self) -> Instant;
    fn sleep(&self, duration: Duration);
}

pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

pub(crate) type SharedClock = Arc<dyn Clock>;

pub(crate) fn system() -> SharedClock {
    Arc::new(SystemClock)
}

#[cfg(test)]
pub(crate) mod manual {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A clock that only moves when told to, or when someone sleeps on it. Each sleep also
    /// yields for a moment of real time, so a test thread watching `sleeps` can act mid-wait.
    pub(crate) struct ManualClock {
        start: Instant,
        offset: Mutex<Duration>,
        pub(crate) sleeps: AtomicU64,
    }

    impl ManualClock {
        pub(crate) fn new() -> Arc<ManualClock> {
            Arc::new(ManualClock {
                start: Instant::now(),
                offset: Mutex::new(Duration::ZERO),
                sleeps: AtomicU64::new(0),
            })
        }

        pub(crate) fn advance(&self, by: Duration) {
            *self.offset.lock().unwrap() += by;
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            self.start + *self.offset.lock().unwrap()
        }

        fn sleep(&self, duration: Duration) {
            self.advance(duration);
            self.sleeps.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}
