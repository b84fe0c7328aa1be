//! Each input's and each output's own part of a stats record. With several outputs every output
//! accounts for every byte read on its own (`bytes_in = bytes_out + bytes_dropped + bytes_unsent`
//! for each), and the record's totals are the sums over the outputs.

use std::time::Duration;

use crate::queue::{Drops, View};
use crate::report::accounts::Accounts;
use crate::report::counters::SideTotals;
use crate::report::snapshot::{Field, Kind, Unit, Value};

/// One endpoint's part: its name, then its own fields.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Part {
    pub(crate) name: String,
    pub(crate) fields: Vec<Field>,
}

impl Part {
    pub(crate) fn count(&self, name: &str) -> u64 {
        match self.fields.iter().find(|f| f.name == name).map(|f| f.value) {
            Some(Value::Count(n)) => n,
            _ => 0,
        }
    }

    pub(crate) fn text(&self, name: &str) -> &'static str {
        match self.fields.iter().find(|f| f.name == name).map(|f| f.value) {
            Some(Value::Text(t)) => t,
            _ => "",
        }
    }
}

fn count(name: &'static str, unit: Unit, n: u64) -> Field {
    Field {
        name,
        kind: Kind::Counter,
        unit,
        value: Value::Count(n),
    }
}

fn label(name: &'static str, text: &'static str) -> Field {
    Field {
        name,
        kind: Kind::Label,
        unit: Unit::None,
        value: Value::Text(text),
    }
}

fn seconds(name: &'static str, d: Duration) -> Field {
    Field {
        name,
        kind: Kind::Counter,
        unit: Unit::Seconds,
        value: Value::Seconds(d),
    }
}

/// What is known of one output when a record is taken.
pub(crate) struct OutputTally<'a> {
    pub(crate) name: &'a str,
    pub(crate) written: SideTotals,
    /// Its lane, with several outputs.
    pub(crate) lane: Option<View>,
    pub(crate) state: &'static str,
}

/// One output's accounts: what it wrote, what it lost to the queue's policy and to its own
/// lane's, and the rest, unsent (at exit, all that it did not get).
fn output_accounts(tally: &OutputTally<'_>, queue: &Accounts, at_exit: bool) -> Accounts {
    let Some(lane) = &tally.lane else {
        return *queue;
    };
    let bytes_out = tally.written.bytes;
    let bytes_dropped = queue.bytes_dropped + lane.drops.bytes;
    let bytes_unsent = match at_exit {
        true => queue.bytes_in.saturating_sub(bytes_out + bytes_dropped),
        false => queue.bytes_unsent + lane.refused_bytes + lane.discarded_bytes,
    };
    Accounts {
        bytes_in: queue.bytes_in,
        bytes_out,
        bytes_dropped,
        bytes_unsent,
    }
}

/// Every output's part, and the record's accounts: `queue` as worked out for the one queue
/// (`Accounts::of`), `queue_view` its view.
pub(crate) fn outputs(
    tallies: &[OutputTally<'_>],
    queue: &Accounts,
    queue_view: &View,
    at_exit: bool,
) -> (Vec<Part>, Accounts, Drops) {
    let mut total = Accounts {
        bytes_in: queue.bytes_in,
        ..Accounts::default()
    };
    let mut dropped = Drops::default();
    let parts = tallies
        .iter()
        .map(|tally| {
            let a = output_accounts(tally, queue, at_exit);
            let lane = tally.lane.unwrap_or_default();
            let records = queue_view.drops.records + lane.drops.records;
            dropped.chunks += queue_view.drops.chunks + lane.drops.chunks;
            dropped.records += records;
            let blocked = tally
                .lane
                .map_or(queue_view.reader_blocked, |l| l.reader_blocked);
            total.bytes_out += a.bytes_out;
            total.bytes_dropped += a.bytes_dropped;
            total.bytes_unsent += a.bytes_unsent;
            Part {
                name: tally.name.to_string(),
                fields: vec![
                    count("bytes_out", Unit::Bytes, a.bytes_out),
                    count("chunks_out", Unit::Chunks, tally.written.chunks),
                    count("bytes_dropped", Unit::Bytes, a.bytes_dropped),
                    count("records_dropped", Unit::Records, records),
                    count("bytes_unsent", Unit::Bytes, a.bytes_unsent),
                    seconds("blocked_s", blocked),
                    label("state", tally.state),
                ],
            }
        })
        .collect();
    dropped.bytes = total.bytes_dropped;
    (parts, total, dropped)
}

/// What is known of one input when a record is taken.
pub(crate) struct InputTally<'a> {
    pub(crate) name: &'a str,
    pub(crate) read: SideTotals,
    /// Its own queue's view, where inputs are merged; else the queue's.
    pub(crate) queue: View,
    pub(crate) state: &'static str,
}

pub(crate) fn inputs(tallies: &[InputTally<'_>]) -> Vec<Part> {
    tallies
        .iter()
        .map(|t| Part {
            name: t.name.to_string(),
            fields: vec![
                count("bytes_in", Unit::Bytes, t.read.bytes),
                count("chunks_in", Unit::Chunks, t.read.chunks),
                count("bytes_dropped", Unit::Bytes, t.queue.drops.bytes),
                count("records_dropped", Unit::Records, t.queue.drops.records),
                seconds("blocked_s", t.queue.reader_blocked),
                label("state", t.state),
            ],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(bytes: u64) -> SideTotals {
        SideTotals {
            bytes,
            chunks: 1,
            ..SideTotals::default()
        }
    }

    #[test]
    fn each_output_accounts_for_every_byte_and_the_totals_are_sums() {
        let queue = Accounts {
            bytes_in: 100,
            bytes_out: 0,
            bytes_dropped: 10,
            bytes_unsent: 0,
        };
        let mut dropping = View::default();
        dropping.drops.bytes = 30;
        let tallies = [
            OutputTally {
                name: "a",
                written: written(90),
                lane: Some(View::default()),
                state: "done",
            },
            OutputTally {
                name: "b",
                written: written(55),
                lane: Some(dropping),
                state: "detached",
            },
        ];
        let (parts, total, _) = outputs(&tallies, &queue, &View::default(), true);
        for part in &parts {
            let sum =
                part.count("bytes_out") + part.count("bytes_dropped") + part.count("bytes_unsent");
            assert_eq!(sum, 100, "{part:?}");
        }
        assert_eq!(parts[1].count("bytes_unsent"), 5);
        assert_eq!(parts[1].text("state"), "detached");
        assert_eq!(
            (total.bytes_out, total.bytes_dropped, total.bytes_unsent),
            (145, 50, 5)
        );
    }

    #[test]
    fn one_output_is_the_queue_itself() {
        let queue = Accounts {
            bytes_in: 10,
            bytes_out: 7,
            bytes_dropped: 2,
            bytes_unsent: 1,
        };
        let tally = OutputTally {
            name: "standard output",
            written: written(7),
            lane: None,
            state: "done",
        };
        let (parts, total, _) = outputs(&[tally], &queue, &View::default(), true);
        assert_eq!(total, queue);
        assert_eq!(parts[0].count("bytes_unsent"), 1);
    }
}
