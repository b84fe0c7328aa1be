//! One output's share of a chunk that several outputs write: each output writes the same slot
//! without copying it, and the slot goes back to the queue it came from when the last share is
//! done with it.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use crate::queue::{Payload, Queue};
use crate::slot::{Outgoing, Share};

/// A filled slot shared by the outputs' lanes.
struct Chunk<P: Share> {
    slot: Option<P>,
    home: Arc<Queue<P>>,
}

impl<P: Share> Chunk<P> {
    fn slot(&self) -> &P {
        self.slot
            .as_ref()
            .expect("a chunk holds its slot until it is dropped")
    }

    fn slot_mut(&mut self) -> &mut P {
        self.slot
            .as_mut()
            .expect("a chunk holds its slot until it is dropped")
    }
}

impl<P: Share> Drop for Chunk<P> {
    /// The last share is gone: the slot is emptied and reused, or forgotten if it cannot be
    /// emptied, so that the queue makes another instead of waiting for it.
    fn drop(&mut self) {
        if let Some(mut slot) = self.slot.take() {
            match slot.clear() {
                Ok(()) => self.home.recycle(slot),
                Err(_) => self.home.forget_slot(),
            }
        }
    }
}

pub(crate) struct Fanned<P: Share> {
    chunk: Arc<Chunk<P>>,
    /// The chunk's length when shared: the last share may drain the slot itself.
    len: usize,
    sent: usize,
}

/// Shares of one slot, one per lane; the slot returns to `home` when all are dropped.
pub(crate) fn shares<P: Share>(slot: P, home: &Arc<Queue<P>>, lanes: usize) -> Vec<Fanned<P>> {
    let len = slot.len();
    let chunk = Arc::new(Chunk {
        slot: Some(slot),
        home: Arc::clone(home),
    });
    (0..lanes)
        .map(|_| Fanned {
            chunk: Arc::clone(&chunk),
            len,
            sent: 0,
        })
        .collect()
}

impl<P: Share> Payload for Fanned<P> {
    fn len(&self) -> usize {
        self.len
    }

    fn records(&self, delimiter: u8, ends_record: bool) -> u64 {
        self.chunk.slot().records(delimiter, ends_record)
    }
}

impl<P: Share> Outgoing for Fanned<P> {
    type Stream = P::Lane;

    fn drain(&mut self, fd: BorrowedFd<'_>, max: usize, lane: &mut P::Lane) -> io::Result<usize> {
        // Shares are never cloned: once this is the last, no other output can appear.
        let n = match Arc::get_mut(&mut self.chunk) {
            Some(chunk) => chunk.slot_mut().drain_last(self.sent, fd, max, lane)?,
            None => self.chunk.slot().drain_from(self.sent, fd, max, lane)?,
        };
        self.sent += n;
        Ok(n)
    }

    fn unsent_len(&self) -> usize {
        self.len() - self.sent
    }

    fn unsent(&self) -> Option<&[u8]> {
        // The shared slot itself is never drained: all of it is unsent for it.
        self.chunk.slot().unsent().map(|data| &data[self.sent..])
    }

    fn copies(lane: &P::Lane) -> bool {
        P::lane_copies(lane)
    }

    fn into_reusable(self) -> Option<Self> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::OnFull;
    use crate::clock::manual::ManualClock;
    use crate::io::sys;
    use crate::queue::Limits;
    use crate::slot::memory::MemSlot;
    use crate::slot::pipe::{LanePipe, PipeSlot};
    use std::os::fd::AsFd;

    fn home<P: Share>() -> Arc<Queue<P>> {
        let limits = Limits {
            chunks: 4,
            bytes: usize::MAX,
            slots: 8,
            delimiter: None,
        };
        Arc::new(Queue::new(limits, OnFull::Block, ManualClock::new()))
    }

    fn filled<P: Share>(data: &[u8]) -> P {
        let (r, w) = io::pipe().unwrap();
        sys::write_all(w.as_fd(), data).unwrap();
        let mut slot = P::new(64 * 1024).unwrap();
        slot.fill(r.as_fd(), data.len(), &mut P::Stream::default())
            .unwrap();
        slot
    }

    /// Each share writes the whole chunk, in two writes, to its own pipe.
    fn each_share_writes_it_all<P: Share>() {
        let home = home::<P>();
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let shares = shares(filled::<P>(&data), &home, 3);
        for mut share in shares {
            let (r, w) = io::pipe().unwrap();
            let mut lane = P::Lane::default();
            assert_eq!(share.drain(w.as_fd(), 1000, &mut lane).unwrap(), 1000);
            assert_eq!(share.unsent_len(), 4000);
            while share.unsent_len() > 0 {
                share.drain(w.as_fd(), 1 << 20, &mut lane).unwrap();
            }
            drop(w);
            let mut out = vec![0; 8000];
            let mut got = 0;
            loop {
                match sys::read(r.as_fd(), &mut out[got..]).unwrap() {
                    0 => break,
                    n => got += n,
                }
            }
            assert_eq!(&out[..got], &data[..]);
        }
    }

    #[test]
    fn memory_shares_write_the_whole_chunk_each() {
        each_share_writes_it_all::<MemSlot>();
    }

    #[test]
    fn pipe_shares_write_the_whole_chunk_each() {
        each_share_writes_it_all::<PipeSlot>();
    }

    #[test]
    fn the_slot_goes_home_empty_when_the_last_share_is_dropped() {
        let home = home::<PipeSlot>();
        let mut shares = shares(filled::<PipeSlot>(b"abc"), &home, 2);
        let (_r, w) = io::pipe().unwrap();
        let mut lane = LanePipe::default();
        shares[0].drain(w.as_fd(), 10, &mut lane).unwrap();
        drop(shares.pop());
        assert!(home.acquire(|| Err(io::Error::other("made"))).is_err());
        drop(shares);
        let back = home.acquire(|| Err(io::Error::other("made"))).unwrap();
        assert_eq!(back.map(|slot| slot.len()), Some(0));
    }
}
