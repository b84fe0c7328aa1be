//! Byte-exact relaying in every shape: sizes, chunkings, queue sizes, files and outputs.

use crate::util::{TempDir, assert_accounts, random_bytes, run};

fn assert_relays(args: &[&str], input: &[u8]) {
    let out = run(args, input);
    assert_eq!(out.code(), 0, "{args:?}: {}", out.stderr);
    assert_eq!(out.stdout.len(), input.len(), "{args:?}: length differs");
    assert!(out.stdout == input, "{args:?}: bytes differ");
}

#[test]
fn edge_sizes_are_byte_exact() {
    let chunk = 64 * 1024;
    for len in [0, 1, chunk, chunk + 1] {
        let input = random_bytes(len, len as u64);
        assert_relays(&["-q"], &input);
        assert_relays(&["-q", "--no-splice"], &input);
    }
}

#[test]
fn a_hundred_mebibytes_are_byte_exact() {
    let input = random_bytes(100 << 20, 7);
    assert_relays(&["-q"], &input);
}

#[test]
fn every_chunk_and_queue_size_is_byte_exact() {
    let input = random_bytes(300_001, 3);
    for chunk in ["1", "7", "4096", "64KiB", "1MiB"] {
        for queue in ["1", "2", "16"] {
            let data = if chunk == "1" {
                &input[..20_000]
            } else {
                &input[..]
            };
            assert_relays(&["-q", "-b", chunk, "-n", queue], data);
            assert_relays(&["-q", "-b", chunk, "-n", queue, "--no-splice"], data);
        }
    }
}

#[test]
fn line_mode_is_byte_exact() {
    let mut input = Vec::new();
    // 3 MiB: at 7-byte chunks a debug build on a loaded machine takes its time.
    for i in 0..20_000 {
        input.extend_from_slice(format!("record {i} {}\n", "x".repeat(i % 300)).as_bytes());
    }
    input.extend_from_slice(b"last record without newline");
    for chunk in ["7", "100", "64KiB"] {
        assert_relays(&["-q", "-l", "-b", chunk], &input);
    }
    let nul: Vec<u8> = input
        .iter()
        .map(|&b| if b == b'\n' { 0 } else { b })
        .collect();
    assert_relays(&["-q", "-0", "-b", "100"], &nul);
}

#[test]
fn files_are_read_in_order_with_dash_as_stdin() {
    let dir = TempDir::new("files");
    let a = random_bytes(100_000, 1);
    let b = random_bytes(5, 2);
    let stdin = random_bytes(70_000, 3);
    let fa = dir.file("a", &a);
    let fb = dir.file("b", &b);
    let out = run(&["-q", &fa, "-", &fb, &fa], &stdin);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let expected = [&a[..], &stdin, &b, &a].concat();
    assert!(out.stdout == expected);
}

#[test]
fn output_file_is_truncated_or_appended() {
    let dir = TempDir::new("output");
    let path = dir.file("out", b"old contents that are longer");
    let first = random_bytes(200_000, 4);
    let out = run(&["-q", "-o", &path], &first);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(std::fs::read(&path).unwrap() == first);
    let second = random_bytes(1000, 5);
    let out = run(&["-q", "-o", &path, "--append"], &second);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(std::fs::read(&path).unwrap() == [&first[..], &second].concat());
}

#[test]
fn summary_accounts_for_every_byte() {
    let input = random_bytes(1_000_000, 6);
    let out = run(&["--stats-format", "json"], &input);
    assert_eq!(out.code(), 0);
    let json = out.json();
    assert_eq!(json.str("event"), "exit");
    assert_eq!(json.u64("bytes_in"), 1_000_000);
    assert_eq!(json.u64("bytes_out"), 1_000_000);
    assert_eq!(json.u64("bytes_unsent"), 0);
    assert_accounts(&json);
    assert_eq!(json.u64("exit_status"), 0);
    assert!(!json.bool("output_closed"), "{json:?}");
    assert_eq!(json.u64("chunks_in"), json.u64("chunks_out"));
    assert_eq!(json.u64("queue_capacity_chunks"), 16);
    assert_eq!(json.u64("queue_capacity_bytes"), 16 * 65536);
    let human = run(&[], &input);
    let line = human.stderr.lines().last().unwrap();
    assert!(line.starts_with("bpipe: 976.6 KiB in "), "{line}");
}

#[test]
fn max_buffer_bounds_the_queue_in_bytes() {
    let out = run(
        &["--stats-format", "json", "-m", "100KiB", "-n", "1000"],
        &random_bytes(500_000, 8),
    );
    let json = out.json();
    assert_eq!(json.u64("queue_capacity_bytes"), 100 * 1024);
    assert!(json.u64("queue_peak_bytes") <= 100 * 1024);
    assert_eq!(json.u64("bytes_out"), 500_000);
    assert_accounts(&json);
}
