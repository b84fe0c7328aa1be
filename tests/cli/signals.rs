//! Signals, a closed or failing output, and promptness: what operators and shells see.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::util::{
    DEADLINE, Json, Running, STATE_WAIT, assert_accounts, finish, queue_is_full, random_bytes,
    read_within, record, sh, spawn_piped,
};

#[test]
fn a_partial_chunk_reaches_the_consumer_at_once() {
    for args in [&["-q"][..], &["-q", "-l"], &["-q", "--no-splice"]] {
        let mut child = spawn_piped(args);
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        // The first partial chunk may wait for bpipe to start; once it is through, the time the
        // second takes is the relay's alone. With stdin open, a chunk that waited to fill would
        // never come.
        stdin.write_all(b"ready\n").unwrap();
        assert_eq!(
            read_within(&mut stdout, 6, STATE_WAIT),
            b"ready\n",
            "{args:?}"
        );
        let sent = Instant::now();
        stdin.write_all(b"hello\n").unwrap();
        let buf = read_within(&mut stdout, 6, STATE_WAIT);
        let waited = sent.elapsed();
        assert_eq!(buf, b"hello\n", "{args:?}");
        assert!(
            waited < Duration::from_millis(200),
            "{args:?}: took {waited:?}"
        );
        drop(stdin);
        let out = finish(child, DEADLINE);
        assert_eq!(out.code(), 0, "{args:?}: {}", out.stderr);
    }
}

#[test]
fn usr1_answers_while_the_producer_is_idle() {
    let mut bp = Running::start(&["--stats-format", "json"], b"first\n".to_vec(), true);
    // Its output proves bpipe read all there is (and catches SIGUSR1: it does before it reads).
    let received = bp.read_within(6);
    bp.signal(libc::SIGUSR1);
    assert!(
        bp.wait_for_stderr("\"event\":\"signal\"", Duration::from_secs(5)),
        "no snapshot while idle"
    );
    bp.close_stdin();
    let out = bp.finish(received);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, b"first\n");
    let snapshot = record(&out.stderr, "signal");
    assert_eq!(snapshot.u64("bytes_in"), 6);
    assert_accounts(&record(&out.stderr, "exit"));
    assert!(
        !out.stderr
            .lines()
            .any(|l| l.contains("\"event\":\"signal\"") && l.contains("exit_status"))
    );
}

/// The man page and --help promise it: -q keeps stats records off stderr, but not the ones an
/// operator asks for. (That -q hides interval records is checked with the stats file.)
#[test]
fn usr1_prints_even_with_quiet() {
    let mut bp = Running::start(&["-q", "--stats-format", "json"], b"x".to_vec(), true);
    let received = bp.read_within(1);
    bp.signal(libc::SIGUSR1);
    assert!(
        bp.wait_for_stderr("\"event\":\"signal\"", Duration::from_secs(5)),
        "no snapshot under -q"
    );
    bp.close_stdin();
    let out = bp.finish(received);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "only the snapshot, no summary: {}",
        out.stderr
    );
    assert_eq!(Json::parse(lines[0]).u64("bytes_in"), 1);
}

#[test]
fn usr1_answers_while_both_stages_are_blocked() {
    let input = random_bytes(8 << 20, 21);
    let mut bp = Running::start(&["-n", "4", "--stats-format", "json"], input.clone(), false);
    // Nobody reads the output: once the queue is full and the reader has waited on it a while,
    // both stages sit blocked, and only a snapshot taken then can show it.
    let snapshot = bp.snapshot_when("snapshot while both stages are blocked", |s| {
        queue_is_full(s) && s.f64("reader_blocked_s") > 0.2
    });
    assert_eq!(snapshot.u64("queue_chunks"), 4, "{snapshot:?}");
    bp.signal(libc::SIGUSR1);
    let out = bp.finish(Vec::new());
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stdout == input,
        "bytes lost or reordered around SIGUSR1"
    );
    assert_accounts(&record(&out.stderr, "exit"));
}

#[test]
fn sigterm_writes_what_was_accepted_and_exits_143() {
    let input = random_bytes(8 << 20, 22);
    // The producer never closes its end, so only SIGTERM can end this run, and only by stopping
    // the reading: a run that ends at all has stopped reading, however fast the output drains.
    let mut bp = Running::start(
        &["-n", "4", "-i", "20ms", "--stats-format", "json"],
        input.clone(),
        true,
    );
    bp.wait_for_record("full queue", queue_is_full);
    bp.signal(libc::SIGTERM);
    let out = bp.finish(Vec::new());
    assert_eq!(out.code(), 143, "{}", out.stderr);
    let json = record(&out.stderr, "exit");
    assert_eq!(json.u64("exit_status"), 143);
    assert_accounts(&json);
    assert_eq!(json.u64("bytes_unsent"), 0);
    assert_eq!(json.u64("bytes_out"), out.stdout.len() as u64);
    assert!(
        json.u64("bytes_out") >= 4 * 64 * 1024,
        "the queue was not flushed: {json:?}"
    );
    assert!(out.stdout[..] == input[..out.stdout.len()]);
}

#[test]
fn sigterm_while_the_producer_is_idle() {
    let mut bp = Running::start(&["--stats-format", "json"], b"abc".to_vec(), true);
    // Its output proves bpipe read all there is (and catches SIGTERM: it does before it reads).
    let received = bp.read_within(3);
    bp.signal(libc::SIGTERM);
    let out = bp.finish(received);
    assert_eq!(out.code(), 143, "{}", out.stderr);
    assert_eq!(out.stdout, b"abc");
    assert!(out.elapsed < Duration::from_secs(5));
    assert_accounts(&record(&out.stderr, "exit"));
}

#[test]
fn a_second_signal_exits_at_once() {
    let input = random_bytes(8 << 20, 23);
    let mut bp = Running::start(
        &["-n", "4", "-i", "20ms", "--stats-format", "json"],
        input,
        false,
    );
    bp.wait_for_record("full queue", queue_is_full);
    // Nobody reads the output, so the stop the first SIGINT asks for can never finish: only a
    // later signal ends the run. A SIGINT sent before bpipe took the previous one merges into
    // it, so they keep coming until bpipe exits.
    let start = Instant::now();
    let status = loop {
        bp.signal(libc::SIGINT);
        std::thread::sleep(Duration::from_millis(50));
        if let Some(status) = bp.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still running after a second SIGINT"
        );
    };
    assert_eq!(status.code(), Some(130));
    let mut rest = Vec::new();
    let _ = bp.stdout.read_to_end(&mut rest);
    let out = bp.finish(rest);
    let json = record(&out.stderr, "exit");
    assert_accounts(&json);
    assert!(json.u64("bytes_unsent") > 0);
}

#[test]
fn a_closed_output_exits_141_with_only_the_summary() {
    let out = sh(
        r#"head -c 20M /dev/zero | "$BPIPE" | head -c 1000 > /dev/null; echo "${PIPESTATUS[1]}""#,
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "141");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].starts_with("bpipe: ") && lines[0].ends_with("output closed"),
        "{}",
        out.stderr
    );
    let out =
        sh(r#"head -c 20M /dev/zero | "$BPIPE" --stats-format json | head -c 1000 > /dev/null"#);
    let json = record(&out.stderr, "exit");
    assert!(json.bool("output_closed"), "{json:?}");
    assert_eq!(json.u64("exit_status"), 141);
    assert_accounts(&json);
}

#[test]
fn a_full_device_is_an_io_error() {
    let out = sh(r#"head -c 1M /dev/zero | "$BPIPE" --stats-format json > /dev/full"#);
    assert_eq!(out.code(), 1, "{}", out.stderr);
    let first = out.stderr.lines().next().unwrap();
    assert_eq!(
        first,
        "bpipe: write standard output: No space left on device"
    );
    let json = record(&out.stderr, "exit");
    assert_eq!(json.u64("exit_status"), 1);
    assert_accounts(&json);
}

#[test]
fn no_panic_text_anywhere() {
    let out = sh(
        r#"head -c 1M /dev/zero | "$BPIPE" -b 1 -n 1 /nonexistent - 2>&1 > /dev/full; "$BPIPE" -b 0 2>&1"#,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("panicked"), "{text}");
}
