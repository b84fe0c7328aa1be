//! Backpressure and the overload policies, against a consumer slower than the producer.

use std::io::Read;

use crate::util::{Json, Running, assert_accounts, random_bytes, record};

/// Input made of 4096-byte blocks, each holding consecutive 8-byte counters. Writes of a block
/// are atomic on a pipe, so every chunk bpipe reads is a whole number of blocks.
fn counted_blocks(blocks: usize) -> Vec<u8> {
    (0..blocks as u64 * 512)
        .flat_map(|i| i.to_le_bytes())
        .collect()
}

/// The output is an in-order subsequence of the input's blocks: counters rise, and a gap in them
/// only ever falls on a block boundary.
pub fn assert_whole_blocks_in_order(output: &[u8]) {
    assert_eq!(output.len() % 4096, 0, "output is not whole blocks");
    let words: Vec<u64> = output
        .chunks(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap()))
        .collect();
    for (i, pair) in words.windows(2).enumerate() {
        assert!(pair[1] > pair[0], "out of order at word {i}");
        if pair[1] != pair[0] + 1 {
            assert_eq!((i + 1) % 512, 0, "a gap inside a block at word {i}");
            assert_eq!(pair[1] % 512, 0, "a block was cut at word {i}");
        }
    }
}

#[test]
fn block_holds_memory_and_loses_nothing() {
    let input = random_bytes(48 << 20, 11);
    let cases: [(&[&str], u64); 3] = [
        (&["-n", "4", "-b", "64KiB"], 4 * 64),
        (&["-n", "4", "-b", "64KiB", "--no-splice"], 4 * 64),
        (&["-n", "32", "-b", "512KiB", "--no-splice"], 32 * 512),
    ];
    for (args, queue_kib) in cases {
        let args = [args, &["--stats-format", "json"]].concat();
        let mut bp = Running::start(&args, input.clone(), false);
        let mut received = bp.read_slowly(512 * 1024, 256 * 1024);
        let slow_peak = bp.peak_rss_kib();
        let mut rest = vec![0u8; 64 * 1024];
        while received.len() < input.len() {
            match bp.stdout.read(&mut rest) {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&rest[..n]),
            }
        }
        let peak = bp.peak_rss_kib().max(slow_peak);
        let out = bp.finish(received);
        assert_eq!(out.code(), 0, "{args:?}: {}", out.stderr);
        assert!(out.stdout == input, "{args:?}: bytes differ");
        assert!(
            peak > 0 && peak < queue_kib + 8 * 1024,
            "{args:?}: peak RSS {peak} KiB"
        );
        let json = record(&out.stderr, "exit");
        assert!(
            json.f64("reader_blocked_s") > 0.5,
            "{args:?}: the reader never waited: {json:?}"
        );
        assert_eq!(json.u64("bytes_dropped"), 0);
        assert_accounts(&json);
    }
}

/// `blocks` counted blocks through a 4 × 16 KiB queue under `policy` into a consumer that reads
/// 2 MiB/s; returns the output and the exit record.
pub fn dropping_run(policy: &str, blocks: usize, extra: &[&str]) -> (Vec<u8>, Json) {
    let args = [
        &[
            "-n",
            "4",
            "-b",
            "16KiB",
            "--on-full",
            policy,
            "--stats-format",
            "json",
        ],
        extra,
    ]
    .concat();
    let mut bp = Running::start(&args, counted_blocks(blocks), false);
    let received = bp.read_slowly(usize::MAX, 2 << 20);
    let out = bp.finish(received);
    assert_eq!(out.code(), 0, "{args:?}: {}", out.stderr);
    (out.stdout, record(&out.stderr, "exit"))
}

fn assert_dropped_and_accounted(output: &[u8], json: &Json) {
    assert_whole_blocks_in_order(output);
    assert_eq!(json.u64("bytes_out"), output.len() as u64);
    assert!(json.u64("bytes_dropped") > 0, "{json:?}");
    assert!(json.u64("chunks_dropped") > 0, "{json:?}");
    assert_eq!(json.u64("bytes_in"), 4096 * 4096);
    assert_accounts(json);
    assert_eq!(json.u64("bytes_unsent"), 0, "{json:?}");
    assert_eq!(json.u64("records_dropped"), 0);
}

#[test]
fn drop_discards_new_chunks_whole() {
    let (output, json) = dropping_run("drop", 4096, &[]);
    assert_dropped_and_accounted(&output, &json);
    // The newest data was dropped, so the first block always gets through.
    assert_eq!(&output[..8], &0u64.to_le_bytes());
}

#[test]
fn drop_oldest_discards_old_chunks_whole() {
    let (output, json) = dropping_run("drop-oldest", 4096, &[]);
    assert_dropped_and_accounted(&output, &json);
    // The oldest data was dropped, so the last block always gets through.
    assert_eq!(
        &output[output.len() - 8..],
        &(4096u64 * 512 - 1).to_le_bytes()
    );
}

#[test]
fn short_flag_d_drops() {
    let mut bp = Running::start(
        &["-d", "-n", "1", "-b", "4KiB", "--stats-format", "json"],
        counted_blocks(2048),
        false,
    );
    let received = bp.read_slowly(usize::MAX, 1 << 20);
    let out = bp.finish(received);
    let json = record(&out.stderr, "exit");
    assert!(json.u64("bytes_dropped") > 0, "{json:?}");
    assert_accounts(&json);
}

fn numbered_lines(count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| format!("{i:07} {}\n", "y".repeat(i % 97)).into_bytes())
        .collect()
}

fn assert_whole_lines_in_order(output: &[u8]) {
    let text = std::str::from_utf8(output).unwrap();
    assert!(text.ends_with('\n'));
    let mut previous = None;
    for line in text.lines() {
        let (number, filler) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("cut line {line:?}"));
        let number: usize = number
            .parse()
            .unwrap_or_else(|_| panic!("cut line {line:?}"));
        assert_eq!(filler, "y".repeat(number % 97), "cut line {line:?}");
        assert!(previous < Some(number), "out of order at {line:?}");
        previous = Some(number);
    }
}

#[test]
fn line_mode_drops_whole_records() {
    for policy in ["drop", "drop-oldest"] {
        let input = numbered_lines(200_000);
        let args = [
            "-l",
            "-n",
            "4",
            "-b",
            "4KiB",
            "--on-full",
            policy,
            "--stats-format",
            "json",
        ];
        let mut bp = Running::start(&args, input.clone(), false);
        let received = bp.read_slowly(usize::MAX, 2 << 20);
        let out = bp.finish(received);
        assert_eq!(out.code(), 0, "{}", out.stderr);
        assert_whole_lines_in_order(&out.stdout);
        let json = record(&out.stderr, "exit");
        assert!(json.u64("records_dropped") > 0, "{policy}: {json:?}");
        assert_eq!(json.u64("bytes_in"), input.len() as u64);
        assert_accounts(&json);
        assert_eq!(json.u64("bytes_unsent"), 0, "{policy}: {json:?}");
        let lines_out = out.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(lines_out + json.u64("records_dropped"), 200_000, "{policy}");
    }
}

#[test]
fn line_mode_keeps_records_longer_than_a_chunk_whole() {
    let mut input = Vec::new();
    for i in 0..3000u32 {
        let len = if i.is_multiple_of(10) { 20_000 } else { 50 };
        input.extend_from_slice(format!("{i:07} {}\n", "y".repeat(len)).as_bytes());
    }
    for policy in ["drop", "drop-oldest"] {
        let args = [
            "-l",
            "-n",
            "3",
            "-b",
            "1KiB",
            "--on-full",
            policy,
            "--stats-format",
            "json",
        ];
        let mut bp = Running::start(&args, input.clone(), false);
        let received = bp.read_slowly(usize::MAX, 4 << 20);
        let out = bp.finish(received);
        assert_eq!(out.code(), 0, "{}", out.stderr);
        let text = String::from_utf8(out.stdout).unwrap();
        let mut previous = None;
        for line in text.lines() {
            let (number, filler) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("{policy}: cut line"));
            let number: usize = number
                .parse()
                .unwrap_or_else(|_| panic!("{policy}: cut line"));
            let expected = if number.is_multiple_of(10) {
                20_000
            } else {
                50
            };
            assert_eq!(filler.len(), expected, "{policy}: record {number} was cut");
            assert!(previous < Some(number));
            previous = Some(number);
        }
        let json = record(&out.stderr, "exit");
        assert_accounts(&json);
        assert_eq!(json.u64("bytes_unsent"), 0, "{policy}: {json:?}");
    }
}

#[test]
fn fail_rejects_early_and_writes_what_it_accepted() {
    let input = random_bytes(16 << 20, 12);
    let mut bp = Running::start(
        &[
            "-n",
            "2",
            "-b",
            "64KiB",
            "--on-full",
            "fail",
            "-i",
            "20ms",
            "--stats-format",
            "json",
        ],
        input.clone(),
        false,
    );
    // Read before the queue overflowed, the output would let everything through.
    bp.wait_for_record("rejected chunk", |r| r.u64("bytes_dropped") > 0);
    let out = bp.finish(Vec::new());
    assert_eq!(out.code(), 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("bpipe: input rejected: "),
        "{}",
        out.stderr
    );
    let json = record(&out.stderr, "exit");
    assert_eq!(json.u64("exit_status"), 3);
    assert!(json.u64("bytes_dropped") > 0);
    assert_eq!(json.u64("bytes_unsent"), 0);
    assert_accounts(&json);
    assert!(!out.stdout.is_empty() && out.stdout[..] == input[..out.stdout.len()]);
}
