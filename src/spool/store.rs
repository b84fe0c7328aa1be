//! The spool itself: its file, and its index and state under one lock, with a condvar for the
//! reader (waiting for room) and one for the replayer (waiting for chunks to replay).

use std::io;
use std::sync::{Condvar, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use crate::spool::file::SpoolFile;
use crate::spool::index::Entry;
use crate::spool::ledger::Ledger;
use crate::supervise::message::Message;
use crate::supervise::outcome::error_line;

/// How long a close waits for the replayer to let go of a chunk, so the accounts at exit are
/// exact.
const SETTLE: Duration = Duration::from_secs(1);

/// The spool: its file, and its index and state under one lock, with a condvar for the reader
/// (room) and one for the replayer (chunks to replay).
pub(crate) struct Spool {
    pub(super) file: SpoolFile,
    pub(super) ledger: Mutex<Ledger>,
    pub(super) room: Condvar,
    pub(super) chunks: Condvar,
    pub(super) delimiter: Option<u8>,
    /// Where lines about the spool go: the steering thread prints them.
    pub(super) tx: mpsc::Sender<Message>,
}

impl Spool {
    pub(super) fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One wait for room; the reader's wait is clocked as blocked.
    pub(super) fn wait_room<'a>(
        &'a self,
        mut ledger: MutexGuard<'a, Ledger>,
    ) -> MutexGuard<'a, Ledger> {
        ledger.wait_begins(Instant::now());
        ledger.room_waiters += 1;
        ledger = self.room.wait(ledger).unwrap_or_else(|e| e.into_inner());
        ledger.room_waiters -= 1;
        ledger.wait_ends(Instant::now());
        ledger
    }

    /// Wakes whoever waits for room (or for the replayer to let go of a chunk).
    pub(super) fn wake_room(&self, ledger: &Ledger) {
        if ledger.room_waiters > 0 {
            self.room.notify_all();
        }
    }

    /// Wakes the replayer if it waits for a chunk.
    pub(super) fn wake_replayer(&self, ledger: &Ledger) {
        if ledger.replayer_waits {
            self.chunks.notify_all();
        }
    }

    /// Records a chunk just written at the place the index reserved, for the replayer; after a
    /// close it is thrown away instead.
    pub(super) fn add(&self, ledger: &mut Ledger, entry: Entry) {
        ledger.spooled += entry.len as u64;
        match ledger.closed {
            true => ledger.discarded += entry.len as u64,
            false => ledger.index.push(entry),
        }
        self.wake_replayer(ledger);
    }

    /// The spool failed (a full disk, EIO): it is said once, and nothing more is spooled.
    pub(super) fn give_up(&self, ledger: &mut Ledger, error: io::Error) {
        ledger.usable = false;
        let error = anyhow::Error::new(error).context(self.file.name());
        let line = format!(
            "{}; applying --on-full {}",
            error_line(&error),
            ledger.policy.name()
        );
        self.tell(line, false);
    }

    pub(super) fn tell(&self, line: String, fatal: bool) {
        let _ = self.tx.send(Message::Spool { line, fatal });
    }

    /// The bytes of a chunk the replayer took are lost: counted unsent.
    pub(super) fn lost(&self, len: usize) {
        let mut ledger = self.lock();
        ledger.discarded += len as u64;
        ledger.in_flight = None;
        self.wake_room(&ledger);
    }

    /// Throws away what is spooled: the output is gone or the relay must stop now.
    pub(super) fn close(&self) {
        let mut ledger = self.lock();
        ledger.closed = true;
        ledger.discarded += ledger.index.clear();
        self.room.notify_all();
        self.chunks.notify_all();
    }

    /// Waits, bounded, until the replayer holds no chunk.
    pub(super) fn settle(&self) {
        let mut ledger = self.lock();
        ledger.room_waiters += 1;
        let (mut ledger, _) = self
            .room
            .wait_timeout_while(ledger, SETTLE, |l| l.in_flight.is_some())
            .unwrap_or_else(|e| e.into_inner());
        ledger.room_waiters -= 1;
    }
}
