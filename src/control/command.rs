//! The control protocol's requests: one per line, parsed into a `Command` before anything is
//! changed, so a bad line changes nothing.

use crate::cli::{OnFull, units};

/// Which side of the relay a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    In,
    Out,
}

impl Side {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Side::In => "in",
            Side::Out => "out",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Stats,
    /// A new rate for one side, or none (`off`).
    Rate(Side, Option<u64>),
    /// Pause or resume one side, or both.
    Pause(Option<Side>),
    Resume(Option<Side>),
    OnFull(OnFull),
    /// An output's name, or its index.
    Detach(String),
    Stop,
}

fn side(word: &str) -> Result<Side, String> {
    match word {
        "in" => Ok(Side::In),
        "out" => Ok(Side::Out),
        _ => Err(format!("'{word}' is not a side: in or out")),
    }
}

fn optional_side(words: &[&str]) -> Result<Option<Side>, String> {
    match words {
        [] => Ok(None),
        [word] => side(word).map(Some),
        _ => Err("expected at most one side: in or out".into()),
    }
}

fn policy(word: &str) -> Result<OnFull, String> {
    use clap::ValueEnum;
    OnFull::from_str(word, false)
        .map_err(|_| format!("'{word}' is not a policy: block, drop, drop-oldest or fail"))
}

impl Command {
    pub(crate) fn parse(line: &str) -> Result<Command, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["stats"] => Ok(Command::Stats),
            ["rate", which, "off"] => Ok(Command::Rate(side(which)?, None)),
            ["rate", which, rate] => {
                Ok(Command::Rate(side(which)?, Some(units::parse_rate(rate)?)))
            }
            ["pause", rest @ ..] => Ok(Command::Pause(optional_side(rest)?)),
            ["resume", rest @ ..] => Ok(Command::Resume(optional_side(rest)?)),
            ["on-full", word] => Ok(Command::OnFull(policy(word)?)),
            ["detach", name] => Ok(Command::Detach((*name).to_string())),
            ["stop"] => Ok(Command::Stop),
            [] => Err("empty request".into()),
            [word, ..] => Err(format!(
                "unknown request '{word}' (stats, rate, pause, resume, on-full, detach, stop)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_into_commands() {
        assert_eq!(Command::parse("stats"), Ok(Command::Stats));
        assert_eq!(
            Command::parse("rate out 8MiB/s"),
            Ok(Command::Rate(Side::Out, Some(8 << 20)))
        );
        assert_eq!(
            Command::parse("rate in off"),
            Ok(Command::Rate(Side::In, None))
        );
        assert_eq!(Command::parse("pause"), Ok(Command::Pause(None)));
        assert_eq!(
            Command::parse("resume out"),
            Ok(Command::Resume(Some(Side::Out)))
        );
        assert_eq!(
            Command::parse("on-full drop-oldest"),
            Ok(Command::OnFull(OnFull::DropOldest))
        );
        assert_eq!(Command::parse("detach 1"), Ok(Command::Detach("1".into())));
        assert_eq!(Command::parse("  stop  "), Ok(Command::Stop));
    }

    #[test]
    fn bad_requests_say_why() {
        for (line, why) in [
            ("", "empty"),
            ("rate sideways 1M", "not a side"),
            ("rate out fast", "expected a rate"),
            ("rate out 0", "greater than zero"),
            ("on-full sometimes", "not a policy"),
            ("pause in out", "at most one side"),
            ("frobnicate", "unknown request 'frobnicate'"),
        ] {
            let error = Command::parse(line).unwrap_err();
            assert!(error.contains(why), "{line:?}: {error}");
        }
    }
}
