//! Several inputs read at once (`--merge`): one reader per input, each into a queue of its own
//! with its own share of `-n` and its own `--on-full` policy, and a merger that moves their
//! chunks into the one queue in turns, one chunk (line mode: one whole record) from each input
//! that has one, so a hot input cannot starve the others and records never interleave.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::cli::OnFull;
use crate::io::endpoint::Unopened;
use crate::plan::Plan;
use crate::queue::bell::Bell;
use crate::queue::{Item, Limits, Next, Push, Queue, View};
use crate::report::counters::Counters;
use crate::slot::Slot;
use crate::stage::reader::{Reader, ReaderExit};
use crate::stage::{Controls, ReadFn, done, limiter, spawn};
use crate::supervise::message::{Message, Stage, StageExit, StageId};
use crate::supervise::probe::Probe;
use crate::{clock, io::sys};

/// How long the merger sleeps without a ring before it looks again: a stop that closed the
/// queue does not ring.
const LOOK_AGAIN: Duration = Duration::from_millis(100);

/// Each input's share of the queue: an equal part of `-n` and `-m`, at least one chunk.
fn share(limits: Limits, inputs: usize) -> Limits {
    Limits {
        chunks: (limits.chunks / inputs).max(1),
        bytes: (limits.bytes / inputs).max(1),
        ..limits
    }
}

struct Merger<S> {
    inputs: Vec<Arc<Queue<S>>>,
    queue: Arc<Queue<S>>,
    bell: Arc<Bell>,
    whole_records: bool,
}

impl<S: Slot> Merger<S> {
    /// Moves `item`, and in line mode the rest of its record, from input `index` to the queue.
    /// False once the queue has closed.
    fn forward(&self, index: usize, mut item: Item<S>) -> bool {
        loop {
            let ends = item.ends_record;
            if let Push::Closed = self.queue.push(item) {
                return false;
            }
            if ends || !self.whole_records {
                return true;
            }
            match self.inputs[index].pop(None) {
                Some(next) => item = next,
                None => return true,
            }
        }
    }

    /// One turn: a chunk or record from each input that has one. Returns how many moved and
    /// how many inputs are done, or `None` once the queue has closed.
    fn turn(&self) -> Option<(usize, usize)> {
        let (mut moved, mut done) = (0, 0);
        for (index, input) in self.inputs.iter().enumerate() {
            match input.try_pop() {
                Next::Item(item) => {
                    if !self.forward(index, item) {
                        return None;
                    }
                    moved += 1;
                }
                Next::Empty => {}
                Next::Done => done += 1,
            }
        }
        Some((moved, done))
    }

    fn run(&self) {
        loop {
            let seen = self.bell.rings();
            if self.queue.is_closed() {
                break;
            }
            match self.turn() {
                None => break,
                Some((_, done)) if done == self.inputs.len() => {
                    self.queue.finish_input();
                    return;
                }
                Some((0, _)) => self.bell.wait(seen, LOOK_AGAIN),
                Some(_) => {}
            }
        }
        self.inputs.iter().for_each(|input| input.close());
    }
}

/// The data plane with merged inputs, as the supervisor sees it: the queue (or the queue and the
/// outputs' lanes) behind the inputs' own queues, looked at as one queue: what the inputs offered,
/// dropped and hold, what the merger holds on its way, and what the writers took.
pub(crate) struct MergeProbe<S> {
    pub(crate) inner: Arc<dyn Probe>,
    pub(crate) inputs: Vec<Arc<Queue<S>>>,
}

impl<S: Slot> Probe for MergeProbe<S> {
    fn view(&self) -> View {
        let inputs: Vec<View> = self.inputs.iter().map(|q| q.view()).collect();
        let mut view = self.inner.view();
        let taken_from_inputs: u64 = inputs.iter().map(|v| v.taken_bytes).sum();
        let held_by_merger = taken_from_inputs.saturating_sub(view.offered_bytes);
        view.bytes += usize::try_from(held_by_merger).unwrap_or(usize::MAX);
        view.offered_bytes = 0;
        view.reader_blocked = Duration::ZERO;
        for input in &inputs {
            view.chunks += input.chunks;
            view.bytes += input.bytes;
            view.offered_bytes += input.offered_bytes;
            view.refused_bytes += input.refused_bytes;
            view.discarded_bytes += input.discarded_bytes;
            view.drops.bytes += input.drops.bytes;
            view.drops.chunks += input.drops.chunks;
            view.drops.records += input.drops.records;
            view.reader_blocked = view.reader_blocked.max(input.reader_blocked);
            view.reader_waiting |= input.reader_waiting;
        }
        view
    }

    fn close(&self) {
        self.inner.close();
        self.inputs.iter().for_each(|input| input.close());
    }

    fn capacity_chunks(&self) -> usize {
        self.inner.capacity_chunks()
    }

    fn capacity_bytes(&self) -> usize {
        self.inner.capacity_bytes()
    }

    fn lane_views(&self) -> Vec<View> {
        self.inner.lane_views()
    }

    fn close_lane(&self, index: usize) {
        self.inner.close_lane(index);
    }

    /// Each input applies the policy to its own queue; the merger's queue keeps blocking.
    fn set_policy(&self, policy: OnFull) {
        self.inputs
            .iter()
            .for_each(|input| input.set_policy(policy));
    }
}

/// How the inputs ended, told as one reader's end: the first error, else the most telling exit.
fn combined(ends: Vec<anyhow::Result<ReaderExit>>) -> anyhow::Result<ReaderExit> {
    let mut exit = ReaderExit::Eof;
    for end in ends {
        exit = match (end?, exit) {
            (ReaderExit::Rejected, _) | (_, ReaderExit::Rejected) => ReaderExit::Rejected,
            (ReaderExit::Stopped, _) | (_, ReaderExit::Stopped) => ReaderExit::Stopped,
            (ReaderExit::Closed, _) | (_, ReaderExit::Closed) => ReaderExit::Closed,
            _ => ReaderExit::Eof,
        };
    }
    Ok(exit)
}

/// What the merged readers share with the rest of the run.
pub(crate) struct MergeJob<'a, S> {
    pub(crate) plan: &'a Plan,
    pub(crate) queue: &'a Arc<Queue<S>>,
    pub(crate) counters: &'a Arc<Counters>,
    pub(crate) stop: &'a Arc<AtomicBool>,
    /// The reading side's rate, which every input follows on its own, and its pause.
    pub(crate) controls: &'a Arc<Controls>,
    pub(crate) chunk_size: usize,
    pub(crate) read: ReadFn<S>,
}

/// The merged readers' threads, and their inputs' queues.
type Started<S> = (Vec<JoinHandle<()>>, Vec<Arc<Queue<S>>>);

/// One merged input's reader: it reads into its own queue, with slots from the one queue's pool,
/// and tells the merger how it ended.
fn spawn_reader<S: Slot + 'static>(
    job: &MergeJob<'_, S>,
    index: usize,
    (input, queue): (Unopened, Arc<Queue<S>>),
    ends: mpsc::Sender<anyhow::Result<ReaderExit>>,
) -> anyhow::Result<JoinHandle<()>> {
    let pool = Arc::clone(job.queue);
    let (counters, stop) = (Arc::clone(job.counters), Arc::clone(job.stop));
    let (read, chunk_size) = (job.read, job.chunk_size);
    let delimiter = job.plan.data_path.delimiter();
    let limiter = Some(limiter(&job.controls.input, job.plan));
    let controls = Arc::clone(job.controls);
    spawn("reader", move || {
        let reader = Reader {
            queue: &queue,
            pool: &pool,
            intake: None,
            counters: &counters.inputs[index],
            chunk_size,
            limiter,
            stop: &stop,
            pauses: &controls.pauses,
        };
        let inputs = [input];
        let end = crate::stage::read_guarded(read, reader, &inputs, delimiter);
        queue.finish_input();
        if matches!(end, Ok(ReaderExit::Rejected)) {
            drop(inputs);
            let _ = sys::release_stdin();
        }
        let _ = ends.send(end);
    })
}

/// Starts a reader per input and the merger; returns the readers' threads (kept unjoined, for
/// wake-ups) and the inputs' queues. The merger reports the inputs' end as the reader's.
pub(crate) fn start<S: Slot + 'static>(
    job: MergeJob<'_, S>,
    inputs: Vec<Unopened>,
    tx: mpsc::Sender<Message>,
) -> anyhow::Result<Started<S>> {
    let bell = Arc::new(Bell::default());
    let limits = share(job.plan.limits, inputs.len());
    let queues: Vec<Arc<Queue<S>>> = (0..inputs.len())
        .map(|_| {
            let queue = Queue::new(limits, job.plan.policy, clock::system());
            Arc::new(queue.with_bell(Arc::clone(&bell)))
        })
        .collect();
    let (ends_tx, ends_rx) = mpsc::channel();
    let mut readers = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        let queue = Arc::clone(&queues[index]);
        readers.push(spawn_reader(&job, index, (input, queue), ends_tx.clone())?);
    }
    drop(ends_tx);
    let merger = Merger {
        inputs: queues.clone(),
        queue: Arc::clone(job.queue),
        bell,
        whole_records: job.plan.data_path.delimiter().is_some(),
    };
    spawn("merger", move || {
        merger.run();
        let end = combined(ends_rx.iter().collect());
        let id = StageId {
            stage: Stage::Reader,
            index: 0,
        };
        done(&tx, id, end.map(StageExit::Read));
    })?;
    Ok((readers, queues))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_input_gets_an_equal_share_of_at_least_one_chunk() {
        let limits = Limits {
            chunks: 16,
            bytes: 1 << 20,
            slots: 40,
            delimiter: None,
        };
        let three = share(limits, 3);
        assert_eq!((three.chunks, three.bytes), (5, (1 << 20) / 3));
        assert_eq!(share(limits, 40).chunks, 1);
    }

    #[test]
    fn the_first_error_or_the_most_telling_exit_ends_the_inputs() {
        use ReaderExit::*;
        assert_eq!(combined(vec![Ok(Eof), Ok(Eof)]).unwrap(), Eof);
        assert_eq!(
            combined(vec![Ok(Eof), Ok(Rejected), Ok(Stopped)]).unwrap(),
            Rejected
        );
        assert_eq!(combined(vec![Ok(Stopped), Ok(Eof)]).unwrap(), Stopped);
        assert!(combined(vec![Ok(Eof), Err(anyhow::anyhow!("bad"))]).is_err());
    }
}
