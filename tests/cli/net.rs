//! TCP endpoints (issue 11), on loopback only: byte-exact streams framed and raw, on both data
//! paths and both address families, the verified end of stream, interop with nc, socat and
//! mbuffer, retries, timeouts, --allow, and bad addresses.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};
use std::thread;
use std::time::Duration;

use crate::util::*;

/// A port nobody listens on now, and that no other test of this run is handed: the kernel's
/// own pick could come round again while a test that let it go has not bound it yet.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 2_000) as u16 * 10;
    loop {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 20_000;
        let free_on = |host: &str| TcpListener::bind((host, port)).is_ok();
        if free_on("127.0.0.1") && free_on("::1") {
            return port;
        }
    }
}

/// A scratch directory of its own: the tests here run at once and share their helpers.
fn scratch(tag: &str) -> TempDir {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    TempDir::new(&format!("{tag}-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
}

const BIG: usize = 256 << 20;

/// 256 MiB of seeded data in a file, made once for every test that needs it.
fn big_file() -> &'static str {
    static FILE: OnceLock<(TempDir, String)> = OnceLock::new();
    let (_, path) = FILE.get_or_init(|| {
        let dir = TempDir::new("net-big");
        let path = dir.file("big", &random_bytes(BIG, 11));
        (dir, path)
    });
    path
}

fn start(args: &[&str]) -> Child {
    bpipe(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bpipe")
}

fn same_files(a: &str, b: &str) -> bool {
    Command::new("cmp")
        .args(["-s", a, b])
        .status()
        .is_ok_and(|s| s.success())
}

/// Sends the big file from one bpipe to another over `host` (an address as `--connect` takes
/// it), with `extra` flags on both; both outputs, the received file checked byte for byte.
fn relay_big(host: &str, extra: &[&str]) -> (Output, Output) {
    let dir = scratch("net-relay");
    let out = dir.path("out");
    let port = free_port();
    let listen = format!("{host}:{port}");
    let mut receiver_args = vec!["--listen", &listen, "-o", out.to_str().unwrap()];
    receiver_args.extend(extra);
    receiver_args.extend(["--stats-format", "json"]);
    let receiver = start(&receiver_args);
    let mut sender_args = vec![big_file(), "--connect", &listen, "--stats-format", "json"];
    sender_args.extend(extra);
    let sender = finish(start(&sender_args), Duration::from_secs(120));
    let received = finish(receiver, Duration::from_secs(120));
    assert!(
        same_files(big_file(), out.to_str().unwrap()),
        "{extra:?}: the received file differs; receiver: {}",
        received.stderr
    );
    (sender, received)
}

fn assert_both_done(sender: &Output, receiver: &Output, what: &str) {
    assert_eq!(sender.code(), 0, "{what}: sender: {}", sender.stderr);
    assert_eq!(receiver.code(), 0, "{what}: receiver: {}", receiver.stderr);
    let (sent, received) = (sender.json(), receiver.json());
    assert_eq!(sent.u64("bytes_out"), BIG as u64, "{what}");
    assert_eq!(received.u64("bytes_in"), BIG as u64, "{what}");
}

#[test]
fn a_framed_stream_arrives_whole_on_both_paths_and_both_families() {
    for (host, path) in [("127.0.0.1", None), ("[::1]", Some("--no-splice"))] {
        let extra: Vec<&str> = path.into_iter().collect();
        let (sender, receiver) = relay_big(host, &extra);
        assert_both_done(&sender, &receiver, host);
        let expected = if path.is_some() { "copy" } else { "splice" };
        assert_eq!(receiver.json().str("path"), expected, "{}", receiver.stderr);
        // One, unless the sender came before the receiver listened.
        assert!(sender.json().u64("connect_attempts") >= 1);
    }
}

#[test]
fn a_raw_stream_arrives_whole_on_both_paths_and_both_families() {
    for (host, path) in [("[::1]", None), ("127.0.0.1", Some("--no-splice"))] {
        let mut extra = vec!["--raw"];
        extra.extend(path);
        let (sender, receiver) = relay_big(host, &extra);
        assert_both_done(&sender, &receiver, host);
    }
}

#[test]
fn checksums_are_printed_and_equal_on_both_ends() {
    let expected = blake3::hash(&std::fs::read(big_file()).unwrap()).to_hex();
    for extra in [&["--checksum"][..], &["--checksum", "--raw"]] {
        let (sender, receiver) = relay_big("127.0.0.1", extra);
        assert_both_done(&sender, &receiver, "checksum");
        let (sent, received) = (sender.json(), receiver.json());
        assert_eq!(sent.str("checksum_alg"), "blake3");
        assert_eq!(sent.str("checksum"), expected.as_str(), "{}", sender.stderr);
        assert_eq!(received.str("checksum"), expected.as_str(), "{extra:?}");
        assert_eq!(received.str("path"), "copy");
    }
    let plain = run(&["--stats-format", "json"], b"x").json();
    assert!(plain.get("checksum").is_null() && plain.get("checksum_alg").is_null());
}

/// A sender stopped dead after part of the stream: its kernel closes the socket as if the
/// stream had ended.
fn kill_sender_midway(extra: &[&str]) -> Output {
    let dir = scratch("net-kill");
    let out = dir.path("out");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut receiver_args = vec!["--listen", &listen, "-o", out.to_str().unwrap()];
    receiver_args.extend(extra);
    let receiver = start(&receiver_args);
    let mut sender_args = vec!["--connect", &listen];
    sender_args.extend(extra);
    let sender = Running::start(&sender_args, random_bytes(1 << 20, 3), true);
    let arrived = poll(Duration::from_secs(20), || {
        std::fs::metadata(&out).is_ok_and(|m| m.len() == 1 << 20)
    });
    if !arrived {
        sender.signal(libc::SIGKILL);
        let receiver = finish(receiver, Duration::from_secs(5));
        panic!(
            "the first MiB never arrived ({:?}); sender: {}; receiver: {}",
            std::fs::metadata(&out).map(|m| m.len()),
            sender.finish(Vec::new()).stderr,
            receiver.stderr
        );
    }
    sender.signal(libc::SIGKILL);
    finish(receiver, Duration::from_secs(20))
}

#[test]
fn a_killed_sender_is_a_truncated_stream_when_framed() {
    let receiver = kill_sender_midway(&[]);
    assert_eq!(receiver.code(), 6, "{}", receiver.stderr);
    assert!(
        receiver
            .stderr
            .contains("integrity: stream truncated after 1048576 bytes"),
        "{}",
        receiver.stderr
    );
}

#[test]
fn a_killed_sender_looks_like_a_clean_end_when_raw() {
    let receiver = kill_sender_midway(&["--raw"]);
    assert_eq!(receiver.code(), 0, "{}", receiver.stderr);
}

/// Relays one connection to `to`, flipping the byte at `offset` of what passes.
fn corrupting_proxy(to: u16, offset: usize) -> (u16, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let proxy = thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        // The receiver may still be starting: its listener is not probed, for a probe would
        // be the one connection it accepts.
        let mut server = None;
        poll(Duration::from_secs(10), || {
            server = TcpStream::connect(("127.0.0.1", to)).ok();
            server.is_some()
        });
        let mut server = server.expect("the receiver listens");
        let mut back = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let answers = thread::spawn(move || {
            let _ = std::io::copy(&mut back.1, &mut back.0);
            let _ = back.0.shutdown(std::net::Shutdown::Write);
        });
        let (mut seen, mut buf) = (0, vec![0; 65536]);
        while let Ok(n @ 1..) = client.read(&mut buf) {
            if (seen..seen + n).contains(&offset) {
                buf[offset - seen] ^= 0x20;
            }
            seen += n;
            if server.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server.shutdown(std::net::Shutdown::Write);
        let _ = answers.join();
    });
    (port, proxy)
}

#[test]
fn a_flipped_byte_fails_the_checksum_on_both_ends() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let receiver = start(&["--listen", &listen, "--checksum"]);
    let (proxy_port, proxy) = corrupting_proxy(port, 100_000);
    let input = random_bytes(1 << 20, 5);
    let to = format!("127.0.0.1:{proxy_port}");
    let sender = run(&["--connect", &to, "--checksum"], &input);
    let received = finish(receiver, Duration::from_secs(20));
    proxy.join().unwrap();
    assert_eq!(received.code(), 6, "{}", received.stderr);
    assert!(
        received.stderr.contains("integrity: checksum mismatch"),
        "{}",
        received.stderr
    );
    assert_eq!(sender.code(), 6, "{}", sender.stderr);
    assert!(sender.stderr.contains("damaged"), "{}", sender.stderr);
}

/// Runs `script` (bash, `$BPIPE` set, `$PORT` a free port) with the tools it names installed.
fn interop(tools: &[(&str, &str)], script: &str) -> Option<Output> {
    if !tools
        .iter()
        .all(|(tool, package)| require_tool(tool, package))
    {
        return None;
    }
    let port = free_port();
    Some(sh(&format!("PORT={port}\n{script}")))
}

#[test]
fn raw_bpipe_talks_to_nc_socat_and_mbuffer() {
    let dir = scratch("net-interop");
    let input = dir.file("in", &random_bytes(8 << 20, 9));
    let out = dir.path("out");
    let out = out.to_str().unwrap();
    let cases = [
        (
            ("nc", "netcat-openbsd"),
            "nc -l 127.0.0.1 $PORT > OUT & $BPIPE -q --raw --connect 127.0.0.1:$PORT < IN; s=$?; wait $!; exit $s",
        ),
        (
            ("socat", "socat"),
            "socat -u TCP-LISTEN:$PORT,bind=127.0.0.1 CREATE:OUT & $BPIPE -q --raw --connect 127.0.0.1:$PORT < IN; s=$?; wait $!; exit $s",
        ),
        (
            ("nc", "netcat-openbsd"),
            "$BPIPE -q --raw --listen 127.0.0.1:$PORT > OUT & until nc -N 127.0.0.1 $PORT < IN 2>/dev/null; do sleep 0.05; done; wait $!",
        ),
        (
            ("mbuffer", "mbuffer"),
            "$BPIPE -q --raw --listen 127.0.0.1:$PORT > OUT & until mbuffer -q -O 127.0.0.1:$PORT < IN 2>/dev/null; do sleep 0.05; done; wait $!",
        ),
    ];
    for ((tool, package), script) in cases {
        let _ = std::fs::remove_file(out);
        let script = script.replace("OUT", out).replace("IN", &input);
        let Some(done) = interop(&[(tool, package)], &script) else {
            continue;
        };
        assert_eq!(done.code(), 0, "{script}: {}", done.stderr);
        assert!(same_files(&input, out), "{script}: the output differs");
    }
}

#[test]
fn a_framed_bpipe_facing_nc_says_to_use_raw() {
    let script = "nc -l 127.0.0.1 $PORT > /dev/null & $BPIPE --connect 127.0.0.1:$PORT < /dev/null; s=$?; kill $! 2>/dev/null; exit $s";
    let Some(done) = interop(&[("nc", "netcat-openbsd")], script) else {
        return;
    };
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        done.stderr.contains("no hello from the peer within 1s"),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("--raw"), "{}", done.stderr);
    assert!(done.elapsed < Duration::from_secs(10));
}

#[test]
fn a_killed_receiver_fails_the_sender_with_what_was_sent() {
    let listen = format!("127.0.0.1:{}", free_port());
    // A receiver whose own output nobody reads: it and the socket fill up.
    let receiver = Running::start(&["--listen", &listen], Vec::new(), false);
    let args = ["--connect", &listen, "--stats-format", "json", "-i", "50ms"];
    let mut sender = Running::start(&args, random_bytes(64 << 20, 4), false);
    sender.wait_for_record("1 MiB sent", |r| r.u64("bytes_out") > 1 << 20);
    receiver.signal(libc::SIGKILL);
    let status = exit_within(&mut sender.child, Duration::from_secs(20));
    let code = status.and_then(|s| s.code());
    let sender = sender.finish(Vec::new());
    assert!(matches!(code, Some(1 | 141)), "{code:?}: {}", sender.stderr);
    assert!(sender.stderr.contains("bytes sent: "), "{}", sender.stderr);
}

#[test]
fn a_receiver_that_starts_late_is_reached_after_a_few_attempts() {
    let listen = format!("127.0.0.1:{}", free_port());
    let late = listen.clone();
    let receiver = thread::spawn(move || {
        thread::sleep(Duration::from_millis(1500));
        finish(start(&["--listen", &late]), Duration::from_secs(30))
    });
    let args = ["--connect", &listen, "--stats-format", "json", "-i", "10s"];
    let sender = run(&args, b"late but whole\n");
    let receiver = receiver.join().unwrap();
    assert_eq!(sender.code(), 0, "{}", sender.stderr);
    assert_eq!(receiver.code(), 0, "{}", receiver.stderr);
    let attempts = sender.json().u64("connect_attempts");
    assert!(
        (3..=8).contains(&attempts),
        "{attempts} attempts: {}",
        sender.stderr
    );
    let told = sender
        .stderr
        .lines()
        .filter(|l| l.contains(": attempt "))
        .count() as u64;
    assert_eq!(
        told,
        attempts - 1,
        "each failed attempt is told once: {}",
        sender.stderr
    );
}

/// The delay a line `…: attempt N: …; next in DELAY` names.
fn next_delay(line: &str) -> Duration {
    let delay = line.rsplit("next in ").next().unwrap();
    humantime::parse_duration(delay).unwrap_or_else(|_| panic!("{line}"))
}

#[test]
fn a_receiver_that_never_comes_ends_the_retries_within_the_budget() {
    let listen = format!("127.0.0.1:{}", free_port());
    let args = ["--connect", &listen, "--connect-timeout", "2s", "-i", "10s"];
    let sender = run(&args, b"never sent");
    assert_eq!(sender.code(), 1, "{}", sender.stderr);
    let elapsed = sender.elapsed;
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
    assert!(
        sender
            .stderr
            .contains(&format!("bpipe: tcp:{listen}: no connection after ")),
        "{}",
        sender.stderr
    );
    assert!(
        sender.stderr.contains("Connection refused"),
        "{}",
        sender.stderr
    );
    let delays: Vec<Duration> = sender
        .stderr
        .lines()
        .filter(|l| l.contains("next in"))
        .map(next_delay)
        .collect();
    assert!(delays.len() >= 3, "{}", sender.stderr);
    assert!(
        delays.iter().all(|d| *d >= Duration::from_millis(100)),
        "{delays:?}"
    );
    assert!(delays[2] > delays[0], "the delays grow: {delays:?}");
}

#[test]
fn a_listener_gives_up_after_the_accept_timeout() {
    let listen = format!("127.0.0.1:{}", free_port());
    let done = finish(
        start(&["--listen", &listen, "--accept-timeout", "1s"]),
        Duration::from_secs(10),
    );
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        done.elapsed >= Duration::from_secs(1) && done.elapsed < Duration::from_secs(3),
        "{:?}",
        done.elapsed
    );
    assert!(
        done.stderr.contains(&format!(
            "bpipe: tcp-listen:{listen}: no connection within 1s"
        )),
        "{}",
        done.stderr
    );
}

#[test]
fn sigint_ends_a_wait_in_accept_at_once() {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut waiting = Running::start(&["--listen", &listen], Vec::new(), false);
    assert!(
        poll(Duration::from_secs(10), || TcpListener::bind(&listen)
            .is_err()),
        "never listened"
    );
    waiting.wait_for_handler(libc::SIGINT);
    waiting.signal(libc::SIGINT);
    let status = exit_within(&mut waiting.child, Duration::from_millis(1500));
    assert_eq!(status.and_then(|s| s.code()), Some(130));
}

#[test]
fn peers_outside_allow_are_refused_and_the_listener_waits_on() {
    if !require_tool("socat", "socat") {
        return;
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let receiver = Running::start(
        &["--raw", "--listen", &listen, "--allow", "127.0.0.2"],
        Vec::new(),
        false,
    );
    let outsider = sh(&format!(
        "until echo outsider | socat -u - TCP:{listen}; do sleep 0.05; done"
    ));
    assert_eq!(outsider.code(), 0, "{}", outsider.stderr);
    assert!(receiver.wait_for_stderr("refused 127.0.0.1:", Duration::from_secs(10)));
    let insider = sh(&format!(
        "echo insider | socat -u - TCP:{listen},bind=127.0.0.2"
    ));
    assert_eq!(insider.code(), 0, "{}", insider.stderr);
    let done = receiver.finish(Vec::new());
    assert_eq!(done.code(), 0, "{}", done.stderr);
    assert_eq!(done.stdout, b"insider\n");
    assert!(
        done.stderr
            .contains(&format!("bpipe: tcp-listen:{listen}: refused 127.0.0.1:")),
        "{}",
        done.stderr
    );
}

#[test]
fn merged_connections_interleave_whole_records() {
    let listen = format!("127.0.0.1:{}", free_port());
    let args = [
        "-l",
        "--merge",
        "--listen",
        &listen,
        "--max-conns",
        "3",
        "--stats-format",
        "json",
    ];
    let receiver = Running::start(&args, Vec::new(), false);
    let senders: Vec<_> = (0..3)
        .map(|n| {
            let listen = listen.clone();
            thread::spawn(move || {
                let lines: String = (0..20_000)
                    .map(|i| format!("sender {n} line {i}\n"))
                    .collect();
                run(&["--connect", &listen], lines.as_bytes())
            })
        })
        .collect();
    for sender in senders {
        let sent = sender.join().unwrap();
        assert_eq!(sent.code(), 0, "{}", sent.stderr);
    }
    let done = receiver.finish(Vec::new());
    assert_eq!(done.code(), 0, "{}", done.stderr);
    let text = String::from_utf8(done.stdout.clone()).unwrap();
    for n in 0..3 {
        let own: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("sender {n} ")))
            .collect();
        assert_eq!(own.len(), 20_000, "sender {n}");
        assert!(
            own.iter()
                .enumerate()
                .all(|(i, l)| *l == format!("sender {n} line {i}")),
            "sender {n}: order or whole lines"
        );
    }
    assert_eq!(done.json().list("inputs").len(), 3);
}

#[test]
fn bad_addresses_are_refused_before_any_byte_moves() {
    for (address, code, why) in [
        ("tcp:nohost", 2, "tcp:nohost: expected HOST:PORT"),
        (
            "tcp:host:99999",
            2,
            "port 99999 is out of range (1 to 65535)",
        ),
        (
            "tcp:nohost.invalid:9",
            1,
            "bpipe: tcp:nohost.invalid:9: cannot resolve nohost.invalid",
        ),
    ] {
        let done = run(&["-", address], b"never read");
        assert_eq!(done.code(), code, "{address}: {}", done.stderr);
        assert!(done.stderr.contains(why), "{address}: {}", done.stderr);
        assert!(done.stdout.is_empty());
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("tcp-listen:{}", taken.local_addr().unwrap());
    let done = run(&["-", &address], b"never read");
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        done.stderr
            .contains(&format!("bpipe: {address}: Address already in use")),
        "{}",
        done.stderr
    );
    assert!(done.stdout.is_empty(), "bytes moved before the refusal");
}

#[test]
fn a_checksum_asked_by_one_end_only_is_refused_by_both() {
    let listen = format!("127.0.0.1:{}", free_port());
    let receiver = start(&["--listen", &listen, "--checksum"]);
    let sender = run(&["--connect", &listen], &random_bytes(1 << 20, 6));
    let receiver = finish(receiver, Duration::from_secs(20));
    assert_eq!(sender.code(), 1, "{}", sender.stderr);
    assert!(
        sender
            .stderr
            .contains("--checksum must be given to both ends (it is given to the other one only)"),
        "{}",
        sender.stderr
    );
    assert_eq!(receiver.code(), 1, "{}", receiver.stderr);
    assert!(
        receiver.stderr.contains("(it is given to this one only)"),
        "{}",
        receiver.stderr
    );
}

#[test]
fn one_stream_fans_out_to_two_receivers_and_a_file() {
    let dir = scratch("net-fanout");
    let (a, b) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let outs: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| dir.path(n).to_str().unwrap().to_string())
        .collect();
    let receivers = [
        start(&["--listen", &a, "-o", &outs[0]]),
        start(&["--listen", &b, "-o", &outs[1]]),
    ];
    let input = random_bytes(16 << 20, 8);
    let sender = run(
        &[
            "--connect",
            &a,
            "--connect",
            &b,
            "-o",
            &outs[2],
            "--stats-format",
            "json",
        ],
        &input,
    );
    assert_eq!(sender.code(), 0, "{}", sender.stderr);
    for receiver in receivers {
        let done = finish(receiver, Duration::from_secs(20));
        assert_eq!(done.code(), 0, "{}", done.stderr);
    }
    for out in &outs {
        assert!(std::fs::read(out).unwrap() == input, "{out} differs");
    }
    assert_eq!(sender.json().list("outputs").len(), 3);
}

/// A framed input is read frame by frame even while everything goes to the spool: spooling a
/// socket whole would put the frame headers in the data.
#[test]
fn a_framed_input_spooled_arrives_whole() {
    let dir = scratch("net-spool");
    let (spool, out) = (dir.path("spool"), dir.path("out"));
    std::fs::create_dir(&spool).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let receiver = start(&[
        "--listen",
        &listen,
        "--spool",
        spool.to_str().unwrap(),
        "--spool-max",
        "64M",
        "--start-at",
        "20M",
        "--start-after",
        "5s",
        "-o",
        out.to_str().unwrap(),
        "--stats-format",
        "json",
    ]);
    let input = random_bytes(24 << 20, 12);
    let sender = run(&["--connect", &listen], &input);
    let received = finish(receiver, Duration::from_secs(30));
    assert_eq!(sender.code(), 0, "{}", sender.stderr);
    assert_eq!(received.code(), 0, "{}", received.stderr);
    assert!(
        std::fs::read(&out).unwrap() == input,
        "the spooled stream differs"
    );
}

#[test]
fn the_sender_may_listen_and_the_receiver_connect() {
    let port = free_port();
    let input = random_bytes(4 << 20, 13);
    let listening = format!("tcp-listen:127.0.0.1:{port}");
    let sender = thread::spawn({
        let input = input.clone();
        move || run(&["-o", &listening], &input)
    });
    let receiver = run(&[&format!("tcp:127.0.0.1:{port}")], b"");
    let sender = sender.join().unwrap();
    assert_eq!(sender.code(), 0, "{}", sender.stderr);
    assert_eq!(receiver.code(), 0, "{}", receiver.stderr);
    assert!(receiver.stdout == input, "the stream differs");
}
