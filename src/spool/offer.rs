//! How the intake places a chunk: straight into the queue while the queue has room and nothing
//! is spooled, else at the end of the spool; when the spool is full, by the policy. And the
//! watermarks around each offer: the wait for the drain before it, the look at the start level
//! after it.

use std::sync::MutexGuard;

use crate::cli::OnFull;
use crate::queue::{Item, Push, TryPush};
use crate::slot::Spill;
use crate::spool::Intake;
use crate::spool::index::Entry;
use crate::spool::ledger::{Full, Ledger};
use crate::spool::store::Spool;
use crate::stage::reader::{Offer, ReaderExit};

impl<S: Spill> Intake<S> {
    fn policy(&self) -> OnFull {
        *self.policy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the spool holds now, for the watermarks.
    fn spooled(&self) -> u64 {
        self.spool.as_ref().map_or(0, |s| s.lock().index.used())
    }

    fn fill(&self, chunks: usize, bytes: usize) -> u64 {
        self.levels.fill(chunks, bytes, self.spooled())
    }

    /// The buffer is full: the writer may start, and under `block` the reader waits for the
    /// drain to `--resume-at` before its next chunk.
    fn filled(&self) {
        if let Some(gate) = &self.gate {
            gate.open();
        }
        if let Some(resume) = &self.resume
            && self.policy() == OnFull::Block
        {
            resume.filled();
        }
    }

    /// Offers a chunk the reader filled; a slot that comes back is the reader's to read into.
    pub(crate) fn offer(&self, item: Item<S>) -> Offer<S> {
        self.await_resume();
        let offer = match &self.spool {
            Some(spool) => self.to_spool(spool, item),
            None => self.to_queue(item),
        };
        self.look_at_start();
        offer
    }

    /// After the buffer filled, waits until it has drained to `--resume-at`. The spool is
    /// looked at under the queue's lock (the one place the two locks nest, in this order).
    pub(super) fn await_resume(&self) {
        let Some(resume) = &self.resume else {
            return;
        };
        if !resume.take_filled() || self.policy() != OnFull::Block {
            return;
        }
        resume.begin();
        self.queue
            .wait_drained(|chunks, bytes| self.fill(chunks, bytes) <= resume.threshold);
        resume.end();
    }

    /// Opens the gate once the buffer holds `--start-at`.
    pub(super) fn look_at_start(&self) {
        let Some(gate) = &self.gate else {
            return;
        };
        if gate.is_open() || self.start == u64::MAX {
            return;
        }
        let (chunks, bytes) = self.queue.fill();
        if self.fill(chunks, bytes) >= self.start {
            gate.open();
        }
    }

    /// Without a spool (or with one that failed and is empty): the queue and its policy.
    fn to_queue(&self, item: Item<S>) -> Offer<S> {
        if !self.queue.has_room(item.len) {
            self.filled();
        }
        match self.queue.push(item) {
            Push::Queued => Offer::Queued,
            Push::Dropped(slot) => Offer::Dropped(slot),
            Push::Rejected => Offer::End(ReaderExit::Rejected),
            Push::Closed => Offer::End(ReaderExit::Closed),
        }
    }

    fn to_spool(&self, spool: &Spool, mut item: Item<S>) -> Offer<S> {
        let mut ledger = spool.lock();
        ledger.offered += item.len as u64;
        if ledger.dropping_record {
            return Offer::Dropped(ledger.drop_item(item));
        }
        let mut queue_full = false;
        loop {
            if ledger.closed {
                ledger.refused += item.len as u64;
                return Offer::End(ReaderExit::Closed);
            }
            if ledger.idle() && !queue_full {
                if !ledger.usable || item.len as u64 > spool.file.capacity() {
                    drop(ledger);
                    return self.to_queue(item);
                }
                drop(ledger);
                match self.queue.try_push(item) {
                    TryPush::Queued => return Offer::Queued,
                    TryPush::Closed => return Offer::End(ReaderExit::Closed),
                    TryPush::Full(back) => item = back,
                    TryPush::Dropped(slot) => return Offer::Dropped(slot),
                }
                queue_full = true;
                ledger = spool.lock();
                continue;
            }
            if ledger.usable && ledger.index.fits(item.len) {
                match self.write(spool, ledger, item) {
                    Ok(offer) => return offer,
                    Err((back, again)) => (ledger, item) = (again, back),
                }
                continue;
            }
            self.filled();
            match ledger.full(item) {
                Full::Wait(back) => {
                    item = back;
                    ledger = spool.wait_room(ledger);
                    queue_full = false;
                }
                Full::Again(back) => item = back,
                Full::Dropped(slot) => return Offer::Dropped(slot),
                Full::Rejected(began_before) => {
                    drop(ledger);
                    if began_before {
                        self.queue.withdraw_open_record();
                    }
                    return Offer::End(ReaderExit::Rejected);
                }
            }
        }
    }

    /// Writes `item` to the spool at a position taken under the lock, the lock released. On an
    /// error the spool is given up, and what did not reach it comes back to be offered again.
    fn write<'a>(
        &self,
        spool: &'a Spool,
        mut ledger: MutexGuard<'a, Ledger>,
        mut item: Item<S>,
    ) -> Result<Offer<S>, (Item<S>, MutexGuard<'a, Ledger>)> {
        let len = item.len;
        let pos = ledger.index.reserve(len);
        let records = spool
            .delimiter
            .map_or(0, |d| item.slot.records(d, item.ends_record));
        drop(ledger);
        let (moved, written) = spool.file.write(&mut item.slot, pos, len);
        let mut ledger = spool.lock();
        let whole = moved == len;
        ledger.index.unreserve(pos + moved as u64);
        if moved > 0 {
            let entry = Entry {
                pos,
                len: moved,
                starts_record: item.starts_record,
                ends_record: item.ends_record && whole,
                records: if whole { records } else { 0 },
            };
            spool.add(&mut ledger, entry);
        }
        match written {
            Ok(()) if ledger.closed => Ok(Offer::End(ReaderExit::Closed)),
            Ok(()) => {
                // The queue may hold this record's head back from the writer until now.
                let record_end = spool.delimiter.is_some() && item.ends_record;
                drop(ledger);
                if record_end {
                    self.queue.record_end_arrived();
                }
                Ok(Offer::Dropped(item.slot))
            }
            Err(error) => {
                spool.give_up(&mut ledger, error);
                item.len -= moved;
                item.starts_record &= moved == 0;
                Err((item, ledger))
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::plan::Plan;
    use crate::queue::{Limits, Queue};
    use crate::slot::Slot;
    use crate::slot::memory::MemSlot;
    use clap::Parser;
    use std::os::fd::AsFd;
    use std::sync::{Arc, mpsc};
    use std::thread;

    fn plan(args: &[&str]) -> Plan {
        let cli = Cli::try_parse_from(std::iter::once("bpipe").chain(args.iter().copied()));
        Plan::from(&cli.unwrap())
    }

    fn slot(data: &[u8]) -> MemSlot {
        let (r, w) = std::io::pipe().unwrap();
        crate::io::sys::write_all(w.as_fd(), data).unwrap();
        let mut slot = MemSlot::with_capacity(128).unwrap();
        slot.fill(r.as_fd(), data.len(), &mut ()).unwrap();
        slot
    }

    pub(crate) fn item(data: &[u8]) -> Item<MemSlot> {
        Item {
            len: data.len(),
            slot: slot(data),
            starts_record: true,
            ends_record: true,
        }
    }

    pub(crate) fn chunk(i: usize) -> Vec<u8> {
        format!("{i:0100}").into_bytes()
    }

    /// An intake on a queue of two chunks, with a spool of `max` bytes; `extra` flags after.
    fn intake_with(
        max: &str,
        policy: &str,
        extra: &[&str],
    ) -> (Arc<Queue<MemSlot>>, Arc<Intake<MemSlot>>) {
        let dir = std::env::temp_dir().to_string_lossy().into_owned();
        let args = ["--spool", &dir, "--spool-max", max, "--on-full", policy];
        let plan = plan(&[&args[..], extra].concat());
        let limits = Limits {
            chunks: 2,
            bytes: usize::MAX,
            slots: 5,
            delimiter: plan.data_path.delimiter(),
        };
        let queue = Arc::new(Queue::new(limits, plan.policy, crate::clock::system()));
        let (tx, _rx) = mpsc::channel();
        let intake = Intake::start(&plan, &queue, None, 128, &tx);
        (queue, intake.unwrap().unwrap())
    }

    pub(crate) fn intake(max: &str, policy: &str) -> (Arc<Queue<MemSlot>>, Arc<Intake<MemSlot>>) {
        intake_with(max, policy, &[])
    }

    fn piece(data: &[u8], starts: bool, ends: bool) -> Item<MemSlot> {
        Item {
            starts_record: starts,
            ends_record: ends,
            ..item(data)
        }
    }

    pub(crate) fn drain(queue: &Queue<MemSlot>) -> Vec<Vec<u8>> {
        let (mut out, mut emptied) = (Vec::new(), None);
        while let Some(item) = queue.pop(emptied.take()) {
            out.push(item.slot.data().to_vec());
            emptied = Some(item.slot);
        }
        out
    }

    #[test]
    fn the_overflow_is_spooled_and_comes_back_in_order() {
        let (queue, intake) = intake("1M", "block");
        for i in 0..100 {
            assert!(!matches!(intake.offer(item(&chunk(i))), Offer::End(_)));
        }
        let view = intake.amend(queue.view());
        assert_eq!((view.chunks, view.spool.held), (2, 9800));
        assert_eq!(view.offered_bytes, 10_000);
        assert!(!view.reader_waiting);
        intake.finish_input();
        let out = drain(&queue);
        assert_eq!(out, (0..100).map(chunk).collect::<Vec<_>>());
        let view = intake.amend(queue.view());
        assert_eq!((view.spool.held, view.spool.bytes), (0, 0));
        assert_eq!((view.spool.spooled, view.spool.peak_bytes), (9800, 9800));
    }

    #[test]
    fn a_full_spool_drops_the_newest_and_keeps_the_order() {
        let (queue, intake) = intake("500", "drop");
        for i in 0..100 {
            intake.offer(item(&chunk(i)));
        }
        intake.finish_input();
        assert_eq!(drain(&queue), (0..7).map(chunk).collect::<Vec<_>>());
        let view = intake.amend(queue.view());
        assert_eq!((view.drops.chunks, view.drops.bytes), (93, 9300));
    }

    #[test]
    fn a_full_spool_under_drop_oldest_keeps_the_newest() {
        let (queue, intake) = intake("500", "drop-oldest");
        for i in 0..100 {
            intake.offer(item(&chunk(i)));
        }
        intake.finish_input();
        let kept: Vec<Vec<u8>> = [0, 1].into_iter().chain(95..100).map(chunk).collect();
        assert_eq!(drain(&queue), kept);
    }

    /// The record's head is queued, its middle spooled, and the spool is full: the rejection
    /// withdraws the head from the queue too, and only the whole record before it is written.
    #[test]
    fn fail_in_line_mode_withdraws_a_record_from_the_queue_and_the_spool() {
        let (queue, intake) = intake_with("300", "fail", &["-l"]);
        assert!(matches!(intake.offer(item(b"whole\n")), Offer::Queued));
        assert!(matches!(
            intake.offer(piece(&chunk(0), true, false)),
            Offer::Queued
        ));
        for i in 1..4 {
            assert!(matches!(
                intake.offer(piece(&chunk(i), false, false)),
                Offer::Dropped(_)
            ));
        }
        assert!(matches!(
            intake.offer(piece(&chunk(4), false, false)),
            Offer::End(ReaderExit::Rejected)
        ));
        intake.finish_input();
        assert_eq!(drain(&queue), vec![b"whole\n".to_vec()]);
        let view = intake.amend(queue.view());
        assert_eq!((view.drops.bytes, view.drops.records), (500, 1));
        assert_eq!((view.spool.held, view.bytes), (0, 0));
    }

    #[test]
    fn a_closed_queue_releases_a_reader_waiting_for_spool_room() {
        let (queue, intake) = intake("200", "block");
        for i in 0..4 {
            intake.offer(item(&chunk(i)));
        }
        let reader = {
            let intake = Arc::clone(&intake);
            thread::spawn(move || {
                matches!(
                    intake.offer(item(&chunk(4))),
                    Offer::End(ReaderExit::Closed)
                )
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !intake.amend(queue.view()).reader_waiting {
            assert!(
                std::time::Instant::now() < deadline,
                "the reader never waited"
            );
            thread::yield_now();
        }
        queue.close();
        assert!(reader.join().unwrap());
        let view = intake.amend(queue.view());
        // Two queued and two spooled, thrown away; the fifth, refused.
        assert_eq!(view.discarded_bytes + view.refused_bytes, 500);
        assert_eq!(view.spool.held, 0);
    }
}
