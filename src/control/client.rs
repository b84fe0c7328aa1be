//! `bpipe --query` and `bpipe --remote`: ask a running relay for its stats, or change it, over
//! its control socket.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::anyhow;
use clap::ValueEnum;

use crate::cli::units::human_bytes;
use crate::cli::{Cli, PauseSide, StatsFormat};
use crate::control::conn::{self, Connection};
use crate::control::dir;
use crate::control::json::Value;

/// A relay answers within 50 ms even when both its stages are blocked; seconds leave room for
/// a loaded machine and still end the wait for one that is stuck.
const TIMEOUT: Duration = Duration::from_secs(3);

const NOTHING_TO_CHANGE: &str =
    "bpipe: --remote: nothing to change (give -L, --read-rate, --on-full, --pause or --resume)";

/// The line for a target that is not a bpipe, or that did not answer as one.
fn no_answer(target: &str, why: &str) -> anyhow::Error {
    anyhow!("{target}: no bpipe answers there ({why})")
}

fn stdout_error(error: io::Error) -> anyhow::Error {
    anyhow::Error::new(error).context("write standard output")
}

fn ask(conn: &mut Connection, target: &str, request: &str) -> anyhow::Result<String> {
    conn.ask(request).map_err(|why| no_answer(target, &why))
}

fn check<'l>(line: &'l str, target: &str) -> anyhow::Result<Value<'l>> {
    conn::check(line).map_err(|why| no_answer(target, &why))
}

fn refusal(reply: &Value) -> String {
    reply
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("no reason given")
        .to_string()
}

/// `bpipe --query TARGET`: the relay's stats, as its human line or one JSON record on stdout.
pub fn query(cli: &Cli, target: &str) -> anyhow::Result<u8> {
    let mut out = io::stdout().lock();
    query_at(
        &dir::resolve(target),
        target,
        cli.stats_format,
        TIMEOUT,
        &mut out,
    )?;
    Ok(0)
}

fn query_at(
    path: &Path,
    target: &str,
    format: StatsFormat,
    timeout: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut conn = Connection::open(path, timeout).map_err(|why| no_answer(target, &why))?;
    let line = ask(&mut conn, target, "stats")?;
    let reply = check(&line, target)?;
    if reply.get("ok").and_then(Value::as_bool) != Some(true) {
        return Err(anyhow!("{target}: stats: refused: {}", refusal(&reply)));
    }
    let text = match format {
        StatsFormat::Human => reply.get("human").and_then(Value::as_str),
        StatsFormat::Json => reply.get("stats").map(|stats| stats.raw),
    };
    let text = text.ok_or_else(|| no_answer(target, "its reply has no stats"))?;
    writeln!(out, "{text}").map_err(stdout_error)
}

/// One change `--remote` asks for: the request line, and how it reads in the report.
#[derive(Debug, PartialEq, Eq)]
struct Change {
    request: String,
    label: String,
}

impl Change {
    fn new(request: String, label: String) -> Change {
        Change { request, label }
    }

    fn rate(side: &str, rate: u64) -> Change {
        Change::new(
            format!("rate {side} {rate}"),
            format!("rate {side} {}/s", human_bytes(rate)),
        )
    }

    fn pausing(verb: &str, side: PauseSide) -> Change {
        let request = match side {
            PauseSide::In => format!("{verb} in"),
            PauseSide::Out => format!("{verb} out"),
            PauseSide::Both => verb.to_string(),
        };
        Change::new(request.clone(), request)
    }
}

/// The changes given on the command line, in the order they are sent.
fn changes(cli: &Cli) -> Vec<Change> {
    let mut changes = Vec::new();
    if let Some(rate) = cli.rate_limit {
        changes.push(Change::rate("out", rate));
    }
    if let Some(rate) = cli.read_rate {
        changes.push(Change::rate("in", rate));
    }
    if cli.on_full_given
        && let Some(policy) = cli.policy().to_possible_value()
    {
        let request = format!("on-full {}", policy.get_name());
        changes.push(Change::new(request.clone(), request));
    }
    if let Some(side) = cli.control.pause {
        changes.push(Change::pausing("pause", side));
    }
    if let Some(side) = cli.control.resume {
        changes.push(Change::pausing("resume", side));
    }
    changes
}

/// `bpipe --remote TARGET` with the changes to send: 0 if the relay accepted every one, 1 if
/// it refused any, 2 if none was given.
pub fn remote(cli: &Cli, target: &str) -> anyhow::Result<u8> {
    let changes = changes(cli);
    if changes.is_empty() {
        let _ = writeln!(io::stderr(), "{NOTHING_TO_CHANGE}");
        return Ok(2);
    }
    let accepted = remote_at(
        &dir::resolve(target),
        target,
        &changes,
        cli.stats_format,
        TIMEOUT,
        (&mut io::stdout().lock(), &mut io::stderr().lock()),
    )?;
    Ok(if accepted { 0 } else { 1 })
}

/// Sends each change and reports the relay's answer: in JSON the reply lines as they came, on
/// stdout; for people a line per change, on stdout if accepted and on stderr if refused.
fn remote_at(
    path: &Path,
    target: &str,
    changes: &[Change],
    format: StatsFormat,
    timeout: Duration,
    (out, err): (&mut dyn Write, &mut dyn Write),
) -> anyhow::Result<bool> {
    let mut conn = Connection::open(path, timeout).map_err(|why| no_answer(target, &why))?;
    let mut all_accepted = true;
    for change in changes {
        let line = ask(&mut conn, target, &change.request)?;
        let reply = check(&line, target)?;
        let accepted = reply.get("ok").and_then(Value::as_bool) == Some(true);
        all_accepted &= accepted;
        match format {
            StatsFormat::Json => writeln!(out, "{line}").map_err(stdout_error)?,
            StatsFormat::Human if accepted => {
                writeln!(out, "bpipe: {target}: {}: ok", change.label).map_err(stdout_error)?;
            }
            StatsFormat::Human => {
                let _ = writeln!(
                    err,
                    "bpipe: {target}: {}: refused: {}",
                    change.label,
                    refusal(&reply)
                );
            }
        }
    }
    Ok(all_accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::conn::fake::Fake;
    use crate::supervise::outcome::error_line;

    const SHORT: Duration = Duration::from_millis(200);

    const STATS: &str = r#"{"ok":true,"pid":7,"stats":{"event":"query","bytes_in":5,"state":"blocked"},"human":"bpipe: [query] 5 B in 1.00s"}"#;

    fn answer_stats(line: &str) -> Option<String> {
        (line == "stats").then(|| STATS.to_string())
    }

    fn query_text(fake: &Fake, format: StatsFormat) -> Result<String, String> {
        let mut out = Vec::new();
        query_at(&fake.path, "7", format, SHORT, &mut out).map_err(|e| error_line(&e))?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn a_query_prints_the_human_line_or_the_record() {
        let fake = Fake::start(answer_stats);
        assert_eq!(
            query_text(&fake, StatsFormat::Human).unwrap(),
            "bpipe: [query] 5 B in 1.00s\n"
        );
        assert_eq!(
            query_text(&fake, StatsFormat::Json).unwrap(),
            "{\"event\":\"query\",\"bytes_in\":5,\"state\":\"blocked\"}\n"
        );
        assert_eq!(fake.heard(), ["stats", "stats"]);
    }

    #[test]
    fn a_query_that_gets_no_stats_says_why() {
        let silent = Fake::start(|_| None);
        assert_eq!(
            query_text(&silent, StatsFormat::Human).unwrap_err(),
            "bpipe: 7: no bpipe answers there (no answer within 200ms)"
        );
        let stranger = Fake::start(|_| Some("220 smtp ready".into()));
        assert_eq!(
            query_text(&stranger, StatsFormat::Human).unwrap_err(),
            "bpipe: 7: no bpipe answers there (not a bpipe reply: '220 smtp ready')"
        );
        let refusing = Fake::start(|_| Some(r#"{"ok":false,"error":"not yours"}"#.into()));
        assert_eq!(
            query_text(&refusing, StatsFormat::Json).unwrap_err(),
            "bpipe: 7: stats: refused: not yours"
        );
        let empty = Fake::start(|_| Some(r#"{"ok":true}"#.into()));
        assert_eq!(
            query_text(&empty, StatsFormat::Json).unwrap_err(),
            "bpipe: 7: no bpipe answers there (its reply has no stats)"
        );
    }

    fn parse(args: &[&str]) -> Cli {
        let args = ["bpipe", "--remote", "7"].iter().chain(args);
        Cli::try_parse_checked(args).unwrap()
    }

    fn requests(args: &[&str]) -> Vec<String> {
        changes(&parse(args))
            .into_iter()
            .map(|c| c.request)
            .collect()
    }

    #[test]
    fn the_flags_given_become_requests() {
        assert_eq!(
            requests(&[
                "-L",
                "8MiB/s",
                "--read-rate",
                "1K",
                "--pause=out",
                "--resume"
            ]),
            ["rate out 8388608", "rate in 1024", "pause out", "resume"]
        );
        assert_eq!(
            requests(&["--on-full", "drop-oldest"]),
            ["on-full drop-oldest"]
        );
        assert_eq!(requests(&["-d", "--pause"]), ["on-full drop", "pause"]);
        assert_eq!(requests(&["--resume=in"]), ["resume in"]);
        assert!(
            requests(&[]).is_empty(),
            "the default --on-full is not sent"
        );
        assert_eq!(
            changes(&parse(&["-L", "8M"]))[0].label,
            "rate out 8.0 MiB/s"
        );
    }

    fn answer_changes(line: &str) -> Option<String> {
        Some(match line {
            "rate out 8388608" => r#"{"ok":true,"side":"out","rate_Bps":8388608}"#.into(),
            "pause in" => r#"{"ok":true,"paused_in":true,"paused_out":false}"#.into(),
            _ => r#"{"ok":false,"error":"'sometimes' is not a policy"}"#.into(),
        })
    }

    fn remote_text(fake: &Fake, args: &[&str], format: StatsFormat) -> (bool, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let changes = changes(&parse(args));
        let accepted = remote_at(
            &fake.path,
            "7",
            &changes,
            format,
            SHORT,
            (&mut out, &mut err),
        )
        .unwrap();
        let text = |bytes| String::from_utf8(bytes).unwrap();
        (accepted, text(out), text(err))
    }

    #[test]
    fn remote_reports_each_change() {
        let fake = Fake::start(answer_changes);
        let (accepted, out, err) =
            remote_text(&fake, &["-L", "8MiB/s", "--pause=in"], StatsFormat::Human);
        assert!(accepted);
        assert_eq!(
            out,
            "bpipe: 7: rate out 8.0 MiB/s: ok\nbpipe: 7: pause in: ok\n"
        );
        assert_eq!(err, "");
        assert_eq!(fake.heard(), ["rate out 8388608", "pause in"]);
    }

    #[test]
    fn one_refused_change_fails_the_lot() {
        let fake = Fake::start(answer_changes);
        let (accepted, out, err) = remote_text(
            &fake,
            &["-L", "8MiB/s", "--on-full", "fail"],
            StatsFormat::Human,
        );
        assert!(!accepted);
        assert_eq!(out, "bpipe: 7: rate out 8.0 MiB/s: ok\n");
        assert_eq!(
            err,
            "bpipe: 7: on-full fail: refused: 'sometimes' is not a policy\n"
        );
        let (accepted, out, err) = remote_text(
            &fake,
            &["-L", "8MiB/s", "--on-full", "fail"],
            StatsFormat::Json,
        );
        assert!(!accepted);
        assert_eq!(
            out,
            "{\"ok\":true,\"side\":\"out\",\"rate_Bps\":8388608}\n\
             {\"ok\":false,\"error\":\"'sometimes' is not a policy\"}\n"
        );
        assert_eq!(err, "");
    }

    #[test]
    fn remote_without_an_answer_is_an_error() {
        let fake = Fake::start(|_| Some("not json".into()));
        let changes = changes(&parse(&["--pause"]));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let error = remote_at(
            &fake.path,
            "7",
            &changes,
            StatsFormat::Human,
            SHORT,
            (&mut out, &mut err),
        )
        .unwrap_err();
        assert_eq!(
            error_line(&error),
            "bpipe: 7: no bpipe answers there (not a bpipe reply: 'not json')"
        );
    }
}
