//! Reports: notes, the data path per side, and the splice ring's share of the pipe budget.
//! One test per fixed bug, named after it, so a regression points straight at what came back.

use crate::util::{Json, Output, TempDir, random_bytes, record, run, sh};

fn pipe_max_size() -> usize {
    std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20)
}

/// Every line on stderr is a JSON object; returns them parsed.
fn json_lines(out: &Output) -> Vec<Json> {
    out.stderr
        .lines()
        .map(|line| {
            assert!(line.starts_with('{'), "not a JSON record: {line}");
            Json::parse(line)
        })
        .collect()
}

#[test]
fn chunks_above_pipe_max_size_splice_without_a_note() {
    let chunk = (2 * pipe_max_size()).to_string();
    let input = random_bytes(6 << 20, 111);
    let out = run(&["-b", &chunk, "--stats-format", "json"], &input);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == input, "the bytes changed");
    let records = json_lines(&out);
    assert_eq!(records.len(), 1, "{}", out.stderr);
    assert_eq!(records[0].get("path"), "splice", "{}", out.stderr);
}

#[test]
fn a_note_is_a_json_record_under_json_stats_and_quiet_hides_it() {
    // Too few open files for a ring of 103 pipes: bpipe copies, and says so.
    let script = r#"ulimit -n 40; head -c 300000 /dev/zero | "$BPIPE" -n 100 FLAGS | wc -c"#;
    let out = sh(&script.replace("FLAGS", "--stats-format json"));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "300000");
    let records = json_lines(&out);
    let note = records
        .iter()
        .find(|r| r.get("event") == "note")
        .unwrap_or_else(|| panic!("no note: {}", out.stderr));
    assert!(note.get("message").contains("copy path"), "{}", out.stderr);
    assert!(!note.get("message").starts_with("bpipe:"), "{}", out.stderr);
    assert_eq!(record(&out.stderr, "exit").get("path"), "copy");
    let human = sh(&script.replace("FLAGS", ""));
    assert!(
        human
            .stderr
            .lines()
            .any(|l| l.starts_with("bpipe: ") && l.contains("copy path")),
        "{}",
        human.stderr
    );
    let quiet = sh(&script.replace("FLAGS", "-q --stats-format json"));
    assert_eq!(quiet.code(), 0, "{}", quiet.stderr);
    assert_eq!(quiet.stderr, "", "-q must hide notes");
}

#[test]
fn path_reports_what_each_side_did_when_an_append_output_copies() {
    let dir = TempDir::new("append-path");
    let target = dir.path("out");
    let script = format!(
        r#"head -c 4M /dev/zero | "$BPIPE" --stats-format json >> '{}'"#,
        target.display()
    );
    let out = sh(&script);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(std::fs::metadata(&target).unwrap().len(), 4 << 20);
    let exit = record(&out.stderr, "exit");
    assert_eq!(exit.get("path_in"), "splice", "{}", out.stderr);
    assert_eq!(exit.get("path_out"), "copy", "{}", out.stderr);
    assert_eq!(exit.get("path"), "copy", "{}", out.stderr);
    let input = random_bytes(1 << 20, 112);
    let piped = run(&["--stats-format", "json"], &input);
    let exit = record(&piped.stderr, "exit");
    for key in ["path_in", "path_out", "path"] {
        assert_eq!(exit.get(key), "splice", "{key}: {}", piped.stderr);
    }
    let copied = run(&["--stats-format", "json", "--no-splice"], &input);
    let exit = record(&copied.stderr, "exit");
    for key in ["path_in", "path_out", "path"] {
        assert_eq!(exit.get(key), "copy", "{key}: {}", copied.stderr);
    }
}
