//! Spooling straight from the input: once anything is spooled, every new chunk goes to the spool
//! until it has drained, and on the splice path the reader would splice each chunk from the input
//! into a slot pipe only to splice it out into the file. While that lasts, a pipe input is
//! spliced into the file directly, as much as it holds up to `GULP` at a time: half the calls,
//! and the producer waiting for room is woken once a gulp instead of once a chunk (on two cores
//! the wake-ups cost the reader a fifth of its time). The spool's index still holds chunk-sized
//! entries, for the replayer to read back into slots.

use std::io;
use std::os::fd::BorrowedFd;

use crate::slot::Spill;
use crate::spool::Intake;
use crate::spool::index::Entry;
use crate::spool::ledger::Ledger;

/// The most one call moves: a default-sized pipe's worth of the producer's writes.
pub(crate) const GULP: usize = 1 << 20;

impl<S: Spill> Intake<S> {
    /// Moves at most `max` bytes that `input`, a pipe, holds now into the spool while new
    /// chunks go there anyway and it has room for a chunk or more: how many (0 at the end of the
    /// input), or `None` when the reader must go chunk by chunk (nothing spooled, a spool that
    /// failed or is full, where the policy applies to each chunk, or an empty pipe, which a
    /// chunk's read waits for).
    pub(crate) fn spool_from(
        &self,
        input: BorrowedFd<'_>,
        max: usize,
    ) -> Option<io::Result<usize>> {
        let spool = self.spool.as_ref()?;
        self.await_resume();
        let mut ledger = spool.lock();
        let room = spool.file.capacity() - ledger.index.used();
        if ledger.idle() || !ledger.usable || ledger.closed || room < self.chunk_size as u64 {
            return None;
        }
        let len = max.min(room as usize);
        let pos = ledger.index.reserve(len);
        drop(ledger);
        let (moved, taken) = spool.file.take_from(input, pos, len);
        let mut ledger = spool.lock();
        ledger.index.unreserve(pos + moved as u64);
        ledger.offered += moved as u64;
        self.add_chunks(&mut ledger, pos, moved);
        let failed = match taken {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) => {
                spool.give_up(&mut ledger, e);
                true
            }
            Ok(()) => false,
        };
        drop(ledger);
        self.look_at_start();
        // What did not reach a failed spool is still in the input, for the chunk way; 0 bytes
        // moved otherwise is the end of the input.
        (moved > 0 || !failed).then_some(Ok(moved))
    }

    /// Records the `moved` bytes written at `pos` as entries of a chunk at most.
    fn add_chunks(&self, ledger: &mut Ledger, pos: u64, moved: usize) {
        let Some(spool) = &self.spool else {
            return;
        };
        let end = pos + moved as u64;
        let mut at = pos;
        while at < end {
            let len = (end - at).min(self.chunk_size as u64) as usize;
            let entry = Entry {
                pos: at,
                len,
                starts_record: true,
                ends_record: true,
                records: 0,
            };
            spool.add(ledger, entry);
            at += len as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::offer::tests::{chunk, drain, intake, item};
    use crate::stage::reader::Offer;
    use std::os::fd::AsFd;

    #[test]
    fn a_pipe_goes_straight_to_the_spool_only_while_chunks_go_there() {
        let (queue, intake) = intake("1M", "block");
        let (r, w) = io::pipe().unwrap();
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        crate::io::sys::write_all(w.as_fd(), &data).unwrap();
        assert!(
            intake.spool_from(r.as_fd(), GULP).is_none(),
            "nothing spooled"
        );
        for i in 0..3 {
            assert!(!matches!(intake.offer(item(&chunk(i))), Offer::End(_)));
        }
        assert_eq!(intake.spool_from(r.as_fd(), GULP).unwrap().unwrap(), 1000);
        assert!(
            intake.spool_from(r.as_fd(), GULP).is_none(),
            "an empty pipe"
        );
        drop(w);
        assert_eq!(intake.spool_from(r.as_fd(), GULP).unwrap().unwrap(), 0);
        intake.finish_input();
        let out = drain(&queue);
        // Read back a chunk (128 bytes here) at most at a time, in order.
        assert!(
            out.iter().all(|c| c.len() <= 128),
            "{:?}",
            out.iter().map(Vec::len)
        );
        let expected: Vec<u8> = (0..3).flat_map(chunk).chain(data).collect();
        assert_eq!(out.concat(), expected);
        let view = intake.amend(queue.view());
        assert_eq!((view.offered_bytes, view.spool.spooled), (1300, 1100));
    }

    #[test]
    fn a_spool_without_room_for_a_chunk_leaves_the_input_to_the_policy() {
        let (_queue, intake) = intake("300", "drop");
        for i in 0..4 {
            assert!(!matches!(intake.offer(item(&chunk(i))), Offer::End(_)));
        }
        let (r, w) = io::pipe().unwrap();
        crate::io::sys::write_all(w.as_fd(), b"more").unwrap();
        assert!(intake.spool_from(r.as_fd(), GULP).is_none());
    }
}
