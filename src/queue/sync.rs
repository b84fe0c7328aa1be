//! The queue's synchronisation: one mutex over its state, a condvar per side, and one wait that
//! backs off before it sleeps and clocks how long each side waited.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use std::{hint, thread};

use crate::clock::SharedClock;

/// Rounds of backing off, with the lock released, before a side sleeps on its condvar. The
/// other side usually acts within microseconds, and a futex sleep and wake-up costs more than
/// that on both sides.
const BACK_OFF_ROUNDS: u32 = 8;

fn back_off(round: u32) {
    if round <= 4 {
        for _ in 0..(4 << round) {
            hint::spin_loop();
        }
    } else {
        thread::yield_now();
    }
}

/// Who waits: the reader for room, the writer for data, and a spool's replayer for room too,
/// on a clock of its own: its waits do not hold the producer back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Reader = 0,
    Writer = 1,
    Replayer = 2,
}

const SIDES: usize = 3;

/// How long each side has waited, and since when it is waiting now.
#[derive(Default)]
pub(crate) struct Waits {
    since: [Option<Instant>; SIDES],
    total: [Duration; SIDES],
}

impl Waits {
    pub(crate) fn is_waiting(&self, side: Side) -> bool {
        self.since[side as usize].is_some()
    }

    /// The time waited so far, including a wait in progress.
    pub(crate) fn total(&self, side: Side, now: Instant) -> Duration {
        let ongoing = self.since[side as usize].map_or(Duration::ZERO, |s| now - s);
        self.total[side as usize] + ongoing
    }
}

/// State that keeps the wait clocks.
pub(crate) trait Clocked {
    fn waits(&mut self) -> &mut Waits;
}

pub(crate) struct Sync<T> {
    state: Mutex<T>,
    wake: [Condvar; SIDES],
    clock: SharedClock,
}

impl<T: Clocked> Sync<T> {
    pub(crate) fn new(state: T, clock: SharedClock) -> Self {
        Sync {
            state: Mutex::new(state),
            wake: [Condvar::new(), Condvar::new(), Condvar::new()],
            clock,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        // A poisoned lock means a stage panicked; the state is still the best account we have.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Waits for the other side to act: first a few rounds of backing off with the lock
    /// released, then asleep on the condvar, clocked.
    pub(crate) fn wait<'a>(
        &'a self,
        mut state: MutexGuard<'a, T>,
        side: Side,
        round: &mut u32,
    ) -> MutexGuard<'a, T> {
        if *round < BACK_OFF_ROUNDS {
            *round += 1;
            drop(state);
            back_off(*round);
            return self.lock();
        }
        state.waits().since[side as usize] = Some(self.clock.now());
        state = self.wake[side as usize]
            .wait(state)
            .unwrap_or_else(|e| e.into_inner());
        let now = self.clock.now();
        let waits = state.waits();
        if let Some(start) = waits.since[side as usize].take() {
            waits.total[side as usize] += now.saturating_duration_since(start);
        }
        state
    }

    /// Wakes `side` if it sleeps: a side that is not waiting costs no system call. Every
    /// sleeper of that side wakes: merged inputs wait for slots on the queue whose room the
    /// merger waits for, and the one a single wake-up chose might not be the one it was for.
    pub(crate) fn wake(&self, state: &mut T, side: Side) {
        if state.waits().is_waiting(side) {
            self.wake[side as usize].notify_all();
        }
        // Room for the reader is room for the replayer.
        if side == Side::Reader && state.waits().is_waiting(Side::Replayer) {
            self.wake[Side::Replayer as usize].notify_all();
        }
    }

    pub(crate) fn wake_all(&self) {
        for condvar in &self.wake {
            condvar.notify_all();
        }
    }
}
