//! A rate limit the control socket can turn while the run goes on: the stage's limiter reads it
//! before each step and in every slice of a wait, so a new rate holds within one slice.

use std::sync::atomic::{AtomicU64, Ordering};

/// Units per second; 0 is no limit.
#[derive(Debug, Default)]
pub(crate) struct Dial {
    rate: AtomicU64,
}

impl Dial {
    pub(crate) fn new(rate: Option<u64>) -> Dial {
        Dial {
            rate: AtomicU64::new(rate.unwrap_or(0)),
        }
    }

    pub(crate) fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self, rate: Option<u64>) {
        self.rate.store(rate.unwrap_or(0), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rate_is_zero() {
        let dial = Dial::new(None);
        assert_eq!(dial.rate(), 0);
        dial.set(Some(5));
        assert_eq!(dial.rate(), 5);
        dial.set(None);
        assert_eq!(dial.rate(), 0);
    }
}
