//! A small std-only harness: runs the built bpipe, feeds stdin from a thread (feeding it inline
//! deadlocks once the pipes fill), and bounds every run's time so no test can hang CI.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bpipe"))
}

pub fn bpipe(args: &[&str]) -> Command {
    let mut command = Command::new(bin());
    command.args(args);
    command
}

pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// The last JSON stats record on stderr.
    pub fn json(&self) -> Json {
        let line = self
            .stderr
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON record on stderr: {}", self.stderr));
        Json::parse(line)
    }
}

/// The first stats record of `event` (`exit`, `signal`, `interval`) on stderr.
pub fn record(stderr: &str, event: &str) -> Json {
    records(stderr, event)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {event} record in {stderr}"))
}

/// Every stats record of `event` on stderr, in order.
pub fn records(stderr: &str, event: &str) -> Vec<Json> {
    let needle = format!("\"event\":\"{event}\"");
    stderr
        .lines()
        .filter(|l| l.contains(&needle))
        .map(Json::parse)
        .collect()
}

/// One JSON stats record. A line that is not a JSON object fails the test, and so does asking for
/// a key it lacks or a value of another type; the message names the key and shows the record.
pub struct Json(serde_json::Map<String, serde_json::Value>);

impl Json {
    pub fn parse(line: &str) -> Json {
        match serde_json::from_str(line) {
            Ok(serde_json::Value::Object(fields)) => Json(fields),
            Ok(_) => panic!("not a JSON object: {line}"),
            Err(e) => panic!("not valid JSON ({e}): {line}"),
        }
    }

    pub fn get(&self, key: &str) -> &serde_json::Value {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("no key {key} in {self:?}"))
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn u64(&self, key: &str) -> u64 {
        self.get(key)
            .as_u64()
            .unwrap_or_else(|| panic!("{key} is not an unsigned integer in {self:?}"))
    }

    pub fn f64(&self, key: &str) -> f64 {
        self.get(key)
            .as_f64()
            .unwrap_or_else(|| panic!("{key} is not a number in {self:?}"))
    }

    pub fn str(&self, key: &str) -> &str {
        self.get(key)
            .as_str()
            .unwrap_or_else(|| panic!("{key} is not a string in {self:?}"))
    }

    pub fn bool(&self, key: &str) -> bool {
        self.get(key)
            .as_bool()
            .unwrap_or_else(|| panic!("{key} is not a boolean in {self:?}"))
    }
}

/// The record as JSON, so that `{json:?}` in a message shows what bpipe printed.
impl std::fmt::Debug for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_string(&self.0).map_err(|_| std::fmt::Error)?;
        f.write_str(&text)
    }
}

/// bpipe's promise for every exit record: each byte read was written, dropped by the policy, or
/// counted as unsent.
pub fn assert_accounts(json: &Json) {
    let (bytes_in, out, dropped, unsent) = (
        json.u64("bytes_in"),
        json.u64("bytes_out"),
        json.u64("bytes_dropped"),
        json.u64("bytes_unsent"),
    );
    assert_eq!(
        bytes_in,
        out + dropped + unsent,
        "bytes_in {bytes_in} != bytes_out {out} + bytes_dropped {dropped} + bytes_unsent {unsent}: \
         {json:?}"
    );
}

/// Kills the child if the test has not finished with it by then.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// How long a test waits for bpipe to reach a state it reaches within a second when all is well
/// (a queue filling, a line coming through): room for a loaded machine, well inside `DEADLINE`.
pub const STATE_WAIT: Duration = Duration::from_secs(20);

/// `queue_chunks == queue_capacity_chunks`: the reader can only wait, drop or reject.
pub fn queue_is_full(json: &Json) -> bool {
    json.u64("queue_chunks") == json.u64("queue_capacity_chunks")
}

/// Reads exactly `len` bytes from a child's pipe, failing the test if they have not all come
/// within `timeout` or the pipe ends first, where a plain read would wait forever.
pub fn read_within(from: &mut (impl Read + AsRawFd), len: usize, timeout: Duration) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    let mut data = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut ready = libc::pollfd {
            fd: from.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: poll(2) on one pollfd that lives across the call.
        let polled = unsafe { libc::poll(&mut ready, 1, millis) };
        if polled < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            panic!("poll: {error}");
        }
        if polled == 0 {
            panic!(
                "only {got} of {len} bytes came within {timeout:?}: {:?}",
                String::from_utf8_lossy(&data[..got])
            );
        }
        match from.read(&mut data[got..]) {
            Ok(0) => panic!(
                "the output ended after {got} of {len} bytes: {:?}",
                String::from_utf8_lossy(&data[..got])
            ),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    data
}

/// Waits for the child to exit; kills it and fails the test at `deadline`.
fn wait_until(child: &mut Child, deadline: Instant) -> ExitStatus {
    loop {
        if let Some(status) = child.try_wait().expect("wait for bpipe") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("bpipe did not finish in time");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Starts bpipe with stdin, stdout and stderr all piped to the test.
pub fn spawn_piped(args: &[&str]) -> Child {
    pipe_all(bpipe(args))
}

/// Starts `command` with stdin, stdout and stderr all piped to the test.
pub fn pipe_all(mut command: Command) -> Child {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bpipe")
}

/// Waits for a child, killing it at `deadline`, and collects what it wrote.
pub fn finish(mut child: Child, deadline: Duration) -> Output {
    let start = Instant::now();
    let stdout = child.stdout.take().map(|mut out| {
        thread::spawn(move || {
            let mut data = Vec::new();
            let _ = out.read_to_end(&mut data);
            data
        })
    });
    let stderr = child.stderr.take().map(|mut err| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        })
    });
    let status = wait_until(&mut child, start + deadline);
    Output {
        status,
        stdout: stdout.map(|t| t.join().unwrap()).unwrap_or_default(),
        stderr: stderr.map(|t| t.join().unwrap()).unwrap_or_default(),
        elapsed: start.elapsed(),
    }
}

/// Runs bpipe with `input` fed on stdin from a thread.
pub fn run(args: &[&str], input: &[u8]) -> Output {
    let mut child = spawn_piped(args);
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = finish(child, DEADLINE);
    feeder.join().unwrap();
    output
}

/// Runs a shell pipeline (bash), bounded in time.
pub fn sh(script: &str) -> Output {
    let child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("BPIPE", bin())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bash");
    finish(child, DEADLINE)
}

/// Whether `program` is on the PATH.
pub fn installed(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Whether a tool a test needs is there. Without it the test says so on stderr and skips what
/// needs it; under CI (`CI` set) a missing tool fails the test instead, so that a check does not
/// quietly stop running when an image loses a package.
pub fn require_tool(program: &str, debian_package: &str) -> bool {
    if installed(program) {
        return true;
    }
    let test = thread::current().name().unwrap_or("this test").to_string();
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!(
            "{program} is not installed, and CI is set: {test} needs it \
             (Debian package {debian_package})"
        );
    }
    eprintln!(
        "note: {program} is not installed; {test} skips what needs it \
         (apt-get install {debian_package})"
    );
    false
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(len);
    data
}

/// A scratch directory removed at the end of the test.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("bpipe-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn file(&self, name: &str, data: &[u8]) -> String {
        let path = self.path(name);
        std::fs::write(&path, data).unwrap();
        path.to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running bpipe whose stdout the test reads at its own pace.
pub struct Running {
    pub child: Child,
    pub stdout: std::process::ChildStdout,
    stderr: Option<thread::JoinHandle<()>>,
    stderr_text: std::sync::Arc<std::sync::Mutex<String>>,
    feeder: Option<thread::JoinHandle<()>>,
    hold_stdin: Option<std::sync::mpsc::Sender<()>>,
}

impl Running {
    /// Starts bpipe and a thread that writes `input` to its stdin, then closes it (or keeps it
    /// open until the process ends, when `keep_open`).
    pub fn start(args: &[&str], input: Vec<u8>, keep_open: bool) -> Running {
        Running::start_command(bpipe(args), input, keep_open)
    }

    /// As `start`, for a command the test has set up (its environment, say).
    pub fn start_command(command: Command, input: Vec<u8>, keep_open: bool) -> Running {
        let mut child = pipe_all(command);
        let mut stdin = child.stdin.take().unwrap();
        let (hold, held) = std::sync::mpsc::channel::<()>();
        let feeder = thread::spawn(move || {
            let _ = stdin.write_all(&input);
            if keep_open {
                // Returns when the test lets go of the sender.
                let _ = held.recv();
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr_text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&stderr_text);
        let stderr = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdout = child.stdout.take().unwrap();
        Running {
            child,
            stdout,
            stderr: Some(stderr),
            stderr_text,
            feeder: Some(feeder),
            hold_stdin: Some(hold),
        }
    }

    /// Waits until stderr has a line containing `needle`; false after `timeout`.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        poll(timeout, || {
            let text = self.stderr_text.lock().unwrap();
            text.lines().any(|l| l.contains(needle))
        })
    }

    /// Polls `probe` until it gives a value, failing the test, with what bpipe wrote on stderr,
    /// if bpipe exits first or `STATE_WAIT` passes: `what` names the state waited for.
    fn poll_for<T>(&mut self, what: &str, mut probe: impl FnMut(&mut Self) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(found) = probe(self) {
                return found;
            }
            let exited = self.child.try_wait().expect("wait for bpipe");
            // Once stderr has ended too, the probe has seen all it ever will.
            let stderr_done = self.stderr.as_ref().is_none_or(|t| t.is_finished());
            if let Some(status) = exited
                && stderr_done
            {
                if let Some(found) = probe(self) {
                    return found;
                }
                panic!(
                    "bpipe exited ({status}) before {what}; stderr ends:\n{}",
                    self.stderr_tail()
                );
            }
            if start.elapsed() > STATE_WAIT {
                panic!(
                    "no {what} within {STATE_WAIT:?}; stderr ends:\n{}",
                    self.stderr_tail()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// What bpipe has written on stderr so far.
    fn stderr_now(&self) -> String {
        self.stderr_text.lock().unwrap().clone()
    }

    /// The last lines bpipe wrote on stderr, for a failure message.
    fn stderr_tail(&self) -> String {
        let text = self.stderr_now();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// Waits for the first JSON stats record on stderr, of any event, that satisfies `until`:
    /// a run may reach the state and end before its first interval record.
    pub fn wait_for_record(&mut self, what: &str, until: impl Fn(&Json) -> bool) -> Json {
        self.poll_for(what, |bp| {
            bp.stderr_now()
                .lines()
                .filter(|l| l.starts_with('{'))
                .map(Json::parse)
                .find(|r| until(r))
        })
    }

    /// Waits until bpipe catches `signal`. Sent any earlier, SIGUSR1 would kill it, and bpipe
    /// prints nothing when it is ready: the kernel's mask of caught signals says.
    pub fn wait_for_handler(&mut self, signal: i32) {
        let bit = 1u64 << (signal - 1);
        self.poll_for(&format!("handler for signal {signal}"), |bp| {
            let status = std::fs::read_to_string(format!("/proc/{}/status", bp.pid())).ok()?;
            let caught = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
            let caught = u64::from_str_radix(caught.trim(), 16).ok()?;
            (caught & bit != 0).then_some(())
        });
    }

    /// Asks for SIGUSR1 snapshots until one satisfies `until`, and returns it. Signals sent
    /// while bpipe is still busy with one merge into it, so the request is repeated.
    pub fn snapshot_when(&mut self, what: &str, until: impl Fn(&Json) -> bool) -> Json {
        self.wait_for_handler(libc::SIGUSR1);
        let mut asked: Option<Instant> = None;
        self.poll_for(what, |bp| {
            if let Some(found) = records(&bp.stderr_now(), "signal")
                .into_iter()
                .find(|r| until(r))
            {
                return Some(found);
            }
            // Once bpipe has been waited for, its pid may belong to another process.
            let running = matches!(bp.child.try_wait(), Ok(None));
            if running && asked.is_none_or(|at| at.elapsed() > Duration::from_millis(100)) {
                bp.signal(libc::SIGUSR1);
                asked = Some(Instant::now());
            }
            None
        })
    }

    /// Reads exactly `len` bytes of bpipe's output, bounded by `STATE_WAIT`.
    pub fn read_within(&mut self, len: usize) -> Vec<u8> {
        read_within(&mut self.stdout, len, STATE_WAIT)
    }

    /// Closes bpipe's stdin once the feeder has written everything.
    pub fn close_stdin(&mut self) {
        self.hold_stdin = None;
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with a pid of our own child and a valid signal number.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// Peak resident memory so far, from the kernel's high-water mark.
    pub fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Reads `len` bytes (or to the end), sleeping so the rate stays near `bytes_per_sec`.
    pub fn read_slowly(&mut self, len: usize, bytes_per_sec: usize) -> Vec<u8> {
        let start = Instant::now();
        let mut data = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        while data.len() < len {
            let want = buf.len().min(len - data.len());
            match self.stdout.read(&mut buf[..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
            let due = Duration::from_secs_f64(data.len() as f64 / bytes_per_sec as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                thread::sleep(wait);
            }
        }
        data
    }

    /// Reads the rest of stdout and waits for the exit, bounded by `DEADLINE`.
    pub fn finish(mut self, mut received: Vec<u8>) -> Output {
        let start = Instant::now();
        // Read on a thread, so that a bpipe that never closes its output is killed at the
        // deadline instead of holding the test forever.
        let mut stdout = std::fs::File::from(
            std::os::fd::AsFd::as_fd(&self.stdout)
                .try_clone_to_owned()
                .expect("duplicate bpipe's stdout"),
        );
        let reader = thread::spawn(move || {
            let _ = stdout.read_to_end(&mut received);
            received
        });
        let status = wait_until(&mut self.child, start + DEADLINE);
        let received = reader.join().unwrap();
        self.stderr.take().unwrap().join().unwrap();
        let stderr = self.stderr_text.lock().unwrap().clone();
        self.hold_stdin = None;
        let _ = self.feeder.take().unwrap().join();
        Output {
            status,
            stdout: received,
            stderr,
            elapsed: start.elapsed(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Polls `state` every few milliseconds until it holds or `timeout` passes; looks at least once.
pub fn poll(timeout: Duration, mut state: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if state() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Waits up to `timeout` for the child to exit by itself; its status, or `None`.
pub fn exit_within(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let mut status = None;
    poll(timeout, || {
        status = child.try_wait().expect("wait for bpipe");
        status.is_some()
    });
    status
}

// ---- Fan-out and merge (issue 10): list records and FIFOs ----

impl Json {
    /// The objects of the list at `key` (`outputs`, `inputs`), each as a record of its own, so
    /// that a missing key or a wrong type fails with the record shown.
    pub fn list(&self, key: &str) -> Vec<Json> {
        let list = self
            .get(key)
            .as_array()
            .unwrap_or_else(|| panic!("{key} is not a list in {self:?}"));
        list.iter()
            .map(|item| match item {
                serde_json::Value::Object(fields) => Json(fields.clone()),
                _ => panic!("an entry of {key} is not an object in {self:?}"),
            })
            .collect()
    }
}

/// Makes the FIFO `name` in `dir` and returns its path.
pub fn mkfifo(dir: &TempDir, name: &str) -> String {
    let path = dir.path(name);
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path and a valid mode.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    path.to_str().unwrap().to_string()
}

/// Opens both ends of `fifo` without blocking, holds them a moment, and closes them: a thread or
/// process waiting in open(2) on it gets past the open, a reader then reads the end of the data
/// and a writer gets a broken pipe. For cleaning up after a bpipe that never opened its end.
pub fn release_fifo(fifo: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let open = |write: bool| {
        std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
    };
    // The read end first: a writer end opens without blocking only when there is a reader.
    let reader = open(false);
    let writer = open(true);
    thread::sleep(Duration::from_millis(10));
    drop((reader, writer));
}

/// Joins a thread that opens `fifo` itself, once bpipe has exited: releases it (`release_fifo`)
/// until it is done, as it would wait for ever if bpipe never opened its end. Bounded by
/// `DEADLINE`.
pub fn join_fifo_user<T>(user: thread::JoinHandle<T>, fifo: &str) -> T {
    let start = Instant::now();
    while !user.is_finished() {
        assert!(
            start.elapsed() < DEADLINE,
            "a thread using {fifo} is still stuck"
        );
        release_fifo(fifo);
    }
    user.join().expect("a thread using a FIFO panicked")
}

/// A command that runs bpipe with `args` as the user `nobody`, or why it cannot.
pub fn as_nobody(args: &[&str]) -> Result<Command, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root, so cannot switch to nobody".into());
    }
    let found = Command::new("setpriv").arg("--version").output();
    if !found.is_ok_and(|o| o.status.success()) {
        let why = "setpriv (util-linux) is not installed";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        return Err(why.into());
    }
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(bin())
        .args(args);
    Ok(command)
}
