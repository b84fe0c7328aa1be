//! A bell several queues ring when they have something for their one consumer (the merger of
//! several inputs), so that it can sleep until any of them does.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

#[derive(Default)]
pub(crate) struct Bell {
    rings: Mutex<u64>,
    rung: Condvar,
}

impl Bell {
    pub(crate) fn ring(&self) {
        *self.rings.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.rung.notify_all();
    }

    /// How many times it has rung: read before looking at the queues, then passed to `wait`.
    pub(crate) fn rings(&self) -> u64 {
        *self.rings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until it rings again after `seen` rings, or `timeout` passes.
    pub(crate) fn wait(&self, seen: u64, timeout: Duration) {
        let rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .rung
            .wait_timeout_while(rings, timeout, |rings| *rings == seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn a_ring_after_the_look_is_never_missed() {
        let bell = Arc::new(Bell::default());
        let seen = bell.rings();
        let ringer = {
            let bell = Arc::clone(&bell);
            thread::spawn(move || bell.ring())
        };
        ringer.join().unwrap();
        // Rung before the wait began: the wait returns at once, not after the timeout.
        let start = std::time::Instant::now();
        bell.wait(seen, Duration::from_secs(30));
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(bell.rings(), seen + 1);
    }
}
