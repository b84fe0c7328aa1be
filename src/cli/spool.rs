//! Flags for a second tier behind the queue: a bounded disk spool for the overflow, and the
//! watermarks that hold the writer back at the start and the reader back after the buffer filled.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueHint};

use crate::cli::units;

const SPOOL: &str = "Spool and watermarks";

/// How full the buffer (the queue and the spool) must be, or get back to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Level {
    Bytes(u64),
    /// A percentage of the buffer's capacity, above 0 and at most 100.
    Percent(f64),
    /// The end of the input: store and forward.
    Eof,
}

#[derive(Args, Debug, Default)]
pub struct SpoolArgs {
    /// When the queue is full, append what is read to a spool file in DIR instead of applying
    /// --on-full, and replay it in order as the writer frees room. The file has no name (nothing
    /// is left behind, even after kill -9), its space is reserved ahead, and memory stays bounded
    /// as without it. Needs --spool-max.
    #[arg(long, value_name = "DIR", requires = "spool_max", conflicts_with = "merge",
          value_hint = ValueHint::DirPath, help_heading = SPOOL)]
    pub spool: Option<PathBuf>,

    /// The most the spool holds on disk; when it is full, --on-full applies to what is read
    /// (drop-oldest evicts the spool's oldest whole records).
    #[arg(long, value_name = "SIZE", requires = "spool", value_parser = units::parse_positive_size,
          value_hint = ValueHint::Other, help_heading = SPOOL)]
    pub spool_max: Option<u64>,

    /// Hold the writer until the buffer (queue and spool) holds LEVEL, a size or a percentage of
    /// its capacity (-m plus --spool-max), or is full, or the input ends; eof waits for the end
    /// of the input (store and forward).
    #[arg(long, value_name = "LEVEL", value_parser = parse_start_level, conflicts_with = "merge",
          value_hint = ValueHint::Other, help_heading = SPOOL)]
    pub start_at: Option<Level>,

    /// Start the writer after DURATION even if the buffer is below --start-at.
    #[arg(long, value_name = "DURATION", requires = "start_at", value_parser = units::parse_duration,
          value_hint = ValueHint::Other, help_heading = SPOOL)]
    pub start_after: Option<Duration>,

    /// Once the buffer has filled, the reader waits (under --on-full block) until it has drained
    /// to LEVEL, a size or a percentage of its capacity, before it reads again.
    #[arg(long, value_name = "LEVEL", value_parser = parse_resume_level, conflicts_with = "merge",
          value_hint = ValueHint::Other, help_heading = SPOOL)]
    pub resume_at: Option<Level>,
}

/// `64M`, `50%` or `eof`.
pub fn parse_start_level(text: &str) -> Result<Level, String> {
    if text.trim().eq_ignore_ascii_case("eof") {
        return Ok(Level::Eof);
    }
    parse_resume_level(text).map_err(|e| format!("{e}, or eof"))
}

/// `64M` or `50%`.
pub fn parse_resume_level(text: &str) -> Result<Level, String> {
    let trimmed = text.trim();
    let Some(number) = trimmed.strip_suffix('%') else {
        return units::parse_size(trimmed)
            .map(Level::Bytes)
            .map_err(|_| format!("expected a size (64M) or a percentage (50%), got '{text}'"));
    };
    match number.trim().parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(Level::Percent(p)),
        _ => Err(format!(
            "a percentage is above 0 and at most 100, got '{text}'"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_sizes_percentages_or_eof() {
        assert_eq!(parse_start_level("64K"), Ok(Level::Bytes(65536)));
        assert_eq!(parse_start_level("50%"), Ok(Level::Percent(50.0)));
        assert_eq!(parse_start_level("12.5 %"), Ok(Level::Percent(12.5)));
        assert_eq!(parse_start_level("EOF"), Ok(Level::Eof));
        assert_eq!(parse_resume_level("0"), Ok(Level::Bytes(0)));
        assert!(parse_resume_level("eof").is_err());
        for bad in ["0%", "101%", "-5%", "half", "%"] {
            assert!(parse_start_level(bad).is_err(), "{bad}");
        }
    }
}
