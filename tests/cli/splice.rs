//! The zero-copy path moves the same bytes as the copy path, whatever the descriptors are, and
//! says which path it took.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Stdio;

use crate::policies::{assert_whole_blocks_in_order, dropping_run};
use crate::util::{
    DEADLINE, Running, TempDir, assert_accounts, bpipe, finish, random_bytes, record, run,
};

#[test]
fn the_json_stats_say_which_path_was_taken() {
    let input = random_bytes(1 << 20, 41);
    let spliced = run(&["--stats-format", "json"], &input);
    assert!(spliced.stdout == input);
    // Splice needs nothing a normal Linux lacks; when the ring cannot be made, a note says so.
    let expected = if spliced.stderr.contains("using the copy path") {
        "copy"
    } else {
        "splice"
    };
    let copied = run(&["--stats-format", "json", "--no-splice"], &input);
    assert!(copied.stdout == spliced.stdout);
    let lines = run(&["--stats-format", "json", "-l"], &input);
    for (out, path) in [(&spliced, expected), (&copied, "copy"), (&lines, "copy")] {
        let json = record(&out.stderr, "exit");
        assert_eq!(json.str("path"), path, "{json:?}");
        assert_accounts(&json);
    }
}

#[test]
fn pipes_and_odd_sizes_are_byte_exact() {
    for len in [0, 1, 4095, 4097, 65_537, 3_000_001] {
        let input = random_bytes(len, len as u64);
        for chunk in ["1", "7", "4096", "65537", "1MiB"] {
            // Byte- and 7-byte chunks hand each other hundreds of thousands of chunks over 3 MB:
            // on a loaded machine that is minutes of thread switches for no more coverage.
            if (chunk == "1" || chunk == "7") && len > 70_000 {
                continue;
            }
            let out = run(&["-q", "-b", chunk, "-n", "3"], &input);
            assert_eq!(out.code(), 0, "{}", out.stderr);
            assert!(out.stdout == input, "len {len} chunk {chunk}");
        }
    }
}

#[test]
fn files_on_either_side_are_byte_exact() {
    let dir = TempDir::new("splice-files");
    let input = random_bytes(5_000_003, 42);
    let source = dir.file("in", &input);
    let target = dir.path("out").to_str().unwrap().to_string();
    // file -> pipe
    let out = run(&["-q", &source], b"");
    assert!(out.stdout == input);
    // pipe -> file, then file -> file, then file -> appended file
    for (args, stdin) in [
        (vec!["-q", "-o", &target], &input[..]),
        (vec!["-q", &source, "-o", &target], b""),
        (vec!["-q", &source, &source, "-o", &target, "--append"], b""),
    ] {
        let out = run(&args, stdin);
        assert_eq!(out.code(), 0, "{args:?}: {}", out.stderr);
    }
    let written = std::fs::read(&target).unwrap();
    assert!(
        written == [&input[..], &input, &input].concat(),
        "file to file and append"
    );
}

#[test]
fn sockets_on_both_sides_are_byte_exact() {
    let input = random_bytes(4_000_001, 43);
    let (mut producer, bpipe_in) = UnixStream::pair().unwrap();
    let (bpipe_out, mut consumer) = UnixStream::pair().unwrap();
    let child = bpipe(&["-q"])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(bpipe_in)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(bpipe_out)))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let feed = input.clone();
    let feeder = std::thread::spawn(move || {
        producer.write_all(&feed).unwrap();
        producer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let reader = std::thread::spawn(move || {
        let mut received = Vec::new();
        consumer.read_to_end(&mut received).unwrap();
        received
    });
    let out = finish(child, DEADLINE);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    feeder.join().unwrap();
    assert!(reader.join().unwrap() == input);
}

#[test]
fn policies_and_rate_limits_hold_on_both_paths() {
    for path in [&[][..], &["--no-splice"][..]] {
        for policy in ["drop", "drop-oldest"] {
            let (output, json) = dropping_run(policy, 2048, path);
            assert_whole_blocks_in_order(&output);
            assert!(json.u64("bytes_dropped") > 0, "{policy} {path:?}");
            assert_accounts(&json);
            assert_eq!(json.u64("bytes_unsent"), 0, "{policy} {path:?}: {json:?}");
        }
        let mut args = vec![
            "-n",
            "2",
            "--on-full",
            "fail",
            "-i",
            "20ms",
            "--stats-format",
            "json",
        ];
        args.extend_from_slice(path);
        let mut bp = Running::start(&args, random_bytes(8 << 20, 44), false);
        // Read before the queue overflowed, the output would let everything through.
        bp.wait_for_record("rejected chunk", |r| r.u64("bytes_dropped") > 0);
        let out = bp.finish(Vec::new());
        assert_eq!(out.code(), 3, "{path:?}: {}", out.stderr);
        let json = record(&out.stderr, "exit");
        assert_accounts(&json);
        assert_eq!(json.u64("bytes_unsent"), 0, "{path:?}: {json:?}");
        let small = random_bytes(300_000, 45);
        let mut args = vec!["-q", "-L", "2MiB"];
        args.extend_from_slice(path);
        let limited = run(&args, &small);
        assert!(
            limited.stdout == small,
            "{path:?}: rate limiting changed the bytes"
        );
    }
}
