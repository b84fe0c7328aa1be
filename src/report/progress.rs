//! The live status line of `--progress`: what moved, how fast, how full the queue is, and who is
//! waiting on whom.

use std::time::Duration;

use crate::cli::units::human_bytes;
use crate::report::snapshot::Snapshot;

const BAR_WIDTH: usize = 10;

/// Who is holding the relay up right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waiting {
    Nobody,
    /// The queue is full: the reader waits for the writer (the consumer is slower).
    ReaderBlocked,
    /// The queue is empty: the writer waits for the reader (the producer is slower).
    WriterIdle,
    /// The rate limit is holding data back.
    Throttled,
    /// `--start-at` holds the writer until the buffer has filled to it.
    Held,
}

impl Waiting {
    fn label(self) -> &'static str {
        match self {
            Waiting::Nobody => "flowing",
            Waiting::ReaderBlocked => "reader blocked",
            Waiting::WriterIdle => "writer idle",
            Waiting::Throttled => "throttled",
            Waiting::Held => "held at start",
        }
    }
}

fn bar(fill: usize, capacity: usize) -> String {
    let filled = (fill * BAR_WIDTH).div_ceil(capacity.max(1)).min(BAR_WIDTH);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(BAR_WIDTH - filled))
}

/// With several outputs, the one furthest behind and how far: what the stream has read that it
/// has neither written, nor dropped, nor given up on.
fn slowest_output(snapshot: &Snapshot) -> Option<(&str, u64)> {
    if snapshot.outputs.len() < 2 {
        return None;
    }
    let bytes_in = snapshot.traffic.accounts.bytes_in;
    snapshot
        .outputs
        .iter()
        .map(|part| {
            let done =
                part.count("bytes_out") + part.count("bytes_dropped") + part.count("bytes_unsent");
            (part.name.as_str(), bytes_in.saturating_sub(done))
        })
        .max_by_key(|&(_, lag)| lag)
}

/// The line, without the carriage return and erase that place it. With several outputs the
/// amount is what was read, which each output gets, and the slowest output's lag follows.
pub(crate) fn render(
    snapshot: &Snapshot,
    rate_out: f64,
    expected: Option<u64>,
    waiting: Waiting,
) -> String {
    let slowest = slowest_output(snapshot);
    let accounts = &snapshot.traffic.accounts;
    let out = match slowest {
        Some(_) => accounts.bytes_in,
        None => accounts.bytes_out,
    };
    let queue = &snapshot.queue;
    let mut line = format!(
        "{} {}/s queue {} {}/{}",
        human_bytes(out),
        human_bytes(rate_out as u64),
        bar(queue.bytes, queue.capacity_bytes),
        queue.chunks,
        queue.capacity_chunks,
    );
    let spool = &snapshot.spool;
    if spool.max_bytes > 0 {
        line += &format!(
            " spool {} {}",
            bar(
                usize::try_from(spool.bytes).unwrap_or(usize::MAX),
                usize::try_from(spool.max_bytes).unwrap_or(usize::MAX)
            ),
            human_bytes(spool.bytes)
        );
    }
    if snapshot.traffic.chunks_dropped > 0 {
        line += &format!(
            " dropped {}",
            human_bytes(snapshot.traffic.accounts.bytes_dropped)
        );
    }
    if let Some((name, lag)) = slowest {
        line += &format!(" lag {} {name}", human_bytes(lag));
    }
    if let Some(total) = expected {
        let percent = (out as f64 * 100.0 / total as f64).min(100.0);
        line += &format!(" {percent:.0}%");
        if rate_out > 0.0 && out < total {
            let eta = Duration::from_secs(((total - out) as f64 / rate_out).ceil() as u64);
            line += &format!(" ETA {}", humantime::format_duration(eta));
        }
    }
    line += " ";
    line += waiting.label();
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::snapshot::sample;

    #[test]
    fn the_bar_shows_the_queue_fill() {
        assert_eq!(bar(0, 100), "[----------]");
        assert_eq!(bar(50, 100), "[#####-----]");
        assert_eq!(bar(100, 100), "[##########]");
        assert_eq!(bar(1, 100), "[#---------]");
    }

    #[test]
    fn the_line_has_rate_fill_percent_and_who_waits() {
        let mut snapshot = sample();
        snapshot.traffic.accounts.bytes_out = 1 << 20;
        snapshot.traffic.chunks_dropped = 0;
        snapshot.queue.chunks = 8;
        snapshot.queue.bytes = 1 << 19;
        let line = render(
            &snapshot,
            1024.0 * 1024.0,
            Some(4 << 20),
            Waiting::ReaderBlocked,
        );
        assert_eq!(
            line,
            "1.0 MiB 1.0 MiB/s queue [#####-----] 8/16 25% ETA 3s reader blocked"
        );
    }

    #[test]
    fn the_spool_fill_is_drawn_beside_the_queue_fill() {
        let mut snapshot = sample();
        snapshot.traffic.chunks_dropped = 0;
        snapshot.spool.max_bytes = 64 << 20;
        snapshot.spool.bytes = 16 << 20;
        let line = render(&snapshot, 0.0, None, Waiting::Held);
        assert!(
            line.contains("0/16 spool [###-------] 16.0 MiB held at start"),
            "{line}"
        );
    }

    #[test]
    fn with_several_outputs_the_slowest_ones_lag_is_shown() {
        use crate::report::counters::SideTotals;
        use crate::report::parts::{OutputTally, outputs};
        let mut snapshot = sample();
        snapshot.traffic.chunks_dropped = 0;
        let queue = crate::report::accounts::Accounts {
            bytes_in: 3 << 20,
            ..Default::default()
        };
        let tally = |name, bytes| OutputTally {
            name,
            written: SideTotals {
                bytes,
                ..SideTotals::default()
            },
            lane: Some(crate::queue::View::default()),
            state: "open",
        };
        let tallies = [tally("fast", 3 << 20), tally("slow", 1 << 20)];
        let view = crate::queue::View::default();
        (snapshot.outputs, snapshot.traffic.accounts, _) = outputs(&tallies, &queue, &view, false);
        let line = render(&snapshot, 0.0, None, Waiting::Nobody);
        assert!(line.starts_with("3.0 MiB 0 B/s"), "{line}");
        assert!(line.contains(" lag 2.0 MiB slow "), "{line}");
    }
}
