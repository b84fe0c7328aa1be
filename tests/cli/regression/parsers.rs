//! Parsers: sizes, rates and durations that once panicked or read wrong.

use crate::util::{Output, run};

/// Every flag whose value is a size or a rate, with the name clap puts in its error.
const SIZE_AND_RATE_FLAGS: [(&str, &str); 6] = [
    ("-b", "--chunk-size"),
    ("-m", "--max-buffer"),
    ("-s", "--size"),
    ("--burst", "--burst"),
    ("-L", "--rate-limit"),
    ("--read-rate", "--read-rate"),
];

fn assert_usage_error(args: &[&str], out: &Output, mentions: &[&str]) {
    assert_eq!(out.code(), 2, "{args:?}: {}", out.stderr);
    // The panic hook rewrites panics as `internal error`, so both spellings are bugs.
    for bug in ["panicked", "internal error"] {
        assert!(!out.stderr.contains(bug), "{args:?}: {}", out.stderr);
    }
    for word in mentions {
        assert!(
            out.stderr.contains(word),
            "{args:?}: {word:?} not in {}",
            out.stderr
        );
    }
}

#[test]
fn multibyte_size_suffix_is_a_usage_error() {
    // Two-, three- and four-byte characters where the unit letter belongs.
    for suffix in ["é", "€", "😀", "é/s"] {
        let value = format!("1{suffix}");
        for (flag, name) in SIZE_AND_RATE_FLAGS {
            let args = [flag, value.as_str()];
            let out = run(&args, b"x");
            assert_usage_error(&args, &out, &[name, &format!("'{value}'"), "64KiB"]);
        }
    }
}

#[test]
fn huge_interval_is_a_usage_error() {
    for (flag, name) in [("-i", "--interval"), ("--stall-timeout", "--stall-timeout")] {
        for value in ["18446744073709551615s", "101y"] {
            let args = [flag, value];
            let out = run(&args, b"x");
            assert_usage_error(&args, &out, &[name, &format!("'{value}'"), "100 years"]);
        }
        // The bound itself is allowed, and far enough from overflow to run.
        let out = run(&[flag, "100y"], b"x");
        assert_eq!(out.code(), 0, "{flag} 100y: {}", out.stderr);
        assert_eq!(out.stdout, b"x");
    }
}

#[test]
fn huge_size_or_rate_is_a_usage_error() {
    // The first is far out; the others are 2^64, one past u64::MAX, with a suffix, as a plain
    // number and as a decimal.
    for value in [
        "99999999999T",
        "16777216T",
        "18446744073709551616",
        "16777216.0TiB",
    ] {
        for (flag, name) in SIZE_AND_RATE_FLAGS {
            let args = [flag, value];
            let out = run(&args, b"x");
            assert_usage_error(&args, &out, &[name, &format!("'{value}'"), "too large"]);
        }
    }
}
