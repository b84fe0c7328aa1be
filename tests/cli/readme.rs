//! The README's examples run as written, and its tables cover what bpipe really prints.
//!
//! A fenced ```sh block right after a `<!-- runnable -->` line is run with `bash -e -c`, in a
//! scratch directory, with the directory of the bpipe under test first on the `PATH`; it must
//! exit 0 within the deadline (an example that shows a failure checks its own status, as in
//! `|| test $? -eq 4`). The block after `<!-- first-commands -->` is the newcomer's two commands.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use bpipe::cli::EXIT_STATUS;

use crate::generated::{REFRESH, stats_keys};
use crate::util::{self, TempDir, require_tool};

/// Examples are meant to take well under 3 s; this only stops a hung one.
const EXAMPLE_DEADLINE: Duration = Duration::from_secs(30);

const RUNNABLE: &str = "<!-- runnable -->";
const FIRST_COMMANDS: &str = "<!-- first-commands -->";

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Example {
    /// 1-based line of the opening fence.
    line: usize,
    code: String,
}

/// The ```sh blocks that follow a `marker` line.
fn blocks_after(text: &str, marker: &str) -> Vec<Example> {
    let lines: Vec<&str> = text.lines().collect();
    let mut examples = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != marker {
            continue;
        }
        assert_eq!(
            lines.get(i + 1).copied(),
            Some("```sh"),
            "README.md line {}: {marker} must be followed by a ```sh fence",
            i + 1
        );
        let body: Vec<&str> = lines[i + 2..]
            .iter()
            .take_while(|l| !l.starts_with("```"))
            .copied()
            .collect();
        assert!(
            i + 2 + body.len() < lines.len(),
            "README.md line {}: unclosed fence",
            i + 2
        );
        examples.push(Example {
            line: i + 2,
            code: body.join("\n") + "\n",
        });
    }
    examples
}

/// Runs a README example with bash in `dir`, with the bpipe under test first on the PATH.
fn run_example(code: &str, dir: &Path) -> util::Output {
    let bin = util::bin();
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // From before the spawn: on a loaded machine the wait can start well after the example
    // did, and a lower bound on its time would then read short.
    let start = std::time::Instant::now();
    let child = Command::new("bash")
        .arg("-e")
        .arg("-c")
        .arg(code)
        .current_dir(dir)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bash");
    let mut out = util::finish(child, EXAMPLE_DEADLINE);
    out.elapsed = start.elapsed();
    out
}

/// What some examples must print or how long they must take, found by a piece of their code;
/// each piece must match exactly one runnable example.
struct Expect {
    code: &'static str,
    stdout: Option<&'static str>,
    /// A lower bound on the run time: a rate limit cannot be faster than this.
    at_least: Option<Duration>,
    /// A check of stdout that `stdout` cannot express.
    check: Option<fn(&str) -> bool>,
}

const fn prints(code: &'static str, stdout: &'static str) -> Expect {
    Expect {
        code,
        stdout: Some(stdout),
        at_least: None,
        check: None,
    }
}

fn expectations() -> Vec<Expect> {
    vec![
        prints("seq 1000000 | bpipe | wc -l", "1000000\n"),
        // seq 1000000 writes 6888896 bytes.
        prints(r#"grep -o '"bytes_out"#, "\"bytes_out\":6888896\n"),
        prints("seq 100000 | bpipe -n 4 -b 4K", "100000\n"),
        prints("cmp sent.bin received.bin && echo whole", "whole\n"),
        prints("wc -l < from-socat.txt", "1000\n"),
        prints("drop-oldest -n 4 -b 4K", "1000000\n"),
        prints(
            "--metrics-file bpipe.prom --metrics-label job=demo",
            "bpipe_up{job=\"demo\"} 0\nbpipe_bytes_in_total{job=\"demo\"} 588895\n",
        ),
        prints(
            "curl -s http://127.0.0.1:19187/metrics",
            "bpipe_up{job=\"demo\"} 1\n",
        ),
        Expect {
            code: "seq 1000000 | bpipe -l -d",
            stdout: None,
            at_least: None,
            check: Some(|out| {
                out.trim()
                    .parse::<u64>()
                    .is_ok_and(|n| n > 0 && n < 1_000_000)
            }),
        },
        Expect {
            code: "head -c 3M /dev/zero | bpipe -L 2MiB/s",
            stdout: Some("3145728\n"),
            // (3 MiB - the 204.8 KiB burst) / 2 MiB/s = 1.4 s.
            at_least: Some(Duration::from_millis(1300)),
            check: None,
        },
        Expect {
            code: "seq 30 | bpipe -l --rate-unit lines -L 20",
            stdout: Some("30\n"),
            // (30 lines - a burst of 2) / 20 lines/s = 1.4 s.
            at_least: Some(Duration::from_millis(1300)),
            check: None,
        },
        Expect {
            code: "--spool . --spool-max 64M --stats-format json",
            stdout: None,
            at_least: None,
            check: Some(|out| {
                let lines: Vec<&str> = out.lines().collect();
                let blocked = lines
                    .get(1)
                    .and_then(|l| l.strip_prefix("\"reader_blocked_s\":"))
                    .and_then(|v| v.parse::<f64>().ok());
                lines.len() == 3
                    && lines[0] == "1000000"
                    && blocked.is_some_and(|b| b < 0.1)
                    && lines[2] == "stats.json"
            }),
        },
        prints("--spool-max 1M --on-full drop-oldest", "1000000\n"),
        Expect {
            code: "bpipe --start-at eof --stats-format json",
            stdout: None,
            at_least: Some(Duration::from_millis(900)),
            check: Some(|out| {
                let mut lines = out.lines();
                let waited = lines
                    .nth(1)
                    .and_then(|l| l.strip_prefix("\"start_wait_s\":"))
                    .and_then(|v| v.parse::<f64>().ok());
                out.starts_with("3\n") && waited.is_some_and(|w| w >= 0.9)
            }),
        },
        Expect {
            code: "--start-at 50% --resume-at 25%",
            stdout: None,
            at_least: None,
            check: Some(|out| {
                let mut lines = out.lines();
                let size = lines.next();
                let waits = lines
                    .next()
                    .and_then(|l| l.strip_prefix("\"resume_waits\":"))
                    .and_then(|v| v.parse::<u64>().ok());
                size == Some("1048576") && waits.is_some_and(|w| w > 0)
            }),
        },
        Expect {
            code: r#"grep -o '"records_dropped"#,
            stdout: None,
            at_least: None,
            check: Some(|out| {
                let mut lines = out.lines();
                let dropped = lines
                    .next()
                    .and_then(|l| l.strip_prefix("\"records_dropped\":"));
                let kept = lines.next().and_then(|l| l.trim().parse::<u64>().ok());
                matches!((dropped.and_then(|d| d.parse::<u64>().ok()), kept),
                    (Some(d), Some(k)) if d > 0 && d + k == 200_000)
            }),
        },
        Expect {
            code: "bpipe --remote $pid -L 8MiB/s --pause=out",
            stdout: None,
            at_least: None,
            check: Some(|out| {
                let lines: Vec<&str> = out.lines().collect();
                lines
                    .first()
                    .is_some_and(|l| l.starts_with("bpipe: [query] 0 B in "))
                    && lines
                        .iter()
                        .any(|l| l.ends_with(": rate out 8.0 MiB/s: ok"))
                    && lines.iter().any(|l| l.ends_with(": pause out: ok"))
                    && lines
                        .iter()
                        .any(|l| l.contains("stdin → stdout") && l.ends_with("paused"))
                    && lines.iter().any(|l| l.ends_with(": resume: ok"))
            }),
        },
        Expect {
            code: "grep -c '\"event\":\"interval\"'",
            stdout: None,
            at_least: Some(Duration::from_millis(900)),
            check: Some(|out| {
                out.trim()
                    .parse::<u32>()
                    .is_ok_and(|n| (2..=6).contains(&n))
            }),
        },
    ]
}

#[test]
fn runnable_examples_run_as_written() {
    let text = readme();
    let examples = blocks_after(&text, RUNNABLE);
    assert!(
        examples.len() >= 12,
        "only {} runnable examples in README.md",
        examples.len()
    );
    let expectations = expectations();
    for expect in &expectations {
        let matching = examples
            .iter()
            .filter(|e| e.code.contains(expect.code))
            .count();
        assert_eq!(
            matching, 1,
            "{:?} should match one runnable README example",
            expect.code
        );
    }

    // Examples that talk to bpipe through socat or curl need them; outside CI a missing one
    // skips the example with a note, as require_tool does for the other tests.
    let tools = [("socat", "socat"), ("curl", "curl")];
    let examples: Vec<_> = examples
        .into_iter()
        .filter(|example| {
            tools
                .iter()
                .filter(|(tool, _)| example.code.contains(&format!("{tool} ")))
                .all(|(tool, package)| require_tool(tool, package))
        })
        .collect();
    // The examples mostly sleep or wait for a rate limit: run them side by side.
    let runs: Vec<_> = examples
        .into_iter()
        .enumerate()
        .map(|(i, example)| {
            thread::spawn(move || {
                let dir = TempDir::new(&format!("readme-{i}"));
                let out = run_example(&example.code, &dir.0);
                (example, out)
            })
        })
        .collect();
    let mut failures = Vec::new();
    for run in runs {
        let (example, out) = match run.join() {
            Ok(done) => done,
            Err(_) => {
                failures.push("an example did not finish in time (see the panic above)".into());
                continue;
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut problems = Vec::new();
        if out.code() != 0 {
            problems.push(format!("exit status {}", out.code()));
        }
        if out.stderr.contains("panicked") {
            problems.push("bpipe panicked".to_string());
        }
        for expect in expectations
            .iter()
            .filter(|e| example.code.contains(e.code))
        {
            if expect.stdout.is_some_and(|want| stdout != want) {
                problems.push(format!("stdout should be {:?}", expect.stdout.unwrap()));
            }
            if expect.check.is_some_and(|check| !check(&stdout)) {
                problems.push("stdout is not what the README says".to_string());
            }
            if expect.at_least.is_some_and(|min| out.elapsed < min) {
                problems.push(format!(
                    "took {:?}, less than the rate limit allows ({:?})",
                    out.elapsed,
                    expect.at_least.unwrap()
                ));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "README.md line {}: {}\n--- code\n{}--- stdout\n{stdout}--- stderr\n{}",
                example.line,
                problems.join("; "),
                example.code,
                out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Two commands: one builds bpipe and runs it on a real pipeline, one runs the tests. The build
/// is not repeated here (this runs inside `cargo test`): the pipeline after it runs with the
/// bpipe under test in place of ./target/release/bpipe.
#[test]
fn first_commands_build_run_and_test() {
    let text = readme();
    let blocks = blocks_after(&text, FIRST_COMMANDS);
    assert_eq!(
        blocks.len(),
        1,
        "README.md needs one {FIRST_COMMANDS} block"
    );
    let lines: Vec<&str> = blocks[0].code.lines().collect();
    assert_eq!(lines.len(), 2, "exactly two first commands: {lines:?}");
    let pipeline = lines[0]
        .strip_prefix("cargo build --release && ")
        .unwrap_or_else(|| panic!("the first command should build, then run: {}", lines[0]));
    assert_eq!(lines[1], "cargo test");
    assert_eq!(
        pipeline.matches("./target/release/bpipe").count(),
        1,
        "{pipeline}"
    );
    let dir = TempDir::new("readme-first");
    let out = run_example(&pipeline.replace("./target/release/bpipe", "bpipe"), &dir.0);
    assert_eq!(out.code(), 0, "{pipeline}: {}", out.stderr);
    assert!(
        out.stderr.starts_with("bpipe: 100.0 MiB in "),
        "{pipeline}: {}",
        out.stderr
    );
}

#[test]
fn readme_tables_cover_stats_keys_and_exit_statuses() {
    let text = readme();
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| `")).collect();
    for key in stats_keys() {
        assert!(
            rows.iter().any(|row| row
                .split('|')
                .nth(1)
                .is_some_and(|c| c.contains(&format!("`{key}`")))),
            "README.md's stats table has no row for the key {key}"
        );
    }
    let statuses: Vec<&str> = EXIT_STATUS
        .lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(statuses.len() >= 7, "{EXIT_STATUS}");
    for status in statuses {
        assert!(
            text.contains(&format!("\n| {status} | ")),
            "README.md's exit status table has no row for {status}"
        );
    }
}

#[test]
fn readme_says_how_to_install_and_refresh() {
    let text = readme();
    for needed in [
        "cargo install --path .",
        REFRESH,
        "man -l man/bpipe.1",
        "completions/bpipe.bash",
        "completions/_bpipe",
        "completions/bpipe.fish",
        "completions/_bpipe.ps1",
        "bpipe.elv",
        "bench/compare.sh",
        "bench/rate.sh",
    ] {
        assert!(
            text.contains(needed),
            "README.md does not mention {needed:?}"
        );
    }
    for policy in ["block", "drop", "drop-oldest", "fail"] {
        assert!(
            text.contains(&format!("`{policy}`")),
            "README.md does not show the policy {policy}"
        );
    }
}
