//! Endpoints: FIFOs, files that are both input and output, closed or non-blocking standard streams, names in messages.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::util::{
    Running, TempDir, bpipe, exit_within, finish, poll, random_bytes, record, require_tool, run,
    sh, spawn_piped,
};

/// How long a stopped bpipe may take to exit: generous, as the machine is shared.
const PROMPTLY: Duration = Duration::from_secs(10);

fn mkfifo(dir: &TempDir, name: &str) -> String {
    let path = dir.path(name);
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path and a valid mode.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    path.to_str().unwrap().to_string()
}

/// Waits until bpipe catches `signal` (before that, the signal would kill it), then, as far as
/// the kernel tells (`wchan`), until one of its threads waits in a FIFO's open.
fn wait_until_waiting_on_a_fifo(pid: i32, signal: i32) {
    let catching = poll(PROMPTLY, || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
    });
    assert!(catching, "bpipe never installed its signal handlers");
    poll(Duration::from_secs(2), || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|task| {
                std::fs::read_to_string(task.path().join("wchan"))
                    .is_ok_and(|wchan| wchan.contains("wait_for_partner"))
            })
    });
}

/// Sends SIGTERM once bpipe waits on a FIFO, and checks that it exits 143 promptly.
fn sigterm_ends_the_fifo_wait(bpipe: &mut Running) {
    wait_until_waiting_on_a_fifo(bpipe.pid(), libc::SIGTERM);
    bpipe.signal(libc::SIGTERM);
    let status = exit_within(&mut bpipe.child, PROMPTLY);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(143),
        "still waiting on the FIFO"
    );
}

#[test]
fn sigterm_was_ignored_while_opening_a_fifo_input() {
    let dir = TempDir::new("fifo-input-term");
    let fifo = mkfifo(&dir, "in");
    let mut bpipe = Running::start(&["--stats-format", "json", &fifo], Vec::new(), true);
    sigterm_ends_the_fifo_wait(&mut bpipe);
    let out = bpipe.finish(Vec::new());
    assert_eq!(record(&out.stderr, "exit").u64("exit_status"), 143);
}

#[test]
fn sigusr1_printed_nothing_while_opening_a_fifo_input() {
    let dir = TempDir::new("fifo-input-usr1");
    let fifo = mkfifo(&dir, "in");
    let mut bpipe = Running::start(&["--stats-format", "json", &fifo], Vec::new(), true);
    wait_until_waiting_on_a_fifo(bpipe.pid(), libc::SIGUSR1);
    bpipe.signal(libc::SIGUSR1);
    assert!(
        bpipe.wait_for_stderr("\"event\":\"signal\"", PROMPTLY),
        "no signal record while waiting on the FIFO"
    );
    bpipe.signal(libc::SIGTERM);
    assert!(exit_within(&mut bpipe.child, PROMPTLY).is_some());
}

#[test]
fn two_fifos_fed_in_turn_by_one_writer_deadlocked() {
    let dir = TempDir::new("fifo-pair");
    let (first, second) = (mkfifo(&dir, "first"), mkfifo(&dir, "second"));
    let (a, b) = (random_bytes(1 << 20, 1), random_bytes(1 << 20, 2));
    let expected = [a.as_slice(), b.as_slice()].concat();
    let paths = [first.clone(), second.clone()];
    // Like `(cat a > first; cat b > second)`: the second FIFO gets a writer only once the
    // first has been read. It gives up when bpipe goes away, so it never outlives the test.
    let _writer = thread::spawn(move || {
        for (path, data) in paths.iter().zip([a, b]) {
            let Ok(mut fifo) = OpenOptions::new().write(true).open(path) else {
                return;
            };
            if fifo.write_all(&data).is_err() {
                return;
            }
        }
    });
    let out = finish(
        spawn_piped(&["-q", &first, &second]),
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stdout == expected,
        "the bytes did not arrive whole and in order"
    );
}

#[test]
fn sigterm_was_ignored_while_opening_a_fifo_output() {
    let dir = TempDir::new("fifo-output-term");
    let fifo = mkfifo(&dir, "out");
    let args = ["--stats-format", "json", "-o", &fifo];
    let mut bpipe = Running::start(&args, random_bytes(100_000, 3), true);
    sigterm_ends_the_fifo_wait(&mut bpipe);
    let out = bpipe.finish(Vec::new());
    let exit = record(&out.stderr, "exit");
    assert_eq!(exit.u64("bytes_out"), 0);
    assert_eq!(
        exit.u64("bytes_in"),
        exit.u64("bytes_dropped") + exit.u64("bytes_unsent")
    );
}

/// Kills bpipe when a failed assertion ends the test early.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_stats_file_fifo_without_reader_held_up_the_relay() {
    let dir = TempDir::new("fifo-stats");
    let fifo = mkfifo(&dir, "stats");
    let data = random_bytes(300_000, 4);
    let mut child = bpipe(&["-q", "--stats-file", &fifo])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bpipe");
    let (mut stdin, mut stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    let mut bpipe = Reaper(child);
    let input = data.clone();
    thread::spawn(move || stdin.write_all(&input));
    let (tx, rx) = mpsc::channel();
    let len = data.len();
    thread::spawn(move || {
        let mut relayed = vec![0; len];
        let _ = tx.send(stdout.read_exact(&mut relayed).map(|()| relayed));
    });
    let relayed = rx.recv_timeout(Duration::from_secs(30));
    assert!(
        relayed.is_ok_and(|r| r.is_ok_and(|r| r == data)),
        "the data waited for the stats file's reader"
    );
    // The records waited for the reader, the exit record too, and bpipe then ends.
    let mut stats = String::new();
    File::open(&fifo)
        .unwrap()
        .read_to_string(&mut stats)
        .unwrap();
    assert_eq!(record(&stats, "exit").u64("bytes_out"), len as u64);
    let status = exit_within(&mut bpipe.0, PROMPTLY);
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

#[test]
fn a_bad_stats_file_left_the_output_truncated() {
    let dir = TempDir::new("keep-output");
    let data = random_bytes(100_000, 5);
    let keep = dir.file("keep.bin", &data);
    let out = run(&["-o", &keep, "--stats-file", "/nonexistent/s.json"], b"");
    assert_eq!(out.code(), 1);
    assert_eq!(
        out.stderr,
        "bpipe: /nonexistent/s.json: No such file or directory\n"
    );
    assert!(
        std::fs::read(&keep).unwrap() == data,
        "keep.bin was changed"
    );
}

#[test]
fn an_input_that_is_the_output_was_emptied_or_grown_without_end() {
    let dir = TempDir::new("input-is-output");
    let data = random_bytes(64 * 1024, 6);
    // A bpipe that grows the file is stopped at 4 MiB, not at a full disk.
    for (script, name) in [
        (r#""$BPIPE" -q f -o f"#, "f"),
        (r#""$BPIPE" -q g f -o f --append"#, "f"),
        (r#""$BPIPE" -q < f >> f"#, "standard input"),
        (
            r#""$BPIPE" -q - < f --stats-file f > /dev/null"#,
            "standard input",
        ),
    ] {
        dir.file("f", &data);
        dir.file("g", b"other");
        let cd = format!("cd '{}' && ulimit -c 0 -f 4096 && ", dir.0.display());
        let out = sh(&(cd + script));
        assert_eq!(out.code(), 1, "{script}: {}", out.stderr);
        assert_eq!(
            out.stderr,
            format!("bpipe: {name}: input file is output file\n"),
            "{script}"
        );
        assert!(
            std::fs::read(dir.path("f")).unwrap() == data,
            "{script}: f was changed"
        );
    }
    let out = sh(r#""$BPIPE" -q < /dev/null > /dev/null"#);
    assert_eq!(out.code(), 0, "{}", out.stderr);
}

#[test]
fn a_closed_standard_output_was_reported_as_sent() {
    let dir = TempDir::new("closed-stdout");
    let input = dir.file("in", b"data");
    let out = sh(&format!(r#""$BPIPE" '{input}' >&-"#));
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert_eq!(out.stderr, "bpipe: standard output: Bad file descriptor\n");
    let target = dir.path("out");
    let target = target.to_str().unwrap();
    let out = sh(&format!(r#""$BPIPE" -q '{input}' -o '{target}' >&-"#));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(std::fs::read(target).unwrap(), b"data");
}

#[test]
fn a_closed_standard_input_was_read_as_empty() {
    let dir = TempDir::new("closed-stdin");
    let out = sh(r#""$BPIPE" <&-"#);
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert_eq!(out.stderr, "bpipe: standard input: Bad file descriptor\n");
    let input = dir.file("in", b"data");
    let out = sh(&format!(r#""$BPIPE" -q '{input}' <&-"#));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, b"data");
}

#[test]
fn a_name_with_a_newline_split_its_error_line() {
    let dir = TempDir::new("names");
    let root = dir.0.to_str().unwrap();
    let out = run(&[&format!("{root}/a\nb")], b"");
    assert_eq!(out.code(), 1);
    assert_eq!(
        out.stderr,
        format!("bpipe: $'{root}/a\\nb': No such file or directory\n")
    );
    let out = run(&["-o", &format!("{root}/no\x1b[31m/out\t")], b"");
    assert_eq!(out.code(), 1);
    assert_eq!(
        out.stderr,
        format!("bpipe: $'{root}/no\\x1b[31m/out\\t': No such file or directory\n")
    );
}

/// Runs `$BPIPE ARGS` with the descriptor `fd` made non-blocking first, as another program
/// sharing it might have done.
fn non_blocking(fd: u8, pipeline: &str) -> crate::util::Output {
    let nb = format!(
        r#"nb() {{ python3 -c 'import os, sys; os.set_blocking({fd}, False); os.execvp(sys.argv[1], sys.argv[1:])' "$@"; }}"#
    );
    sh(&format!("{nb}\n{pipeline}"))
}

#[test]
fn a_non_blocking_standard_input_ended_the_run() {
    if !require_tool("python3", "python3") {
        return;
    }
    for args in ["--no-splice", "-l", ""] {
        let out = non_blocking(
            0,
            &format!(
                r#"(sleep 0.2; seq 3; sleep 0.2; seq 4 6) | nb "$BPIPE" -q {args}; echo "status $?""#
            ),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout, "1\n2\n3\n4\n5\n6\nstatus 0\n",
            "{args}: {}",
            out.stderr
        );
    }
}

#[test]
fn a_non_blocking_standard_output_ended_the_run() {
    if !require_tool("python3", "python3") {
        return;
    }
    for args in ["--no-splice", "-l", ""] {
        let out = non_blocking(
            1,
            &format!(
                r#"head -c 3M /dev/zero | nb "$BPIPE" -q {args} | (sleep 0.3; wc -c); echo "status ${{PIPESTATUS[1]}}""#
            ),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout.split_whitespace().collect::<Vec<_>>(),
            ["3145728", "status", "0"],
            "{args}: {}",
            out.stderr
        );
    }
}
