//! The control socket, spoken to as a user would with socat: one request line, one JSON reply
//! line. The client side of the binary (--query, --remote, --top) has its own tests.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{
    Json, Running, STATE_WAIT, TempDir, assert_accounts, bin, finish, pipe_all, poll, random_bytes,
    record,
};

/// One request on a fresh connection, and its reply.
fn ask(socket: &Path, request: &str) -> Json {
    let mut stream = UnixStream::connect(socket).expect("connect to the control socket");
    stream.set_read_timeout(Some(STATE_WAIT)).unwrap();
    writeln!(stream, "{request}").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    Json::parse(line.trim_end())
}

/// bpipe with its control socket at `dir/ctl.sock`, once the socket answers.
fn start(dir: &TempDir, args: &[&str], input: Vec<u8>, keep_open: bool) -> (Running, PathBuf) {
    let socket = dir.path("ctl.sock");
    let mut all = vec!["--control", socket.to_str().unwrap()];
    all.extend_from_slice(args);
    let running = Running::start(&all, input, keep_open);
    assert!(
        poll(STATE_WAIT, || UnixStream::connect(&socket).is_ok()),
        "the control socket never answered"
    );
    (running, socket)
}

/// Reads bpipe's output on a thread of its own while the run goes on; `Running::finish` reads
/// whatever this did not, so the two counts add up to what was written.
fn drain_stdout(running: &Running) -> thread::JoinHandle<usize> {
    let fd = std::os::fd::AsFd::as_fd(&running.stdout).try_clone_to_owned();
    let mut stdout = std::fs::File::from(fd.expect("duplicate bpipe's stdout"));
    thread::spawn(move || {
        let mut buf = vec![0; 1 << 16];
        let mut total = 0;
        while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buf) {
            total += n;
        }
        total
    })
}

#[test]
fn a_request_is_answered_at_once_while_both_stages_are_blocked() {
    let dir = TempDir::new("control-blocked");
    // Nobody reads the output and the producer keeps writing: both stages wait.
    let (mut running, socket) = start(&dir, &["-n", "2", "-b", "4K"], vec![0; 4 << 20], true);
    running.wait_for_handler(libc::SIGUSR1);
    assert!(poll(
        STATE_WAIT,
        || ask(&socket, "stats").get("stats")["state"] == "blocked"
    ));
    let asked = Instant::now();
    let reply = ask(&socket, "stats");
    assert!(
        asked.elapsed() < Duration::from_millis(200),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(reply.get("ok"), true, "{reply:?}");
    assert_eq!(reply.u64("pid"), running.pid() as u64);
    let stats = &reply.get("stats");
    assert_eq!(stats["event"], "query");
    assert_eq!(stats["queue_chunks"], 2);
    assert!(
        reply.str("human").starts_with("bpipe: [query] "),
        "{reply:?}"
    );
    running.signal(libc::SIGKILL);
}

#[test]
fn a_new_rate_holds_within_half_a_second_and_a_bad_one_changes_nothing() {
    let dir = TempDir::new("control-rate");
    let args = ["-L", "1MiB", "-i", "100ms", "--stats-format", "json"];
    let (mut running, socket) = start(&dir, &args, vec![7; 256 << 20], false);
    let reader = drain_stdout(&running);
    let refused = ask(&socket, "rate out fast");
    assert_eq!(refused.get("ok"), false, "{refused:?}");
    assert!(
        refused.str("error").contains("expected a rate"),
        "{refused:?}"
    );
    let slow = running.wait_for_record("an interval at 1 MiB/s", |r| {
        r.str("event") == "interval" && r.f64("elapsed_s") > 0.5
    });
    assert!(slow.f64("rate_out_Bps") < 1.5 * 1048576.0, "{slow:?}");
    let set = ask(&socket, "rate out 8MiB");
    assert_eq!(
        (set.get("ok"), set.u64("rate_Bps")),
        (&true.into(), 8 << 20),
        "{set:?}"
    );
    let changed_at = slow.f64("elapsed_s");
    let fast = running.wait_for_record("an interval at 8 MiB/s", |r| {
        r.str("event") == "interval" && r.f64("rate_out_Bps") > 6.0 * 1048576.0
    });
    assert!(fast.f64("elapsed_s") - changed_at < 0.5 + 0.2, "{fast:?}");
    assert!(fast.f64("rate_out_Bps") < 10.0 * 1048576.0, "{fast:?}");
    assert_eq!(
        ask(&socket, "rate out off").get("rate_Bps"),
        &serde_json::Value::Null
    );
    let out = running.finish(Vec::new());
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(reader.join().unwrap() + out.stdout.len(), 256 << 20);
    assert_accounts(&record(&out.stderr, "exit"));
}

#[test]
fn a_paused_output_is_not_a_stall_and_its_time_is_counted() {
    let dir = TempDir::new("control-pause");
    let input = random_bytes(8 << 20, 61);
    let args = [
        "--stall-timeout",
        "500ms",
        "-i",
        "100ms",
        "--stats-format",
        "json",
    ];
    let (mut running, socket) = start(&dir, &args, input.clone(), true);
    let paused = ask(&socket, "pause out");
    assert_eq!(paused.get("paused_out"), true, "{paused:?}");
    assert_eq!(paused.get("paused_in"), false, "{paused:?}");
    running.wait_for_record("a paused, full queue", |r| {
        r.str("state") == "paused" && r.u64("queue_chunks") == r.u64("queue_capacity_chunks")
    });
    thread::sleep(Duration::from_secs(1));
    assert!(
        matches!(running.child.try_wait(), Ok(None)),
        "a pause is not a stall"
    );
    assert_eq!(ask(&socket, "resume").get("paused_out"), false);
    running.close_stdin();
    let out = running.finish(Vec::new());
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == input, "the bytes changed");
    let exit = record(&out.stderr, "exit");
    let paused_s = exit.f64("paused_s");
    assert!((1.0..2.5).contains(&paused_s), "{exit:?}");
}

#[test]
fn the_policy_can_change_while_the_queue_is_full() {
    let dir = TempDir::new("control-on-full");
    let args = ["-n", "2", "-b", "4K", "--stats-format", "json"];
    let (running, socket) = start(&dir, &args, vec![1; 8 << 20], false);
    assert!(poll(
        STATE_WAIT,
        || ask(&socket, "stats").get("stats")["state"] == "blocked"
    ));
    let bad = ask(&socket, "on-full sometimes");
    assert_eq!(bad.get("ok"), false, "{bad:?}");
    assert_eq!(ask(&socket, "on-full drop").str("on_full"), "drop");
    // Nobody reads, yet the whole input goes by: what does not fit is dropped now.
    assert!(poll(STATE_WAIT, || {
        ask(&socket, "stats").get("stats")["bytes_in"] == 8 << 20
    }));
    let out = running.finish(Vec::new());
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let exit = record(&out.stderr, "exit");
    assert!(exit.u64("bytes_dropped") > 0, "{exit:?}");
    assert_eq!(out.stdout.len() as u64, exit.u64("bytes_out"));
    assert_accounts(&exit);
}

#[test]
fn an_output_can_be_detached_on_request() {
    let dir = TempDir::new("control-detach");
    let file = dir.path("copy");
    let input = random_bytes(4 << 20, 62);
    let args = ["-n", "4", "-o", file.to_str().unwrap(), "-o", "-"];
    let (running, socket) = start(&dir, &args, input.clone(), false);
    let refused = ask(&socket, "detach nothing");
    assert_eq!(refused.get("ok"), false, "{refused:?}");
    // Standard output is never read: only detaching it lets the run end.
    let reply = ask(&socket, "detach 1");
    assert_eq!(reply.str("detached"), "standard output", "{reply:?}");
    let out = running.finish(Vec::new());
    assert_eq!(out.code(), 5, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("bpipe: standard output: detached: detached on request"),
        "{}",
        out.stderr
    );
    assert!(
        std::fs::read(&file).unwrap() == input,
        "the file is not byte-exact"
    );
}

#[test]
fn one_output_cannot_be_detached_and_stop_is_sigterm() {
    let dir = TempDir::new("control-stop");
    let (running, socket) = start(&dir, &[], Vec::new(), true);
    assert_eq!(ask(&socket, "detach 0").get("ok"), false);
    assert_eq!(ask(&socket, "stop").get("ok"), true);
    let out = running.finish(Vec::new());
    assert_eq!(out.code(), 143, "{}", out.stderr);
    assert!(!socket.exists(), "the socket is removed at exit");
}

#[test]
fn a_control_path_in_the_way_stops_bpipe_before_any_byte_moves() {
    let dir = TempDir::new("control-in-the-way");
    let taken = dir.file("taken", b"not a socket");
    let output = dir.path("out");
    let mut command = Command::new(bin());
    command.args(["--control", &taken, "-o", output.to_str().unwrap()]);
    let out = finish(pipe_all(command), STATE_WAIT);
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(&format!(
            "bpipe: control socket {taken}: exists and is not a socket"
        )),
        "{}",
        out.stderr
    );
    assert!(!output.exists(), "the output was created");
    assert_eq!(std::fs::read(&taken).unwrap(), b"not a socket");
}

#[test]
fn a_socket_directory_open_to_others_turns_control_off_and_the_data_still_moves() {
    let dir = TempDir::new("control-open-dir");
    let sockets = dir.path("bpipe");
    std::fs::create_dir(&sockets).unwrap();
    std::fs::set_permissions(&sockets, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut command = Command::new(bin());
    command.env("XDG_RUNTIME_DIR", &dir.0);
    let mut child = pipe_all(command);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"still relayed\n")
        .unwrap();
    let out = finish(child, STATE_WAIT);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, b"still relayed\n");
    assert!(
        out.stderr.starts_with("bpipe: control socket off: ")
            && out.stderr.contains("open to other users"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_socket_left_by_a_killed_relay_is_removed_by_the_next() {
    let dir = TempDir::new("control-stale");
    let run_in = |dir: &TempDir| {
        let mut command = Command::new(bin());
        command.env("XDG_RUNTIME_DIR", &dir.0).arg("-q");
        pipe_all(command)
    };
    let mut killed = run_in(&dir);
    let socket = dir.path("bpipe").join(format!("{}.sock", killed.id()));
    assert!(
        poll(STATE_WAIT, || socket.exists()),
        "no socket at {socket:?}"
    );
    let mode = std::fs::metadata(dir.path("bpipe"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert!(socket.exists(), "SIGKILL leaves the socket behind");
    let mut next = run_in(&dir);
    assert!(
        poll(STATE_WAIT, || !socket.exists()),
        "the stale socket stayed"
    );
    drop(next.stdin.take());
    assert_eq!(finish(next, STATE_WAIT).code(), 0);
}
