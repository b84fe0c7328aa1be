//! Merge: `--merge` reads every input at once into one queue; records never interleave, each
//! input keeps its order, a quiet input is not starved by a hot one, and each input is accounted
//! for on its own.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::ChildStdout;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::fanout::assert_fanout_accounts;
use crate::util::{
    DEADLINE, Json, TempDir, assert_accounts, finish, join_fifo_user, mkfifo, random_bytes, record,
    run, spawn_piped,
};

/// A producer on a thread: opens `fifo` (waiting for bpipe to open its end), then writes what
/// `next` gives for line 0, 1, 2... until it gives `None` or a write fails; returns how many
/// pieces and bytes went in whole.
fn produce(
    fifo: &str,
    mut next: impl FnMut(u64) -> Option<Vec<u8>> + Send + 'static,
) -> JoinHandle<(u64, u64)> {
    let path = fifo.to_string();
    thread::spawn(move || {
        let Ok(mut file) = OpenOptions::new().write(true).open(&path) else {
            return (0, 0);
        };
        let (mut pieces, mut bytes) = (0, 0);
        while let Some(piece) = next(pieces) {
            if file.write_all(&piece).is_err() {
                break;
            }
            pieces += 1;
            bytes += piece.len() as u64;
        }
        (pieces, bytes)
    })
}

/// Sleeps until `at` after `origin`, if that is still to come.
fn sleep_until(origin: Instant, at: Duration) {
    if let Some(wait) = at.checked_sub(origin.elapsed()) {
        thread::sleep(wait);
    }
}

/// Reads bpipe's standard output to its end at about `rate` bytes a second, as a slow consumer
/// would, and returns each line (with its newline) and when it was read, since `origin`. A last
/// line without its newline comes back as it is. Gives up at `DEADLINE`.
fn read_lines_paced(
    from: &mut ChildStdout,
    rate: usize,
    origin: Instant,
) -> Vec<(Vec<u8>, Duration)> {
    let start = Instant::now();
    let (mut lines, mut partial, mut total) = (Vec::new(), Vec::new(), 0usize);
    let mut buf = vec![0u8; 16 * 1024];
    while start.elapsed() < DEADLINE {
        let mut ready = libc::pollfd {
            fd: from.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one pollfd that lives across the call.
        if unsafe { libc::poll(&mut ready, 1, 100) } <= 0 {
            continue;
        }
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let at = origin.elapsed();
        for piece in buf[..n].split_inclusive(|&b| b == b'\n') {
            partial.extend_from_slice(piece);
            if piece.ends_with(b"\n") {
                lines.push((std::mem::take(&mut partial), at));
            }
        }
        total += n;
        sleep_until(start, Duration::from_secs_f64(total as f64 / rate as f64));
    }
    if !partial.is_empty() {
        lines.push((partial, origin.elapsed()));
    }
    lines
}

/// The `inputs` list of an exit record, checked to have one entry per FIFO, named after it.
fn inputs(json: &Json, fifos: &[String]) -> Vec<Json> {
    let inputs = json.list("inputs");
    assert_eq!(inputs.len(), fifos.len(), "{json:?}");
    for (input, fifo) in inputs.iter().zip(fifos) {
        assert_eq!(input.str("name"), fifo, "{json:?}");
    }
    inputs
}

/// The consumer's read rate in `merge_keeps_records_whole_and_lets_slow_inputs_through`.
const CONSUMER_RATE: usize = 256 << 10;
/// How long its producers write.
const FEED_TIME: Duration = Duration::from_secs(2);

/// The filler of line `seq` of input `tag`: short, or (now and then) longer than a 4 KiB chunk.
fn filler_len(tag: u8, seq: u64) -> usize {
    match (tag, seq) {
        (b'A', s) if s % 25 == 24 => 6000,
        (b'A', s) => (s % 50) as usize,
        (_, s) if s % 10 == 9 => 5000,
        (_, s) => (s * 7 % 60) as usize,
    }
}

/// `B 000012 000001234567 xxx\n`: input, number, microseconds since `origin` when written.
fn stamped_line(tag: u8, seq: u64, origin: Instant) -> Vec<u8> {
    let micros = origin.elapsed().as_micros();
    let filler = "x".repeat(filler_len(tag, seq));
    format!("{} {seq:06} {micros:012} {filler}\n", tag as char).into_bytes()
}

/// A whole `stamped_line`: its input, number and stamp.
fn parse_stamped(line: &[u8]) -> (u8, u64, Duration) {
    let text = String::from_utf8_lossy(line);
    let shown: String = text.chars().take(80).collect();
    let cut = || -> ! { panic!("not a whole line: {shown:?} ({} bytes)", line.len()) };
    let Some(body) = text.strip_suffix('\n') else {
        cut()
    };
    let fields: Vec<&str> = body.split(' ').collect();
    let [tag, seq, micros, filler] = fields[..] else {
        cut()
    };
    let tag = match tag.as_bytes() {
        [t @ (b'A' | b'B' | b'C')] => *t,
        _ => cut(),
    };
    let seq: u64 = seq.parse().unwrap_or_else(|_| cut());
    let micros: u64 = micros.parse().unwrap_or_else(|_| cut());
    if filler.len() != filler_len(tag, seq) || filler.bytes().any(|b| b != b'x') {
        cut();
    }
    (tag, seq, Duration::from_micros(micros))
}

#[test]
fn merge_keeps_records_whole_and_lets_slow_inputs_through() {
    let dir = TempDir::new("merge-rates");
    let fifos: Vec<String> = ["A", "B", "C"].iter().map(|n| mkfifo(&dir, n)).collect();
    let origin = Instant::now();
    // A offers 512 KiB/s, about 20 times what B or C write and twice what the consumer takes,
    // so the queue is full and the inputs must take turns.
    let mut written = 0u64;
    let hot = produce(&fifos[0], move |seq| {
        loop {
            let now = origin.elapsed();
            if now >= FEED_TIME {
                return None;
            }
            if (written as f64) < now.as_secs_f64() * (512 << 10) as f64 {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        let line = stamped_line(b'A', seq, origin);
        written += line.len() as u64;
        Some(line)
    });
    let slow: Vec<_> = [(b'B', &fifos[1]), (b'C', &fifos[2])]
        .into_iter()
        .map(|(tag, fifo)| {
            produce(fifo, move |seq| {
                let at = Duration::from_millis(20 * seq);
                (at < FEED_TIME).then(|| {
                    sleep_until(origin, at);
                    stamped_line(tag, seq, origin)
                })
            })
        })
        .collect();
    let args = [
        "--merge",
        "-l",
        "-b",
        "4K",
        "-n",
        "16",
        "--stats-format",
        "json",
        &fifos[0],
        &fifos[1],
        &fifos[2],
    ];
    let mut child = spawn_piped(&args);
    drop(child.stdin.take());
    let mut stdout = child.stdout.take().unwrap();
    let lines = read_lines_paced(&mut stdout, CONSUMER_RATE, origin);
    // SAFETY: fcntl(2) on a descriptor the test owns; bpipe may have raised the pipe's size.
    let pipe_bytes = unsafe { libc::fcntl(stdout.as_raw_fd(), libc::F_GETPIPE_SZ) };
    let out = finish(child, DEADLINE);
    let counts: Vec<(u64, u64)> = [hot]
        .into_iter()
        .chain(slow)
        .zip(&fifos)
        .map(|(producer, fifo)| join_fifo_user(producer, fifo))
        .collect();
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let json = record(&out.stderr, "exit");
    // A line waits behind at most the queue, the output pipe and two long records, which the
    // consumer takes at its rate; and a second more for a busy machine.
    let ahead = json.u64("queue_capacity_bytes")
        + u64::try_from(pipe_bytes).expect("F_GETPIPE_SZ")
        + 2 * 6100;
    let bound = Duration::from_secs_f64(ahead as f64 / CONSUMER_RATE as f64 + 1.0);
    let mut next = [0u64; 3];
    let mut worst = Duration::ZERO;
    for (line, read_at) in &lines {
        let (tag, seq, written_at) = parse_stamped(line);
        let input = usize::from(tag - b'A');
        assert_eq!(seq, next[input], "{} out of order or lost", tag as char);
        next[input] += 1;
        if tag != b'A' {
            worst = worst.max(read_at.saturating_sub(written_at));
        }
    }
    let lines_written: Vec<u64> = counts.iter().map(|(lines, _)| *lines).collect();
    assert_eq!(next.to_vec(), lines_written, "lines out != lines written");
    assert!(
        worst <= bound,
        "a line of B or C waited {worst:?}, more than {bound:?}"
    );
    let inputs = inputs(&json, &fifos);
    for (input, (_, bytes)) in inputs.iter().zip(&counts) {
        assert_eq!(input.u64("bytes_in"), *bytes, "{input:?}");
        assert_eq!(input.u64("records_dropped"), 0, "{input:?}");
        assert_eq!(input.str("state"), "done", "{input:?}");
    }
    assert!(
        inputs[0].f64("blocked_s") > 0.2,
        "A never waited, so the queue was never full: {json:?}"
    );
    assert_accounts(&json);
}

#[test]
fn merge_reports_each_input() {
    let dir = TempDir::new("merge-inputs");
    let fifos: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|n| mkfifo(&dir, n))
        .collect();
    // Each input in its own third of the byte values, so the output sorts back into the inputs.
    let data: Vec<Vec<u8>> = [(2_000_000, 0u8), (100_003, 85), (7, 170)]
        .iter()
        .map(|&(len, base)| {
            random_bytes(len, u64::from(base) + 1)
                .iter()
                .map(|b| base + b % 85)
                .collect()
        })
        .collect();
    let origin = Instant::now();
    let producers: Vec<_> = data
        .iter()
        .zip(&fifos)
        .enumerate()
        .map(|(i, (bytes, fifo))| {
            let bytes = bytes.clone();
            produce(fifo, move |piece| {
                // The last input writes only after the others have ended: the run waits for it.
                if i == 2 {
                    sleep_until(origin, Duration::from_millis(500));
                }
                (piece == 0).then(|| bytes.clone())
            })
        })
        .collect();
    let mut child = spawn_piped(&[
        "--merge",
        "--stats-format",
        "json",
        &fifos[0],
        &fifos[1],
        &fifos[2],
    ]);
    drop(child.stdin.take());
    let out = finish(child, DEADLINE);
    for (producer, fifo) in producers.into_iter().zip(&fifos) {
        join_fifo_user(producer, fifo);
    }
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let total: usize = data.iter().map(Vec::len).sum();
    assert_eq!(out.stdout.len(), total, "{}", out.stderr);
    for (i, bytes) in data.iter().enumerate() {
        let own: Vec<u8> = out
            .stdout
            .iter()
            .copied()
            .filter(|b| usize::from(*b / 85) == i)
            .collect();
        assert!(own == *bytes, "input {i} came out changed or out of order");
    }
    let json = record(&out.stderr, "exit");
    assert_eq!(json.u64("exit_status"), 0);
    for (input, bytes) in inputs(&json, &fifos).iter().zip(&data) {
        assert_eq!(input.u64("bytes_in"), bytes.len() as u64, "{input:?}");
        assert!(input.u64("chunks_in") >= 1, "{input:?}");
        assert_eq!(input.u64("bytes_dropped"), 0, "{input:?}");
        assert_eq!(input.u64("records_dropped"), 0, "{input:?}");
        assert_eq!(input.str("state"), "done", "{input:?}");
    }
    assert_eq!(json.u64("bytes_in"), total as u64);
    let outputs = json.list("outputs");
    assert_eq!(outputs.len(), 1, "{json:?}");
    assert_eq!(outputs[0].u64("bytes_out"), total as u64, "{json:?}");
    assert_accounts(&json);
    assert_fanout_accounts(&json);
}

#[test]
fn without_merge_inputs_is_a_list_of_one() {
    let dir = TempDir::new("merge-one");
    let (first, second) = (random_bytes(70_000, 201), random_bytes(5, 202));
    let one = dir.file("one", &first);
    let two = dir.file("two", &second);
    let out = run(&["--stats-format", "json", &one, &two], b"");
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == [first, second].concat());
    let json = record(&out.stderr, "exit");
    let inputs = json.list("inputs");
    assert_eq!(inputs.len(), 1, "{json:?}");
    assert_eq!(inputs[0].str("name"), one);
    assert_eq!(inputs[0].u64("bytes_in"), json.u64("bytes_in"), "{json:?}");
    assert_eq!(inputs[0].str("state"), "done", "{json:?}");
}

/// `H 0000042 yyy\n` or `Q 0000003 yyy\n`.
fn numbered(tag: char, seq: u64) -> Vec<u8> {
    format!("{tag} {seq:07} {}\n", "y".repeat((seq % 40) as usize)).into_bytes()
}

/// Splits the output into the numbers of each input's lines, checking that every line is whole.
fn numbers_by_input(output: &[u8]) -> (Vec<u64>, Vec<u64>) {
    let text = std::str::from_utf8(output).expect("a line was cut inside a character");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the last line was cut"
    );
    let (mut hot, mut quiet) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let cut = || -> ! { panic!("cut line {line:?}") };
        let mut fields = line.splitn(3, ' ');
        let (tag, seq, filler) = (fields.next(), fields.next(), fields.next());
        let seq: u64 = seq.and_then(|s| s.parse().ok()).unwrap_or_else(|| cut());
        let filler = filler.unwrap_or_else(|| cut());
        assert_eq!(filler, "y".repeat((seq % 40) as usize), "cut line {line:?}");
        match tag {
            Some("H") => hot.push(seq),
            Some("Q") => quiet.push(seq),
            _ => cut(),
        }
    }
    (hot, quiet)
}

#[test]
fn under_drop_a_hot_input_loses_its_own_lines_and_a_quiet_one_none() {
    const QUIET_LINES: u64 = 8;
    const QUIET_EVERY: Duration = Duration::from_millis(200);
    let feed_time = QUIET_EVERY * QUIET_LINES as u32;
    let dir = TempDir::new("merge-drop");
    let fifos = vec![mkfifo(&dir, "hot"), mkfifo(&dir, "quiet")];
    let origin = Instant::now();
    // The hot input writes 4 MiB/s, eight times what the consumer reads.
    let mut written = 0u64;
    let hot = produce(&fifos[0], move |seq| {
        loop {
            let now = origin.elapsed();
            if now >= feed_time {
                return None;
            }
            if (written as f64) < now.as_secs_f64() * (4 << 20) as f64 {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        let line = numbered('H', seq);
        written += line.len() as u64;
        Some(line)
    });
    let quiet = produce(&fifos[1], move |seq| {
        (seq < QUIET_LINES).then(|| {
            sleep_until(origin, QUIET_EVERY * seq as u32);
            numbered('Q', seq)
        })
    });
    let args = [
        "--merge",
        "--on-full",
        "drop",
        "-n",
        "2",
        "-l",
        "-b",
        "4K",
        "--stats-format",
        "json",
        &fifos[0],
        &fifos[1],
    ];
    let mut child = spawn_piped(&args);
    drop(child.stdin.take());
    let mut stdout = child.stdout.take().unwrap();
    let lines = read_lines_paced(&mut stdout, 512 << 10, origin);
    let out = finish(child, DEADLINE);
    let (hot_lines, hot_bytes) = join_fifo_user(hot, &fifos[0]);
    let (quiet_lines, quiet_bytes) = join_fifo_user(quiet, &fifos[1]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(quiet_lines, QUIET_LINES, "the quiet input could not write");
    let output: Vec<u8> = lines.into_iter().flat_map(|(line, _)| line).collect();
    let (hot_out, quiet_out) = numbers_by_input(&output);
    assert_eq!(
        quiet_out,
        (0..QUIET_LINES).collect::<Vec<_>>(),
        "the quiet input lost lines"
    );
    assert!(
        hot_out.windows(2).all(|w| w[0] < w[1]),
        "the hot input's lines came out of order"
    );
    let json = record(&out.stderr, "exit");
    let inputs = inputs(&json, &fifos);
    let (hot_entry, quiet_entry) = (&inputs[0], &inputs[1]);
    assert!(hot_entry.u64("records_dropped") > 0, "{json:?}");
    assert_eq!(
        hot_out.len() as u64 + hot_entry.u64("records_dropped"),
        hot_lines,
        "{json:?}"
    );
    assert_eq!(hot_entry.u64("bytes_in"), hot_bytes, "{json:?}");
    assert_eq!(quiet_entry.u64("records_dropped"), 0, "{json:?}");
    assert_eq!(quiet_entry.u64("bytes_dropped"), 0, "{json:?}");
    assert_eq!(quiet_entry.u64("bytes_in"), quiet_bytes, "{json:?}");
    assert_accounts(&json);
    assert_fanout_accounts(&json);
}
