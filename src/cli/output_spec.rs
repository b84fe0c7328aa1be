//! An output's spec: `PATH[,KEY=VALUE]...`, where the keys set that output's own policy for
//! falling behind (`slow=`) and its own rate limit (`rate=`). A comma in the path is doubled.

use std::ffi::OsStr;

use clap::ValueEnum;

use crate::cli::target::Target;
use crate::cli::units;

/// What an output that falls behind the others does when its lane is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SlowOutput {
    /// Hold the reader back, and with it every output; nothing is lost.
    Block,
    /// Skip the newest chunks (whole records in line mode) for this output only.
    Drop,
    /// Close this output after --detach-after of a full lane, or when a write to it fails.
    Detach,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputArg {
    /// `-` is standard output.
    pub target: Target,
    pub slow: Option<SlowOutput>,
    pub rate: Option<u64>,
}

/// Splits at single commas; a doubled comma stands for one comma.
fn split_spec(spec: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            (',', Some(',')) => {
                chars.next();
                part.push(',');
            }
            (',', _) => parts.push(std::mem::take(&mut part)),
            (c, _) => part.push(c),
        }
    }
    parts.push(part);
    parts
}

fn apply(arg: &mut OutputArg, option: &str) -> Result<(), String> {
    let (key, value) = option
        .split_once('=')
        .ok_or_else(|| format!("'{option}' is not KEY=VALUE (keys: slow, rate)"))?;
    match key {
        "slow" => {
            arg.slow = Some(
                SlowOutput::from_str(value, false)
                    .map_err(|_| format!("slow={value}: expected block, drop or detach"))?,
            )
        }
        "rate" => {
            arg.rate = Some(units::parse_rate(value).map_err(|e| format!("rate={value}: {e}"))?)
        }
        _ => return Err(format!("unknown key '{key}' (keys: slow, rate)")),
    }
    Ok(())
}

pub fn parse_output(spec: &str) -> Result<OutputArg, String> {
    let mut parts = split_spec(spec).into_iter();
    let path = parts.next().unwrap_or_default();
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    let mut arg = OutputArg {
        target: Target::parse(OsStr::new(&path))?,
        slow: None,
        rate: None,
    };
    for option in parts {
        apply(&mut arg, &option)?;
    }
    Ok(arg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn path(arg: &OutputArg) -> PathBuf {
        match &arg.target {
            Target::Path(path) => path.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_plain_path_has_no_options() {
        let arg = parse_output("backup.img").unwrap();
        assert_eq!(path(&arg), PathBuf::from("backup.img"));
        assert_eq!((arg.slow, arg.rate), (None, None));
    }

    #[test]
    fn options_follow_the_path() {
        let arg = parse_output("ship.fifo,slow=drop,rate=10MiB/s").unwrap();
        assert_eq!(path(&arg), PathBuf::from("ship.fifo"));
        assert_eq!(arg.slow, Some(SlowOutput::Drop));
        assert_eq!(arg.rate, Some(10 << 20));
    }

    #[test]
    fn a_doubled_comma_is_part_of_the_path() {
        let arg = parse_output("a,,b,slow=detach").unwrap();
        assert_eq!(path(&arg), PathBuf::from("a,b"));
        assert_eq!(arg.slow, Some(SlowOutput::Detach));
        assert_eq!(path(&parse_output("a,,").unwrap()), PathBuf::from("a,"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(
            parse_output("x,colour=red")
                .unwrap_err()
                .contains("unknown key 'colour'")
        );
        assert!(parse_output("x,slow=maybe").is_err());
        assert!(parse_output("x,rate=fast").is_err());
        assert!(parse_output("x,slow").is_err());
        assert!(parse_output(",slow=drop").is_err());
    }
}
