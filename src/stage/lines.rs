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

    #[test]
    fn a_record_head_ends_at_the_last_delimiter_and_a_tail_at_its_first() {
        assert_eq!(cut_point(b"a\nb\nc", 0, true, b'\n'), Some(4));
        assert_eq!(cut_point(b"xx\nb\nc", 0, false, b'\n'), Some(3));
        assert_eq!(cut_point(b"abc", 0, true, b'\n'), None);
        // What was scanned before holds no delimiter and is not scanned again.
        assert_eq!(cut_point(b"ab\ncd", 3, true, b'\n'), None);
    }
}
