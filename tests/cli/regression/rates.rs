//! Rate limits at the edges: low rates, tiny bursts, and the drain after a stop.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::util::{
    Json, Running, STATE_WAIT, assert_accounts, bpipe, queue_is_full, record, records, sh,
};

/// Runs a `script` that ends with bpipe's stats on stderr, with `cpu USER SYS` from bash's
/// `time` after them; returns bpipe's exit record and the CPU seconds the pipeline used.
fn timed(script: &str) -> (Json, f64) {
    let out = sh(&format!("TIMEFORMAT='cpu %U %S'; time ({script})"));
    let cpu = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("cpu "))
        .unwrap_or_else(|| panic!("no time line: {}", out.stderr));
    let cpu: f64 = cpu.split(' ').map(|s| s.parse::<f64>().unwrap()).sum();
    (record(&out.stderr, "exit"), cpu)
}

#[test]
fn low_rate_output_went_out_in_64k_lumps() {
    let out = sh(
        r#"head -c 100K /dev/zero | timeout -s KILL 2.2 "$BPIPE" -L 1K -i 200ms --stats-format json > /dev/null"#,
    );
    let intervals = records(&out.stderr, "interval");
    assert!(intervals.len() >= 8, "{}", out.stderr);
    let mut grew = 0;
    let mut last = 0;
    for record in &intervals {
        let (secs, sent) = (record.f64("elapsed_s"), record.u64("bytes_out"));
        // At most a second's worth at once, then the rate; a little slack for the write in flight.
        let most = 1024.0 * (secs + 1.0) + 256.0;
        assert!(
            sent as f64 <= most,
            "{sent} bytes out after {secs:.2}s at 1K/s: {record:?}"
        );
        grew += usize::from(sent > last);
        last = sent;
    }
    // Smooth: something went out in every interval (two may miss on a busy machine), not one
    // lump and then nothing.
    assert!(
        grew + 2 >= intervals.len(),
        "output grew in {grew} of {} intervals: {}",
        intervals.len(),
        out.stderr
    );
}

#[test]
fn throttled_time_stayed_zero_during_a_long_wait() {
    // One byte a second: each wait is a whole second, longer than the interval.
    let out = sh(
        r#"head -c 100K /dev/zero | timeout -s KILL 1.7 "$BPIPE" -L 1 -i 100ms --stats-format json > /dev/null"#,
    );
    let intervals = records(&out.stderr, "interval");
    assert!(intervals.len() >= 10, "{}", out.stderr);
    for record in intervals.iter().filter(|r| r.f64("elapsed_s") >= 0.5) {
        let secs = record.f64("elapsed_s");
        for key in ["throttled_s", "throttled_write_s"] {
            assert!(
                record.f64(key) >= secs - 0.3,
                "{key} after {secs:.2}s of waiting: {record:?}"
            );
        }
    }
}

#[test]
fn progress_said_reader_blocked_while_throttled() {
    let out = sh(
        // The inner shell's report of the killed job ("Killed", "bash: line 1: …") goes to
        // /dev/null whatever shell `script` starts; bpipe draws on the terminal itself.
        r#"script -qec "sh -c 'head -c 4M /dev/zero | timeout -s KILL 1.5 \"\$BPIPE\" -p -L 1K 2>/dev/tty >/dev/null' 2>/dev/null" /dev/null"#,
    );
    let screen = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = screen
        .split("\r\u{1b}[K")
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lines.len() >= 5, "{screen:?}");
    for line in &lines[lines.len() - 3..] {
        assert!(line.ends_with(" throttled"), "{line:?} in {screen:?}");
    }
}

#[test]
fn tiny_burst_choked_the_rate() {
    for flag in ["-L", "--read-rate"] {
        let (exit, cpu) = timed(&format!(
            r#"head -c 512K /dev/zero | "$BPIPE" {flag} 512K --burst 1 --stats-format json > /dev/null"#
        ));
        let rate = exit.f64("bytes_out") / exit.f64("elapsed_s");
        let target = 512.0 * 1024.0;
        assert!(
            (rate - target).abs() <= target * 0.05,
            "{flag} 512K --burst 1 went at {rate:.0} B/s: {exit:?}"
        );
        // A limiter that sleeps once per write uses next to nothing; one that spins uses seconds.
        assert!(cpu < 0.2, "{flag} 512K --burst 1 used {cpu:.2}s of CPU");
    }
}

#[test]
fn sigterm_drained_at_the_limited_rate_for_ages() {
    let args = [
        "-L",
        "1K",
        "--drain-timeout",
        "2s",
        "-i",
        "100ms",
        "--stats-format",
        "json",
    ];
    let mut bp = Running::start(&args, vec![0; 4 << 20], false);
    bp.wait_for_record("a full queue", queue_is_full);
    bp.wait_for_handler(libc::SIGTERM);
    bp.signal(libc::SIGTERM);
    let signalled = Instant::now();
    assert!(
        bp.wait_for_stderr("\"event\":\"note\"", STATE_WAIT),
        "no note that the drain began"
    );
    let out = bp.finish(Vec::new());
    let took = signalled.elapsed();
    assert_eq!(out.code(), 143, "{}", out.stderr);
    assert!(
        (Duration::from_millis(1800)..Duration::from_secs(6)).contains(&took),
        "the drain took {took:?}"
    );
    let note = record(&out.stderr, "note");
    let message = note.str("message");
    assert!(
        message.starts_with("draining ")
            && message.ends_with("(at most 2s; send the signal again to stop now)"),
        "{note:?}"
    );
    let exit = record(&out.stderr, "exit");
    assert_eq!(exit.u64("exit_status"), 143);
    assert_eq!(exit.u64("bytes_out"), out.stdout.len() as u64);
    assert!(exit.u64("bytes_unsent") > 0, "{exit:?}");
    assert_accounts(&exit);
    // The summary tells the throttling the drain was, wait in progress included.
    assert!(exit.f64("throttled_write_s") >= 1.5, "{exit:?}");
}

#[test]
fn sigterm_drain_said_nothing_and_had_no_bound() {
    let args = ["-L", "1K", "-i", "100ms", "--drain-timeout", "20s"];
    let mut bp = Running::start(&args, vec![0; 4 << 20], false);
    assert!(
        bp.wait_for_stderr("bpipe: [interval]", STATE_WAIT),
        "no interval record"
    );
    bp.wait_for_handler(libc::SIGTERM);
    bp.signal(libc::SIGTERM);
    assert!(
        bp.wait_for_stderr(
            "(at most 20s; send the signal again to stop now)",
            STATE_WAIT
        ),
        "no note that the drain began"
    );
    // A second signal still stops at once.
    bp.signal(libc::SIGTERM);
    let mut rest = Vec::new();
    let _ = bp.stdout.read_to_end(&mut rest);
    let out = bp.finish(rest);
    assert_eq!(out.code(), 143, "{}", out.stderr);
    assert!(out.elapsed < Duration::from_secs(3), "{:?}", out.elapsed);
    let note = out.stderr.lines().find(|l| l.contains("draining")).unwrap();
    assert!(note.starts_with("bpipe: draining "), "{note}");

    // The default bound is ten seconds, and -q keeps the note off standard error.
    let help = bpipe(&["--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--drain-timeout"), "{help}");
    assert!(help.contains("[default: 10s]"), "{help}");
    let args = [
        "-q",
        "--stats-format",
        "json",
        "-L",
        "1K",
        "--drain-timeout",
        "300ms",
    ];
    let mut quiet = Running::start(&args, vec![0; 4 << 20], false);
    // A SIGUSR1 snapshot still prints under -q: it tells when there is something to drain.
    quiet.snapshot_when("a full queue", queue_is_full);
    quiet.wait_for_handler(libc::SIGTERM);
    quiet.signal(libc::SIGTERM);
    let out = quiet.finish(Vec::new());
    assert_eq!(out.code(), 143, "{}", out.stderr);
    assert!(!out.stderr.contains("draining"), "{}", out.stderr);
}
