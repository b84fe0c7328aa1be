//! Reports: notes, the data path per side, and the splice ring's share of the pipe budget.
//! One test per fixed bug, named after it, so a regression points straight at what came back.

use crate::util::{TempDir, random_bytes, record, run, sh};

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
