//! The replayer: moves spooled chunks back into the queue, oldest first, as the writer frees
//! room. It waits for room before it takes a chunk from the spool, so the oldest chunk stays
//! evictable while the consumer is stalled, and it reads the chunk into a slot with neither the
//! queue's lock nor the spool's held.

use anyhow::Context;

use crate::cli::units::human_bytes;
use crate::queue::{Item, TryPush};
use crate::slot::Spill;
use crate::spool::index::Entry;
use crate::spool::{Intake, Spool};
use crate::supervise::outcome::error_line;

/// Replays until the input is done and the spool has drained (then the queue's input is done
/// too), or the relay closes. A chunk that cannot be read back ends the run with an error.
pub(crate) fn run<S: Spill>(intake: &Intake<S>) {
    let Some(spool) = &intake.spool else {
        return;
    };
    while let Some(len) = next_len(intake, spool) {
        if !intake.queue.wait_room_to_replay(len) {
            break;
        }
        let Some(entry) = take_front(spool, len) else {
            continue;
        };
        if let Err(error) = replay(intake, spool, entry) {
            spool.tell(error_line(&error), true);
            intake.queue.close();
            break;
        }
    }
    // The queue may have closed under the replayer (the output failed): what is spooled will
    // never be written, and a reader waiting for room must hear so.
    if intake.queue.is_closed() {
        spool.close();
    }
}

/// The length of the oldest spooled chunk, once there is one; `None` at the end.
fn next_len<S: Spill>(intake: &Intake<S>, spool: &Spool) -> Option<usize> {
    let mut ledger = spool.lock();
    loop {
        if ledger.closed {
            return None;
        }
        if let Some(entry) = ledger.index.front() {
            return Some(entry.len);
        }
        if ledger.input_done && ledger.idle() {
            drop(ledger);
            intake.queue.finish_input();
            return None;
        }
        ledger.replayer_waits = true;
        ledger = spool.chunks.wait(ledger).unwrap_or_else(|e| e.into_inner());
        ledger.replayer_waits = false;
    }
}

/// Takes the oldest chunk for the queue, if it is still no longer than the room waited for
/// (an eviction may have changed the oldest meanwhile).
fn take_front(spool: &Spool, room: usize) -> Option<Entry> {
    let mut ledger = spool.lock();
    if ledger.closed || ledger.index.front().is_none_or(|e| e.len > room) {
        return None;
    }
    let entry = ledger.index.take_front()?;
    ledger.in_flight = Some(entry);
    Some(entry)
}

/// A slot from the queue's pool for `entry`; `None` when the queue has closed. Without one,
/// the entry's bytes are lost.
fn slot_for<S: Spill>(
    intake: &Intake<S>,
    spool: &Spool,
    entry: Entry,
) -> anyhow::Result<Option<S>> {
    let acquired = intake
        .queue
        .acquire(|| S::new(intake.chunk_size))
        .with_context(|| {
            format!(
                "cannot allocate a queue slot of {}",
                human_bytes(intake.chunk_size as u64)
            )
        });
    if !matches!(acquired, Ok(Some(_))) {
        spool.lost(entry.len);
    }
    acquired
}

fn replay<S: Spill>(intake: &Intake<S>, spool: &Spool, entry: Entry) -> anyhow::Result<()> {
    let queue = &intake.queue;
    let Some(mut slot) = slot_for(intake, spool, entry)? else {
        return Ok(());
    };
    let read = slot
        .clear()
        .and_then(|()| spool.file.read(&mut slot, entry.pos, entry.len));
    {
        let mut ledger = spool.lock();
        ledger.index.read_done();
        spool.wake_room(&ledger);
    }
    if let Err(error) = read {
        queue.recycle(slot);
        spool.lost(entry.len);
        return Err(error).context(format!("{}: read", spool.file.name()));
    }
    let mut item = Item {
        slot,
        len: entry.len,
        starts_record: entry.starts_record,
        ends_record: entry.ends_record,
    };
    loop {
        match queue.try_push(item) {
            TryPush::Queued | TryPush::Closed => break,
            // Counted dropped by the queue: the rest of a record it dropped or withdrew.
            TryPush::Dropped(slot) => {
                queue.recycle(slot);
                break;
            }
            TryPush::Full(back) if queue.wait_room_to_replay(back.len) => item = back,
            TryPush::Full(back) => {
                queue.recycle(back.slot);
                spool.lost(entry.len);
                return Ok(());
            }
        }
    }
    let mut ledger = spool.lock();
    ledger.in_flight = None;
    spool.wake_room(&ledger);
    Ok(())
}
