//! Rate limits, periodic records, the live line, the stats file and the stall watchdog.

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::{
    DEADLINE, Json, STATE_WAIT, TempDir, assert_accounts, finish, random_bytes, read_within,
    require_tool, run, sh, spawn_piped,
};

/// A rate limit sets a floor on the run time, checked closely; a slow run fails only far above
/// it, where a busy machine cannot be the reason but a limit that paces at half the rate is.
fn paced(secs: f64, floor: f64, target: f64) -> bool {
    secs >= floor && secs <= target * 1.5
}

#[test]
fn rate_limit_paces_the_output() {
    let input = random_bytes(2 << 20, 31);
    let out = run(&["-L", "1MiB", "--stats-format", "json"], &input);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == input, "rate limiting changed the bytes");
    let secs = out.elapsed.as_secs_f64();
    assert!(paced(secs, 1.8, 2.0), "2 MiB at 1 MiB/s took {secs:.2}s");
    let json = out.json();
    assert!(json.f64("throttled_s") > 1.0, "{json:?}");
    assert_accounts(&json);
}

#[test]
fn read_rate_paces_the_input() {
    let input = random_bytes(2 << 20, 32);
    let out = run(&["--read-rate", "1MiB/s", "-q"], &input);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == input);
    let secs = out.elapsed.as_secs_f64();
    assert!(paced(secs, 1.8, 2.0), "2 MiB at 1 MiB/s took {secs:.2}s");
}

#[test]
fn idle_time_earns_no_burst_beyond_the_cap() {
    let mut child = spawn_piped(&["-q", "-L", "256KiB"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let first = random_bytes(256 << 10, 33);
    let second = random_bytes(1 << 20, 34);
    let expected = [&first[..], &second].concat();
    let (go, idle_done) = mpsc::channel::<()>();
    let feeder = std::thread::spawn(move || {
        stdin.write_all(&first).unwrap();
        idle_done.recv().unwrap();
        let sent = Instant::now();
        stdin.write_all(&second).unwrap();
        sent
    });
    let mut received = read_within(&mut stdout, 256 << 10, STATE_WAIT);
    // bpipe has sent all it had: it now sits idle for 2 s, twenty times what the 25.6 KiB burst
    // takes at the rate, which a limiter without a cap would turn into 512 KiB sent at once.
    std::thread::sleep(Duration::from_secs(2));
    go.send(()).unwrap();
    received.extend(read_within(&mut stdout, 1 << 20, DEADLINE));
    let took = feeder.join().unwrap().elapsed();
    assert!(received == expected);
    let out = finish(child, DEADLINE);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    // The default burst is rate / 10 = 25.6 KiB: the rest must wait for the rate (64 KiB of
    // slack).
    let floor = (1024.0 - 64.0) / 256.0;
    assert!(
        took.as_secs_f64() >= floor * 0.9,
        "1 MiB after idle arrived in {took:?}"
    );
}

#[test]
fn line_rate_counts_records() {
    let input: Vec<u8> = (0..200)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let out = run(&["-q", "-l", "--rate-unit", "lines", "-L", "100"], &input);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, input);
    let secs = out.elapsed.as_secs_f64();
    assert!(paced(secs, 1.6, 2.0), "200 lines at 100/s took {secs:.2}s");
}

#[test]
fn intervals_print_records_with_rates() {
    let out = sh(
        r#"(echo start; sleep 1; echo end) | "$BPIPE" -i 100ms --stats-format json > /dev/null"#,
    );
    assert_eq!(out.code(), 0, "{}", out.stderr);
    // Nothing but records on stderr, and every one of them valid JSON.
    let all: Vec<Json> = out.stderr.lines().map(Json::parse).collect();
    let intervals: Vec<&Json> = all
        .iter()
        .filter(|r| r.str("event") == "interval")
        .collect();
    assert!(
        (7..=13).contains(&intervals.len()),
        "{} interval records",
        intervals.len()
    );
    for record in &intervals {
        assert!(record.f64("rate_in_Bps") >= 0.0 && record.f64("rate_out_Bps") >= 0.0);
        assert!(!record.has("exit_status"), "{record:?}");
    }
    assert_eq!(all.last().unwrap().str("event"), "exit");
    assert_accounts(all.last().unwrap());
    let human = sh(r#"(echo start; sleep 0.8) | "$BPIPE" -i 100ms > /dev/null"#);
    assert!(
        human
            .stderr
            .lines()
            .filter(|l| l.starts_with("bpipe: [interval] "))
            .count()
            >= 3,
        "{}",
        human.stderr
    );
}

#[test]
fn stats_file_gets_every_record_as_json_lines() {
    let dir = TempDir::new("stats-file");
    let path = dir.path("stats.jsonl");
    let script = format!(
        r#"(echo a; sleep 0.5) | "$BPIPE" -q -i 100ms --stats-file '{}' > /dev/null"#,
        path.display()
    );
    let out = sh(&script);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stderr.is_empty(),
        "-q must keep stderr quiet: {}",
        out.stderr
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let records: Vec<Json> = text.lines().map(Json::parse).collect();
    assert!(records.len() >= 4, "{text}");
    let exit = records.last().unwrap();
    assert_eq!(exit.str("event"), "exit");
    assert_eq!(exit.u64("bytes_out"), 2);
    assert_accounts(exit);
}

#[test]
fn progress_draws_only_on_a_terminal() {
    // script(1) gives bpipe a terminal for stderr.
    if require_tool("script", "bsdutils") {
        let out =
            sh(r#"script -qec "(echo x; sleep 0.6) | '$BPIPE' -p -s 4 > /dev/null" /dev/null"#);
        let screen = String::from_utf8_lossy(&out.stdout);
        assert!(screen.contains("\r\u{1b}[K"), "no redraw: {screen:?}");
        assert!(
            screen.contains("queue [") && screen.contains("50%"),
            "{screen:?}"
        );
        assert!(
            screen.contains("bpipe: 2 B in "),
            "no summary after the line: {screen:?}"
        );
    }
    let plain = sh(r#"(echo x; sleep 0.5) | "$BPIPE" -p > /dev/null"#);
    assert_eq!(plain.stderr.lines().count(), 1, "{}", plain.stderr);
    assert!(!plain.stderr.contains('\r'));
}

#[test]
fn stalled_input_is_named() {
    let out = sh(r#"(sleep 4) | "$BPIPE" --stall-timeout 1s --stats-format json"#);
    assert_eq!(out.code(), 4, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("bpipe: input stalled: nothing read for 1s"),
        "{}",
        out.stderr
    );
    let last = Json::parse(out.stderr.lines().last().unwrap());
    assert_eq!(last.u64("exit_status"), 4);
    assert!(last.f64("elapsed_s") < 2.5, "{last:?}");
    assert_accounts(&last);
}

#[test]
fn stalled_output_is_named() {
    let out = sh(
        r#"head -c 100M /dev/zero | "$BPIPE" --stall-timeout 1s --stats-format json | sleep 5; echo "${PIPESTATUS[1]}""#,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "4",
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("bpipe: output stalled: nothing written for 1s"),
        "{}",
        out.stderr
    );
    let last = Json::parse(out.stderr.lines().last().unwrap());
    assert_eq!(last.u64("exit_status"), 4);
    assert_accounts(&last);
}

#[test]
fn a_slow_but_moving_producer_is_not_a_stall() {
    let out =
        sh(r#"for i in 1 2 3 4 5 6; do echo $i; sleep 0.3; done | "$BPIPE" -q --stall-timeout 1s"#);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
}
