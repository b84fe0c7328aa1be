//! Flags for a relay that can be asked and steered while it runs (a control socket, metrics)
//! and for the client side of the same binary (`--query`, `--remote`, `--top`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, ValueEnum, ValueHint};

const CONTROL: &str = "Control";
const CLIENT: &str = "Asking a running bpipe";

/// Which side a pause or a resume is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PauseSide {
    /// Reading: the producer is held back once the queue is full.
    In,
    /// Writing: the queue fills.
    Out,
    /// Reading and writing.
    Both,
}

#[derive(Args, Debug, Default)]
pub struct ControlArgs {
    /// Answer control requests on the Unix socket PATH instead of the default,
    /// $XDG_RUNTIME_DIR/bpipe/PID.sock (else /tmp/bpipe-UID/PID.sock); unlike the default, a
    /// PATH that cannot be used stops bpipe before any byte moves.
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath, conflicts_with = "no_control",
          help_heading = CONTROL)]
    pub control: Option<PathBuf>,

    /// No control socket: --query, --remote and --top will not see this bpipe.
    #[arg(long, help_heading = CONTROL)]
    pub no_control: bool,

    /// Write the stats in the Prometheus text format to PATH (replaced whole, by rename) every
    /// interval (-i, default 10s) and at exit.
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath, help_heading = CONTROL)]
    pub metrics_file: Option<PathBuf>,

    /// Serve the same metrics over HTTP (GET /metrics) on [ADDR:]PORT; 127.0.0.1 unless ADDR
    /// is given.
    #[arg(long, value_name = "[ADDR:]PORT", value_parser = parse_listen, value_hint = ValueHint::Other,
          help_heading = CONTROL)]
    pub metrics_listen: Option<SocketAddr>,

    /// A constant label on every metric, e.g. job=backup (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_label, value_hint = ValueHint::Other,
          help_heading = CONTROL)]
    pub metrics_label: Vec<(String, String)>,

    /// Print the stats of the running bpipe PID (or on the socket PATH) and exit.
    #[arg(long, value_name = "PID|PATH", conflicts_with_all = ["remote", "top"], help_heading = CLIENT)]
    pub query: Option<String>,

    /// Change the running bpipe PID (or on the socket PATH): the -L, --read-rate, --on-full,
    /// --pause and --resume given here; exit 0 only if every change was accepted.
    #[arg(long, value_name = "PID|PATH", conflicts_with = "top", help_heading = CLIENT)]
    pub remote: Option<String>,

    /// With --remote: pause reading (in), writing (out), or both.
    #[arg(long, value_name = "SIDE", value_enum, num_args = 0..=1, default_missing_value = "both",
          requires = "remote", help_heading = CLIENT)]
    pub pause: Option<PauseSide>,

    /// With --remote: resume reading (in), writing (out), or both.
    #[arg(long, value_name = "SIDE", value_enum, num_args = 0..=1, default_missing_value = "both",
          requires = "remote", help_heading = CLIENT)]
    pub resume: Option<PauseSide>,

    /// A live table, refreshed every second, of every bpipe of this user on this machine.
    #[arg(long, help_heading = CLIENT)]
    pub top: bool,

    /// With --top: print one table (JSON Lines with --stats-format json) and exit.
    #[arg(long, requires = "top", help_heading = CLIENT)]
    pub once: bool,
}

/// `PORT` or `ADDR:PORT`, with an IPv6 address in brackets.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse::<SocketAddr>().map_err(|_| {
        format!("expected PORT or ADDR:PORT (e.g. 9187, 0.0.0.0:9187, [::1]:9187), got '{text}'")
    })
}

/// `KEY=VALUE`, where KEY is a Prometheus label name.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got '{text}'"))?;
    let valid = key
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if key.is_empty() || !valid || key.starts_with("__") {
        return Err(format!(
            "'{key}' is not a label name: letters, digits and _, not first a digit, not __"
        ));
    }
    if crate::report::prometheus::OWN_LABELS.contains(&key) {
        return Err(format!("'{key}' is a label bpipe sets itself"));
    }
    Ok((key.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_listens_on_loopback() {
        assert_eq!(parse_listen("9187").unwrap().to_string(), "127.0.0.1:9187");
        assert_eq!(
            parse_listen("0.0.0.0:80").unwrap().to_string(),
            "0.0.0.0:80"
        );
        assert_eq!(parse_listen("[::1]:80").unwrap().to_string(), "[::1]:80");
        assert!(parse_listen("localhost").is_err());
        assert!(parse_listen("99999").is_err());
    }

    #[test]
    fn labels_are_prometheus_names() {
        assert_eq!(
            parse_label("job=backup").unwrap(),
            ("job".into(), "backup".into())
        );
        assert_eq!(parse_label("a_1=").unwrap().1, "");
        for bad in [
            "=x", "1a=x", "a-b=x", "__x=y", "novalue", "output=x", "side=x",
        ] {
            assert!(parse_label(bad).is_err(), "{bad}");
        }
    }
}
