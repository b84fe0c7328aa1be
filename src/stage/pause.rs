//! Pausing a side from the control socket: the reader waits here before each read, the writer
//! before each write, and the time any side was paused is counted, so the stats can tell it
//! and the stall watch can excuse it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::control::command::Side;

/// How often a paused stage looks at whether it must give up instead (a stop, a closed queue).
const LOOK_AGAIN: Duration = Duration::from_millis(50);

#[derive(Default)]
struct State {
    input: bool,
    output: bool,
    /// Since when some side is paused.
    since: Option<Instant>,
    /// Time some side was paused, before `since`.
    total: Duration,
}

impl State {
    fn side(&mut self, side: Side) -> &mut bool {
        match side {
            Side::In => &mut self.input,
            Side::Out => &mut self.output,
        }
    }
}

#[derive(Default)]
pub(crate) struct Pauses {
    state: Mutex<State>,
    resumed: Condvar,
    /// Whether any side is paused: the stages look at this before each read and write, so a
    /// run nobody pauses takes no lock for it.
    any: AtomicBool,
}

impl Pauses {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pauses or resumes one side, or both; returns whether each is paused now.
    pub(crate) fn set(&self, side: Option<Side>, paused: bool, now: Instant) -> (bool, bool) {
        let mut state = self.lock();
        for side in side.map_or(vec![Side::In, Side::Out], |side| vec![side]) {
            *state.side(side) = paused;
        }
        let any = state.input || state.output;
        self.any.store(any, Ordering::Relaxed);
        match (any, state.since) {
            (true, None) => state.since = Some(now),
            (false, Some(since)) => {
                state.total += now.saturating_duration_since(since);
                state.since = None;
            }
            _ => {}
        }
        self.resumed.notify_all();
        (state.input, state.output)
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.lock().since.is_some()
    }

    /// Time some side was paused, a pause in progress included.
    pub(crate) fn paused_for(&self, now: Instant) -> Duration {
        let state = self.lock();
        let ongoing = state
            .since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        state.total + ongoing
    }

    /// Waits while `side` is paused. False when `give_up` said to stop waiting first.
    pub(crate) fn pass(&self, side: Side, give_up: impl Fn() -> bool) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return true;
        }
        let mut state = self.lock();
        while *state.side(side) {
            if give_up() {
                return false;
            }
            state = self
                .resumed
                .wait_timeout(state, LOOK_AGAIN)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use std::thread;

    #[test]
    fn paused_time_is_the_union_of_both_sides_pauses() {
        let pauses = Pauses::default();
        let t0 = Instant::now();
        assert_eq!(pauses.set(Some(Side::Out), true, t0), (false, true));
        assert_eq!(
            pauses.set(Some(Side::In), true, t0 + Duration::from_secs(1)),
            (true, true)
        );
        assert_eq!(
            pauses.set(None, false, t0 + Duration::from_secs(3)),
            (false, false)
        );
        assert_eq!(
            pauses.paused_for(t0 + Duration::from_secs(9)),
            Duration::from_secs(3)
        );
        assert!(!pauses.is_paused());
    }

    #[test]
    fn a_paused_side_waits_until_resumed_or_told_to_give_up() {
        let pauses = Arc::new(Pauses::default());
        pauses.set(Some(Side::Out), true, Instant::now());
        assert!(pauses.pass(Side::In, || false), "the other side goes on");
        let waiting = {
            let pauses = Arc::clone(&pauses);
            thread::spawn(move || pauses.pass(Side::Out, || false))
        };
        pauses.set(None, false, Instant::now());
        assert!(waiting.join().unwrap());
        pauses.set(None, true, Instant::now());
        let stop = Arc::new(AtomicBool::new(false));
        let giving_up = {
            let (pauses, stop) = (Arc::clone(&pauses), Arc::clone(&stop));
            thread::spawn(move || pauses.pass(Side::In, || stop.load(Ordering::Relaxed)))
        };
        stop.store(true, Ordering::Relaxed);
        assert!(!giving_up.join().unwrap());
    }
}
