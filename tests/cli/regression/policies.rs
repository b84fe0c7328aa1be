//! Overload policies and the stall watch: what each promises under a slow or stopped consumer.

use std::io::Read;
use std::time::Duration;

use crate::util::{Running, TempDir, exit_within, mkfifo, poll, record, sh};

/// Waits until bpipe has read `total` bytes, as its interval records tell.
fn until_read(bpipe: &Running, total: usize) {
    let needle = format!("\"bytes_in\":{total},");
    assert!(
        bpipe.wait_for_stderr(&needle, Duration::from_secs(20)),
        "bpipe never read all {total} bytes: the producer was held back"
    );
}

fn long_record(len: usize) -> Vec<u8> {
    let mut record = vec![b'x'; len];
    record.push(b'\n');
    record
}

fn lines(from: u32, to: u32) -> Vec<u8> {
    (from..=to)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn drop_oldest_delivers_the_record_after_a_long_one() {
    let mut input = lines(1, 10);
    input.extend(long_record(100_000));
    input.extend(b"LAST\n");
    let args = ["-l", "--on-full", "drop-oldest", "-n", "4", "-b", "4K"];
    let json = ["-i", "10ms", "--stats-format", "json"];
    let bpipe = Running::start(&[&args[..], &json].concat(), input, false);
    // The consumer comes late: once the queue is full, or bpipe has read everything.
    let ready = poll(Duration::from_secs(20), || {
        bpipe.wait_for_stderr("\"queue_chunks\":4,", Duration::ZERO)
            || bpipe.wait_for_stderr("\"bytes_in\":100027,", Duration::ZERO)
    });
    assert!(ready, "bpipe made no progress");
    let out = bpipe.finish(Vec::new());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().last(), Some("LAST"), "{}", out.stderr);
    // Whole records only: the long one arrives whole or not at all.
    assert!(
        text.lines()
            .all(|l| l == "LAST" || l.parse::<u32>().is_ok() || l.len() == 100_000)
    );
}

/// Records longer than half the queue: each new one must push out the whole one queued, or the
/// consumer gets a stale record instead of the last (found in the audit of issue 9). The output
/// is a FIFO opened once everything was read, so that the writer has started on no record.
#[test]
fn drop_oldest_delivers_the_last_of_records_longer_than_half_the_queue() {
    let input: Vec<u8> = (1..=50)
        .flat_map(|i| {
            let mut record = format!("{i:02} ").into_bytes();
            record.extend(long_record(200_000));
            record
        })
        .collect();
    let total = input.len();
    let dir = TempDir::new("drop-oldest-long");
    let fifo = mkfifo(&dir, "out");
    let args = [
        "-l",
        "--on-full",
        "drop-oldest",
        "-n",
        "4",
        "-b",
        "64KiB",
        "-o",
        &fifo,
    ];
    let json = ["-i", "10ms", "--stats-format", "json"];
    let bpipe = Running::start(&[&args[..], &json].concat(), input, false);
    until_read(&bpipe, total);
    let mut text = String::new();
    std::fs::File::open(&fifo)
        .and_then(|mut f| f.read_to_string(&mut text))
        .expect("read the FIFO");
    let out = bpipe.finish(Vec::new());
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let firsts: Vec<&str> = text.lines().map(|l| &l[..2]).collect();
    assert_eq!(firsts.last(), Some(&"50"), "{firsts:?}");
    assert!(
        text.lines().all(|l| l.len() == 200_003),
        "whole records only"
    );
}

#[test]
fn drop_never_holds_the_producer_for_a_record_the_writer_has_not_started() {
    // Short records to fill the output pipe (bpipe grows it to the queue's 256 KiB) and part of
    // the queue, then a record far longer than the queue: the writer cannot have started it.
    let mut input = lines(1, 60_000);
    input.extend(long_record(1 << 20));
    input.extend(lines(1, 5));
    let args = [
        "-l",
        "-d",
        "-n",
        "64",
        "-b",
        "4K",
        "-i",
        "10ms",
        "--stats-format",
        "json",
    ];
    let bpipe = Running::start(&args, input.clone(), false);
    until_read(&bpipe, input.len());
    let out = bpipe.finish(Vec::new());
    let exit = record(&out.stderr, "exit");
    assert!(exit.f64("reader_blocked_s") < 0.5, "{}", out.stderr);
    assert!(exit.u64("records_dropped") >= 1);
    assert!(
        !out.stdout.windows(2).any(|w| w == b"xx"),
        "a piece of the long record got out"
    );
    assert!(out.stdout.ends_with(b"\n"));
}

#[test]
fn fail_lets_through_whole_records_only() {
    let mut input = lines(1, 3);
    input.extend(long_record(100_000));
    input.extend(b"after\n");
    let args = ["-l", "--on-full", "fail", "-n", "4", "-b", "4K"];
    let mut bpipe = Running::start(&args, input, false);
    assert!(
        exit_within(&mut bpipe.child, Duration::from_secs(20)).is_some(),
        "bpipe did not exit"
    );
    let out = bpipe.finish(Vec::new());
    assert_eq!(out.code(), 3, "{}", out.stderr);
    assert_eq!(out.stdout, b"1\n2\n3\n", "{}", out.stderr);
}

#[test]
fn fail_exits_promptly_when_the_consumer_hangs() {
    let input = vec![b'y'; 8 << 20];
    let args = ["--on-full", "fail", "-n", "4", "--stats-format", "json"];
    let mut bpipe = Running::start(&args, input, true);
    // The consumer never reads: the accepted data cannot be written, and that must not turn
    // fail into block.
    assert!(bpipe.wait_for_stderr("input rejected", Duration::from_secs(10)));
    assert!(
        exit_within(&mut bpipe.child, Duration::from_secs(10)).is_some(),
        "fail behaved like block"
    );
    let mut stdout = Vec::new();
    let _ = bpipe.stdout.read_to_end(&mut stdout);
    let out = bpipe.finish(stdout);
    assert_eq!(out.code(), 3, "{}", out.stderr);
    // What the consumer never took is unsent (none, when the pipe held all that was accepted).
    crate::util::assert_accounts(&record(&out.stderr, "exit"));
}

#[test]
fn a_slow_consumer_inside_a_long_write_is_not_a_stall() {
    // Line mode writes whole 64 KiB chunks: once the pipe is full, each write blocks for more
    // than the timeout at 40 KiB/s, though the consumer reads all along.
    let input = lines(1, 50_000);
    let total = input.len();
    let args = ["-l", "-q", "-n", "1", "--stall-timeout", "1s"];
    let mut bpipe = Running::start(&args, input, false);
    let received = bpipe.read_slowly(total, 40 * 1024);
    let out = bpipe.finish(received);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout.len(), total);
}

#[test]
fn a_stopped_pipeline_is_not_a_stall() {
    // Ctrl-Z of the whole pipeline for longer than the timeout, then fg.
    // Job control puts the pipeline in a process group of its own, as a shell's Ctrl-Z sees it.
    let dir = TempDir::new("stopped-pipeline");
    let out = sh(&format!(
        r#"
        cd '{}'
        set -m
        (for i in $(seq 12); do echo $i; sleep 0.3; done) \
            | "$BPIPE" -q -i 50ms --stats-file stats.json --stall-timeout 1s > /dev/null &
        until grep -q '"bytes_in":[1-9]' stats.json 2>/dev/null; do sleep 0.01; done
        kill -STOP -- -$!
        sleep 2
        kill -CONT -- -$!
        wait %1
        echo "status $?"
    "#,
        dir.0.display()
    ));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("status 0"),
        "{}",
        out.stderr
    );
}

#[test]
fn throttling_by_a_rate_limit_is_not_a_stall() {
    for limit in ["-L", "--read-rate"] {
        let input = vec![0u8; 100 << 10];
        let out = crate::util::run(&["-q", limit, "40K", "--stall-timeout", "500ms"], &input);
        assert_eq!(out.code(), 0, "{limit}: {}", out.stderr);
        assert_eq!(out.stdout.len(), input.len());
    }
}

#[test]
fn a_forced_end_counted_less_than_the_consumer_got() {
    // Records longer than the output pipe: the writer is inside one when the consumer stops
    // taking, the drain after the rejection gives up, and the write under way is cut short.
    let long = |i: usize| format!("r{i:04} {}\n", "x".repeat(1_500_000)).into_bytes();
    let input: Vec<u8> = (0..6).flat_map(long).collect();
    let args = [
        "-l",
        "--on-full",
        "fail",
        "-b",
        "2M",
        "-n",
        "2",
        "--stats-format",
        "json",
    ];
    let mut bpipe = Running::start(&args, input, false);
    let mut received = vec![0u8; 300_000];
    bpipe.stdout.read_exact(&mut received).unwrap();
    assert!(
        exit_within(&mut bpipe.child, Duration::from_secs(20)).is_some(),
        "the drain never gave up"
    );
    let out = bpipe.finish(received);
    assert_eq!(out.code(), 3, "{}", out.stderr);
    let exit = record(&out.stderr, "exit");
    assert_eq!(
        exit.u64("bytes_out"),
        out.stdout.len() as u64,
        "{}",
        out.stderr
    );
    assert!(exit.u64("bytes_unsent") > 0);
    crate::util::assert_accounts(&exit);
}
