//! Asking and steering a running bpipe (issue 13): `--query`, `--remote` and `--top`, against
//! real relays. Each test has a socket directory of its own (`XDG_RUNTIME_DIR`), so it sees
//! only its own relays.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{
    self, DEADLINE, Json, Output, Running, STATE_WAIT, TempDir, as_nobody, assert_accounts, finish,
    pipe_all, poll, queue_is_full, random_bytes, record, records,
};

const MIB: f64 = 1024.0 * 1024.0;

/// A socket directory of the test's own.
struct Runtime {
    dir: TempDir,
}

impl Runtime {
    fn new(name: &str) -> Runtime {
        Runtime {
            dir: TempDir::new(&format!("client-{name}")),
        }
    }

    fn bpipe(&self, args: &[&str]) -> Command {
        let mut command = util::bpipe(args);
        command.env("XDG_RUNTIME_DIR", &self.dir.0);
        command
    }

    fn socket(&self, pid: u32) -> PathBuf {
        self.dir.0.join("bpipe").join(format!("{pid}.sock"))
    }

    /// Starts a relay and waits until its control socket is there.
    fn start(&self, args: &[&str], input: Vec<u8>, keep_open: bool) -> Running {
        let bp = Running::start_command(self.bpipe(args), input, keep_open);
        wait_for_socket(&self.socket(bp.pid() as u32));
        bp
    }

    /// Runs a client (`--query`, `--remote`, `--top`) to its end.
    fn run(&self, args: &[&str]) -> Output {
        finish(pipe_all(self.bpipe(args)), DEADLINE)
    }

    /// The stats record `--query PID --stats-format json` prints.
    fn query(&self, pid: u32) -> Json {
        let out = self.run(&["--query", &pid.to_string(), "--stats-format", "json"]);
        assert_eq!(out.code(), 0, "{}", out.stderr);
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        Json::parse(stdout.trim_end())
    }
}

fn wait_for_socket(path: &Path) {
    assert!(
        poll(STATE_WAIT, || path.exists()),
        "no control socket at {} within {STATE_WAIT:?}",
        path.display()
    );
}

/// One request by hand, as `socat - UNIX:PATH` would send it; the reply line.
fn ask(socket: &Path, request: &str) -> String {
    let mut stream = UnixStream::connect(socket).expect("connect to the control socket");
    stream.set_read_timeout(Some(STATE_WAIT)).unwrap();
    stream.write_all(format!("{request}\n").as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    reply
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn query_answers_a_relay_blocked_on_both_sides_within_200ms() {
    let rt = Runtime::new("query-blocked");
    // Nobody reads the output and the input stays open: the writer waits in write(2), and the
    // reader, once the queue is full, for room.
    let mut bp = rt.start(&["-q"], random_bytes(4 << 20, 131), true);
    let pid = bp.pid() as u32;
    let blocked = poll(STATE_WAIT, || {
        let stats = rt.query(pid);
        queue_is_full(&stats) && stats.str("state") == "blocked"
    });
    assert!(blocked, "never blocked: {:?}", rt.query(pid));

    let start = Instant::now();
    let out = rt.run(&["--query", &pid.to_string()]);
    let took = start.elapsed();
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(took < Duration::from_millis(200), "--query took {took:?}");
    let human = stdout(&out);
    assert_eq!(human.lines().count(), 1, "{human}");
    assert!(human.starts_with("bpipe: "), "{human}");

    let stats = rt.query(pid);
    assert_eq!(stats.str("event"), "query");
    for key in [
        "bytes_in",
        "bytes_out",
        "queue_bytes",
        "queue_capacity_bytes",
    ] {
        stats.u64(key);
    }
    assert_eq!(stats.list("inputs").len(), 1);
    assert_eq!(
        bp.child.try_wait().unwrap(),
        None,
        "the query ended the relay"
    );
    bp.close_stdin();
}

#[test]
fn query_where_no_bpipe_is_exits_1_saying_so() {
    let rt = Runtime::new("query-nobody");
    // This test's own PID: a live process, but no bpipe.
    let pid = std::process::id().to_string();
    for args in [vec!["--query", &pid], vec!["--remote", &pid, "--pause"]] {
        let out = rt.run(&args);
        assert_eq!(out.code(), 1, "{args:?}: {}", out.stderr);
        assert_eq!(
            out.stderr,
            format!("bpipe: {pid}: no bpipe answers there (No such file or directory)\n")
        );
        assert!(out.stdout.is_empty());
    }

    let file = rt.dir.file("plain", b"");
    let out = rt.run(&["--query", &file]);
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!("bpipe: {file}: no bpipe answers there (not a socket)\n")
    );

    // Something else listens there.
    let socket = rt.dir.path("stranger.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let stranger = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.write_all(b"220 hello\n");
        let mut line = String::new();
        let _ = BufReader::new(stream).read_line(&mut line);
    });
    let path = socket.to_str().unwrap();
    let out = rt.run(&["--query", path]);
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!("bpipe: {path}: no bpipe answers there (not a bpipe reply: '220 hello')\n")
    );
    stranger.join().unwrap();
}

#[test]
fn remote_needs_something_to_change() {
    let rt = Runtime::new("remote-nothing");
    let out = rt.run(&["--remote", "1"]);
    assert_eq!(out.code(), 2, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "bpipe: --remote: nothing to change (give -L, --read-rate, --on-full, --pause or --resume)\n"
    );
}

/// The output rate between two interval records.
fn rate_between(a: &Json, b: &Json) -> f64 {
    (b.u64("bytes_out") - a.u64("bytes_out")) as f64 / (b.f64("elapsed_s") - a.f64("elapsed_s"))
}

/// The first interval record at or after `elapsed` seconds of the run.
fn interval_at(intervals: &[Json], elapsed: f64) -> &Json {
    intervals
        .iter()
        .find(|r| r.f64("elapsed_s") >= elapsed)
        .unwrap_or_else(|| panic!("no interval record at {elapsed:.3}s"))
}

#[test]
fn remote_rate_change_shows_in_the_interval_records_within_half_a_second() {
    let rt = Runtime::new("remote-rate");
    let input = random_bytes(48 << 20, 132);
    let args = ["-L", "1MiB", "-i", "100ms", "--stats-format", "json"];
    let mut bp = rt.start(&args, input.clone(), false);
    let pid = bp.pid() as u32;
    let socket = rt.socket(pid);
    let mut out_pipe = std::fs::File::from(
        std::os::fd::AsFd::as_fd(&bp.stdout)
            .try_clone_to_owned()
            .unwrap(),
    );
    let len = input.len();
    let reader = thread::spawn(move || util::read_within(&mut out_pipe, len, DEADLINE));

    // The run's clock, as the records give it, against the test's.
    let first = bp.wait_for_record("an interval record", |r| {
        r.get("event") == "interval" && r.f64("elapsed_s") >= 0.3
    });
    let seen = Instant::now();
    let run_clock = |at: Instant| first.f64("elapsed_s") + (at - seen).as_secs_f64();

    let changed_at = run_clock(Instant::now());
    let out = rt.run(&["--remote", &pid.to_string(), "-L", "8MiB/s"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(
        stdout(&out),
        format!("bpipe: {pid}: rate out 8.0 MiB/s: ok\n")
    );
    let after = |at: f64| move |r: &Json| r.get("event") == "interval" && r.f64("elapsed_s") >= at;
    bp.wait_for_record("the records after the change", after(changed_at + 0.6));

    // A bad rate changes nothing.
    let refused_at = run_clock(Instant::now());
    let reply = ask(&socket, "rate out fast");
    assert!(reply.starts_with("{\"ok\":false"), "{reply}");
    assert!(reply.contains("\"error\":"), "{reply}");
    bp.wait_for_record("the records after the refusal", after(refused_at + 0.6));
    let reply = ask(&socket, "rate out off");
    assert!(reply.starts_with("{\"ok\":true"), "{reply}");

    let received = reader.join().expect("the output did not all come");
    let out = bp.finish(received);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == input, "the bytes changed");
    assert_accounts(&record(&out.stderr, "exit"));

    let intervals = records(&out.stderr, "interval");
    let window: Vec<&Json> = intervals
        .iter()
        .filter(|r| (changed_at..=changed_at + 0.5).contains(&r.f64("elapsed_s")))
        .collect();
    // At -L 1MiB no 100 ms carries more than a burst (0.1 s of the rate) and a chunk more.
    let fast = window
        .windows(2)
        .any(|pair| rate_between(pair[0], pair[1]) > 4.0 * MIB);
    assert!(
        fast,
        "no interval within 0.5 s of the change ({changed_at:.3}s) ran faster than 4 MiB/s: \
         {window:?}"
    );
    let (a, b) = (
        interval_at(&intervals, refused_at),
        interval_at(&intervals, refused_at + 0.4),
    );
    let held = rate_between(a, b);
    assert!(
        (4.0 * MIB..11.0 * MIB).contains(&held),
        "after the refused change the rate was {:.1} MiB/s, not 8: {a:?} {b:?}",
        held / MIB
    );
}

#[test]
fn pause_out_for_a_second_is_not_a_stall() {
    let rt = Runtime::new("pause");
    let input = random_bytes(8 << 20, 133);
    let args = ["--stall-timeout", "500ms", "--stats-format", "json"];
    let mut child = pipe_all(rt.bpipe(&args));
    let pid = child.id();
    // A producer that keeps moving (64 KiB every 20 ms), so that only the pause could stop it.
    let mut stdin = child.stdin.take().unwrap();
    let fed = input.clone();
    let feeder = thread::spawn(move || {
        for piece in fed.chunks(64 << 10) {
            if stdin.write_all(piece).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    });
    let run = thread::spawn(move || finish(child, DEADLINE));
    wait_for_socket(&rt.socket(pid));
    let pid_arg = pid.to_string();

    let out = rt.run(&["--remote", &pid_arg, "--pause=out"]);
    if out.code() != 0 {
        let relay = run.join().unwrap();
        panic!("{}; the relay ended: {}", out.stderr, relay.stderr);
    }
    assert_eq!(stdout(&out), format!("bpipe: {pid}: pause out: ok\n"));
    let mut paused = None;
    let filled = poll(STATE_WAIT, || {
        let stats = rt.query(pid);
        let done = stats.f64("paused_s") >= 1.0 && queue_is_full(&stats);
        paused = Some(stats);
        done
    });
    let paused = paused.unwrap();
    assert!(filled, "not paused a second with a full queue: {paused:?}");
    assert_eq!(paused.str("state"), "paused", "{paused:?}");

    let out = rt.run(&["--remote", &pid_arg, "--resume=out"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(stdout(&out), format!("bpipe: {pid}: resume out: ok\n"));
    feeder.join().unwrap();
    let out = run.join().unwrap();
    assert_eq!(out.code(), 0, "a pause is not a stall: {}", out.stderr);
    assert!(out.stdout == input, "the bytes changed");
    let exit = record(&out.stderr, "exit");
    assert_accounts(&exit);
    let paused_s = exit.f64("paused_s");
    assert!(
        (1.0..10.0).contains(&paused_s),
        "paused_s {paused_s}: {exit:?}"
    );
}

#[test]
fn top_once_lists_every_relay_with_its_pid() {
    let rt = Runtime::new("top");
    let relays: Vec<Running> = (0..3)
        .map(|_| rt.start(&["-q"], Vec::new(), true))
        .collect();
    let mut pids: Vec<u32> = relays.iter().map(|r| r.pid() as u32).collect();
    pids.sort_unstable();
    for &pid in &pids {
        let idle = poll(STATE_WAIT, || rt.query(pid).str("state") == "idle");
        assert!(idle, "{pid} never waited for input: {:?}", rt.query(pid));
    }

    let out = rt.run(&["--top", "--once", "--stats-format", "json"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let lines: Vec<Json> = stdout(&out).lines().map(Json::parse).collect();
    let mut listed: Vec<u32> = lines.iter().map(|r| r.u64("pid") as u32).collect();
    listed.sort_unstable();
    assert_eq!(listed, pids, "{}", stdout(&out));
    for line in &lines {
        assert_eq!(line.str("event"), "query", "{line:?}");
        assert!(!line.has("error"), "{line:?}");
    }

    let out = rt.run(&["--top", "--once"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let table = stdout(&out);
    assert!(table.trim_start().starts_with("PID"), "{table}");
    for pid in &pids {
        let row = table
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{pid} ")))
            .unwrap_or_else(|| panic!("no row for {pid}: {table}"));
        assert!(row.contains("stdin → stdout"), "{table}");
        assert!(row.ends_with("idle on input"), "{table}");
    }
}

#[test]
fn another_user_is_refused() {
    let rt = Runtime::new("other-user");
    std::fs::set_permissions(&rt.dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = rt.dir.path("open.sock");
    let path = socket.to_str().unwrap();
    let bp = Running::start_command(rt.bpipe(&["-q", "--control", path]), Vec::new(), true);
    wait_for_socket(&socket);
    // Anyone may reach the socket, so only the relay's own check of its peer can refuse them.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();

    for args in [vec!["--query", path], vec!["--remote", path, "--pause"]] {
        let command = match as_nobody(&args) {
            Ok(command) => command,
            Err(why) => {
                eprintln!("note: skipped, {why}");
                return;
            }
        };
        let out = finish(pipe_all(command), DEADLINE);
        assert_eq!(out.code(), 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with(&format!("bpipe: {path}: ")),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
    }
    let reply = ask(&socket, "stats");
    assert!(reply.starts_with("{\"ok\":true"), "{reply}");
    assert!(!reply.contains("\"state\":\"paused\""), "{reply}");
    drop(bp);
}
