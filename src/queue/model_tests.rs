//! Property tests of the queue and its policies: random records, cut into chunks, offered to a
//! queue whose writer takes whole records now and then, checked against what must hold whatever
//! the policy did.

use proptest::prelude::*;

use super::{Item, Limits, Push, Queue, TestBytes};
use crate::cli::OnFull;

/// Record `index`: its number, filler, and the delimiter, so that every record is unique.
fn record(index: usize, len: usize) -> Vec<u8> {
    let mut data = format!("{index:05}").into_bytes();
    data.resize(len.max(6) - 1, b'x');
    data.push(b'\n');
    data
}

/// The chunks a reader would offer for `data`, at most `chunk` bytes each.
fn chunks(data: &[u8], chunk: usize) -> Vec<Item<TestBytes>> {
    let pieces: Vec<&[u8]> = data.chunks(chunk).collect();
    let last = pieces.len() - 1;
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| Item {
            slot: TestBytes(piece.to_vec()),
            len: piece.len(),
            starts_record: i == 0,
            ends_record: i == last,
        })
        .collect()
}

/// What the writer took, and the queue, after a run.
struct Run {
    output: Vec<u8>,
    offered_records: usize,
    offered_bytes: usize,
    queue: Queue<TestBytes>,
}

/// Takes what is queued up to the end of a record, as a writer that keeps up for a moment
/// would. Returns whether the writer is left inside a record.
fn take_record(queue: &Queue<TestBytes>, output: &mut Vec<u8>) -> bool {
    while queue.view().chunks > 0 {
        let item = queue.pop(None).expect("a queued chunk");
        output.extend_from_slice(&item.slot.0);
        if item.ends_record {
            return false;
        }
    }
    true
}

fn run(policy: OnFull, lens: &[usize], takes: &[bool], chunk: usize, limit: usize) -> Run {
    let limits = Limits {
        chunks: limit,
        bytes: limit * chunk,
        slots: limit + 3,
        delimiter: Some(b'\n'),
    };
    let queue = Queue::new(limits, policy, crate::clock::system());
    let (mut output, mut offered_records, mut offered_bytes) = (Vec::new(), 0, 0);
    let mut takes = takes.iter().cycle();
    // A writer that started a record goes on writing it as it comes: only a writer that has
    // finished a record may fall behind (a single thread cannot wait for itself).
    let mut inside = false;
    'records: for (index, &len) in lens.iter().enumerate() {
        offered_records += 1;
        for item in chunks(&record(index, len), chunk) {
            offered_bytes += item.len;
            let pushed = queue.push(item);
            let view = queue.view();
            assert!(view.chunks <= limit && (view.bytes <= limits.bytes || view.chunks == 1));
            if matches!(pushed, Push::Rejected) {
                break 'records;
            }
            // Under fail the writer waits for whole records: it takes only at the end.
            if policy != OnFull::Fail && (inside || *takes.next().unwrap()) {
                inside = take_record(&queue, &mut output);
            }
        }
    }
    queue.finish_input();
    while let Some(item) = queue.pop(None) {
        output.extend_from_slice(&item.slot.0);
    }
    Run {
        output,
        offered_records,
        offered_bytes,
        queue,
    }
}

/// The output's records, each checked to be a whole input record, in input order.
fn output_records(output: &[u8], lens: &[usize]) -> Vec<usize> {
    assert!(
        output.is_empty() || output.ends_with(b"\n"),
        "a record was cut"
    );
    let mut seen: Vec<usize> = Vec::new();
    for line in output.split_inclusive(|&b| b == b'\n') {
        let index: usize = std::str::from_utf8(&line[..5]).unwrap().parse().unwrap();
        assert_eq!(
            line,
            record(index, lens[index]),
            "record {index} is not whole"
        );
        assert!(
            seen.last().is_none_or(|&last| last < index),
            "records out of order"
        );
        seen.push(index);
    }
    seen
}

fn policy() -> impl Strategy<Value = OnFull> {
    prop_oneof![
        Just(OnFull::Drop),
        Just(OnFull::DropOldest),
        Just(OnFull::Fail)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn records_stay_whole_in_order_and_every_drop_is_counted(
        policy in policy(),
        lens in prop::collection::vec(1usize..40, 1..60),
        takes in prop::collection::vec(any::<bool>(), 1..8),
        chunk in 4usize..16,
        limit in 1usize..6,
    ) {
        let run = run(policy, &lens, &takes, chunk, limit);
        let kept = output_records(&run.output, &lens);
        let drops = run.queue.view().drops;
        prop_assert_eq!(drops.bytes as usize, run.offered_bytes - run.output.len());
        prop_assert_eq!(drops.records as usize, run.offered_records - kept.len());
        prop_assert_eq!(run.queue.view().bytes, 0);
    }

    #[test]
    fn drop_oldest_always_delivers_a_last_record_that_fits_the_queue(
        lens in prop::collection::vec(1usize..40, 1..60),
        takes in prop::collection::vec(any::<bool>(), 1..8),
        chunk in 6usize..16,
        limit in 1usize..6,
        last in 0.0..1.0f64,
    ) {
        let mut lens = lens;
        // From one byte to the whole queue (-n chunks of -b bytes).
        *lens.last_mut().unwrap() = 6 + (last * (limit * chunk - 6) as f64) as usize;
        let run = run(OnFull::DropOldest, &lens, &takes, chunk, limit);
        let kept = output_records(&run.output, &lens);
        prop_assert_eq!(kept.last().copied(), Some(lens.len() - 1));
    }
}
