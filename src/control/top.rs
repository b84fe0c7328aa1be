//! `bpipe --top`: every running relay of this user, one line each, asked in parallel so that a
//! relay that does not answer cannot hold the table up.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::units::human_bytes;
use crate::cli::{Cli, StatsFormat};
use crate::control::conn::{self, Connection, Why};
use crate::control::dir;
use crate::control::json::{self, Kind, Value};
use crate::control::keys::Keys;

/// How long a relay has to answer before its row says "not answering".
const ANSWER_WITHIN: Duration = Duration::from_millis(200);
const REFRESH: Duration = Duration::from_secs(1);

/// What one relay said when asked for its stats.
pub(crate) struct Sample {
    pid: u32,
    /// When the answer came, for rates computed from two samples.
    at: Instant,
    /// The stats record as the relay wrote it, or why there is none.
    stats: Result<String, Why>,
}

fn ask_stats(path: &Path, timeout: Duration) -> Result<String, Why> {
    let deadline = Instant::now() + timeout;
    let mut conn = Connection::open(path, timeout)?;
    conn.finish_by(deadline);
    let line = conn.ask("stats")?;
    let reply = conn::check(&line)?;
    if reply.get("ok").and_then(Value::as_bool) != Some(true) {
        let error = reply.get("error").and_then(Value::as_str).unwrap_or("");
        return Err(format!("refused: {error}"));
    }
    match reply.get("stats") {
        Some(stats) if matches!(stats.kind, Kind::Object(_)) => Ok(stats.raw.to_string()),
        _ => Err("its reply has no stats".to_string()),
    }
}

/// Asks every relay at once; each has `timeout` to answer.
pub(crate) fn gather(relays: &[(u32, PathBuf)], timeout: Duration) -> Vec<Sample> {
    thread::scope(|scope| {
        let asking: Vec<_> = relays
            .iter()
            .map(|(pid, path)| {
                scope.spawn(move || Sample {
                    pid: *pid,
                    stats: ask_stats(path, timeout),
                    at: Instant::now(),
                })
            })
            .collect();
        let asked = asking.into_iter().map(|asking| asking.join());
        asked
            .zip(relays)
            .map(|(sample, (pid, _))| {
                sample.unwrap_or_else(|_| Sample {
                    pid: *pid,
                    at: Instant::now(),
                    stats: Err("the query failed".to_string()),
                })
            })
            .collect()
    })
}

/// A short name for an input or output: `stdin`, `stdout`, a file's own name.
fn short(name: &str) -> String {
    const MOST: usize = 16;
    let name = match name {
        "standard input" => "stdin",
        "standard output" => "stdout",
        path => path
            .rsplit('/')
            .find(|part| !part.is_empty())
            .unwrap_or(path),
    };
    if name.chars().count() <= MOST {
        return name.to_string();
    }
    let kept: String = name.chars().take(MOST - 1).collect();
    format!("{kept}…")
}

fn names(stats: &Value, key: &str) -> String {
    let list = stats.get(key).and_then(Value::as_array).unwrap_or(&[]);
    let name = |i: usize| short(list[i].get("name").and_then(Value::as_str).unwrap_or("?"));
    match list.len() {
        0 => "-".to_string(),
        1 => name(0),
        2 => format!("{},{}", name(0), name(1)),
        n => format!("{},+{}", name(0), n - 1),
    }
}

fn state(stats: &Value) -> String {
    match stats.get("state").and_then(Value::as_str) {
        Some("blocked") => "blocked on output".to_string(),
        Some("idle") => "idle on input".to_string(),
        Some(other) => other.to_string(),
        None => "-".to_string(),
    }
}

/// A rate from the record, else from this sample and the one before.
fn rate(stats: &Value, side: &str, earlier: Option<(&Value, Instant)>, at: Instant) -> String {
    let given = stats
        .get(&format!("rate_{side}_Bps"))
        .and_then(Value::as_f64);
    let computed = || {
        let (before, then) = earlier?;
        let key = format!("bytes_{side}");
        let moved = stats
            .get(&key)?
            .as_u64()?
            .checked_sub(before.get(&key)?.as_u64()?)?;
        let seconds = at.checked_duration_since(then)?.as_secs_f64();
        (seconds > 0.0).then(|| moved as f64 / seconds)
    };
    match given.or_else(computed) {
        Some(rate) => format!("{}/s", human_bytes(rate as u64)),
        None => "-".to_string(),
    }
}

fn fill(stats: &Value) -> String {
    let field = |key| stats.get(key).and_then(Value::as_u64);
    match (field("queue_bytes"), field("queue_capacity_bytes")) {
        (Some(bytes), Some(capacity)) if capacity > 0 => {
            format!("{:.0}%", 100.0 * bytes as f64 / capacity as f64)
        }
        _ => "-".to_string(),
    }
}

fn bytes(stats: &Value, key: &str) -> String {
    stats
        .get(key)
        .and_then(Value::as_u64)
        .map_or_else(|| "-".to_string(), human_bytes)
}

const HEADER: [&str; 8] = [
    "PID", "FLOW", "OUT", "RATE IN", "RATE OUT", "QUEUE", "DROPPED", "STATE",
];
/// Which columns are numbers, aligned to the right.
const RIGHT: [bool; 8] = [true, false, true, true, true, true, true, false];

fn row(sample: &Sample, earlier: &HashMap<u32, Sample>) -> Vec<String> {
    let pid = sample.pid.to_string();
    let parsed = sample
        .stats
        .as_deref()
        .ok()
        .and_then(|s| json::parse(s).ok());
    let Some(stats) = parsed else {
        let mut cells = vec!["-".to_string(); HEADER.len()];
        cells[0] = pid;
        cells[HEADER.len() - 1] = "not answering".to_string();
        return cells;
    };
    let before = earlier.get(&sample.pid).and_then(|e| {
        let text = e.stats.as_deref().ok()?;
        Some((json::parse(text).ok()?, e.at))
    });
    let before = before.as_ref().map(|(v, at)| (v, *at));
    vec![
        pid,
        format!("{} → {}", names(&stats, "inputs"), names(&stats, "outputs")),
        bytes(&stats, "bytes_out"),
        rate(&stats, "in", before, sample.at),
        rate(&stats, "out", before, sample.at),
        fill(&stats),
        bytes(&stats, "bytes_dropped"),
        state(&stats),
    ]
}

/// The table for people, lined up in columns; `earlier` is the last refresh's samples by PID.
pub(crate) fn table(samples: &[Sample], earlier: &HashMap<u32, Sample>) -> String {
    let mut rows = vec![HEADER.map(str::to_string).to_vec()];
    rows.extend(samples.iter().map(|s| row(s, earlier)));
    let mut widths = [0usize; HEADER.len()];
    for cells in &rows {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for cells in &rows {
        let line: Vec<String> = cells
            .iter()
            .zip(widths.iter().zip(RIGHT))
            .map(|(cell, (&width, right))| match right {
                true => format!("{cell:>width$}"),
                false => format!("{cell:<width$}"),
            })
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    if samples.is_empty() {
        text.push_str("(no bpipe of this user is running)\n");
    }
    text
}

/// One JSON line per relay: its stats record with a `pid` key first, or the PID and why there
/// is no record.
pub(crate) fn json_lines(samples: &[Sample]) -> String {
    let mut text = String::new();
    for sample in samples {
        let pid = sample.pid;
        match &sample.stats {
            // `ask_stats` kept only objects: the key goes in after the brace.
            Ok(stats) => match stats[1..].trim_start() {
                rest if rest.starts_with('}') => text.push_str(&format!("{{\"pid\":{pid}}}")),
                rest => text.push_str(&format!("{{\"pid\":{pid},{rest}")),
            },
            Err(why) => {
                let mut error = Vec::new();
                // Writing into a Vec cannot fail.
                let _ = crate::report::json::write_string(&mut error, why);
                let error = String::from_utf8_lossy(&error);
                text.push_str(&format!("{{\"pid\":{pid},\"error\":{error}}}"));
            }
        }
        text.push('\n');
    }
    text
}

/// `bpipe --top`: a live table until SIGINT or q, or one table (or JSON Lines) with `--once`.
pub fn top(cli: &Cli, once: bool) -> anyhow::Result<u8> {
    let mut out = io::stdout().lock();
    if once {
        let samples = gather(&dir::running(), ANSWER_WITHIN);
        let text = match cli.stats_format {
            StatsFormat::Json => json_lines(&samples),
            StatsFormat::Human => table(&samples, &HashMap::new()),
        };
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .context("write standard output")?;
        return Ok(0);
    }
    live(&mut out)?;
    Ok(0)
}

/// Redraws the table every second: in place on a terminal (clear and home), else one table
/// after another.
fn live(out: &mut impl Write) -> anyhow::Result<()> {
    let keys = Keys::start().context("watch the keyboard")?;
    let redraw = io::stdout().is_terminal();
    let mut earlier: HashMap<u32, Sample> = HashMap::new();
    loop {
        let started = Instant::now();
        let samples = gather(&dir::running(), ANSWER_WITHIN);
        let mut text = table(&samples, &earlier);
        if redraw {
            text.insert_str(0, "\x1b[H\x1b[2J");
        } else {
            text.push('\n');
        }
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .context("write standard output")?;
        earlier = samples
            .into_iter()
            .filter(|s| s.stats.is_ok())
            .map(|s| (s.pid, s))
            .collect();
        if keys.quit_within(REFRESH.saturating_sub(started.elapsed())) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::conn::fake::Fake;

    const STATS: &str = r#"{"event":"query","bytes_in":3145728,"bytes_out":2097152,"bytes_dropped":1024,"queue_bytes":524288,"queue_capacity_bytes":1048576,"rate_in_Bps":1048576.0,"rate_out_Bps":524288.0,"state":"blocked","inputs":[{"name":"standard input"}],"outputs":[{"name":"/var/backups/a-very-long-file-name.img"},{"name":"standard output"}]}"#;

    fn sample(pid: u32, stats: Result<&str, &str>) -> Sample {
        Sample {
            pid,
            at: Instant::now(),
            stats: stats.map(str::to_string).map_err(str::to_string),
        }
    }

    #[test]
    fn a_row_shows_flow_fill_rates_and_state() {
        let text = table(
            &[sample(41, Ok(STATS)), sample(42, Err("no answer"))],
            &HashMap::new(),
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("PID  FLOW"), "{text}");
        let cells: Vec<&str> = lines[1]
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            cells,
            [
                "41",
                "stdin → a-very-long-fil…,stdout",
                "2.0 MiB",
                "1.0 MiB/s",
                "512.0 KiB/s",
                "50%",
                "1.0 KiB",
                "blocked on output"
            ],
            "{text}"
        );
        assert!(lines[2].trim_start().starts_with("42 "), "{text}");
        assert!(lines[2].ends_with("not answering"), "{text}");
    }

    #[test]
    fn states_read_as_words() {
        let state_of = |s: &str| state(&json::parse(&format!(r#"{{"state":"{s}"}}"#)).unwrap());
        assert_eq!(state_of("idle"), "idle on input");
        assert_eq!(state_of("blocked"), "blocked on output");
        assert_eq!(state_of("throttled"), "throttled");
        assert_eq!(state_of("paused"), "paused");
    }

    #[test]
    fn without_rates_in_the_record_two_samples_give_them() {
        let first = r#"{"bytes_in":0,"bytes_out":0}"#;
        let second = r#"{"bytes_in":2097152,"bytes_out":1048576}"#;
        let mut now = sample(7, Ok(second));
        let mut before = sample(7, Ok(first));
        before.at = now.at;
        now.at += Duration::from_secs(2);
        let earlier = HashMap::from([(7, before)]);
        let cells = row(&now, &earlier);
        assert_eq!(cells[3..5], ["1.0 MiB/s", "512.0 KiB/s"], "{cells:?}");
        assert_eq!(row(&now, &HashMap::new())[3], "-");
    }

    #[test]
    fn json_lines_add_the_pid() {
        let text = json_lines(&[
            sample(41, Ok(STATS)),
            sample(42, Err("no answer within 200ms")),
            sample(43, Ok("{}")),
        ]);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["pid"], 41);
        assert_eq!(lines[0]["state"], "blocked");
        assert_eq!(lines[0]["bytes_out"], 2097152);
        assert_eq!(lines[1]["pid"], 42);
        assert_eq!(lines[1]["error"], "no answer within 200ms");
        assert_eq!(lines[2], serde_json::json!({"pid": 43}));
    }

    #[test]
    fn a_silent_relay_does_not_hold_up_the_others() {
        let answering = Fake::start(|_| Some(format!(r#"{{"ok":true,"stats":{STATS}}}"#)));
        let silent = Fake::start(|_| None);
        let refusing = Fake::start(|_| Some(r#"{"ok":false,"error":"not yours"}"#.into()));
        let odd = Fake::start(|_| Some(r#"{"ok":true,"stats":"fine"}"#.into()));
        let relays = [
            (1, answering.path.clone()),
            (2, silent.path.clone()),
            (3, refusing.path.clone()),
            (4, PathBuf::from("/nonexistent/4.sock")),
            (5, odd.path.clone()),
        ];
        let start = Instant::now();
        let samples = gather(&relays, ANSWER_WITHIN);
        let took = start.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(
            samples.iter().map(|s| s.pid).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(samples[0].stats.as_deref(), Ok(STATS));
        assert_eq!(samples[1].stats, Err("no answer within 200ms".to_string()));
        assert_eq!(samples[2].stats, Err("refused: not yours".to_string()));
        assert!(samples[3].stats.is_err());
        assert_eq!(samples[4].stats, Err("its reply has no stats".to_string()));
        let text = table(&samples, &HashMap::new());
        assert_eq!(text.matches("not answering").count(), 4, "{text}");
    }

    #[test]
    fn an_empty_table_says_so() {
        let text = table(&[], &HashMap::new());
        assert!(
            text.ends_with("(no bpipe of this user is running)\n"),
            "{text}"
        );
        assert_eq!(json_lines(&[]), "");
    }
}
