//! Bad input gets a clear error and the documented status, never a panic.

use crate::util::{TempDir, run};

fn assert_usage_error(args: &[&str], mentions: &[&str]) {
    let out = run(args, b"");
    assert_eq!(out.code(), 2, "{args:?}: {}", out.stderr);
    for word in mentions {
        assert!(
            out.stderr.contains(word),
            "{args:?}: {word:?} not in {}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("panicked"));
}

#[test]
fn bad_flags_are_usage_errors() {
    assert_usage_error(&["-b", "0"], &["--chunk-size", "'0'", "at least 1 byte"]);
    assert_usage_error(&["-b", "foo"], &["--chunk-size", "'foo'", "64KiB"]);
    assert_usage_error(&["-b", "2GiB"], &["at most 1GiB"]);
    assert_usage_error(&["-n", "0"], &["--chunks", "'0'"]);
    assert_usage_error(
        &["--on-full", "sometimes"],
        &["--on-full", "sometimes", "drop-oldest"],
    );
    assert_usage_error(&["-L", "0"], &["--rate-limit", "greater than zero"]);
    assert_usage_error(&["-L", "fast"], &["--rate-limit", "10MiB/s"]);
    assert_usage_error(&["-i", "soon"], &["--interval", "250ms"]);
    assert_usage_error(&["--rate-unit", "lines", "-L", "5"], &["--lines"]);
    assert_usage_error(&["--append"], &["--output"]);
}

#[test]
fn bad_inputs_are_named_and_nothing_is_written() {
    let dir = TempDir::new("bad-inputs");
    let good = dir.file("good", b"data");
    let out_path = dir.file("out", b"keep me");
    let missing = dir.path("missing").to_str().unwrap().to_string();
    let out = run(&["-o", &out_path, &good, &missing], b"");
    assert_eq!(out.code(), 1);
    assert!(
        out.stderr
            .starts_with(&format!("bpipe: {missing}: No such file or directory")),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&out_path).unwrap(), b"keep me");
    let dir_path = dir.0.to_str().unwrap();
    let out = run(&[&good, dir_path], b"");
    assert_eq!(out.code(), 1);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .starts_with(&format!("bpipe: {dir_path}: Is a directory")),
        "{}",
        out.stderr
    );
}

#[test]
fn help_has_headings_and_the_exit_statuses() {
    let out = run(&["--help"], b"");
    assert_eq!(out.code(), 0);
    let help = String::from_utf8(out.stdout).unwrap();
    for heading in [
        "Input/Output:",
        "Buffering:",
        "Overload:",
        "Rate:",
        "Reporting:",
        "Exit status:",
        "141",
    ] {
        assert!(help.contains(heading), "{heading} missing from --help");
    }
    let version = run(&["-V"], b"");
    assert!(
        String::from_utf8(version.stdout)
            .unwrap()
            .starts_with("bpipe ")
    );
}
