//! The drain after the input was refused under `--on-full fail`: what was accepted is written
//! while the consumer takes it, but a consumer that takes nothing for a moment must not turn
//! `fail` into `block`.

use std::time::{Duration, Instant};

/// How long the consumer may take nothing before the rest counts as unsent.
pub(crate) const PATIENCE: Duration = Duration::from_secs(1);

pub(crate) struct Drain {
    last_out: u64,
    moved_at: Instant,
}

impl Drain {
    pub(crate) fn new(bytes_out: u64, now: Instant) -> Self {
        Drain {
            last_out: bytes_out,
            moved_at: now,
        }
    }

    /// Whether the consumer has taken nothing for `PATIENCE`.
    pub(crate) fn stuck(&mut self, bytes_out: u64, now: Instant) -> bool {
        if bytes_out != self.last_out {
            self.last_out = bytes_out;
            self.moved_at = now;
        }
        now.duration_since(self.moved_at) >= PATIENCE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_is_stuck_only_after_patience_without_progress() {
        let t0 = Instant::now();
        let mut drain = Drain::new(10, t0);
        assert!(!drain.stuck(10, t0 + PATIENCE / 2));
        assert!(!drain.stuck(20, t0 + PATIENCE * 3 / 2));
        assert!(!drain.stuck(20, t0 + PATIENCE * 2));
        assert!(drain.stuck(20, t0 + PATIENCE * 5 / 2));
    }
}
