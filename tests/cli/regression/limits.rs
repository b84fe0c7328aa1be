//! Resource limits: what bpipe does when the system refuses it memory.

use crate::util::{assert_accounts, record, sh};

#[test]
fn a_refused_chunk_allocation_aborted_without_a_summary() {
    // 58 MiB of address space: the binary and two 16 MiB chunks fit, the queue does not, and a
    // consumer that comes late lets the queue fill.
    let out = sh(r#"
        head -c 40M /dev/zero | (ulimit -v 60000; "$BPIPE" -b 16M --no-splice --stats-format json) \
            | (sleep 0.5; wc -c)
        echo "status ${PIPESTATUS[1]}"
    "#);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("status 1"), "{stdout} {}", out.stderr);
    assert!(
        out.stderr
            .contains("bpipe: cannot allocate a queue slot of 16.0 MiB: out of memory"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked") && !out.stderr.contains("memory allocation"));
    let exit = record(&out.stderr, "exit");
    assert_accounts(&exit);
    let written: u64 = stdout.lines().next().unwrap().trim().parse().unwrap();
    assert_eq!(exit.u64("bytes_out"), written);
}
