//! One stats record, grouped (traffic, queue, run), and the one list of its fields that every
//! machine-readable rendering walks, so that a new key is added in one place.

use std::time::Duration;

use crate::report::accounts::Accounts;
use crate::report::parts::Part;
use crate::spool::SpoolView;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Exit,
    Signal,
    Interval,
    /// Asked for on the control socket.
    Query,
}

impl Event {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Event::Exit => "exit",
            Event::Signal => "signal",
            Event::Interval => "interval",
            Event::Query => "query",
        }
    }
}

/// Rates over the last interval, in bytes per second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Rates {
    pub(crate) input: f64,
    pub(crate) output: f64,
}

/// What moved, what was dropped, and what will not be sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Traffic {
    pub(crate) accounts: Accounts,
    pub(crate) chunks_in: u64,
    pub(crate) chunks_out: u64,
    pub(crate) chunks_dropped: u64,
    pub(crate) records_dropped: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueueStats {
    pub(crate) chunks: usize,
    pub(crate) bytes: usize,
    pub(crate) capacity_chunks: usize,
    pub(crate) capacity_bytes: usize,
    pub(crate) peak_chunks: usize,
    pub(crate) peak_bytes: usize,
}

/// Time and state of the run as a whole.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RunStats {
    pub(crate) elapsed: Duration,
    pub(crate) reader_blocked: Duration,
    pub(crate) writer_idle: Duration,
    pub(crate) throttled_read: Duration,
    pub(crate) throttled_write: Duration,
    pub(crate) output_closed: bool,
    /// How each side moved its bytes: `splice` or `copy`.
    pub(crate) path_in: &'static str,
    pub(crate) path_out: &'static str,
    pub(crate) line_mode: bool,
    /// Time some side was paused from the control socket.
    pub(crate) paused: Duration,
    /// What the relay is doing: running, blocked, idle, throttled or paused.
    pub(crate) state: &'static str,
}

impl RunStats {
    /// Time either rate limit held data back.
    pub(crate) fn throttled(&self) -> Duration {
        self.throttled_read + self.throttled_write
    }

    /// The data path as a whole: zero-copy only when neither side copied.
    pub(crate) fn path(&self) -> &'static str {
        if self.path_in == "splice" && self.path_out == "splice" {
            "splice"
        } else {
            "copy"
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Snapshot {
    pub(crate) event: Event,
    pub(crate) traffic: Traffic,
    pub(crate) queue: QueueStats,
    pub(crate) run: RunStats,
    /// The disk spool and the watermarks (all zero without them).
    pub(crate) spool: SpoolView,
    pub(crate) rates: Option<Rates>,
    pub(crate) exit_status: Option<u8>,
    /// Each input's own part, and each output's, in the order given.
    pub(crate) inputs: Vec<Part>,
    pub(crate) outputs: Vec<Part>,
    pub(crate) net: NetView,
}

/// What the network endpoints add: connection attempts and the stream's digest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NetView {
    pub(crate) connect_attempts: u64,
    pub(crate) checksum: Option<[u8; 32]>,
    /// The digest's algorithm, when the stream is digested.
    pub(crate) checksum_alg: Option<&'static str>,
}

/// What a field measures, as metrics systems tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only ever grows during a run.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Describes the record or the run.
    Label,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    Bytes,
    Chunks,
    Records,
    Seconds,
    BytesPerSecond,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Value {
    Count(u64),
    Seconds(Duration),
    Rate(f64),
    Flag(bool),
    Text(&'static str),
    /// A name that may be missing (JSON null).
    Maybe(Option<&'static str>),
    /// A 256-bit digest, in hex, or JSON null without one.
    Digest(Option<[u8; 32]>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) unit: Unit,
    pub(crate) value: Value,
}

fn field(name: &'static str, kind: Kind, unit: Unit, value: Value) -> Field {
    Field {
        name,
        kind,
        unit,
        value,
    }
}

fn bytes(name: &'static str, kind: Kind, n: impl TryInto<u64>) -> Field {
    field(
        name,
        kind,
        Unit::Bytes,
        Value::Count(n.try_into().unwrap_or(u64::MAX)),
    )
}

fn count(name: &'static str, kind: Kind, unit: Unit, n: impl TryInto<u64>) -> Field {
    field(
        name,
        kind,
        unit,
        Value::Count(n.try_into().unwrap_or(u64::MAX)),
    )
}

fn seconds(name: &'static str, kind: Kind, d: Duration) -> Field {
    field(name, kind, Unit::Seconds, Value::Seconds(d))
}

impl Snapshot {
    /// Every field of the record, in the order the JSON form has always had.
    pub(crate) fn fields(&self) -> Vec<Field> {
        use Kind::{Counter, Gauge, Label};
        let (t, q, r) = (&self.traffic, &self.queue, &self.run);
        let a = &t.accounts;
        let mut fields = vec![
            field("event", Label, Unit::None, Value::Text(self.event.name())),
            seconds("elapsed_s", Counter, r.elapsed),
            bytes("bytes_in", Counter, a.bytes_in),
            bytes("bytes_out", Counter, a.bytes_out),
            bytes("bytes_dropped", Counter, a.bytes_dropped),
            count("chunks_in", Counter, Unit::Chunks, t.chunks_in),
            count("chunks_out", Counter, Unit::Chunks, t.chunks_out),
            count("chunks_dropped", Counter, Unit::Chunks, t.chunks_dropped),
            count("records_dropped", Counter, Unit::Records, t.records_dropped),
            count("queue_chunks", Gauge, Unit::Chunks, q.chunks),
            bytes("queue_bytes", Gauge, q.bytes),
            count(
                "queue_capacity_chunks",
                Gauge,
                Unit::Chunks,
                q.capacity_chunks,
            ),
            bytes("queue_capacity_bytes", Gauge, q.capacity_bytes),
            count("queue_peak_chunks", Gauge, Unit::Chunks, q.peak_chunks),
            bytes("queue_peak_bytes", Gauge, q.peak_bytes),
            seconds("reader_blocked_s", Counter, r.reader_blocked),
            seconds("writer_idle_s", Counter, r.writer_idle),
            seconds("throttled_s", Counter, r.throttled()),
            seconds("throttled_read_s", Counter, r.throttled_read),
            seconds("throttled_write_s", Counter, r.throttled_write),
            seconds("paused_s", Counter, r.paused),
            bytes("bytes_unsent", Counter, a.bytes_unsent),
            field(
                "output_closed",
                Label,
                Unit::None,
                Value::Flag(r.output_closed),
            ),
            field("path", Label, Unit::None, Value::Text(r.path())),
            field("path_in", Label, Unit::None, Value::Text(r.path_in)),
            field("path_out", Label, Unit::None, Value::Text(r.path_out)),
            field("state", Label, Unit::None, Value::Text(r.state)),
        ];
        fields.extend(self.spool_fields());
        fields.extend(self.net_fields());
        if let Some(rates) = self.rates {
            let rate = |name, value| field(name, Gauge, Unit::BytesPerSecond, Value::Rate(value));
            fields.push(rate("rate_in_Bps", rates.input));
            fields.push(rate("rate_out_Bps", rates.output));
        }
        if let Some(status) = self.exit_status {
            fields.push(count("exit_status", Label, Unit::None, status));
        }
        fields
    }

    fn spool_fields(&self) -> [Field; 8] {
        use Kind::{Counter, Gauge};
        let s = &self.spool;
        [
            bytes("spool_bytes", Gauge, s.bytes),
            bytes("spool_peak_bytes", Gauge, s.peak_bytes),
            bytes("spool_max_bytes", Gauge, s.max_bytes),
            bytes("bytes_spooled", Counter, s.spooled),
            count("start_waits", Counter, Unit::None, s.start_waits),
            seconds("start_wait_s", Counter, s.start_wait),
            count("resume_waits", Counter, Unit::None, s.resume_waits),
            seconds("resume_wait_s", Counter, s.resume_wait),
        ]
    }

    fn net_fields(&self) -> [Field; 3] {
        let n = &self.net;
        [
            count(
                "connect_attempts",
                Kind::Counter,
                Unit::None,
                n.connect_attempts,
            ),
            field(
                "checksum",
                Kind::Label,
                Unit::None,
                Value::Digest(n.checksum),
            ),
            field(
                "checksum_alg",
                Kind::Label,
                Unit::None,
                Value::Maybe(n.checksum_alg),
            ),
        ]
    }

    pub(crate) fn average_rate(&self) -> f64 {
        let secs = self.run.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.traffic.accounts.bytes_out as f64 / secs
        } else {
            0.0
        }
    }
}

#[cfg(test)]
pub(crate) fn sample() -> Snapshot {
    Snapshot {
        event: Event::Exit,
        traffic: Traffic {
            accounts: Accounts {
                bytes_in: 3 << 20,
                bytes_out: 2 << 20,
                bytes_dropped: 1 << 20,
                bytes_unsent: 0,
            },
            chunks_in: 48,
            chunks_out: 32,
            chunks_dropped: 16,
            records_dropped: 0,
        },
        queue: QueueStats {
            chunks: 0,
            bytes: 0,
            capacity_chunks: 16,
            capacity_bytes: 1 << 20,
            peak_chunks: 16,
            peak_bytes: 1 << 20,
        },
        run: RunStats {
            elapsed: Duration::from_millis(2000),
            reader_blocked: Duration::from_millis(250),
            writer_idle: Duration::from_millis(10),
            throttled_read: Duration::from_millis(200),
            throttled_write: Duration::from_millis(300),
            output_closed: false,
            path_in: "copy",
            path_out: "copy",
            line_mode: false,
            paused: Duration::ZERO,
            state: "running",
        },
        spool: SpoolView::default(),
        rates: None,
        exit_status: Some(0),
        inputs: Vec::new(),
        outputs: Vec::new(),
        net: NetView::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_unique_and_snake_case() {
        let mut snapshot = sample();
        snapshot.rates = Some(Rates::default());
        let names: Vec<_> = snapshot.fields().iter().map(|f| f.name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()))
        );
    }

    #[test]
    fn the_path_is_splice_only_when_both_sides_spliced() {
        let mut run = sample().run;
        for (path_in, path_out, path) in [
            ("splice", "splice", "splice"),
            ("splice", "copy", "copy"),
            ("copy", "splice", "copy"),
            ("copy", "copy", "copy"),
        ] {
            (run.path_in, run.path_out) = (path_in, path_out);
            assert_eq!(run.path(), path, "{path_in} in, {path_out} out");
        }
    }

    #[test]
    fn throttled_is_both_sides_together() {
        let fields = sample().fields();
        let value = |name: &str| fields.iter().find(|f| f.name == name).unwrap().value;
        assert_eq!(
            value("throttled_s"),
            Value::Seconds(Duration::from_millis(500))
        );
        assert_eq!(
            value("throttled_read_s"),
            Value::Seconds(Duration::from_millis(200))
        );
        assert_eq!(
            value("throttled_write_s"),
            Value::Seconds(Duration::from_millis(300))
        );
    }
}
