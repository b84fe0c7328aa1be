//! Counters the stages bump without locks, and the stats records made from them.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::cli::units::{human_bytes, human_seconds};

/// Each side's counters sit on their own cache line, so the two stages never contend on one.
#[derive(Default)]
#[repr(align(64))]
struct ReaderSide {
    bytes_in: AtomicU64,
    chunks_in: AtomicU64,
    bytes_dropped: AtomicU64,
    chunks_dropped: AtomicU64,
    records_dropped: AtomicU64,
    throttled_ns: AtomicU64,
}

#[derive(Default)]
#[repr(align(64))]
struct WriterSide {
    bytes_out: AtomicU64,
    chunks_out: AtomicU64,
    throttled_ns: AtomicU64,
}

#[derive(Default)]
pub struct Counters {
    reader: ReaderSide,
    writer: WriterSide,
    discarded: AtomicU64,
}

/// The counters' values at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub bytes_in: u64,
    pub chunks_in: u64,
    pub bytes_out: u64,
    pub chunks_out: u64,
    pub bytes_dropped: u64,
    pub chunks_dropped: u64,
    pub records_dropped: u64,
    pub bytes_discarded: u64,
    pub throttled: Duration,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Counters {
    pub fn read(&self, bytes: usize) {
        add(&self.reader.bytes_in, bytes as u64);
    }

    pub fn chunk_in(&self) {
        add(&self.reader.chunks_in, 1);
    }

    pub fn dropped(&self, bytes: usize, records: u64) {
        add(&self.reader.bytes_dropped, bytes as u64);
        add(&self.reader.chunks_dropped, 1);
        add(&self.reader.records_dropped, records);
    }

    pub fn wrote(&self, bytes: usize) {
        add(&self.writer.bytes_out, bytes as u64);
    }

    pub fn chunk_out(&self) {
        add(&self.writer.chunks_out, 1);
    }

    /// Accepted bytes thrown away because the output failed or the relay was stopped.
    pub fn discarded(&self, bytes: usize) {
        add(&self.discarded, bytes as u64);
    }

    pub fn reader_throttled(&self, d: Duration) {
        add(&self.reader.throttled_ns, nanos(d));
    }

    pub fn writer_throttled(&self, d: Duration) {
        add(&self.writer.throttled_ns, nanos(d));
    }

    pub fn totals(&self) -> Totals {
        let throttled =
            self.reader.throttled_ns.load(Relaxed) + self.writer.throttled_ns.load(Relaxed);
        Totals {
            bytes_in: self.reader.bytes_in.load(Relaxed),
            chunks_in: self.reader.chunks_in.load(Relaxed),
            bytes_out: self.writer.bytes_out.load(Relaxed),
            chunks_out: self.writer.chunks_out.load(Relaxed),
            bytes_dropped: self.reader.bytes_dropped.load(Relaxed),
            chunks_dropped: self.reader.chunks_dropped.load(Relaxed),
            records_dropped: self.reader.records_dropped.load(Relaxed),
            bytes_discarded: self.discarded.load(Relaxed),
            throttled: Duration::from_nanos(throttled),
        }
    }
}

/// `1 chunk`, `2 chunks`.
fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Exit,
    Signal,
    Interval,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Event::Exit => "exit",
            Event::Signal => "signal",
            Event::Interval => "interval",
        }
    }
}

/// Rates over the last interval, in bytes per second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    pub input: f64,
    pub output: f64,
}

/// One stats record: a plain value, so that its two renderings can be tested against a buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub event: Event,
    pub elapsed: Duration,
    pub totals: Totals,
    pub queue_chunks: usize,
    pub queue_bytes: usize,
    pub queue_capacity_chunks: usize,
    pub queue_capacity_bytes: usize,
    pub queue_peak_chunks: usize,
    pub queue_peak_bytes: usize,
    pub reader_blocked: Duration,
    pub writer_idle: Duration,
    pub bytes_unsent: u64,
    pub output_closed: bool,
    pub path: &'static str,
    pub line_mode: bool,
    pub rates: Option<Rates>,
    pub exit_status: Option<u8>,
}

impl Snapshot {
    fn average_rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.totals.bytes_out as f64 / secs
        } else {
            0.0
        }
    }

    pub fn write_json(&self, w: &mut impl Write) -> io::Result<()> {
        let t = &self.totals;
        write!(
            w,
            "{{\"event\":\"{}\",\"elapsed_s\":{:.6},\"bytes_in\":{},\"bytes_out\":{},\
             \"bytes_dropped\":{},\"chunks_in\":{},\"chunks_out\":{},\"chunks_dropped\":{},\
             \"records_dropped\":{},\"queue_chunks\":{},\"queue_bytes\":{},\
             \"queue_capacity_chunks\":{},\"queue_capacity_bytes\":{},\"queue_peak_chunks\":{},\
             \"queue_peak_bytes\":{},\"reader_blocked_s\":{:.6},\"writer_idle_s\":{:.6},\
             \"throttled_s\":{:.6},\"bytes_unsent\":{},\"output_closed\":{},\"path\":\"{}\"",
            self.event.name(),
            self.elapsed.as_secs_f64(),
            t.bytes_in,
            t.bytes_out,
            t.bytes_dropped,
            t.chunks_in,
            t.chunks_out,
            t.chunks_dropped,
            t.records_dropped,
            self.queue_chunks,
            self.queue_bytes,
            self.queue_capacity_chunks,
            self.queue_capacity_bytes,
            self.queue_peak_chunks,
            self.queue_peak_bytes,
            self.reader_blocked.as_secs_f64(),
            self.writer_idle.as_secs_f64(),
            t.throttled.as_secs_f64(),
            self.bytes_unsent,
            self.output_closed,
            self.path,
        )?;
        if let Some(rates) = self.rates {
            write!(
                w,
                ",\"rate_in_Bps\":{:.1},\"rate_out_Bps\":{:.1}",
                rates.input, rates.output
            )?;
        }
        if let Some(status) = self.exit_status {
            write!(w, ",\"exit_status\":{status}")?;
        }
        writeln!(w, "}}")
    }

    pub fn write_human(&self, w: &mut impl Write) -> io::Result<()> {
        let t = &self.totals;
        let tag = match self.event {
            Event::Exit => "",
            Event::Signal => "[signal] ",
            Event::Interval => "[interval] ",
        };
        write!(
            w,
            "bpipe: {tag}{} in {} ({}/s)",
            human_bytes(t.bytes_out),
            human_seconds(self.elapsed),
            human_bytes(self.average_rate() as u64),
        )?;
        if let Some(rates) = self.rates {
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
            human_bytes(t.bytes_dropped),
            counted(t.chunks_dropped, "chunk")
        )?;
        if self.line_mode {
            write!(w, ", {}", counted(t.records_dropped, "record"))?;
        }
        write!(
            w,
            "); queue {}/{} chunks {}, peak {} {} of {}",
            self.queue_chunks,
            self.queue_capacity_chunks,
            human_bytes(self.queue_bytes as u64),
            counted(self.queue_peak_chunks as u64, "chunk"),
            human_bytes(self.queue_peak_bytes as u64),
            human_bytes(self.queue_capacity_bytes as u64),
        )?;
        write!(
            w,
            "; reader blocked {}, writer idle {}",
            human_seconds(self.reader_blocked),
            human_seconds(self.writer_idle)
        )?;
        if !t.throttled.is_zero() {
            write!(w, ", throttled {}", human_seconds(t.throttled))?;
        }
        if self.bytes_unsent > 0 {
            write!(w, "; unsent {}", human_bytes(self.bytes_unsent))?;
        }
        if self.output_closed {
            write!(w, "; output closed")?;
        }
        writeln!(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            event: Event::Exit,
            elapsed: Duration::from_millis(2000),
            totals: Totals {
                bytes_in: 3 << 20,
                chunks_in: 48,
                bytes_out: 2 << 20,
                chunks_out: 32,
                bytes_dropped: 1 << 20,
                chunks_dropped: 16,
                records_dropped: 0,
                bytes_discarded: 0,
                throttled: Duration::from_millis(500),
            },
            queue_chunks: 0,
            queue_bytes: 0,
            queue_capacity_chunks: 16,
            queue_capacity_bytes: 1 << 20,
            queue_peak_chunks: 16,
            queue_peak_bytes: 1 << 20,
            reader_blocked: Duration::from_millis(250),
            writer_idle: Duration::from_millis(10),
            bytes_unsent: 0,
            output_closed: false,
            path: "copy",
            line_mode: false,
            rates: None,
            exit_status: Some(0),
        }
    }

    fn render(snapshot: &Snapshot, json: bool) -> String {
        let mut out = Vec::new();
        if json {
            snapshot.write_json(&mut out).unwrap();
        } else {
            snapshot.write_human(&mut out).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_has_every_key_on_one_line() {
        let text = render(&sample(), true);
        assert!(
            text.ends_with("}\n") && text.matches('\n').count() == 1,
            "{text}"
        );
        for key in [
            "\"event\":\"exit\"",
            "\"elapsed_s\":2.000000",
            "\"bytes_in\":3145728",
            "\"bytes_out\":2097152",
            "\"bytes_dropped\":1048576",
            "\"chunks_in\":48",
            "\"chunks_out\":32",
            "\"chunks_dropped\":16",
            "\"records_dropped\":0",
            "\"queue_chunks\":0",
            "\"queue_bytes\":0",
            "\"queue_capacity_chunks\":16",
            "\"queue_capacity_bytes\":1048576",
            "\"queue_peak_chunks\":16",
            "\"queue_peak_bytes\":1048576",
            "\"reader_blocked_s\":0.250000",
            "\"writer_idle_s\":0.010000",
            "\"throttled_s\":0.500000",
            "\"bytes_unsent\":0",
            "\"output_closed\":false",
            "\"path\":\"copy\"",
            "\"exit_status\":0",
        ] {
            assert!(text.contains(key), "{key} missing from {text}");
        }
        assert!(!text.contains("rate_in_Bps"));
    }

    #[test]
    fn interval_json_has_rates_and_no_exit_status() {
        let mut snapshot = sample();
        snapshot.event = Event::Interval;
        snapshot.exit_status = None;
        snapshot.rates = Some(Rates {
            input: 1024.0,
            output: 512.0,
        });
        let text = render(&snapshot, true);
        assert!(text.contains("\"event\":\"interval\""));
        assert!(text.contains("\"rate_in_Bps\":1024.0,\"rate_out_Bps\":512.0"));
        assert!(!text.contains("exit_status"));
    }

    #[test]
    fn human_line_tells_what_happened() {
        let mut snapshot = sample();
        snapshot.output_closed = true;
        snapshot.bytes_unsent = 4096;
        let text = render(&snapshot, false);
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
    fn counts_agree_with_their_nouns() {
        assert_eq!(counted(1, "chunk"), "1 chunk");
        assert_eq!(counted(0, "record"), "0 records");
        let mut snapshot = sample();
        snapshot.totals.chunks_out = 1;
        snapshot.totals.chunks_dropped = 1;
        snapshot.queue_peak_chunks = 1;
        let text = render(&snapshot, false);
        assert!(
            text.contains(", 1 chunk; dropped 1.0 MiB (1 chunk)"),
            "{text}"
        );
        assert!(text.contains("peak 1 chunk 1.0 MiB"), "{text}");
    }

    #[test]
    fn counters_add_up() {
        let c = Counters::default();
        c.read(10);
        c.chunk_in();
        c.dropped(4, 1);
        c.wrote(6);
        c.chunk_out();
        c.writer_throttled(Duration::from_millis(3));
        let t = c.totals();
        assert_eq!(
            (t.bytes_in, t.bytes_out, t.bytes_dropped, t.records_dropped),
            (10, 6, 4, 1)
        );
        assert_eq!(t.throttled, Duration::from_millis(3));
    }
}
