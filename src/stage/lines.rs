//! Line framing for the reader: chunks end after the last delimiter read, so the policies act
//! on whole records.

use crate::io::endpoint::Unopened;
use crate::queue::Payload;
use crate::slot::memory::MemSlot;
use crate::stage::reader::{Offer, Reader, ReaderExit};

impl Reader<'_, MemSlot> {
    /// A record longer than a chunk leaves in several chunks, marked so they are kept or
    /// dropped together; the last record is sent as it is even without a delimiter.
    pub(crate) fn run_lines(
        mut self,
        inputs: &[Unopened],
        delimiter: u8,
    ) -> anyhow::Result<ReaderExit> {
        let mut spare = None;
        let Some(mut current) = self.slot(&mut spare, self.chunk_size)? else {
            return Ok(ReaderExit::Closed);
        };
        let mut starts_record = true;
        let mut end = ReaderExit::Eof;
        'inputs: for input in inputs {
            let Some(input) = self.open(input)? else {
                end = ReaderExit::Stopped;
                break 'inputs;
            };
            loop {
                if self.stopping() {
                    end = ReaderExit::Stopped;
                    break 'inputs;
                }
                let before = current.len();
                let room = current.capacity() - before;
                let n = match self.read_once(&mut current, &input, room, &mut ())? {
                    Some(0) => break,
                    Some(n) => n,
                    None => continue,
                };
                let boundary = memchr::memrchr(delimiter, &current.data()[before..before + n])
                    .map(|p| before + p + 1);
                let ends_record = match boundary {
                    Some(_) => true,
                    None if current.len() == current.capacity() => false,
                    None => continue,
                };
                let Some(mut next) = self.slot(&mut spare, self.chunk_size)? else {
                    return Ok(ReaderExit::Closed);
                };
                if let Some(at) = boundary {
                    current.split_off_into(at, &mut next);
                }
                match self.offer(current, starts_record, ends_record) {
                    Offer::Queued => {}
                    Offer::Dropped(slot) => spare = Some(slot),
                    Offer::End(end) => return Ok(end),
                }
                starts_record = ends_record;
                current = next;
            }
        }
        if !current.is_empty()
            && let Offer::End(early) = self.offer(current, starts_record, true)
        {
            return Ok(early);
        }
        Ok(end)
    }
}
