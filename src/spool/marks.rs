//! The watermarks: the start gate that holds the writer until the buffer holds `--start-at` (or
//! is full, or the input ends, or `--start-after` passed), and the resume mark that holds the
//! reader, once the buffer has filled, until it has drained to `--resume-at`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::cli::Level;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// How full the buffer (the queue and the spool) is, in bytes of its capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Levels {
    pub(crate) queue_chunks: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) spool_max: u64,
}

impl Levels {
    pub(crate) fn capacity(&self) -> u64 {
        self.queue_bytes as u64 + self.spool_max
    }

    /// The queue counts as the larger of its two fractions, of chunks (`-n`) and of bytes
    /// (`-m`), so that a queue full of small chunks counts as full; the spool by its bytes.
    pub(crate) fn fill(&self, chunks: usize, bytes: usize, spooled: u64) -> u64 {
        let by_chunks =
            chunks as u128 * self.queue_bytes as u128 / self.queue_chunks.max(1) as u128;
        let queue = by_chunks.max(bytes as u128).min(self.queue_bytes as u128);
        queue as u64 + spooled
    }

    /// The fill a level stands for; `eof` is never reached by filling.
    pub(crate) fn threshold(&self, level: Level) -> u64 {
        match level {
            Level::Bytes(bytes) => bytes,
            Level::Percent(percent) => (self.capacity() as f64 * percent / 100.0).ceil() as u64,
            Level::Eof => u64::MAX,
        }
    }
}

/// Waits at a mark: how many, how long, and since when one is going on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Waited {
    pub(crate) count: u64,
    pub(crate) total: Duration,
    pub(crate) since: Option<Instant>,
}

impl Waited {
    fn begin(&mut self, now: Instant) {
        self.count += 1;
        self.since = Some(now);
    }

    fn end(&mut self, now: Instant) {
        if let Some(since) = self.since.take() {
            self.total += now.saturating_duration_since(since);
        }
    }

    /// The time waited, a wait in progress included.
    pub(crate) fn total(&self, now: Instant) -> Duration {
        self.total
            + self
                .since
                .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }
}

/// Holds the writer at the start.
pub(crate) struct Gate {
    open: AtomicBool,
    state: Mutex<Waited>,
    opened: Condvar,
    /// When `--start-after` opens it anyway.
    deadline: Option<Instant>,
}

impl Gate {
    pub(crate) fn new(start_after: Option<Duration>, now: Instant) -> Gate {
        Gate {
            open: AtomicBool::new(false),
            state: Mutex::new(Waited::default()),
            opened: Condvar::new(),
            deadline: start_after.and_then(|after| now.checked_add(after)),
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    pub(crate) fn open(&self) {
        let _state = lock(&self.state);
        self.open.store(true, Ordering::Release);
        self.opened.notify_all();
    }

    /// Returns once the gate is open, or its deadline has passed (which opens it).
    pub(crate) fn wait(&self) {
        let mut state = lock(&self.state);
        if self.is_open() {
            return;
        }
        state.begin(Instant::now());
        while !self.is_open() {
            let now = Instant::now();
            let timeout = match self.deadline {
                Some(deadline) if now >= deadline => {
                    self.open.store(true, Ordering::Release);
                    break;
                }
                Some(deadline) => Some(deadline - now),
                None => None,
            };
            state = match timeout {
                Some(timeout) => {
                    self.opened
                        .wait_timeout(state, timeout)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.opened.wait(state).unwrap_or_else(|e| e.into_inner()),
            };
        }
        state.end(Instant::now());
    }

    pub(crate) fn waited(&self) -> Waited {
        *lock(&self.state)
    }
}

/// Holds the reader, after the buffer filled, until it has drained to the mark.
pub(crate) struct Resume {
    pub(crate) threshold: u64,
    /// The buffer filled since the reader last waited here.
    filled: AtomicBool,
    state: Mutex<Waited>,
}

impl Resume {
    pub(crate) fn new(threshold: u64) -> Resume {
        Resume {
            threshold,
            filled: AtomicBool::new(false),
            state: Mutex::new(Waited::default()),
        }
    }

    pub(crate) fn filled(&self) {
        self.filled.store(true, Ordering::Relaxed);
    }

    /// Whether the reader must wait for the drain before its next offer; clears the mark.
    pub(crate) fn take_filled(&self) -> bool {
        self.filled.swap(false, Ordering::Relaxed)
    }

    pub(crate) fn begin(&self) {
        lock(&self.state).begin(Instant::now());
    }

    pub(crate) fn end(&self) {
        lock(&self.state).end(Instant::now());
    }

    pub(crate) fn waited(&self) -> Waited {
        *lock(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    const LEVELS: Levels = Levels {
        queue_chunks: 4,
        queue_bytes: 400,
        spool_max: 600,
    };

    #[test]
    fn a_queue_full_of_small_chunks_counts_as_full() {
        assert_eq!(LEVELS.capacity(), 1000);
        assert_eq!(LEVELS.fill(4, 40, 0), 400);
        assert_eq!(LEVELS.fill(1, 300, 50), 350);
        assert_eq!(LEVELS.fill(0, 0, 0), 0);
        assert_eq!(LEVELS.threshold(Level::Percent(25.0)), 250);
        assert_eq!(LEVELS.threshold(Level::Percent(12.55)), 126);
        assert_eq!(LEVELS.threshold(Level::Bytes(7)), 7);
        assert_eq!(LEVELS.threshold(Level::Eof), u64::MAX);
    }

    #[test]
    fn the_gate_holds_until_opened_and_counts_the_wait() {
        let gate = Arc::new(Gate::new(None, Instant::now()));
        let writer = {
            let gate = Arc::clone(&gate);
            thread::spawn(move || gate.wait())
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while gate.waited().since.is_none() {
            assert!(Instant::now() < deadline, "the writer never waited");
            thread::yield_now();
        }
        gate.open();
        writer.join().unwrap();
        let waited = gate.waited();
        assert_eq!((waited.count, waited.since), (1, None));
        gate.wait();
        assert_eq!(gate.waited().count, 1, "an open gate is no wait");
    }

    #[test]
    fn start_after_opens_the_gate_anyway() {
        let gate = Gate::new(Some(Duration::from_millis(50)), Instant::now());
        gate.wait();
        assert!(gate.is_open());
        assert!(gate.waited().total >= Duration::from_millis(40));
    }

    #[test]
    fn the_resume_mark_is_taken_once_per_fill() {
        let resume = Resume::new(10);
        assert!(!resume.take_filled());
        resume.filled();
        assert!(resume.take_filled());
        assert!(!resume.take_filled());
    }
}
