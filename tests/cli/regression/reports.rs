//! Reports: notes, the data path per side, and the splice ring's share of the pipe budget.
//! One test per fixed bug, named after it, so a regression points straight at what came back.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{
    DEADLINE, Json, Output, TempDir, as_nobody, bin, finish, pipe_all, poll, random_bytes, record,
    run, sh,
};

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
    // The pipes on either side still grow, as far as the kernel allows, for larger moves.
    let mut command = Command::new(bin());
    command.args(["-q", "-b", &chunk]);
    let (child, stdin) = start_idle(command);
    // The reader grows its input pipe once it has opened it, which may be after the writer
    // has started: wait for it.
    // SAFETY: F_GETPIPE_SZ only reads the state of a descriptor this test owns.
    let size = || unsafe { libc::fcntl(stdin.as_raw_fd(), libc::F_GETPIPE_SZ) };
    poll(DEADLINE, || size() as usize == pipe_max_size());
    let size = size();
    drop(stdin);
    assert_eq!(finish(child, DEADLINE).code(), 0);
    assert_eq!(
        size as usize,
        pipe_max_size(),
        "the input pipe did not grow"
    );
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
    assert!(note.str("message").contains("copy path"), "{}", out.stderr);
    assert!(!note.str("message").starts_with("bpipe:"), "{}", out.stderr);
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

/// Whether a thread of `pid` has this name: the stages are started once "writer" exists.
fn has_thread(pid: u32, name: &str) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
    })
}

fn wait_until_started(child: &mut Child) {
    let start = Instant::now();
    while !has_thread(child.id(), "writer") {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("bpipe exited early: {status}");
        }
        assert!(start.elapsed() < DEADLINE, "bpipe never started its stages");
        thread::sleep(Duration::from_millis(5));
    }
}

fn pipes_open(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.flatten()
                .filter(|fd| {
                    std::fs::read_link(fd.path())
                        .is_ok_and(|target| target.to_string_lossy().starts_with("pipe:"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Starts `command` with its stdin held open by the returned handle.
fn start_idle(command: Command) -> (Child, std::process::ChildStdin) {
    let mut child = pipe_all(command);
    let stdin = child.stdin.take().unwrap();
    wait_until_started(&mut child);
    (child, stdin)
}

#[test]
fn an_idle_splice_ring_holds_few_pipes() {
    let mut command = Command::new(bin());
    command.args(["-n", "1000", "-b", "1M", "--stats-format", "json"]);
    let (child, stdin) = start_idle(command);
    // Standard input, output and error are pipes too; a ring made up front holds 1003 more.
    let mut most = 0;
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_millis(300) {
        most = most.max(pipes_open(child.id()));
        thread::sleep(Duration::from_millis(10));
    }
    drop(stdin);
    let out = finish(child, DEADLINE);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(most <= 3 + 2 * 4, "an idle bpipe holds {most} pipe ends");
}

fn run_command(command: Command, input: &[u8]) -> Output {
    let mut child = pipe_all(command);
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = finish(child, DEADLINE);
    feeder.join().unwrap();
    out
}

#[test]
fn a_ring_leaves_most_of_the_users_pipe_budget_to_others() {
    let idle_args = ["-n", "1000", "--stats-format", "json"];
    let (first, second) = match (as_nobody(&idle_args), as_nobody(&idle_args)) {
        (Ok(first), Ok(second)) => (first, second),
        (Err(why), _) | (_, Err(why)) => {
            eprintln!("note: skipped, {why}");
            return;
        }
    };
    let idle = [start_idle(first), start_idle(second)];
    // The user's other programs still get large pipes: here a bpipe with 1 MiB slots.
    let input = random_bytes(8 << 20, 113);
    let big = as_nobody(&["-b", "1M", "--stats-format", "json"]).unwrap();
    let out = run_command(big, &input);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == input, "the bytes changed");
    let records = json_lines(&out);
    assert_eq!(records.len(), 1, "{}", out.stderr);
    assert_eq!(records[0].get("path"), "splice", "{}", out.stderr);
    for (child, stdin) in idle {
        drop(stdin);
        let out = finish(child, DEADLINE);
        assert_eq!(out.code(), 0, "{}", out.stderr);
        let records = json_lines(&out);
        assert_eq!(records.len(), 1, "no note expected: {}", out.stderr);
    }
}
