//! The splice ring: the slot pipes of the zero-copy path, sized within what the kernel grants
//! and within a share of the user's pipe budget, and made as the queue needs them.
//!
//! Pipe buffers are kernel memory, counted per user in pages. Past `pipe-user-pages-soft`
//! (16384 pages, 64 MiB, by default) the kernel gives that user's new pipes two pages and grows
//! none, whichever of the user's programs asks, unless the process has CAP_SYS_RESOURCE or
//! CAP_SYS_ADMIN. So the rule, for a process the kernel holds to the budget: the whole ring, every
//! slot made, takes at most a quarter of the soft limit, leaving the rest to the user's other
//! programs (another bpipe among them). Slot pipes shrink below the chunk size to fit, down to
//! 64 KiB (a chunk smaller than that keeps its size); a ring that does not fit even then is not
//! made, and the copy path is taken: copying 64 KiB chunks is about as fast as splicing through
//! 16 KiB pipes, and much faster than through 4 KiB ones. No slot pipe is larger than
//! `pipe-max-size` (1 MiB by default), beyond which the kernel wants CAP_SYS_RESOURCE, which even
//! root may lack. The pipes are made lazily, so an idle bpipe holds one however large its queue.

use std::io;

use crate::io::sys;
use crate::slot::Slot;
use crate::slot::pipe::{MIN_PIPE, PipeSlot};

/// The kernel's defaults for `pipe-max-size` and a new pipe's size.
const DEFAULT_PIPE_MAX_SIZE: usize = 1 << 20;
const DEFAULT_PIPE_SIZE: usize = 64 * 1024;

/// The share of the user's pipe budget one ring may take, as a divisor.
const BUDGET_SHARE: usize = 4;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_RESOURCE: u32 = 24;

/// What the kernel lets the ring have.
#[derive(Clone, Copy, Debug)]
struct Kernel {
    page: usize,
    pipe_max_size: usize,
    /// The pages the ring may take, when the kernel holds this process to the user's budget.
    share: Option<usize>,
}

fn read_number(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The largest pipe the kernel grants without CAP_SYS_RESOURCE.
pub(crate) fn pipe_max_size() -> usize {
    read_number("/proc/sys/fs/pipe-max-size").unwrap_or(DEFAULT_PIPE_MAX_SIZE)
}

/// Whether the kernel exempts this process from the pipe budget, as `pipe_is_unprivileged_user`
/// decides: CAP_SYS_RESOURCE or CAP_SYS_ADMIN in the effective set.
fn exempt_from_budget() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    effective & ((1 << CAP_SYS_ADMIN) | (1 << CAP_SYS_RESOURCE)) != 0
}

impl Kernel {
    fn read() -> Kernel {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let soft = read_number("/proc/sys/fs/pipe-user-pages-soft").unwrap_or(0);
        Kernel {
            page,
            pipe_max_size: pipe_max_size(),
            // A soft limit of 0 is no limit.
            share: (soft > 0 && !exempt_from_budget()).then_some(soft / BUDGET_SHARE),
        }
    }

    /// Pages in a slot pipe that holds `bytes`, as the kernel rounds: a power of two.
    fn pages(&self, bytes: usize) -> usize {
        bytes.max(MIN_PIPE).div_ceil(self.page).next_power_of_two()
    }

    /// The most a chunk may hold in a ring of `slots` pipes, or `None` when the ring does not fit
    /// its share of the budget with pipes of the smallest size allowed.
    fn chunk_size(&self, slots: usize, chunk_size: usize) -> Option<usize> {
        let most = chunk_size.min(self.pipe_max_size);
        let Some(share) = self.share else {
            return Some(most);
        };
        let least = self.pages(most.min(DEFAULT_PIPE_SIZE));
        let fits = share / slots.max(1);
        // The largest power of two pages that fits: the kernel rounds sizes up to one.
        let pages = if fits == 0 { 0 } else { 1 << fits.ilog2() };
        (pages >= least).then(|| most.min(pages * self.page))
    }
}

/// How a run may splice.
pub(crate) enum Ring {
    /// The first slot pipe, made up front so that a refusal shows before any byte moves, and
    /// the most a chunk in the ring may hold: the rest are made with it as the queue needs them.
    Splice { first: PipeSlot, chunk_size: usize },
    /// The ring would not fit its share of the user's pipe budget: bpipe copies.
    OverBudget,
}

/// The splice ring for a queue of `slots` slots, or why the kernel refuses it.
pub(crate) fn make(slots: usize, chunk_size: usize) -> io::Result<Ring> {
    let Some(chunk_size) = Kernel::read().chunk_size(slots, chunk_size) else {
        return Ok(Ring::OverBudget);
    };
    // Two descriptors a slot, and some to spare for the rest of the process.
    let needed = 2 * slots as u64 + 64;
    let limit = sys::raise_fd_limit(needed);
    if limit < needed {
        return Err(io::Error::other(format!(
            "they need {needed} open files and the limit is {limit}"
        )));
    }
    Ok(Ring::Splice {
        first: PipeSlot::new(chunk_size)?,
        chunk_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;

    fn kernel(share: Option<usize>) -> Kernel {
        Kernel {
            page: 4096,
            pipe_max_size: MIB,
            share,
        }
    }

    #[test]
    fn no_chunk_is_larger_than_pipe_max_size() {
        assert_eq!(kernel(None).chunk_size(19, 4 * MIB), Some(MIB));
        assert_eq!(kernel(None).chunk_size(1003, 100_000), Some(100_000));
        assert_eq!(kernel(Some(4096)).chunk_size(19, 4 * MIB), Some(512 * KIB));
    }

    #[test]
    fn a_ring_takes_at_most_its_share_of_the_budget() {
        // The default soft limit, 16384 pages: a quarter is 4096.
        let k = kernel(Some(4096));
        assert_eq!(k.chunk_size(19, 64 * KIB), Some(64 * KIB));
        assert_eq!(k.chunk_size(253, 64 * KIB), Some(64 * KIB));
        assert_eq!(k.chunk_size(203, 100_000), Some(64 * KIB));
        for (slots, chunk) in [(19, MIB), (203, 100_000), (1003, 4 * KIB), (2048, 7)] {
            let got = k.chunk_size(slots, chunk).unwrap();
            assert!(slots * k.pages(got) <= 4096, "{slots} slots of {got}");
        }
    }

    #[test]
    fn a_ring_that_does_not_fit_copies() {
        let k = kernel(Some(4096));
        assert_eq!(k.chunk_size(1003, 64 * KIB), None);
        assert_eq!(
            k.chunk_size(3000, 4 * KIB),
            None,
            "two pages a pipe at least"
        );
        assert_eq!(k.chunk_size(1003, 4 * KIB), Some(4 * KIB));
        assert_eq!(kernel(None).chunk_size(100_000, 64 * KIB), Some(64 * KIB));
    }
}
