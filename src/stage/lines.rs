//! Line framing for the reader: chunks end at a delimiter, so the policies act on whole records.
//! A chunk that starts a record ends after the last delimiter read; a chunk that finishes a
//! record longer than a chunk ends after that record's own delimiter, so that the newer records
//! read with its tail travel in chunks of their own and are never dropped with it.

use crate::io::endpoint::Unopened;
use crate::queue::Payload;
use crate::slot::memory::MemSlot;
use crate::stage::reader::{Offer, Reader, ReaderExit};

/// Where a chunk in the making ends, given that `data[..scanned]` holds no delimiter.
fn cut_point(data: &[u8], scanned: usize, starts_record: bool, delimiter: u8) -> Option<usize> {
    let fresh = &data[scanned..];
    let found = if starts_record {
        memchr::memrchr(delimiter, fresh)
    } else {
        memchr::memchr(delimiter, fresh)
    };
    found.map(|at| scanned + at + 1)
}

/// What the reader does after framing what it holds.
enum Step {
    /// Frame again: a chunk left, and what follows it may hold more records.
    Again,
    /// Read more first.
    Read,
    End(ReaderExit),
}

/// A chunk in the making: the slot, whether it starts a record, and how much of it is known to
/// hold no delimiter.
struct Framing {
    current: MemSlot,
    starts_record: bool,
    scanned: usize,
}

impl Reader<'_, MemSlot> {
    /// Offers what `framing` holds up to `cut` (the whole slot, as a record's head, when `cut`
    /// is `None`), and keeps what follows for the next chunk. `None` to go on reading.
    fn hand_over(
        &mut self,
        framing: &mut Framing,
        cut: Option<usize>,
        spare: &mut Option<MemSlot>,
    ) -> anyhow::Result<Step> {
        let Some(mut next) = self.slot(spare, self.chunk_size)? else {
            return Ok(Step::End(ReaderExit::Closed));
        };
        if let Some(at) = cut {
            framing.current.split_off_into(at, &mut next);
        }
        let ends_record = cut.is_some();
        let chunk = std::mem::replace(&mut framing.current, next);
        match self.offer(chunk, framing.starts_record, ends_record) {
            Offer::Queued => {}
            Offer::Dropped(slot) => *spare = Some(slot),
            Offer::End(end) => return Ok(Step::End(end)),
        }
        framing.starts_record = ends_record;
        framing.scanned = 0;
        Ok(Step::Again)
    }

    /// Frames what has been read so far.
    fn frame(
        &mut self,
        framing: &mut Framing,
        delimiter: u8,
        spare: &mut Option<MemSlot>,
    ) -> anyhow::Result<Step> {
        let data = framing.current.data();
        match cut_point(data, framing.scanned, framing.starts_record, delimiter) {
            Some(cut) => self.hand_over(framing, Some(cut), spare),
            None if data.len() == framing.current.capacity() => {
                self.hand_over(framing, None, spare)
            }
            None => {
                framing.scanned = data.len();
                Ok(Step::Read)
            }
        }
    }

    /// A record longer than a chunk leaves in several chunks, marked so they are kept or
    /// dropped together; the last record is sent as it is even without a delimiter.
    pub(crate) fn run_lines(
        mut self,
        inputs: &[Unopened],
        delimiter: u8,
    ) -> anyhow::Result<ReaderExit> {
        let mut spare = None;
        let Some(current) = self.slot(&mut spare, self.chunk_size)? else {
            return Ok(ReaderExit::Closed);
        };
        let mut framing = Framing {
            current,
            starts_record: true,
            scanned: 0,
        };
        let mut end = ReaderExit::Eof;
        'inputs: for input in inputs {
            let Some(input) = self.open(input)? else {
                end = ReaderExit::Stopped;
                break 'inputs;
            };
            loop {
                match self.frame(&mut framing, delimiter, &mut spare)? {
                    Step::End(early) => return Ok(early),
                    Step::Again => continue,
                    Step::Read => {}
                }
                if self.stopping() {
                    end = ReaderExit::Stopped;
                    break 'inputs;
                }
                let room = framing.current.capacity() - framing.current.len();
                if self.read_once(&mut framing.current, &input, room, &mut ())? == Some(0) {
                    break;
                }
            }
        }
        // What was read is accepted: the last record goes out even without its delimiter.
        let last = framing.current;
        if !last.is_empty()
            && let Offer::End(early) = self.offer(last, framing.starts_record, true)
        {
            return Ok(early);
        }
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::OnFull;
    use crate::io::endpoint::NamedFile;
    use crate::queue::{Limits, Queue};
    use crate::report::counters::SideCounters;
    use proptest::prelude::*;
    use std::ffi::CString;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::sync::atomic::AtomicBool;
    use std::thread;

    #[test]
    fn a_record_head_ends_at_the_last_delimiter_and_a_tail_at_its_first() {
        assert_eq!(cut_point(b"a\nb\nc", 0, true, b'\n'), Some(4));
        assert_eq!(cut_point(b"xx\nb\nc", 0, false, b'\n'), Some(3));
        assert_eq!(cut_point(b"abc", 0, true, b'\n'), None);
        // What was scanned before holds no delimiter and is not scanned again.
        assert_eq!(cut_point(b"ab\ncd", 3, true, b'\n'), None);
    }

    /// A chunk as the writer would take it.
    struct Taken {
        data: Vec<u8>,
        starts: bool,
        ends: bool,
    }

    /// Runs the line reader over `input`, written into a pipe in pieces of `piece` bytes, and
    /// returns the chunks in the order they were queued.
    fn frame(input: &[u8], piece: usize, chunk: usize) -> Vec<Taken> {
        let limits = Limits {
            chunks: 4,
            bytes: usize::MAX,
            slots: 7,
            delimiter: Some(b'\n'),
        };
        let queue: Queue<MemSlot> = Queue::new(limits, OnFull::Block, crate::clock::system());
        let (counters, stop) = (SideCounters::default(), AtomicBool::new(false));
        let (read_end, mut write_end) = std::io::pipe().unwrap();
        let path = CString::new(format!("/dev/fd/{}", read_end.as_raw_fd())).unwrap();
        let named = NamedFile {
            path,
            name: "pipe".into(),
            flags: libc::O_RDONLY,
            fifo: false,
        };
        let inputs = [Unopened::file(named, 0)];
        thread::scope(|scope| {
            let data = input.to_vec();
            scope.spawn(move || {
                for part in data.chunks(piece.max(1)) {
                    write_end.write_all(part).unwrap();
                }
            });
            let taker = scope.spawn(|| {
                let (mut taken, mut emptied) = (Vec::new(), None);
                while let Some(item) = queue.pop(emptied.take()) {
                    let data = item.slot.data().to_vec();
                    taken.push(Taken {
                        data,
                        starts: item.starts_record,
                        ends: item.ends_record,
                    });
                    emptied = Some(item.slot);
                }
                taken
            });
            let reader = Reader {
                queue: &queue,
                counters: &counters,
                pool: &queue,
                pauses: &crate::stage::pause::Pauses::default(),
                chunk_size: chunk,
                limiter: None,
                stop: &stop,
            };
            assert_eq!(reader.run_lines(&inputs, b'\n').unwrap(), ReaderExit::Eof);
            queue.finish_input();
            taker.join().unwrap()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn chunks_rejoin_the_input_and_end_at_record_boundaries(
            records in prop::collection::vec(0usize..40, 0..40),
            unfinished in any::<bool>(),
            piece in 1usize..50,
            chunk in 1usize..24,
        ) {
            let mut input: Vec<u8> = records
                .iter()
                .enumerate()
                .flat_map(|(i, &len)| std::iter::repeat_n(b'a' + (i % 26) as u8, len).chain([b'\n']))
                .collect();
            if unfinished {
                input.extend_from_slice(b"tail");
            }
            let taken = frame(&input, piece, chunk);
            let joined: Vec<u8> = taken.iter().flat_map(|t| t.data.clone()).collect();
            prop_assert_eq!(&joined, &input);
            let mut in_record = false;
            for (i, t) in taken.iter().enumerate() {
                let last = i == taken.len() - 1;
                prop_assert!(t.data.len() <= chunk);
                // A chunk ends at a delimiter, unless it is a full piece of a long record or the
                // last record's end without one. (A last record without a delimiter whose end
                // fills a chunk leaves as a full piece: its end is known only at end of input.)
                let full = t.data.len() == chunk;
                prop_assert_eq!(t.ends, t.data.ends_with(b"\n") || (last && !full));
                prop_assert!(t.ends || t.data.len() == chunk);
                prop_assert_eq!(t.starts, !in_record);
                // The chunk that finishes a long record holds nothing of the next one.
                if !t.starts {
                    let first_end = t.data.iter().position(|&b| b == b'\n');
                    prop_assert!(first_end.is_none_or(|at| at == t.data.len() - 1));
                }
                in_record = !t.ends;
            }
        }
    }
}
