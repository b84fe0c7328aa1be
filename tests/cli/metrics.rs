//! Prometheus metrics (issue 13): --metrics-file, --metrics-listen and --metrics-label, as a
//! node_exporter textfile collector, a scraper and promtool see them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::util::{
    Running, STATE_WAIT, TempDir, installed, poll, random_bytes, record, require_tool, run,
};

/// One sample line of the text format: the series (name and labels) and the value.
fn sample(line: &str) -> Option<(&str, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let name_end = series.find('{').unwrap_or(series.len());
    let name = &series[..name_end];
    let named = name.starts_with("bpipe_")
        && name
            .bytes()
            .all(|b| b == b'_' || b.is_ascii_lowercase() || b.is_ascii_digit());
    let labelled = name_end == series.len() || series.ends_with('}');
    (named && labelled).then_some(())?;
    Some((series, value.parse::<f64>().ok().filter(|v| v.is_finite())?))
}

/// The families of a whole text in the format, in order; fails on a line that is not a comment
/// or a sample, on a family without HELP and TYPE, or on text cut short.
fn families(text: &str) -> Result<Vec<String>, String> {
    if !text.ends_with('\n') {
        return Err("the text does not end with a newline".into());
    }
    let mut families = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or(line)?;
            if !matches!(kind, "counter" | "gauge") {
                return Err(format!("bad type: {line}"));
            }
            families.push(name.to_string());
        } else if line.starts_with("# HELP ") {
        } else {
            let (series, _) = sample(line).ok_or_else(|| format!("bad line: {line:?}"))?;
            let family = families.last().ok_or(line)?;
            if !series.starts_with(family.as_str()) {
                return Err(format!("{series} outside its family {family}"));
            }
        }
    }
    if text.matches("# HELP ").count() != families.len() {
        return Err("a family without HELP".into());
    }
    Ok(families)
}

/// The value of the one series `series` (name and labels, exactly).
fn value(text: &str, series: &str) -> f64 {
    let found: Vec<f64> = text
        .lines()
        .filter_map(sample)
        .filter(|(s, _)| *s == series)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(found.len(), 1, "{series} in\n{text}");
    found[0]
}

/// The names the issue lists, which every rendering has.
const NAMES: [&str; 10] = [
    "bpipe_up",
    "bpipe_bytes_in_total",
    "bpipe_bytes_out_total",
    "bpipe_bytes_dropped_total",
    "bpipe_records_dropped_total",
    "bpipe_queue_bytes",
    "bpipe_queue_capacity_bytes",
    "bpipe_reader_blocked_seconds_total",
    "bpipe_writer_idle_seconds_total",
    "bpipe_throttled_seconds_total",
];

fn has_the_names(families: &[String]) {
    for name in NAMES {
        assert!(
            families.iter().any(|f| f == name),
            "{name} missing: {families:?}"
        );
    }
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /metrics` over a plain socket: the whole answer, or `None` while nobody listens.
fn scrape(port: u16) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

fn body(answer: &str) -> &str {
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    body
}

/// The file is replaced whole every interval: read 1000 times while bpipe rewrites it every
/// 10 ms, it is always a complete text with every family, and it does change.
#[test]
fn the_metrics_file_is_never_partial() {
    let dir = TempDir::new("metrics-whole");
    let path = dir.path("bpipe.prom");
    let file = path.to_str().unwrap();
    let args = [
        "-i",
        "10ms",
        "--metrics-file",
        file,
        "--stats-format",
        "json",
    ];
    let mut bp = Running::start(&args, random_bytes(1 << 20, 61), true);
    assert!(poll(STATE_WAIT, || path.exists()), "no {file}");
    let first = std::fs::read_to_string(&path).unwrap();
    let expected = families(&first).unwrap_or_else(|e| panic!("{e}:\n{first}"));
    has_the_names(&expected);
    let mut texts = std::collections::HashSet::new();
    for _ in 0..1000 {
        let text = std::fs::read_to_string(&path).unwrap();
        match families(&text) {
            Ok(found) => assert_eq!(found, expected, "{text}"),
            Err(e) => panic!("a partial or broken file ({e}):\n{text}"),
        }
        assert_eq!(value(&text, "bpipe_up"), 1.0);
        texts.insert(text);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(texts.len() > 10, "rewritten only {} times", texts.len());
    let received = bp.read_within(1 << 20);
    bp.close_stdin();
    let out = bp.finish(received);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let last = std::fs::read_to_string(&path).unwrap();
    assert_eq!(value(&last, "bpipe_up"), 0.0, "{last}");
    let exit = record(&out.stderr, "exit");
    assert_eq!(
        value(&last, "bpipe_bytes_in_total"),
        exit.u64("bytes_in") as f64
    );
    assert_eq!(value(&last, "bpipe_bytes_in_total"), (1 << 20) as f64);
    let names: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["bpipe.prom"], "a temporary file was left behind");
}

#[test]
fn promtool_accepts_the_metrics() {
    if !require_tool("promtool", "prometheus") {
        return;
    }
    let dir = TempDir::new("metrics-promtool");
    let path = dir.path("bpipe.prom");
    let (a, b) = (dir.path("a"), dir.path("b"));
    let args = [
        "--metrics-file",
        path.to_str().unwrap(),
        "--metrics-label",
        "job=backup",
        "--metrics-label",
        "note=with \"quotes\" \\ and\nnewline",
        "-o",
        a.to_str().unwrap(),
        "-o",
        b.to_str().unwrap(),
    ];
    let out = run(&args, &random_bytes(100_000, 62));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .expect("run promtool");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        check.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// What a scraper gets has the names the file has; `curl` gets it too.
#[test]
fn metrics_listen_serves_the_same_names_as_the_file() {
    let dir = TempDir::new("metrics-listen");
    let path = dir.path("bpipe.prom");
    let port = free_port();
    let port_arg = port.to_string();
    let args = [
        "-q",
        "--metrics-listen",
        &port_arg,
        "--metrics-file",
        path.to_str().unwrap(),
    ];
    let mut bp = Running::start(&args, random_bytes(1 << 16, 63), true);
    let mut answer = None;
    assert!(
        poll(STATE_WAIT, || {
            answer = scrape(port).filter(|a| a.contains("bpipe_bytes_in_total"));
            answer.is_some()
        }),
        "nothing served on port {port}"
    );
    let answer = answer.unwrap();
    let served = body(&answer);
    let served_families = families(served).unwrap_or_else(|e| panic!("{e}:\n{served}"));
    has_the_names(&served_families);
    assert_eq!(value(served, "bpipe_up"), 1.0);
    assert!(poll(STATE_WAIT, || path.exists()));
    let file = std::fs::read_to_string(&path).unwrap();
    assert_eq!(families(&file).unwrap(), served_families);
    if installed("curl") {
        let url = format!("http://127.0.0.1:{port}/metrics");
        let curl = Command::new("curl")
            .args(["-sSf", "--max-time", "10", &url])
            .output();
        let curl = curl.expect("run curl");
        assert!(
            curl.status.success(),
            "{}",
            String::from_utf8_lossy(&curl.stderr)
        );
        let text = String::from_utf8(curl.stdout).unwrap();
        assert_eq!(families(&text).unwrap(), served_families);
    }
    let received = bp.read_within(1 << 16);
    bp.close_stdin();
    let out = bp.finish(received);
    assert_eq!(out.code(), 0, "{}", out.stderr);
}

#[test]
fn a_metrics_address_in_use_is_refused_before_any_byte_moves() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = TempDir::new("metrics-in-use");
    let output = dir.file("out", b"kept");
    let out = run(
        &["--metrics-listen", &port.to_string(), "-o", &output],
        b"data",
    );
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!("bpipe: metrics 127.0.0.1:{port}: Address already in use\n")
    );
    assert_eq!(std::fs::read(&output).unwrap(), b"kept");
    drop(taken);
}

#[test]
fn metrics_labels_are_on_every_series_and_each_output_has_its_own() {
    let dir = TempDir::new("metrics-labels");
    let path = dir.path("bpipe.prom");
    let (a, b) = (dir.path("a"), dir.path("b"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let args = [
        "--metrics-file",
        path.to_str().unwrap(),
        "--metrics-label",
        "job=backup",
        "--metrics-label",
        "host=a\"b",
        "-o",
        a,
        "-o",
        b,
    ];
    let out = run(&args, &random_bytes(5000, 64));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let text = std::fs::read_to_string(&path).unwrap();
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(samples.len() >= NAMES.len(), "{text}");
    for line in samples {
        assert!(line.contains(r#"{job="backup",host="a\"b""#), "{line}");
    }
    for output in [a, b] {
        let series =
            format!(r#"bpipe_bytes_out_total{{job="backup",host="a\"b",output="{output}"}}"#);
        assert_eq!(value(&text, &series), 5000.0, "{text}");
    }
    // An operator's label cannot take one of bpipe's own.
    let out = run(
        &[
            "--metrics-file",
            path.to_str().unwrap(),
            "--metrics-label",
            "output=x",
        ],
        b"",
    );
    assert_eq!(out.code(), 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("'output' is a label bpipe sets itself"),
        "{}",
        out.stderr
    );
}

/// The exit record's numbers and the last metrics are one table.
#[test]
fn the_last_metrics_are_the_exit_record() {
    let dir = TempDir::new("metrics-exit");
    let path = dir.path("bpipe.prom");
    let out = run(
        &[
            "--metrics-file",
            path.to_str().unwrap(),
            "--stats-format",
            "json",
            "-n",
            "2",
            "-b",
            "4K",
        ],
        &random_bytes(50_000, 65),
    );
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let exit = out.json();
    let text = std::fs::read_to_string(&path).unwrap();
    for (key, series) in [
        ("bytes_in", "bpipe_bytes_in_total"),
        ("bytes_dropped", "bpipe_bytes_dropped_total"),
        ("bytes_unsent", "bpipe_bytes_unsent_total"),
        ("chunks_in", "bpipe_chunks_in_total"),
        ("queue_capacity_bytes", "bpipe_queue_capacity_bytes"),
        ("queue_peak_bytes", "bpipe_queue_peak_bytes"),
    ] {
        assert_eq!(value(&text, series), exit.u64(key) as f64, "{key}");
    }
    assert_eq!(value(&text, "bpipe_up"), 0.0);
}
