//! The one-line human form of a stats record.

use std::io::{self, Write};

use crate::cli::units::{human_bytes, human_seconds};
use crate::report::Render;
use crate::report::parts::Part;
use crate::report::snapshot::{Event, Snapshot};

pub(crate) struct Human;

/// `1 chunk`, `2 chunks`.
fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn write_traffic(s: &Snapshot, w: &mut Vec<u8>) -> io::Result<()> {
    let (t, a) = (&s.traffic, &s.traffic.accounts);
    let tag = match s.event {
        Event::Exit => "",
        Event::Signal => "[signal] ",
        Event::Interval => "[interval] ",
        Event::Query => "[query] ",
    };
    write!(
        w,
        "bpipe: {tag}{} in {} ({}/s)",
        human_bytes(a.bytes_out),
        human_seconds(s.run.elapsed),
        human_bytes(s.average_rate() as u64),
    )?;
    if let Some(rates) = s.rates {
        write!(
            w,
            ", now in {}/s out {}/s",
            human_bytes(rates.input as u64),
            human_bytes(rates.output as u64)
        )?;
    }
    write!(
        w,
        ", {}; dropped {} ({}",
        counted(t.chunks_out, "chunk"),
        human_bytes(a.bytes_dropped),
        counted(t.chunks_dropped, "chunk")
    )?;
    if s.run.line_mode {
        write!(w, ", {}", counted(t.records_dropped, "record"))?;
    }
    write!(w, ")")
}

fn write_queue_and_run(s: &Snapshot, w: &mut Vec<u8>) -> io::Result<()> {
    let (q, r) = (&s.queue, &s.run);
    write!(
        w,
        "; queue {}/{} chunks {}, peak {} {} of {}",
        q.chunks,
        q.capacity_chunks,
        human_bytes(q.bytes as u64),
        counted(q.peak_chunks as u64, "chunk"),
        human_bytes(q.peak_bytes as u64),
        human_bytes(q.capacity_bytes as u64),
    )?;
    write!(
        w,
        "; reader blocked {}, writer idle {}",
        human_seconds(r.reader_blocked),
        human_seconds(r.writer_idle)
    )?;
    if !r.throttled().is_zero() {
        write!(w, ", throttled {}", human_seconds(r.throttled()))?;
    }
    if s.traffic.accounts.bytes_unsent > 0 {
        write!(
            w,
            "; unsent {}",
            human_bytes(s.traffic.accounts.bytes_unsent)
        )?;
    }
    if r.output_closed {
        write!(w, "; output closed")?;
    }
    Ok(())
}

/// The spool, when it was used, and the waits at the watermarks, when there were any.
fn write_spool(s: &Snapshot, w: &mut Vec<u8>) -> io::Result<()> {
    let spool = &s.spool;
    if spool.spooled > 0 {
        write!(
            w,
            "; spool {}, peak {} of {}, {} spooled",
            human_bytes(spool.bytes),
            human_bytes(spool.peak_bytes),
            human_bytes(spool.max_bytes),
            human_bytes(spool.spooled),
        )?;
    }
    if spool.start_waits > 0 {
        write!(w, "; start held {}", human_seconds(spool.start_wait))?;
    }
    if spool.resume_waits > 0 {
        write!(
            w,
            "; resume waits {} ({})",
            spool.resume_waits,
            human_seconds(spool.resume_wait)
        )?;
    }
    Ok(())
}

/// Connection attempts beyond the first, and the stream's digest when it was taken.
fn write_net(s: &Snapshot, w: &mut Vec<u8>) -> io::Result<()> {
    let net = &s.net;
    if net.connect_attempts > 1 {
        write!(w, "; {} connect attempts", net.connect_attempts)?;
    }
    if let (Some(alg), Some(digest)) = (net.checksum_alg, net.checksum) {
        write!(w, "; checksum {alg} {}", crate::net::hex(&digest))?;
    }
    Ok(())
}

/// With several outputs (or inputs), one short part each: `; out.img 1.0 MiB done`.
fn write_parts(parts: &[Part], bytes_key: &str, w: &mut Vec<u8>) -> io::Result<()> {
    if parts.len() < 2 {
        return Ok(());
    }
    for part in parts {
        write!(
            w,
            "; {} {} {}",
            part.name,
            human_bytes(part.count(bytes_key)),
            part.text("state")
        )?;
        let dropped = part.count("bytes_dropped");
        if dropped > 0 {
            write!(w, ", dropped {}", human_bytes(dropped))?;
        }
    }
    Ok(())
}

impl Render for Human {
    fn render(&self, snapshot: &Snapshot, w: &mut Vec<u8>) -> io::Result<()> {
        write_traffic(snapshot, w)?;
        write_queue_and_run(snapshot, w)?;
        write_spool(snapshot, w)?;
        write_net(snapshot, w)?;
        write_parts(&snapshot.inputs, "bytes_in", w)?;
        write_parts(&snapshot.outputs, "bytes_out", w)?;
        writeln!(w)
    }

    fn note(&self, message: &str, w: &mut Vec<u8>) -> io::Result<()> {
        writeln!(w, "bpipe: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::snapshot::sample;

    fn render(snapshot: &Snapshot) -> String {
        let mut out = Vec::new();
        Human.render(snapshot, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn human_line_tells_what_happened() {
        let mut snapshot = sample();
        snapshot.run.output_closed = true;
        snapshot.traffic.accounts.bytes_unsent = 4096;
        let text = render(&snapshot);
        assert!(
            text.starts_with("bpipe: 2.0 MiB in 2.00s (1.0 MiB/s), 32 chunks"),
            "{text}"
        );
        assert!(text.contains("dropped 1.0 MiB (16 chunks)"), "{text}");
        assert!(text.contains("peak 16 chunks 1.0 MiB of 1.0 MiB"), "{text}");
        assert!(
            text.contains("reader blocked 0.25s, writer idle 0.01s"),
            "{text}"
        );
        assert!(text.contains("throttled 0.50s"), "{text}");
        assert!(text.contains("unsent 4.0 KiB; output closed"), "{text}");
        assert_eq!(text.lines().count(), 1);
    }

    #[test]
    fn the_spool_and_the_watermarks_show_when_used() {
        let mut snapshot = sample();
        assert!(!render(&snapshot).contains("spool"));
        snapshot.spool.max_bytes = 64 << 20;
        assert!(
            !render(&snapshot).contains("spool"),
            "configured, never used"
        );
        snapshot.spool.spooled = 40 << 20;
        snapshot.spool.peak_bytes = 12 << 20;
        snapshot.spool.start_waits = 1;
        snapshot.spool.start_wait = std::time::Duration::from_millis(1200);
        snapshot.spool.resume_waits = 3;
        snapshot.spool.resume_wait = std::time::Duration::from_millis(2100);
        let text = render(&snapshot);
        assert!(
            text.contains(
                "; spool 0 B, peak 12.0 MiB of 64.0 MiB, 40.0 MiB spooled; start held 1.20s; \
                 resume waits 3 (2.10s)"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_digest_and_retries_show_when_there_are_any() {
        let mut snapshot = sample();
        snapshot.net.connect_attempts = 1;
        assert!(!render(&snapshot).contains("connect"));
        snapshot.net.connect_attempts = 3;
        snapshot.net.checksum_alg = Some("blake3");
        snapshot.net.checksum = Some([0xab; 32]);
        let line = render(&snapshot);
        assert!(line.contains("; 3 connect attempts"), "{line}");
        assert!(
            line.contains(&format!("; checksum blake3 {}", "ab".repeat(32))),
            "{line}"
        );
    }

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(counted(1, "chunk"), "1 chunk");
        assert_eq!(counted(0, "record"), "0 records");
        let mut snapshot = sample();
        snapshot.traffic.chunks_out = 1;
        snapshot.traffic.chunks_dropped = 1;
        snapshot.queue.peak_chunks = 1;
        let text = render(&snapshot);
        assert!(
            text.contains(", 1 chunk; dropped 1.0 MiB (1 chunk)"),
            "{text}"
        );
        assert!(text.contains("peak 1 chunk 1.0 MiB"), "{text}");
    }
}
