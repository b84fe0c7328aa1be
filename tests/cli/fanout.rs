//! Fan-out: several `-o` outputs fed from one queue, each byte-exact and accounted for on its
//! own, each with its own answer to a slow consumer (`slow=block|drop|detach`) and its own rate.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{
    DEADLINE, Json, Output, Running, STATE_WAIT, TempDir, finish, join_fifo_user, mkfifo, poll,
    random_bytes, record, records, release_fifo, run, sh, spawn_piped,
};

/// How long the paused consumer stops reading.
const PAUSE: Duration = Duration::from_secs(2);

/// The promise of every exit record with N outputs: each output accounts for every byte read,
/// and the top-level counts are the sums over the outputs.
pub fn assert_fanout_accounts(json: &Json) {
    let outputs = json.list("outputs");
    let bytes_in = json.u64("bytes_in");
    let sum = |key: &str| outputs.iter().map(|o| o.u64(key)).sum::<u64>();
    for key in ["bytes_out", "bytes_dropped", "bytes_unsent"] {
        assert_eq!(json.u64(key), sum(key), "{key} is not the sum: {json:?}");
    }
    for output in &outputs {
        assert_eq!(
            bytes_in,
            output.u64("bytes_out") + output.u64("bytes_dropped") + output.u64("bytes_unsent"),
            "an output does not account for bytes_in {bytes_in}: {output:?}"
        );
    }
    assert_eq!(
        outputs.len() as u64 * bytes_in,
        json.u64("bytes_out") + json.u64("bytes_dropped") + json.u64("bytes_unsent"),
        "N * bytes_in != bytes_out + bytes_dropped + bytes_unsent: {json:?}"
    );
}

/// An output that got every byte: nothing dropped or unsent, and done.
fn assert_complete(output: &Json, len: usize) {
    assert_eq!(output.u64("bytes_out"), len as u64, "{output:?}");
    assert_eq!(output.u64("bytes_dropped"), 0, "{output:?}");
    assert_eq!(output.u64("records_dropped"), 0, "{output:?}");
    assert_eq!(output.u64("bytes_unsent"), 0, "{output:?}");
    assert_eq!(output.str("state"), "done", "{output:?}");
}

/// Writes `len` seeded bytes to `path` a mebibyte at a time, so the input is never whole in the
/// test's memory.
fn write_seeded(path: &Path, len: usize, seed: u64) {
    let mut file = BufWriter::new(File::create(path).unwrap());
    for (i, start) in (0..len).step_by(1 << 20).enumerate() {
        let piece = random_bytes((len - start).min(1 << 20), seed + i as u64);
        file.write_all(&piece).unwrap();
    }
    file.flush().unwrap();
}

/// Compares two files a mebibyte at a time, naming the first byte that differs.
fn assert_same_file(expected: &Path, actual: &Path, what: &str) {
    let len = std::fs::metadata(expected).unwrap().len();
    let actual_len = std::fs::metadata(actual).map_or(0, |m| m.len());
    assert_eq!(
        actual_len,
        len,
        "{what}: {} has the wrong length",
        actual.display()
    );
    let (mut want, mut got) = (File::open(expected).unwrap(), File::open(actual).unwrap());
    let (mut want_buf, mut got_buf) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    while offset < len {
        let n = (len - offset).min(1 << 20) as usize;
        want.read_exact(&mut want_buf[..n]).unwrap();
        got.read_exact(&mut got_buf[..n]).unwrap();
        if want_buf[..n] != got_buf[..n] {
            let at = (0..n).find(|&i| want_buf[i] != got_buf[i]).unwrap();
            panic!(
                "{what}: {} differs from the input at byte {}",
                actual.display(),
                offset + at as u64
            );
        }
        offset += n as u64;
    }
}

#[test]
fn three_outputs_get_every_byte_on_both_paths() {
    const LEN: u64 = 256 << 20;
    let dir = TempDir::new("fanout-three");
    let input = dir.path("in");
    write_seeded(&input, LEN as usize, 100);
    let (a, b, s) = (dir.path("a"), dir.path("b"), dir.path("stdout"));
    let (a_name, b_name) = (a.to_str().unwrap(), b.to_str().unwrap());
    for path in ["", "--no-splice"] {
        // Standard output in the middle, so the order of the list is checked.
        let script = format!(
            r#"cat '{}' | "$BPIPE" {path} --stats-format json -o '{a_name}' -o - -o '{b_name}' | cat > '{}'; echo "${{PIPESTATUS[1]}}""#,
            input.display(),
            s.display()
        );
        let out = sh(&script);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "0",
            "{path}: {}",
            out.stderr
        );
        for file in [&a, &s, &b] {
            assert_same_file(&input, file, path);
        }
        let json = record(&out.stderr, "exit");
        let outputs = json.list("outputs");
        assert_eq!(outputs.len(), 3, "{path}: {json:?}");
        assert_eq!(outputs[0].str("name"), a_name);
        assert_eq!(outputs[2].str("name"), b_name);
        let stdout_name = outputs[1].str("name");
        assert!(
            !stdout_name.is_empty() && stdout_name != a_name && stdout_name != b_name,
            "{path}: standard output is named {stdout_name:?}"
        );
        for output in &outputs {
            assert_complete(output, LEN as usize);
        }
        assert_eq!(json.u64("bytes_in"), LEN);
        assert_eq!(json.u64("bytes_out"), 3 * LEN);
        assert_fanout_accounts(&json);
        if path == "--no-splice" {
            assert_eq!(json.str("path"), "copy", "{json:?}");
        }
        for file in [&a, &b, &s] {
            std::fs::remove_file(file).unwrap();
        }
    }
}

#[test]
fn one_output_is_a_list_of_one() {
    let dir = TempDir::new("fanout-one");
    let input = random_bytes(100_000, 101);
    let target = dir.path("out").to_str().unwrap().to_string();
    for args in [vec![], vec!["-o", &target]] {
        let args = [&["--stats-format", "json"][..], &args].concat();
        let out = run(&args, &input);
        assert_eq!(out.code(), 0, "{args:?}: {}", out.stderr);
        let json = record(&out.stderr, "exit");
        let outputs = json.list("outputs");
        assert_eq!(outputs.len(), 1, "{args:?}: {json:?}");
        assert_complete(&outputs[0], input.len());
        assert_fanout_accounts(&json);
        if args.contains(&"-o") {
            assert_eq!(outputs[0].str("name"), target);
        } else {
            assert!(!outputs[0].str("name").is_empty(), "{json:?}");
        }
    }
    assert!(std::fs::read(&target).unwrap() == input);
}

/// Runs bpipe with `input` on stdin while a thread reads its standard output and notes when
/// `want` bytes have come; returns the run, with `stdout` as read, and that time.
fn run_timed(args: &[&str], input: &[u8], want: usize) -> (Output, Option<Instant>) {
    let mut child = spawn_piped(args);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let feed = input.to_vec();
    let feeder = thread::spawn(move || {
        let _ = stdin.write_all(&feed);
    });
    let reader = thread::spawn(move || {
        let (mut data, mut whole_at) = (Vec::new(), None);
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            data.extend_from_slice(&buf[..n]);
            if whole_at.is_none() && data.len() >= want {
                whole_at = Some(Instant::now());
            }
        }
        (data, whole_at)
    });
    let mut out = finish(child, DEADLINE);
    feeder.join().unwrap();
    let (data, whole_at) = reader.join().unwrap();
    out.stdout = data;
    (out, whole_at)
}

/// A run with three outputs, standard output, a FIFO whose reader stops for `PAUSE` once open,
/// and a file, in that order.
struct Paused {
    out: Output,
    /// When standard output had the whole input.
    stdout_whole_at: Option<Instant>,
    /// When the paused reader began to read.
    resumed: Instant,
    slow: Vec<u8>,
    fifo: String,
    file: Vec<u8>,
}

fn with_a_paused_output(name: &str, fifo_keys: &str, extra: &[&str], input: &[u8]) -> Paused {
    let dir = TempDir::new(name);
    let fifo = mkfifo(&dir, "slow");
    let file = dir.path("fast").to_str().unwrap().to_string();
    let path = fifo.clone();
    let reader = thread::spawn(move || {
        let mut slow = File::open(&path).unwrap();
        thread::sleep(PAUSE);
        let resumed = Instant::now();
        let mut data = Vec::new();
        slow.read_to_end(&mut data).unwrap();
        (data, resumed)
    });
    let spec = format!("{fifo}{fifo_keys}");
    let mut args = vec![
        "--stats-format",
        "json",
        "-o",
        "-",
        "-o",
        &spec,
        "-o",
        &file,
    ];
    args.extend_from_slice(extra);
    let (out, stdout_whole_at) = run_timed(&args, input, input.len());
    let (slow, resumed) = join_fifo_user(reader, &fifo);
    Paused {
        out,
        stdout_whole_at,
        resumed,
        slow,
        fifo,
        file: std::fs::read(&file).unwrap_or_default(),
    }
}

/// Numbered records of varied length, `0000042 yyy...\n`.
fn numbered_lines(count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| format!("{i:07} {}\n", "y".repeat(i % 61)).into_bytes())
        .collect()
}

/// The output is whole records of `numbered_lines`, in order, maybe with gaps; returns how many.
fn assert_whole_lines_in_order(output: &[u8]) -> usize {
    let text = std::str::from_utf8(output).expect("a record was cut inside a character");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the last record was cut"
    );
    let mut previous = None;
    for line in text.lines() {
        let cut = || -> ! { panic!("cut record {line:?}") };
        let (number, filler) = line.split_once(' ').unwrap_or_else(|| cut());
        let number: usize = number.parse().unwrap_or_else(|_| cut());
        assert_eq!(filler, "y".repeat(number % 61), "cut record {line:?}");
        assert!(previous < Some(number), "out of order at {line:?}");
        previous = Some(number);
    }
    text.lines().count()
}

#[test]
fn a_paused_output_holds_every_output_back_under_block() {
    let input = random_bytes(8 << 20, 110);
    // A lane of 4 chunks and the FIFO's pipe hold far less than the input.
    let run = with_a_paused_output("fanout-block", "", &["-n", "4"], &input);
    let out = &run.out;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == input, "standard output differs");
    assert!(run.file == input, "the file differs");
    assert!(run.slow == input, "the paused output differs");
    let whole_at = run.stdout_whole_at.unwrap();
    assert!(
        whole_at > run.resumed,
        "standard output had everything before the paused output was read: it was not held back"
    );
    let json = record(&out.stderr, "exit");
    assert!(json.f64("elapsed_s") >= 1.8, "{json:?}");
    let outputs = json.list("outputs");
    assert_eq!(outputs.len(), 3, "{json:?}");
    assert_eq!(outputs[1].str("name"), run.fifo);
    for output in &outputs {
        assert_complete(output, input.len());
    }
    assert_fanout_accounts(&json);
}

#[test]
fn a_paused_output_loses_whole_lines_under_slow_drop() {
    const LINES: usize = 100_000;
    let input = numbered_lines(LINES);
    let run = with_a_paused_output("fanout-drop", ",slow=drop", &["-l", "-n", "4"], &input);
    let out = &run.out;
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == input, "standard output differs");
    assert!(run.file == input, "the file differs");
    assert!(
        run.stdout_whole_at.unwrap() < run.resumed,
        "standard output waited for the paused output"
    );
    let slow_lines = assert_whole_lines_in_order(&run.slow);
    assert!(
        slow_lines > 0 && slow_lines < LINES,
        "{slow_lines} lines reached the paused output"
    );
    let json = record(&out.stderr, "exit");
    let outputs = json.list("outputs");
    assert_eq!(outputs.len(), 3, "{json:?}");
    let slow = &outputs[1];
    assert_eq!(slow.str("name"), run.fifo);
    assert_eq!(slow.str("state"), "done", "{slow:?}");
    assert_eq!(slow.u64("bytes_out"), run.slow.len() as u64, "{slow:?}");
    assert_eq!(
        slow.u64("bytes_dropped"),
        (input.len() - run.slow.len()) as u64,
        "{slow:?}"
    );
    assert_eq!(
        slow.u64("records_dropped"),
        (LINES - slow_lines) as u64,
        "{slow:?}"
    );
    assert_eq!(slow.u64("bytes_unsent"), 0, "{slow:?}");
    assert_complete(&outputs[0], input.len());
    assert_complete(&outputs[2], input.len());
    assert_fanout_accounts(&json);
}

/// The one line that says `name` was detached: `bpipe: <name>: detached: <why>`, or, if bpipe
/// counts it among its notes, which follow `--stats-format`, a note record with that message.
fn assert_detached_line(stderr: &str, name: &str) {
    let message = format!("{name}: detached: ");
    let plain = stderr
        .lines()
        .filter(|l| l.starts_with(&format!("bpipe: {message}")))
        .count();
    let notes = records(stderr, "note")
        .iter()
        .filter(|r| r.str("message").starts_with(&message))
        .count();
    assert_eq!(plain + notes, 1, "no single {message:?} line in {stderr}");
}

#[test]
fn a_paused_output_is_detached_under_slow_detach() {
    let input = random_bytes(8 << 20, 120);
    let extra = ["-n", "4", "--detach-after", "300ms"];
    let run = with_a_paused_output("fanout-detach", ",slow=detach", &extra, &input);
    let out = &run.out;
    assert_eq!(out.code(), 5, "{}", out.stderr);
    assert!(out.stdout == input, "standard output differs");
    assert!(run.file == input, "the file differs");
    assert!(
        run.stdout_whole_at.unwrap() < run.resumed,
        "standard output waited for the paused output"
    );
    assert_detached_line(&out.stderr, &run.fifo);
    let json = record(&out.stderr, "exit");
    assert_eq!(json.u64("exit_status"), 5);
    let outputs = json.list("outputs");
    assert_eq!(outputs.len(), 3, "{json:?}");
    let slow = &outputs[1];
    assert_eq!(slow.str("state"), "detached", "{slow:?}");
    // What was written before the detach is there, whole and in order.
    assert_eq!(slow.u64("bytes_out"), run.slow.len() as u64, "{slow:?}");
    assert!(
        run.slow.len() < input.len() && run.slow[..] == input[..run.slow.len()],
        "the detached output is not a prefix of the input"
    );
    assert_complete(&outputs[0], input.len());
    assert_complete(&outputs[2], input.len());
    assert_fanout_accounts(&json);
}

/// Kills a helper process when a failed assertion ends the test early.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A run with three outputs, a FIFO read by `head -c 1M`, a file and standard output, in that
/// order; returns the run, the FIFO, the file's and head's bytes, and the input.
struct ClosedEarly {
    out: Output,
    fifo: String,
    file: Vec<u8>,
    head: Vec<u8>,
    input: Vec<u8>,
}

fn with_an_output_closed_early(name: &str, fifo_keys: &str, extra: &[&str]) -> ClosedEarly {
    let dir = TempDir::new(name);
    let fifo = mkfifo(&dir, "head");
    let (file, head_out) = (dir.path("file"), dir.path("head.out"));
    let head = Command::new("head")
        .args(["-c", "1048576", &fifo])
        .stdout(File::create(&head_out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("start head");
    let mut head = Reaper(head);
    let input = random_bytes(8 << 20, 140);
    let spec = format!("{fifo}{fifo_keys}");
    let file_name = file.to_str().unwrap();
    let mut args = vec![
        "--stats-format",
        "json",
        "-n",
        "4",
        "-o",
        &spec,
        "-o",
        file_name,
        "-o",
        "-",
    ];
    args.extend_from_slice(extra);
    let out = run(&args, &input);
    // A bpipe that never opened the FIFO leaves head waiting in its open.
    let ended = poll(STATE_WAIT, || {
        release_fifo(&fifo);
        head.0.try_wait().unwrap().is_some()
    });
    assert!(ended, "head never ended");
    ClosedEarly {
        out,
        fifo,
        file: std::fs::read(&file).unwrap_or_default(),
        head: std::fs::read(&head_out).unwrap(),
        input,
    }
}

fn assert_detached_when_closed(run: &ClosedEarly) {
    let (out, input) = (&run.out, &run.input);
    assert_eq!(out.code(), 5, "{}", out.stderr);
    assert!(run.head[..] == input[..1 << 20], "head got other bytes");
    assert!(out.stdout == *input, "standard output differs");
    assert!(run.file == *input, "the file differs");
    assert_detached_line(&out.stderr, &run.fifo);
    let json = record(&out.stderr, "exit");
    assert_eq!(json.u64("exit_status"), 5);
    let outputs = json.list("outputs");
    assert_eq!(outputs.len(), 3, "{json:?}");
    assert_eq!(outputs[0].str("name"), run.fifo);
    assert_eq!(outputs[0].str("state"), "detached", "{json:?}");
    assert_complete(&outputs[1], input.len());
    assert_complete(&outputs[2], input.len());
    assert_fanout_accounts(&json);
}

#[test]
fn an_output_closed_early_is_detached_under_slow_detach() {
    assert_detached_when_closed(&with_an_output_closed_early(
        "fanout-closed-key",
        ",slow=detach",
        &[],
    ));
}

#[test]
fn an_output_closed_early_is_detached_under_slow_output_detach() {
    assert_detached_when_closed(&with_an_output_closed_early(
        "fanout-closed-flag",
        "",
        &["--slow-output", "detach"],
    ));
}

#[test]
fn an_output_closed_early_ends_the_run_with_141_under_block() {
    let run = with_an_output_closed_early("fanout-closed-block", "", &[]);
    let (out, input) = (&run.out, &run.input);
    assert_eq!(out.code(), 141, "{}", out.stderr);
    assert!(run.head[..] == input[..1 << 20], "head got other bytes");
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("bpipe: ") && l.contains(&run.fifo)),
        "no error line names {}: {}",
        run.fifo,
        out.stderr
    );
    for (what, data) in [("standard output", &out.stdout), ("the file", &run.file)] {
        assert!(
            data[..] == input[..data.len()],
            "{what} is not a prefix of the input"
        );
    }
    let json = record(&out.stderr, "exit");
    assert_eq!(json.u64("exit_status"), 141);
    let outputs = json.list("outputs");
    assert_eq!(outputs.len(), 3, "{json:?}");
    assert_eq!(outputs[0].str("state"), "failed", "{json:?}");
    assert_fanout_accounts(&json);
}

#[test]
fn three_outputs_keep_memory_within_the_bound() {
    let input = random_bytes(64 << 20, 130);
    let dir = TempDir::new("fanout-rss");
    let (a, b) = (dir.path("a"), dir.path("b"));
    let (a_name, b_name) = (a.to_str().unwrap(), b.to_str().unwrap());
    // (outputs + 1) x -n x chunk, a chunk in each stage's hands (a reader, three writers), and
    // 8 MiB for the program itself.
    let bound_kib = ((3 + 1) * 4 + 4) * 1024 + 8 * 1024;
    for path in [&[][..], &["--no-splice"][..]] {
        let common = [
            "-n",
            "4",
            "-b",
            "1MiB",
            "--stats-format",
            "json",
            "-o",
            a_name,
            "-o",
            "-",
            "-o",
            b_name,
        ];
        let args = [&common[..], path].concat();
        let mut bp = Running::start(&args, input.clone(), false);
        // Standard output is slow for a second: the queue fills, and the reader must wait.
        let mut received = bp.read_slowly(8 << 20, 8 << 20);
        let slow_peak = bp.peak_rss_kib();
        let mut rest = vec![0u8; 1 << 20];
        while received.len() < input.len() {
            match bp.stdout.read(&mut rest) {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&rest[..n]),
            }
        }
        let peak = bp.peak_rss_kib().max(slow_peak);
        let out = bp.finish(received);
        assert_eq!(out.code(), 0, "{path:?}: {}", out.stderr);
        assert!(out.stdout == input, "{path:?}: standard output differs");
        for file in [&a, &b] {
            assert!(
                std::fs::read(file).unwrap() == input,
                "{path:?}: {} differs",
                file.display()
            );
        }
        assert!(
            peak > 0 && peak < bound_kib,
            "{path:?}: peak RSS {peak} KiB, bound {bound_kib} KiB"
        );
        assert_fanout_accounts(&record(&out.stderr, "exit"));
    }
}

#[test]
fn a_directory_among_the_outputs_stops_the_run_before_any_byte_moves() {
    let dir = TempDir::new("fanout-bad-dir");
    let keep = dir.file("keep", b"keep me");
    let new = dir.path("new").to_str().unwrap().to_string();
    let sub = dir.path("sub").to_str().unwrap().to_string();
    std::fs::create_dir(&sub).unwrap();
    // As for a single bad -o: status 1, and the directory named.
    let out = run(&["-o", &keep, "-o", "-", "-o", &sub, "-o", &new], b"data");
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with(&format!("bpipe: {sub}: Is a directory")),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "standard output got data");
    assert_eq!(std::fs::read(&keep).unwrap(), b"keep me");
    assert!(!Path::new(&new).exists(), "{new} was created");
}

#[test]
fn a_bad_output_spec_is_a_usage_error() {
    let dir = TempDir::new("fanout-bad-spec");
    let target = dir.path("x").to_str().unwrap().to_string();
    for (keys, mentions) in [
        (",colour=red", Some("colour")),
        (",slow=sometimes", Some("sometimes")),
        (",rate=fast", Some("fast")),
        (",rate=0", None),
    ] {
        let spec = format!("{target}{keys}");
        let out = run(&["-o", "-", "-o", &spec], b"data");
        assert_eq!(out.code(), 2, "{spec}: {}", out.stderr);
        assert!(out.stderr.starts_with("bpipe: "), "{spec}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{spec}: {}", out.stderr);
        if let Some(word) = mentions {
            assert!(out.stderr.contains(word), "{spec}: {}", out.stderr);
        }
        assert!(!out.stderr.contains("panicked"));
        assert!(out.stdout.is_empty(), "{spec}: standard output got data");
        assert!(!Path::new(&target).exists(), "{spec}: {target} was created");
    }
    for (args, word) in [
        (["--slow-output", "sometimes"], "sometimes"),
        (["--detach-after", "soon"], "soon"),
    ] {
        let out = run(&args, b"data");
        assert_eq!(out.code(), 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(word), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"));
    }
}

#[test]
fn a_doubled_comma_is_a_comma_in_the_name() {
    let dir = TempDir::new("fanout-comma");
    let root = dir.0.to_str().unwrap();
    let input = random_bytes(100_000, 150);
    let (plain, keyed) = (format!("{root}/a,,b"), format!("{root}/c,,,,d,slow=block"));
    let out = run(&["-q", "-o", &plain, "-o", &keyed], &input);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let mut names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a,b", "c,,d"]);
    for name in names {
        assert!(
            std::fs::read(dir.path(&name)).unwrap() == input,
            "{name} differs"
        );
    }
}

#[test]
fn a_rate_on_one_output_paces_that_output_only() {
    let dir = TempDir::new("fanout-rate");
    let input = random_bytes(1 << 20, 160);
    // From a file, reads are whole chunks: 16 of them, well inside a lane of 64.
    let source = dir.file("in", &input);
    let target = dir.path("a").to_str().unwrap().to_string();
    let spec = format!("{target},rate=1MiB/s");
    let start = Instant::now();
    let args = [
        "--stats-format",
        "json",
        "-n",
        "64",
        "-o",
        &spec,
        "-o",
        "-",
        &source,
    ];
    let (out, stdout_whole_at) = run_timed(&args, b"", input.len());
    let took = start.elapsed();
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == input, "standard output differs");
    assert!(std::fs::read(&target).unwrap() == input, "a differs");
    let json = record(&out.stderr, "exit");
    let secs = json.f64("elapsed_s");
    assert!(secs >= 0.8, "1 MiB at 1 MiB/s took {secs:.2}s");
    // The unlimited output is not held to the other's rate.
    let stdout_took = stdout_whole_at.unwrap() - start;
    assert!(
        stdout_took + Duration::from_millis(400) <= took,
        "standard output took {stdout_took:?} of the run's {took:?}"
    );
    let outputs = json.list("outputs");
    assert_eq!(outputs.len(), 2, "{json:?}");
    assert_eq!(outputs[0].str("name"), target);
    for output in &outputs {
        assert_complete(output, input.len());
    }
    assert_fanout_accounts(&json);
}
