//! Rate limits at the edges: low rates, tiny bursts, and the drain after a stop.

use crate::util::{Json, record, sh};

/// Every JSON record of `event` on stderr, in order.
fn records(stderr: &str, event: &str) -> Vec<Json> {
    let needle = format!("\"event\":\"{event}\"");
    stderr
        .lines()
        .filter(|l| l.contains(&needle))
        .map(Json::parse)
        .collect()
}

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
        r#"script -qec "head -c 4M /dev/zero | timeout -s KILL 1.5 '$BPIPE' -p -L 1K > /dev/null" /dev/null"#,
    );
    let screen = String::from_utf8_lossy(&out.stdout);
    // The last line runs into what the shell says of the killed pipeline.
    let lines: Vec<&str> = screen
        .split("\r\u{1b}[K")
        .filter_map(|l| l.split("bash:").next())
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
