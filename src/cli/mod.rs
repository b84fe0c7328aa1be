//! The command line: flags, their parsers and their help. Nothing here moves data.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum, ValueHint};

pub mod control;
pub mod net;
pub mod output_spec;
pub mod spool;
pub mod target;
pub mod units;

pub use control::{ControlArgs, PauseSide};
pub use net::NetArgs;
pub use output_spec::{OutputArg, SlowOutput};
pub use spool::{Level, SpoolArgs};
pub use target::{Address, Target};

const IO: &str = "Input/Output";
const BUFFERING: &str = "Buffering";
const OVERLOAD: &str = "Overload";
const RATE: &str = "Rate";
const REPORTING: &str = "Reporting";

pub const EXIT_STATUS: &str = "\
Exit status:
  0    all input was relayed
  1    an I/O error (unreadable input, failed output)
  2    usage error
  3    rejected: the queue was full under --on-full fail
  4    stalled: nothing moved for --stall-timeout
  5    an output was detached (slow=detach), the others got everything
  6    integrity: a network stream arrived truncated, or its checksum differs
  141  the output closed early (broken pipe)
  128+N  stopped by signal N (SIGHUP 129, SIGINT 130, SIGTERM 143)

Send SIGUSR1 to print a stats snapshot without stopping.";

/// What to do with new data when the queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnFull {
    /// Stop reading until the writer frees room; nothing is lost.
    Block,
    /// Discard the newly read chunk (drop-newest).
    Drop,
    /// Discard the oldest queued chunk and keep the new one.
    DropOldest,
    /// Stop reading, write what was accepted, exit with status 3.
    Fail,
}

impl OnFull {
    /// The policy as the flag spells it: `drop-oldest`.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_string())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatsFormat {
    /// One line for people.
    Human,
    /// One JSON object per line, for scripts.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RateUnit {
    /// Rates count bytes.
    Bytes,
    /// Rates count records (line mode only).
    Lines,
}

/// A bounded, observable buffer between a producer and a consumer.
///
/// bpipe reads its input into a bounded queue of chunks and writes them out from a second thread,
/// so a slow consumer either holds the producer back, loses data by a named policy, or fails
/// early, and the summary on standard error says what happened.
#[derive(Parser, Debug)]
#[command(name = "bpipe", version, after_help = EXIT_STATUS, max_term_width = 100)]
pub struct Cli {
    /// Read these files in order instead of standard input; - is standard input,
    /// tcp-listen:[ADDR:]PORT a connection accepted there, tcp:HOST:PORT one made there.
    #[arg(value_name = "FILE", value_parser = target::TargetParser, value_hint = ValueHint::FilePath)]
    pub files: Vec<Target>,

    /// Write to PATH (created or truncated) instead of standard output; - is standard output.
    /// Give it several times to send the stream to each: every output has its own lane of -n
    /// chunks (and -m bytes), sharing the chunks, not copying them, so with N outputs at most
    /// (N+1) x -n chunks exist. SPEC is
    /// PATH[,slow=POLICY][,rate=RATE], that output's own --slow-output and --rate-limit; a
    /// comma in PATH is written twice. PATH may be tcp:HOST:PORT or tcp-listen:[ADDR:]PORT.
    #[arg(short, long, value_name = "SPEC", value_parser = output_spec::parse_output, allow_hyphen_values = true,
          value_hint = ValueHint::FilePath, help_heading = IO)]
    pub output: Vec<OutputArg>,

    /// Append to the --output files instead of truncating them.
    #[arg(long, requires = "output", help_heading = IO)]
    pub append: bool,

    /// Read all FILEs at once, one reader each, and merge them: whole chunks, or whole records
    /// in line mode, taking turns when the queue is full; each input gets an equal share of -n.
    #[arg(long, help_heading = IO)]
    pub merge: bool,

    /// Always use read/write, never the zero-copy splice(2) path.
    #[arg(long, help_heading = IO)]
    pub no_splice: bool,

    /// Chunk size: the most one read moves [1 byte to 1GiB]; 1MiB by default when an input or
    /// output is a TCP endpoint.
    #[arg(short = 'b', long, value_name = "SIZE", default_value = "64KiB",
          value_parser = units::parse_chunk_size, value_hint = ValueHint::Other, help_heading = BUFFERING)]
    pub chunk_size: usize,

    /// Queue capacity in chunks.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..), value_hint = ValueHint::Other, help_heading = BUFFERING)]
    pub chunks: u32,

    /// Queue capacity in bytes; with -n, both bounds hold.
    #[arg(short = 'm', long, value_name = "SIZE", value_parser = units::parse_positive_size, value_hint = ValueHint::Other,
          help_heading = BUFFERING)]
    pub max_buffer: Option<u64>,

    /// Line mode: chunks end at newlines, so drops keep or lose whole records.
    #[arg(short, long, help_heading = BUFFERING)]
    pub lines: bool,

    /// Records end at NUL instead of newline (implies --lines).
    #[arg(short = '0', long, help_heading = BUFFERING)]
    pub null: bool,

    /// What to do when the queue is full.
    #[arg(long, value_name = "POLICY", value_enum, default_value_t = OnFull::Block,
          help_heading = OVERLOAD)]
    pub on_full: OnFull,

    /// Same as --on-full drop.
    #[arg(short, long, conflicts_with = "on_full", help_heading = OVERLOAD)]
    pub drop: bool,

    /// What an output that falls behind the others does when its lane is full (several -o).
    #[arg(long, value_name = "POLICY", value_enum, default_value_t = SlowOutput::Block,
          help_heading = OVERLOAD)]
    pub slow_output: SlowOutput,

    /// How long a lane may stay full before a slow=detach output is detached.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = units::parse_duration,
          value_hint = ValueHint::Other, help_heading = OVERLOAD)]
    pub detach_after: Duration,

    /// Exit with status 4 when nothing has moved for DURATION (e.g. 30s), naming the side that
    /// stalled.
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration, value_hint = ValueHint::Other,
          help_heading = OVERLOAD)]
    pub stall_timeout: Option<Duration>,

    /// After a stop signal (SIGINT, SIGTERM, SIGHUP), write what was accepted for at most
    /// DURATION; the rest counts as bytes_unsent and bpipe exits 128+N. A second signal stops at
    /// once.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = units::parse_duration,
          value_hint = ValueHint::Other, help_heading = OVERLOAD)]
    pub drain_timeout: Duration,

    /// Cap the output rate, a size per second (e.g. 10MiB/s); with several outputs, each one's.
    #[arg(short = 'L', long, value_name = "RATE", value_parser = units::parse_rate, value_hint = ValueHint::Other,
          help_heading = RATE)]
    pub rate_limit: Option<u64>,

    /// Cap the input rate, a size per second.
    #[arg(long, value_name = "RATE", value_parser = units::parse_rate, value_hint = ValueHint::Other, help_heading = RATE)]
    pub read_rate: Option<u64>,

    /// What --rate-limit counts; lines needs --lines.
    #[arg(long, value_name = "UNIT", value_enum, default_value_t = RateUnit::Bytes,
          help_heading = RATE)]
    pub rate_unit: RateUnit,

    /// The most that may go out faster than the rate after idle time [default: 1/10 s of the
    /// rate, at least 1; in records with --rate-unit lines]. Each read or write carries at most
    /// 1/20 s of the rate, whatever the burst.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_positive_size, value_hint = ValueHint::Other,
          help_heading = RATE)]
    pub burst: Option<u64>,

    /// No stats on standard error: no summary, no interval records (errors and SIGUSR1
    /// snapshots still print; --stats-file still gets every record).
    #[arg(short, long, help_heading = REPORTING)]
    pub quiet: bool,

    /// Format of the summary and of every stats record.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = StatsFormat::Human,
          help_heading = REPORTING)]
    pub stats_format: StatsFormat,

    /// Print a stats record every DURATION (e.g. 1s, 250ms).
    #[arg(short, long, value_name = "DURATION", value_parser = units::parse_duration, value_hint = ValueHint::Other,
          help_heading = REPORTING)]
    pub interval: Option<Duration>,

    /// A live status line, redrawn in place, when standard error is a terminal; with several
    /// outputs it shows the slowest one's lag.
    #[arg(short, long, help_heading = REPORTING)]
    pub progress: bool,

    /// Expected total size, for percent and ETA in --progress.
    #[arg(short, long, value_name = "SIZE", value_parser = units::parse_positive_size, value_hint = ValueHint::Other,
          help_heading = REPORTING)]
    pub size: Option<u64>,

    /// Also write every stats record to PATH (created or truncated) as JSON Lines.
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath, help_heading = REPORTING)]
    pub stats_file: Option<PathBuf>,

    #[command(flatten)]
    pub spool: SpoolArgs,

    #[command(flatten)]
    pub control: ControlArgs,

    #[command(flatten)]
    pub net: NetArgs,

    /// Whether --on-full was given, rather than its default: --remote sends only what was.
    #[arg(skip)]
    pub on_full_given: bool,

    /// Whether --chunk-size was given: a TCP endpoint's default is larger.
    #[arg(skip)]
    pub chunk_size_given: bool,
}

/// What this run of bpipe does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Relay,
    Query(String),
    Remote(String),
    Top { once: bool },
}

/// Help and version go out as clap prints them; a usage error is one line, `bpipe: <what>:
/// <why>`, like every other error bpipe reports, and status 2.
fn exit_on(error: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        error.exit();
    }
    eprintln!("{}", usage_line(&error));
    std::process::exit(2);
}

/// clap's message up to its first blank line (the usage and the hint to try --help follow),
/// on one line.
fn usage_line(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let message: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|line| !line.is_empty())
        .collect();
    let message = message.join(" ");
    format!(
        "bpipe: {}",
        message.strip_prefix("error: ").unwrap_or(&message)
    )
}

impl Cli {
    /// Parses the command line, exiting with status 2 on a usage error, including the
    /// combinations clap cannot express.
    pub fn parse_checked() -> Self {
        match Cli::try_parse_checked(std::env::args_os()) {
            Ok(cli) => cli,
            Err(error) => exit_on(error),
        }
    }

    pub fn try_parse_checked<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches, parser::ValueSource};
        let matches = Cli::command().try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.on_full_given =
            matches.value_source("on_full") == Some(ValueSource::CommandLine) || cli.drop;
        cli.chunk_size_given = matches.value_source("chunk_size") == Some(ValueSource::CommandLine);
        cli.check()?;
        Ok(cli)
    }

    pub fn mode(&self) -> Mode {
        let control = &self.control;
        match (&control.query, &control.remote) {
            (Some(target), _) => Mode::Query(target.clone()),
            (None, Some(target)) => Mode::Remote(target.clone()),
            (None, None) if control.top => Mode::Top { once: control.once },
            (None, None) => Mode::Relay,
        }
    }

    fn check(&self) -> Result<(), clap::Error> {
        use clap::CommandFactory;
        if self.rate_unit == RateUnit::Lines && !self.line_mode() {
            return Err(Cli::command().error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--rate-unit lines counts records: it needs --lines (or --null)",
            ));
        }
        if self.rate_unit == RateUnit::Lines && self.read_rate.is_some() && self.burst.is_some() {
            return Err(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--burst counts records under --rate-unit lines, but --read-rate counts bytes: \
                 drop --burst, or use --rate-unit bytes",
            ));
        }
        self.check_net()
    }

    fn check_net(&self) -> Result<(), clap::Error> {
        use clap::CommandFactory;
        let refuse =
            |why: &str| Err(Cli::command().error(clap::error::ErrorKind::ArgumentConflict, why));
        let tcp = self
            .files
            .iter()
            .chain(self.output.iter().map(|o| &o.target));
        let tcp: Vec<&Address> = tcp
            .filter_map(|t| match t {
                Target::Tcp(address) => Some(address),
                _ => None,
            })
            .chain(&self.net.listen)
            .chain(&self.net.connect)
            .collect();
        if tcp.is_empty() && (self.net.checksum || self.net.tls()) {
            return refuse("--checksum and --tls-* apply to TCP endpoints: there is none");
        }
        let listens = tcp.iter().any(|a| a.listens());
        let connects = tcp.iter().any(|a| !a.listens());
        if let Err(why) = crate::net::tls::TlsOptions::from(&self.net).check(listens, connects) {
            return refuse(&why.to_string());
        }
        let listening_inputs = self.net.listen.len()
            + self
                .files
                .iter()
                .filter(|t| matches!(t, Target::Tcp(a) if a.listens()))
                .count();
        if self.net.max_conns > 1 && (!self.merge || listening_inputs == 0) {
            return refuse(
                "--max-conns merges connections accepted by a listening input: it needs --merge and one",
            );
        }
        Ok(())
    }

    pub fn line_mode(&self) -> bool {
        self.lines || self.null
    }

    pub fn delimiter(&self) -> u8 {
        if self.null { b'\0' } else { b'\n' }
    }

    pub fn policy(&self) -> OnFull {
        if self.drop {
            OnFull::Drop
        } else {
            self.on_full
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_app() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_usage_error_is_one_bpipe_line() {
        let error = Cli::try_parse_from(["bpipe", "-b", "foo"]).unwrap_err();
        let line = usage_line(&error);
        assert!(
            line.starts_with("bpipe: invalid value 'foo' for '--chunk-size <SIZE>': "),
            "{line}"
        );
        assert!(!line.contains('\n'));
        let error = Cli::try_parse_from(["bpipe", "--on-full", "maybe"]).unwrap_err();
        let line = usage_line(&error);
        assert!(
            line.ends_with("[possible values: block, drop, drop-oldest, fail]"),
            "{line}"
        );
    }

    #[test]
    fn drop_is_on_full_drop() {
        let cli = Cli::try_parse_from(["bpipe", "-d"]).unwrap();
        assert_eq!(cli.policy(), OnFull::Drop);
        assert!(Cli::try_parse_from(["bpipe", "-d", "--on-full", "fail"]).is_err());
    }

    #[test]
    fn lines_as_a_rate_unit_need_line_mode() {
        let cli = Cli::try_parse_from(["bpipe", "--rate-unit", "lines", "-L", "10"]).unwrap();
        assert!(cli.check().is_err());
        let cli = Cli::try_parse_from(["bpipe", "-l", "--rate-unit", "lines", "-L", "10"]).unwrap();
        assert!(cli.check().is_ok());
    }

    #[test]
    fn a_burst_in_records_cannot_bound_the_read_rate() {
        let args = [
            "bpipe",
            "-l",
            "--rate-unit",
            "lines",
            "-L",
            "10",
            "--burst",
            "3",
        ];
        let cli = Cli::try_parse_from(args).unwrap();
        assert!(cli.check().is_ok());
        let cli = Cli::try_parse_from(args.iter().chain(&["--read-rate", "1M"])).unwrap();
        assert!(cli.check().is_err());
    }

    #[test]
    fn null_implies_line_mode() {
        let cli = Cli::try_parse_from(["bpipe", "-0"]).unwrap();
        assert!(cli.line_mode());
        assert_eq!(cli.delimiter(), 0);
    }
}
