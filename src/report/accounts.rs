//! The one place that accounts for every byte read: it was written, dropped by the policy, or
//! is unsent, so that `bytes_in = bytes_out + bytes_dropped + bytes_unsent` in every record at
//! exit, however the run ended.

use crate::queue::View;
use crate::report::counters::Totals;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Accounts {
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) bytes_dropped: u64,
    /// Accepted bytes that were not written and will not be: during a run, those thrown away
    /// when the queue closed; at exit, also whatever a stage or the queue still held.
    pub(crate) bytes_unsent: u64,
}

impl Accounts {
    /// `totals` must be read before `view`, as `Counters::totals` explains.
    pub(crate) fn of(totals: &Totals, view: &View, at_exit: bool) -> Accounts {
        let (bytes_in, bytes_out) = (totals.input.bytes, totals.output.bytes);
        let mut bytes_unsent = view.refused_bytes + view.discarded_bytes;
        if at_exit {
            bytes_unsent += Accounts::held(totals, view);
        }
        Accounts {
            bytes_in,
            bytes_out,
            bytes_dropped: view.drops.bytes,
            bytes_unsent,
        }
    }

    /// Accepted bytes still on their way: held by the reader, spooled, queued, or held by the
    /// writer. What a drain has to write, and what is unsent if the run ends now.
    pub(crate) fn held(totals: &Totals, view: &View) -> u64 {
        let held_by_reader = totals.input.bytes.saturating_sub(view.offered_bytes);
        let held_by_writer = view.taken_bytes.saturating_sub(totals.output.bytes);
        held_by_reader + view.spool.held + view.bytes as u64 + held_by_writer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::OnFull;
    use crate::queue::{Item, Limits, Push, Queue, TestBytes};
    use crate::report::counters::Counters;

    /// The two stages played by hand around a real queue.
    struct Run {
        queue: Queue<TestBytes>,
        counters: Counters,
    }

    impl Run {
        fn new(chunks: usize, policy: OnFull) -> Run {
            let limits = Limits {
                chunks,
                bytes: usize::MAX,
                slots: chunks + 3,
                delimiter: Some(b'\n'),
            };
            Run {
                queue: Queue::new(limits, policy, crate::clock::system()),
                counters: Counters::new(1, 1),
            }
        }

        /// Reads a chunk and offers it.
        fn read(&self, data: &[u8]) -> bool {
            self.counters.inputs[0].moved(data.len());
            let item = Item {
                slot: TestBytes(data.to_vec()),
                len: data.len(),
                starts_record: true,
                ends_record: true,
            };
            matches!(self.queue.push(item), Push::Queued)
        }

        /// Takes a chunk and writes `len` of it.
        fn write(&self, len: usize) {
            let item = self.queue.pop(None).expect("a chunk to write");
            self.counters.outputs[0].moved(len.min(item.len));
        }

        fn exit(&self) -> Accounts {
            let totals = self.counters.totals();
            let accounts = Accounts::of(&totals, &self.queue.view(), true);
            assert_eq!(
                accounts.bytes_in,
                accounts.bytes_out + accounts.bytes_dropped + accounts.bytes_unsent,
                "{accounts:?}"
            );
            accounts
        }
    }

    #[test]
    fn everything_written_leaves_nothing_unsent() {
        let run = Run::new(4, OnFull::Block);
        run.read(b"abc");
        run.read(b"de");
        run.queue.finish_input();
        run.write(3);
        run.write(2);
        assert_eq!(run.exit().bytes_unsent, 0);
    }

    #[test]
    fn a_failed_write_leaves_its_rest_and_the_queue_unsent() {
        let run = Run::new(4, OnFull::Block);
        run.read(b"abcd");
        run.read(b"ef");
        run.write(1);
        run.queue.close();
        assert_eq!(run.exit().bytes_unsent, 5);
    }

    #[test]
    fn a_stop_with_a_full_queue_leaves_it_unsent() {
        let run = Run::new(4, OnFull::Block);
        run.read(b"abc");
        run.read(b"de");
        let during = Accounts::of(&run.counters.totals(), &run.queue.view(), false);
        assert_eq!(during.bytes_unsent, 0);
        run.queue.close();
        let after_close = Accounts::of(&run.counters.totals(), &run.queue.view(), false);
        assert_eq!(after_close.bytes_unsent, 5);
        assert_eq!(run.exit().bytes_unsent, 5);
    }

    #[test]
    fn a_chunk_offered_after_the_close_is_unsent() {
        let run = Run::new(4, OnFull::Block);
        run.queue.close();
        assert!(!run.read(b"late"));
        assert_eq!(run.exit().bytes_unsent, 4);
    }

    #[test]
    fn bytes_the_reader_still_holds_are_unsent() {
        let run = Run::new(4, OnFull::Block);
        run.read(b"whole\n");
        // A partial record read but never offered, as line mode holds one.
        run.counters.inputs[0].moved(3);
        run.queue.finish_input();
        run.write(6);
        assert_eq!(run.exit().bytes_unsent, 3);
    }

    #[test]
    fn drops_rejections_and_evictions_are_dropped_not_unsent() {
        let run = Run::new(1, OnFull::Fail);
        run.read(b"a");
        assert!(!run.read(b"bc"));
        let accounts = run.exit();
        assert_eq!((accounts.bytes_dropped, accounts.bytes_unsent), (2, 1));

        let run = Run::new(1, OnFull::DropOldest);
        run.read(b"a\n");
        run.read(b"bb\n");
        run.queue.finish_input();
        run.write(3);
        let accounts = run.exit();
        assert_eq!((accounts.bytes_dropped, accounts.bytes_unsent), (2, 0));

        let run = Run::new(1, OnFull::Drop);
        run.read(b"a\n");
        run.read(b"bb\n");
        run.queue.finish_input();
        run.write(2);
        let accounts = run.exit();
        assert_eq!((accounts.bytes_dropped, accounts.bytes_unsent), (3, 0));
    }
}
