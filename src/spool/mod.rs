//! A second tier in front of the queue: a bounded disk spool for the overflow (`--spool`), and
//! the watermarks (`--start-at`, `--resume-at`). With any of them the reader offers its chunks to
//! the `Intake` instead of the queue.
//!
//! A chunk goes to the queue when the queue has room and nothing is spooled; otherwise it is
//! appended to the spool file and its slot goes back to the reader. Once anything is spooled,
//! every new chunk is spooled too until the spool has drained, so the order of the bytes never
//! changes. A replayer thread (`replay.rs`) reads spooled chunks back into slots and queues them
//! as the writer frees room. All disk I/O happens outside the queue's lock and outside the
//! spool's own: a position in the file is taken under the lock, written or read without it.
//! When the spool is full, `--on-full` applies (`ledger.rs`); when it fails (a full disk, EIO),
//! it is said once, nothing more is spooled, and what it holds is still replayed.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::cli::OnFull;
use crate::plan::Plan;
use crate::queue::{Item, Queue, Upstream, View};
use crate::slot::Spill;
use crate::stage::reader::Offer;
use crate::supervise::message::Message;
use file::SpoolFile;
use ledger::Ledger;
use marks::{Gate, Levels, Resume};
use store::Spool;

mod direct;
pub(crate) use direct::GULP;
pub(crate) mod file;
mod index;
mod ledger;
pub(crate) mod marks;
mod offer;
pub(crate) mod probe;
mod replay;
mod store;
pub(crate) mod sys;

/// What the spool and the watermarks look like right now, for the stats and the accounts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct SpoolView {
    /// Accepted bytes in the spool or on their way from it into the queue.
    pub(crate) held: u64,
    /// Bytes of the spool file in use, and the most there have been.
    pub(crate) bytes: u64,
    pub(crate) peak_bytes: u64,
    /// `--spool-max`; 0 without a spool.
    pub(crate) max_bytes: u64,
    /// Bytes written to the spool in all.
    pub(crate) spooled: u64,
    pub(crate) start_waits: u64,
    pub(crate) start_wait: Duration,
    /// The writer is held at the start.
    pub(crate) holding: bool,
    pub(crate) resume_waits: u64,
    pub(crate) resume_wait: Duration,
}

/// What the reader offers its chunks to instead of the queue.
pub(crate) trait Offers<S>: Send + Sync {
    /// Offers a chunk the reader filled; a slot that comes back is the reader's to read into.
    fn offer(&self, item: Item<S>) -> Offer<S>;

    /// Moves what the pipe `input` holds, up to `max` bytes, straight into the spool while the
    /// reader's chunks would go there anyway: how many, or `None` to go chunk by chunk.
    fn spool_from(&self, input: BorrowedFd<'_>, max: usize) -> Option<io::Result<usize>>;

    /// The reader is done.
    fn finish_input(&self);
}

impl<S: Spill> Offers<S> for Intake<S> {
    fn offer(&self, item: Item<S>) -> Offer<S> {
        Intake::offer(self, item)
    }

    fn spool_from(&self, input: BorrowedFd<'_>, max: usize) -> Option<io::Result<usize>> {
        Intake::spool_from(self, input, max)
    }

    fn finish_input(&self) {
        Intake::finish_input(self);
    }
}

impl<S: Spill> Upstream for Intake<S> {
    fn holds_record_end(&self) -> bool {
        self.spool
            .as_ref()
            .is_some_and(|s| s.lock().holds_record_end())
    }
}

/// Where the reader's chunks go with a spool or watermarks.
pub(crate) struct Intake<S> {
    queue: Arc<Queue<S>>,
    spool: Option<Spool>,
    gate: Option<Arc<Gate>>,
    /// The fill that opens the gate.
    start: u64,
    resume: Option<Resume>,
    levels: Levels,
    policy: Mutex<OnFull>,
    /// The size of a new slot, for the replayer's.
    chunk_size: usize,
}

/// Opens the spool file, if the plan has a spool.
fn open(plan: &Plan) -> anyhow::Result<Option<SpoolFile>> {
    plan.spool
        .as_ref()
        .map(|spec| SpoolFile::open(&spec.dir, spec.max))
        .transpose()
}

impl<S: Spill + 'static> Intake<S> {
    /// The intake for the plan's spool and watermarks, and the replayer's thread with a spool;
    /// `None` when the plan has neither. `gate` is the one the writers wait at. The spool file
    /// is made here: a directory that cannot hold it stops bpipe before any output is opened.
    pub(crate) fn start(
        plan: &Plan,
        queue: &Arc<Queue<S>>,
        gate: Option<Arc<Gate>>,
        chunk_size: usize,
        tx: &mpsc::Sender<Message>,
    ) -> anyhow::Result<Option<Arc<Intake<S>>>> {
        let file = open(plan)?;
        let marks = plan.watermarks;
        if file.is_none() && gate.is_none() && marks.resume_at.is_none() {
            return Ok(None);
        }
        let levels = Levels {
            queue_chunks: queue.capacity_chunks(),
            queue_bytes: queue.capacity_bytes(),
            spool_max: file.as_ref().map_or(0, SpoolFile::capacity),
        };
        let delimiter = plan.data_path.delimiter();
        let spool = file.map(|file| Spool {
            ledger: Mutex::new(Ledger::new(
                (file.capacity(), chunk_size),
                plan.policy,
                delimiter,
            )),
            file,
            room: Condvar::new(),
            chunks: Condvar::new(),
            delimiter,
            tx: tx.clone(),
        });
        let intake = Arc::new(Intake {
            queue: Arc::clone(queue),
            spool,
            gate,
            start: marks.start_at.map_or(u64::MAX, |l| levels.threshold(l)),
            resume: marks.resume_at.map(|l| Resume::new(levels.threshold(l))),
            levels,
            policy: Mutex::new(plan.policy),
            chunk_size,
        });
        if intake.spool.is_some() {
            let upstream: Arc<dyn Upstream> = intake.clone();
            queue.set_upstream(Arc::downgrade(&upstream));
            let replayer = Arc::clone(&intake);
            crate::stage::spawn("replayer", move || replay::run(&replayer))?;
        }
        Ok(Some(intake))
    }
}

impl<S: Spill> Intake<S> {
    /// The reader is done: once the spool has drained, so is the queue. The end of the input
    /// opens the gate whatever `--start-at` said.
    pub(crate) fn finish_input(&self) {
        if let Some(gate) = &self.gate {
            gate.open();
        }
        match &self.spool {
            Some(spool) => {
                let mut ledger = spool.lock();
                ledger.input_done = true;
                spool.wake_replayer(&ledger);
            }
            None => self.queue.finish_input(),
        }
    }

    /// Nothing more will be written: what is spooled is thrown away, and a writer held at the
    /// start is let go (to find the queue closed).
    pub(crate) fn close(&self) {
        if let Some(gate) = &self.gate {
            gate.open();
        }
        if let Some(spool) = &self.spool {
            spool.close();
        }
    }

    /// Once the queue is closed too: waits for the replayer to let go of its chunk.
    pub(crate) fn settle(&self) {
        if let Some(spool) = &self.spool {
            spool.settle();
        }
    }

    pub(crate) fn set_policy(&self, policy: OnFull) {
        *self.policy.lock().unwrap_or_else(|e| e.into_inner()) = policy;
        if let Some(spool) = &self.spool {
            spool.lock().policy = policy;
            spool.room.notify_all();
        }
    }

    /// The queue's view with the spool's part added: what the reader offered, dropped and waited
    /// for is the intake's, and what the spool holds is still to be written.
    pub(crate) fn amend(&self, mut view: View) -> View {
        let now = Instant::now();
        let mut spool_view = SpoolView::default();
        if let Some(spool) = &self.spool {
            let ledger = spool.lock();
            view.offered_bytes = ledger.offered;
            view.refused_bytes += ledger.refused;
            view.discarded_bytes += ledger.discarded;
            view.drops.bytes += ledger.drops.bytes;
            view.drops.chunks += ledger.drops.chunks;
            view.drops.records += ledger.drops.records;
            view.reader_blocked += ledger.blocked(now);
            view.reader_waiting |= ledger.waiting();
            spool_view.held = ledger.held();
            spool_view.bytes = ledger.index.used();
            spool_view.peak_bytes = ledger.index.peak();
            spool_view.max_bytes = spool.file.capacity();
            spool_view.spooled = ledger.spooled;
        }
        if let Some(gate) = &self.gate {
            let waited = gate.waited();
            spool_view.start_waits = waited.count;
            spool_view.start_wait = waited.total(now);
            spool_view.holding = !gate.is_open();
        }
        if let Some(resume) = &self.resume {
            let waited = resume.waited();
            spool_view.resume_waits = waited.count;
            spool_view.resume_wait = waited.total(now);
        }
        view.spool = spool_view;
        view
    }
}

/// A gate for the writers when the plan has `--start-at`.
pub(crate) fn gate(plan: &Plan) -> Option<Arc<Gate>> {
    plan.watermarks
        .start_at
        .map(|_| Arc::new(Gate::new(plan.watermarks.start_after, Instant::now())))
}
