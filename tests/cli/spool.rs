//! The disk spool (issue 12): the overflow of a slow consumer goes to a bounded file and comes
//! back in order; a full spool applies the policy; a full disk is said once and loses nothing;
//! store-and-forward and the watermarks.
//!
//! Sizes are the issue's, except where a test says it scales them down to keep this file near
//! 30 s on two cores.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fanout::assert_fanout_accounts;
use crate::policies::assert_whole_blocks_in_order;
use crate::util::{
    Json, Running, TempDir, assert_accounts, exit_within, random_bytes, record, records,
    require_tool, run, sh,
};

fn dir_is_empty(dir: &TempDir) -> bool {
    std::fs::read_dir(&dir.0).unwrap().next().is_none()
}

/// Reads the rest of bpipe's output at full speed.
fn read_rest(bp: &mut Running, mut received: Vec<u8>, total: usize) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 20];
    while received.len() < total {
        match bp.stdout.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
    received
}

/// Whether bpipe's output has a byte ready within `timeout`, without reading it.
fn output_ready(bp: &Running, timeout: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: bp.stdout.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis() as libc::c_int;
    // SAFETY: one valid pollfd for a descriptor the test owns.
    unsafe { libc::poll(&mut poll, 1, ms) > 0 }
}

/// 48 MiB through a queue of two chunks into a consumer ten times slower than the producer: the
/// producer is never held back, the spool takes the overflow and gives it back in order, memory
/// stays within the queue's bound, and nothing is left in DIR.
#[test]
fn a_slow_consumer_never_blocks_the_producer_and_gets_every_byte() {
    let input = random_bytes(48 << 20, 12);
    for path in [&[][..], &["--no-splice"][..]] {
        let dir = TempDir::new("spool-slow");
        let spool = dir.0.to_str().unwrap();
        let common = [
            "-n",
            "2",
            "--spool",
            spool,
            "--spool-max",
            "64MiB",
            "-i",
            "50ms",
            "--stats-format",
            "json",
        ];
        let args = [&common[..], path].concat();
        let mut bp = Running::start(&args, input.clone(), false);
        // The consumer takes the first 16 MiB at 16 MiB/s, a tenth of what the producer
        // manages, then the rest as fast as it can.
        let mut received = bp.read_slowly(16 << 20, 16 << 20);
        let slow_peak = bp.peak_rss_kib();
        let received = read_rest(&mut bp, std::mem::take(&mut received), input.len());
        let peak = bp.peak_rss_kib().max(slow_peak);
        let out = bp.finish(received);
        assert_eq!(out.code(), 0, "{path:?}: {}", out.stderr);
        assert!(out.stdout == input, "{path:?}: bytes differ");
        let exit = record(&out.stderr, "exit");
        assert_accounts(&exit);
        assert!(exit.u64("spool_peak_bytes") > 0, "{exit:?}");
        assert_eq!(exit.u64("spool_max_bytes"), 64 << 20);
        assert!(exit.u64("bytes_spooled") >= exit.u64("spool_peak_bytes"));
        assert_eq!((exit.u64("spool_bytes"), exit.u64("bytes_unsent")), (0, 0));
        assert!(exit.f64("reader_blocked_s") < 0.2, "{exit:?}");
        // The producer was done long before the consumer.
        let read_all = records(&out.stderr, "interval")
            .into_iter()
            .find(|r| r.u64("bytes_in") == input.len() as u64)
            .unwrap_or_else(|| panic!("no record with all read: {}", out.stderr));
        assert!(
            read_all.f64("elapsed_s") < exit.f64("elapsed_s") / 2.0,
            "read by {read_all:?}, written by {exit:?}"
        );
        // The queue's bound: (2 + 3) chunks of 64 KiB, and 8 MiB for the rest.
        assert!(
            peak > 0 && peak < 5 * 64 + 8 * 1024,
            "{path:?}: peak RSS {peak} KiB"
        );
        assert!(
            dir_is_empty(&dir),
            "{path:?}: something left in the spool dir"
        );
    }
}

/// A spool far smaller than the stream: its ring comes round many times, and what was read back
/// into a slot must not change when the ring writes over the place it came from.
#[test]
fn the_ring_comes_round_without_changing_a_byte() {
    let input = random_bytes(24 << 20, 17);
    for path in [&[][..], &["--no-splice"][..]] {
        let dir = TempDir::new("spool-ring");
        let common = [
            "-n",
            "2",
            "--spool",
            dir.0.to_str().unwrap(),
            "--spool-max",
            "1MiB",
        ];
        let args = [&common[..], path].concat();
        let mut bp = Running::start(&args, input.clone(), false);
        let received = bp.read_slowly(usize::MAX, 48 << 20);
        let out = bp.finish(received);
        assert_eq!(out.code(), 0, "{path:?}: {}", out.stderr);
        assert!(out.stdout == input, "{path:?}: bytes differ");
        assert!(
            out.stderr.contains("peak 1.0 MiB of 1.0 MiB"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn nothing_is_left_in_dir_after_kill_9() {
    let dir = TempDir::new("spool-kill");
    let spool = dir.0.to_str().unwrap();
    let args = [
        "-n",
        "2",
        "--spool",
        spool,
        "--spool-max",
        "64MiB",
        "-i",
        "20ms",
        "--stats-format",
        "json",
    ];
    let mut bp = Running::start(&args, random_bytes(16 << 20, 13), true);
    bp.wait_for_record("something spooled", |r| r.u64("spool_bytes") > 0);
    bp.signal(libc::SIGKILL);
    assert!(exit_within(&mut bp.child, Duration::from_secs(10)).is_some());
    assert!(dir_is_empty(&dir), "the spool file outlived bpipe");
}

/// Input made of 4096-byte blocks of consecutive 8-byte counters, as in policies.rs.
fn counted_blocks(blocks: usize) -> Vec<u8> {
    (0..blocks as u64 * 512)
        .flat_map(|i| i.to_le_bytes())
        .collect()
}

/// A spool of 1 MiB under `drop`: the newest whole chunks are dropped and counted, the rest
/// comes out in order. 16 MiB instead of 48: the drop needs only the spool to fill.
#[test]
fn a_full_spool_drops_whole_chunks_and_counts_them() {
    let dir = TempDir::new("spool-drop");
    let input = counted_blocks(4096);
    let args = [
        "-n",
        "2",
        "--spool",
        dir.0.to_str().unwrap(),
        "--spool-max",
        "1MiB",
        "--on-full",
        "drop",
        "--stats-format",
        "json",
    ];
    let mut bp = Running::start(&args, input.clone(), false);
    let received = bp.read_slowly(usize::MAX, 8 << 20);
    let out = bp.finish(received);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_whole_blocks_in_order(&out.stdout);
    assert_eq!(
        &out.stdout[..8],
        &0u64.to_le_bytes(),
        "the oldest got through"
    );
    let exit = record(&out.stderr, "exit");
    assert_accounts(&exit);
    assert_eq!(exit.u64("bytes_out"), out.stdout.len() as u64);
    assert_eq!(
        exit.u64("bytes_dropped"),
        (input.len() - out.stdout.len()) as u64
    );
    assert!(exit.u64("chunks_dropped") > 0, "{exit:?}");
    assert_eq!(exit.u64("bytes_unsent"), 0);
    assert!(exit.u64("spool_peak_bytes") <= 1 << 20, "{exit:?}");
}

fn numbered_lines(count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| format!("{i:07} {}\n", "y".repeat(i % 97)).into_bytes())
        .collect()
}

/// The same in line mode, with records of many lengths: whole records are dropped and counted.
#[test]
fn a_full_spool_drops_whole_records_in_line_mode() {
    for policy in ["drop", "drop-oldest"] {
        let dir = TempDir::new("spool-lines");
        let count = 200_000;
        let input = numbered_lines(count);
        let args = [
            "-l",
            "-n",
            "2",
            "-b",
            "4KiB",
            "--spool",
            dir.0.to_str().unwrap(),
            "--spool-max",
            "1MiB",
            "--on-full",
            policy,
            "--stats-format",
            "json",
        ];
        let mut bp = Running::start(&args, input.clone(), false);
        let received = bp.read_slowly(usize::MAX, 8 << 20);
        let out = bp.finish(received);
        assert_eq!(out.code(), 0, "{policy}: {}", out.stderr);
        let text = String::from_utf8(out.stdout.clone()).unwrap();
        let mut last: Option<usize> = None;
        let mut kept = 0;
        for line in text.lines() {
            let number: usize = line[..7].parse().unwrap();
            assert_eq!(
                line,
                format!("{number:07} {}", "y".repeat(number % 97)),
                "{policy}: line {number} is not whole"
            );
            assert!(last.is_none_or(|l| number > l), "{policy}: out of order");
            last = Some(number);
            kept += 1;
        }
        assert!(text.ends_with('\n'), "{policy}: the last record was cut");
        let exit = record(&out.stderr, "exit");
        assert_accounts(&exit);
        assert_eq!(
            exit.u64("records_dropped"),
            (count - kept) as u64,
            "{policy}"
        );
        assert!(kept < count, "{policy}: nothing dropped");
        if policy == "drop-oldest" {
            assert_eq!(last, Some(count - 1), "the newest record got through");
        }
    }
}

/// A tmpfs of 4 MiB, mounted for the test where the machine allows it (root), unmounted after.
struct SmallDisk(TempDir);

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        let dir = TempDir::new("spool-small-disk");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(&dir.0)
            .output()
            .is_ok_and(|out| out.status.success());
        if !mounted {
            eprintln!(
                "note: cannot mount a 4 MiB tmpfs here (not root?): the full-disk test skips"
            );
            return None;
        }
        Some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0.0).status();
    }
}

/// A spool larger than its disk: the disk fills, bpipe says so once and blocks instead, and
/// every byte still arrives. 20 MiB instead of 48, through a 4 MiB disk.
#[test]
fn a_full_disk_is_said_once_and_loses_nothing_under_block() {
    let Some(disk) = SmallDisk::mount() else {
        return;
    };
    let spool = disk.0.0.to_str().unwrap();
    let input = random_bytes(20 << 20, 14);
    let args = [
        "-n",
        "2",
        "--spool",
        spool,
        "--spool-max",
        "16MiB",
        "--stats-format",
        "json",
    ];
    let mut bp = Running::start(&args, input.clone(), false);
    let received = bp.read_slowly(usize::MAX, 16 << 20);
    let out = bp.finish(received);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == input, "bytes differ");
    let line = format!("bpipe: spool {spool}: No space left on device; applying --on-full block");
    assert_eq!(
        out.stderr
            .lines()
            .filter(|l| l.starts_with("bpipe: spool"))
            .count(),
        1,
        "{}",
        out.stderr
    );
    assert!(out.stderr.lines().any(|l| l == line), "{}", out.stderr);
    let exit = record(&out.stderr, "exit");
    assert_accounts(&exit);
    assert_eq!(
        (exit.u64("bytes_dropped"), exit.u64("bytes_unsent")),
        (0, 0)
    );
    assert!(exit.u64("bytes_spooled") > 0, "{exit:?}");
    assert!(exit.u64("spool_peak_bytes") <= 4 << 20, "{exit:?}");
    assert!(std::fs::read_dir(&disk.0.0).unwrap().next().is_none());
}

#[test]
fn a_spool_dir_that_cannot_hold_the_file_stops_bpipe_before_any_byte_moves() {
    let dir = TempDir::new("spool-bad-dir");
    let file = dir.file("plain", b"");
    let missing = dir.path("missing");
    let missing = missing.to_str().unwrap();
    for (spool, why) in [
        (missing, "No such file or directory"),
        (file.as_str(), "Not a directory"),
    ] {
        let out = run(&["--spool", spool, "--spool-max", "1M"], b"data");
        assert_eq!(out.code(), 1, "{}", out.stderr);
        assert_eq!(out.stderr, format!("bpipe: spool {spool}: {why}\n"));
        assert!(out.stdout.is_empty());
    }
    let out = run(&["--spool", dir.0.to_str().unwrap()], b"");
    assert_eq!(out.code(), 2, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("bpipe: ") && out.stderr.contains("--spool-max"),
        "{}",
        out.stderr
    );
}

/// Store and forward: nothing is written while the producer is still open, then all of it.
#[test]
fn start_at_eof_writes_nothing_until_the_input_ends() {
    let dir = TempDir::new("spool-eof");
    let input = random_bytes(20 << 20, 15);
    let args = [
        "--start-at",
        "eof",
        "--spool",
        dir.0.to_str().unwrap(),
        "--spool-max",
        "64MiB",
        "-i",
        "20ms",
        "--stats-format",
        "json",
    ];
    let mut bp = Running::start(&args, input.clone(), true);
    let held = bp.wait_for_record("all read", |r| r.u64("bytes_in") == input.len() as u64);
    assert_eq!(held.u64("bytes_out"), 0, "{held:?}");
    assert_eq!(held.str("state"), "held", "{held:?}");
    assert!(
        !output_ready(&bp, Duration::from_millis(300)),
        "output before the end of the input"
    );
    let closed = Instant::now();
    bp.close_stdin();
    assert!(
        output_ready(&bp, Duration::from_secs(10)),
        "no output after the end"
    );
    let first_byte = Instant::now();
    let out = bp.finish(Vec::new());
    assert!(first_byte >= closed);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == input, "bytes differ");
    let exit = record(&out.stderr, "exit");
    assert_accounts(&exit);
    assert_eq!(exit.u64("start_waits"), 1, "{exit:?}");
    assert!(exit.f64("start_wait_s") >= 0.25, "{exit:?}");
    assert!(exit.u64("spool_peak_bytes") > 16 << 20, "{exit:?}");
}

#[test]
fn progress_knows_the_total_once_stored() {
    if !require_tool("script", "bsdutils") {
        return;
    }
    let out = sh(
        // A second held and a second of writing, so the live line is drawn in both even when the
        // machine is loaded; -n is large so that small reads do not fill the queue by count,
        // which would start the writer before the end.
        r#"script -qec "(head -c 1M /dev/zero; sleep 1) | '$BPIPE' -p --start-at eof -m 2M -n 1000 -L 1MiB > /dev/null" /dev/null"#,
    );
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("% ETA "), "no percentage: {screen:?}");
    assert!(screen.contains("held at start"), "{screen:?}");
}

/// Hysteresis: the writer starts at half full; once the queue is full the reader waits until it
/// has drained to a quarter, and only then reads again. The rate limit makes the writer slow.
#[test]
fn the_reader_resumes_only_once_drained_to_resume_at() {
    let input = random_bytes(256 << 10, 16);
    let args = [
        "-n",
        "16",
        "-b",
        "4KiB",
        "--start-at",
        "50%",
        "--resume-at",
        "25%",
        "-L",
        "128KiB",
        "-i",
        "10ms",
        "--stats-format",
        "json",
    ];
    let out = run(&args, &input);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == input, "bytes differ");
    let intervals = records(&out.stderr, "interval");
    let fills: Vec<(u64, u64)> = intervals
        .iter()
        .map(|r| (r.u64("queue_chunks"), r.u64("bytes_in")))
        .collect();
    // The reader is held back while the queue drains from full to a quarter (four chunks, or
    // five: the reader queues the chunk it held as soon as it may), and reads again only then:
    // in every stretch of records without a read (the same bytes_in) in which the queue went
    // down by four chunks or more, it went down to a quarter; except the last stretch, after
    // the input ended. (A record reads the counters a moment before the queue, so its last
    // record may already show the queue refilling.)
    let mut stretches: Vec<Vec<u64>> = Vec::new();
    for (i, &(q, bytes_in)) in fills.iter().enumerate() {
        match i > 0 && fills[i - 1].1 == bytes_in {
            true => stretches.last_mut().unwrap().push(q),
            false => stretches.push(vec![q]),
        }
    }
    let last = stretches.len().saturating_sub(1);
    let mut drains = 0;
    for stretch in &stretches[..last] {
        let (high, low) = (stretch.iter().max().unwrap(), stretch.iter().min().unwrap());
        assert!(
            high - low < 4 || *low <= 5,
            "the reader read again before the queue drained to a quarter: {fills:?}"
        );
        if *high >= 15 && *low <= 5 {
            drains += 1;
        }
    }
    assert!(drains >= 2, "{fills:?}");
    // Nothing was written before the queue held half its 16 chunks. (Whether the writer had to
    // wait for that depends on which thread ran first; start_at_eof checks the wait.)
    for r in &intervals {
        assert!(
            r.u64("bytes_out") == 0 || r.u64("bytes_in") >= 8 * 4096,
            "{r:?}"
        );
    }
    let exit = record(&out.stderr, "exit");
    assert_accounts(&exit);
    assert!(exit.u64("start_waits") <= 1, "{exit:?}");
    assert!(exit.u64("resume_waits") >= 2, "{exit:?}");
    assert!(exit.f64("resume_wait_s") > 0.5, "{exit:?}");
}

/// The end of the input overrides --start-at; --start-after starts the writer anyway.
#[test]
fn the_end_of_the_input_or_start_after_starts_the_writer() {
    let out = run(&["--start-at", "90%"], b"abc");
    assert_eq!((out.code(), out.stdout.as_slice()), (0, &b"abc"[..]));
    assert!(out.elapsed < Duration::from_secs(2), "{:?}", out.elapsed);

    let mut bp = Running::start(
        &["--start-at", "eof", "--start-after", "300ms"],
        b"early".to_vec(),
        true,
    );
    let start = Instant::now();
    assert_eq!(bp.read_within(5), b"early");
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
    bp.close_stdin();
    let out = bp.finish(Vec::new());
    assert_eq!(out.code(), 0, "{}", out.stderr);
    // The writer was held from when it was ready until --start-after: most of the 300 ms, and
    // more on a loaded machine, where the writer wakes late (0.36 s seen with two busy loops on
    // two cores), so the upper bound is a generous one.
    let held: f64 = out
        .stderr
        .split("start held ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|secs| secs.parse().ok())
        .unwrap_or_else(|| panic!("no 'start held' in {}", out.stderr));
    assert!((0.15..=1.0).contains(&held), "{}", out.stderr);
}

#[test]
fn every_spool_key_is_in_every_record() {
    let out = run(&["--stats-format", "json"], b"x");
    let exit: Json = record(&out.stderr, "exit");
    for key in [
        "spool_bytes",
        "spool_peak_bytes",
        "spool_max_bytes",
        "bytes_spooled",
        "start_waits",
        "start_wait_s",
        "resume_waits",
        "resume_wait_s",
    ] {
        assert!(exit.has(key), "{key}: {exit:?}");
    }
}

/// Lines of 32 bytes, numbered, `count` of them: whole records the test can recognise.
fn short_lines(count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| format!("{i:07} {}\n", "w".repeat(23)).into_bytes())
        .collect()
}

/// `--on-full fail` in line mode through a spool: a record whose head is in the queue and whose
/// rest filled the spool is rejected whole. Its head is withdrawn from the queue as its rest is
/// from the spool, so the consumer gets the whole records before it and nothing of it, and the
/// record's accepted bytes count as dropped, not unsent. The writer is held (--start-at eof)
/// until the rejection, so where the record lies does not depend on the consumer's pace.
#[test]
fn fail_in_line_mode_withdraws_a_record_begun_in_the_queue_whole() {
    let dir = TempDir::new("spool-fail-lines");
    let whole = short_lines(1000);
    let mut input = whole.clone();
    input.extend(std::iter::repeat_n(b'x', 300 << 10));
    input.push(b'\n');
    let args = [
        "-l",
        "-b",
        "4KiB",
        "-m",
        "64KiB",
        "-n",
        "1000",
        "--spool",
        dir.0.to_str().unwrap(),
        "--spool-max",
        "32KiB",
        "--on-full",
        "fail",
        "--start-at",
        "eof",
        "--stats-format",
        "json",
    ];
    let out = run(&args, &input);
    assert_eq!(out.code(), 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("bpipe: input rejected: "),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout == whole,
        "not the whole records before the rejected one: {} bytes out of {}",
        out.stdout.len(),
        whole.len()
    );
    let exit = record(&out.stderr, "exit");
    assert_accounts(&exit);
    assert_eq!(exit.u64("records_dropped"), 1, "{exit:?}");
    assert_eq!(exit.u64("bytes_unsent"), 0, "{exit:?}");
    assert_eq!(
        exit.u64("bytes_dropped"),
        exit.u64("bytes_in") - whole.len() as u64,
        "{exit:?}"
    );
    // The record's head filled the queue behind the whole records, its rest the spool.
    assert!(exit.u64("bytes_dropped") > (32 + 32) << 10, "{exit:?}");
}

/// `--on-full fail` in line mode holds a record back from the consumer until it is whole in the
/// buffer; with a spool, the buffer is the queue and the spool: a record longer than the queue
/// whose end is spooled gets through, instead of waiting for an end the queue has no room for.
#[test]
fn fail_in_line_mode_lets_a_record_longer_than_the_queue_through_the_spool() {
    let dir = TempDir::new("spool-fail-long");
    let mut input = b"first\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 256 << 10));
    input.extend_from_slice(b"\nlast\n");
    let args = [
        "-l",
        "-b",
        "4KiB",
        "-m",
        "64KiB",
        "-n",
        "1000",
        "--spool",
        dir.0.to_str().unwrap(),
        "--spool-max",
        "1MiB",
        "--on-full",
        "fail",
        "--stats-format",
        "json",
    ];
    let out = run(&args, &input);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == input, "bytes differ");
    let exit = record(&out.stderr, "exit");
    assert_accounts(&exit);
    assert_eq!(exit.u64("bytes_dropped"), 0, "{exit:?}");
    assert!(exit.u64("bytes_spooled") > 0, "{exit:?}");
}

/// Chunks read back from the spool are written from memory on the splice path: with two outputs
/// each gets all of them, in order, whichever path.
#[test]
fn every_output_gets_the_spooled_stream_whole() {
    let input = random_bytes(8 << 20, 18);
    for path in [&[][..], &["--no-splice"][..]] {
        let dir = TempDir::new("spool-fanout");
        let copy = dir.path("copy");
        let common = [
            "-n",
            "2",
            "--spool",
            dir.0.to_str().unwrap(),
            "--spool-max",
            "64MiB",
            "-o",
            copy.to_str().unwrap(),
            "-o",
            "-",
            "--stats-format",
            "json",
        ];
        let args = [&common[..], path].concat();
        let mut bp = Running::start(&args, input.clone(), false);
        let received = bp.read_slowly(usize::MAX, 16 << 20);
        let out = bp.finish(received);
        assert_eq!(out.code(), 0, "{path:?}: {}", out.stderr);
        assert!(out.stdout == input, "{path:?}: standard output differs");
        assert!(
            std::fs::read(&copy).unwrap() == input,
            "{path:?}: the copy differs"
        );
        let exit = record(&out.stderr, "exit");
        assert_fanout_accounts(&exit);
        assert!(exit.u64("bytes_spooled") > 0, "{path:?}: {exit:?}");
    }
}
