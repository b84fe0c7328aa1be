//! The run's settings, worked out once from the flags: everything the rest of bpipe reads.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Address, Cli, Level, OnFull, RateUnit, SlowOutput, StatsFormat, Target};
use crate::net::NetSpec;
use crate::queue::Limits;

/// How the data moves through the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DataPath {
    /// Slots are internal pipes filled and drained with splice(2), if the kernel grants them.
    Splice,
    /// Slots are buffers in memory, filled with read(2) and drained with write(2).
    Copy,
    /// As `Copy`, with chunks cut after the last delimiter read.
    Lines { delimiter: u8 },
}

impl DataPath {
    /// The name the stats use: line mode copies.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DataPath::Splice => "splice",
            DataPath::Copy | DataPath::Lines { .. } => "copy",
        }
    }

    pub(crate) fn delimiter(self) -> Option<u8> {
        match self {
            DataPath::Lines { delimiter } => Some(delimiter),
            DataPath::Splice | DataPath::Copy => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum InputSpec {
    Stdin,
    File(PathBuf),
    Tcp(Address),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OutputSpec {
    Stdout,
    File { path: PathBuf, append: bool },
    Tcp(Address),
}

/// How one output keeps up: what it does when it falls behind, and its own rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LaneSpec {
    pub(crate) slow: SlowOutput,
    pub(crate) pace: Option<PaceSpec>,
}

/// Where the relay answers control requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ControlSpec {
    Off,
    /// In the per-user directory, named by the PID; a directory that cannot be used turns
    /// control off with a note.
    Default,
    /// At this path, given with --control: a path that cannot be used is an error.
    At(PathBuf),
}

/// Where the Prometheus metrics go, and how often the file is rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MetricsSpec {
    pub(crate) file: Option<PathBuf>,
    pub(crate) listen: Option<std::net::SocketAddr>,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) interval: Duration,
}

/// A disk spool behind the queue: a file in `dir` holding at most `max` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SpoolSpec {
    pub(crate) dir: PathBuf,
    pub(crate) max: u64,
}

/// When the writer starts, and when a reader held back by a full buffer reads again.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Watermarks {
    pub(crate) start_at: Option<Level>,
    pub(crate) start_after: Option<Duration>,
    pub(crate) resume_at: Option<Level>,
}

/// How often --metrics-file is rewritten without -i.
pub(crate) const METRICS_INTERVAL: Duration = Duration::from_secs(10);

/// A rate limit: so many units a second, at most `burst` of them at once after idle time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PaceSpec {
    pub(crate) rate: u64,
    pub(crate) burst: u64,
    pub(crate) unit: RateUnit,
}

#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) inputs: Vec<InputSpec>,
    pub(crate) outputs: Vec<OutputSpec>,
    /// One per output, in the same order.
    pub(crate) lanes: Vec<LaneSpec>,
    /// Read the inputs at once and merge them, rather than one after another.
    pub(crate) merge: bool,
    pub(crate) detach_after: Duration,
    pub(crate) chunk_size: usize,
    pub(crate) limits: Limits,
    pub(crate) policy: OnFull,
    pub(crate) data_path: DataPath,
    pub(crate) read_pace: Option<PaceSpec>,
    /// What the write rates count, and the burst `--burst` gave: a rate set while the run goes
    /// on follows them.
    pub(crate) rate_unit: RateUnit,
    pub(crate) burst: Option<u64>,
    pub(crate) stats_format: StatsFormat,
    pub(crate) quiet: bool,
    pub(crate) stats_file: Option<PathBuf>,
    pub(crate) interval: Option<Duration>,
    /// The live line is wanted; it is drawn only when standard error is a terminal.
    pub(crate) progress: bool,
    pub(crate) expected_size: Option<u64>,
    pub(crate) stall_timeout: Option<Duration>,
    /// How long the drain after a stop signal may last.
    pub(crate) drain_timeout: Duration,
    pub(crate) control: ControlSpec,
    pub(crate) metrics: MetricsSpec,
    pub(crate) spool: Option<SpoolSpec>,
    pub(crate) watermarks: Watermarks,
    pub(crate) net: NetSpec,
}

fn control(cli: &Cli) -> ControlSpec {
    match (&cli.control.control, cli.control.no_control) {
        (_, true) => ControlSpec::Off,
        (Some(path), false) => ControlSpec::At(path.clone()),
        (None, false) => ControlSpec::Default,
    }
}

fn metrics(cli: &Cli) -> MetricsSpec {
    MetricsSpec {
        file: cli.control.metrics_file.clone(),
        listen: cli.control.metrics_listen,
        labels: cli.control.metrics_label.clone(),
        interval: cli.interval.unwrap_or(METRICS_INTERVAL),
    }
}

/// The burst a rate limit gets unless `--burst` says otherwise: a tenth of a second's worth, at
/// least one unit, in bytes and records alike. No longer at least a chunk: at 1K/s that was a
/// minute's worth at once after idle time. Splitting a chunk into several writes costs little,
/// and only below 640 KiB/s, where writes are few anyway.
pub(crate) fn default_burst(rate: u64) -> u64 {
    (rate / 10).max(1)
}

fn limits(cli: &Cli, chunk_size: usize, inputs: usize, outputs: usize) -> Limits {
    let max_buffer = cli
        .max_buffer
        .map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
    let chunks = cli.chunks as usize;
    Limits {
        chunks,
        bytes: chunks.saturating_mul(chunk_size).min(max_buffer),
        // A slot in the queue for each chunk, one in each stage's hands, and one more for line
        // mode, which reads ahead into the next slot before it hands a chunk over. Several
        // outputs share slots, but each output's lane may hold its own -n of them.
        slots: match outputs {
            1 => chunks + 3,
            n => chunks.saturating_mul(n + 1).saturating_add(n + 3),
        } + merged_slots(cli, chunks, inputs),
        delimiter: cli.line_mode().then(|| cli.delimiter()),
    }
}

/// Merged inputs hold their shares of -n in queues of their own, and two slots each in hand.
fn merged_slots(cli: &Cli, chunks: usize, inputs: usize) -> usize {
    match cli.merge && inputs > 1 {
        true => chunks.max(inputs) + 2 * inputs,
        false => 0,
    }
}

/// A TCP endpoint's chunks are larger by default: each chunk costs a frame header and a
/// wake-up on both ends, and over loopback `bench/net.sh` moves half as much again per second
/// with 1 MiB chunks as with 64 KiB ones.
const NET_CHUNK: usize = 1 << 20;

fn chunk_size(cli: &Cli) -> usize {
    let mut targets = cli.files.iter().chain(cli.output.iter().map(|o| &o.target));
    let tcp = targets.any(|t| matches!(t, Target::Tcp(_)))
        || !cli.net.listen.is_empty()
        || !cli.net.connect.is_empty();
    match tcp && !cli.chunk_size_given {
        true => NET_CHUNK,
        false => cli.chunk_size,
    }
}

fn data_path(cli: &Cli) -> DataPath {
    if cli.line_mode() {
        DataPath::Lines {
            delimiter: cli.delimiter(),
        }
    } else if cli.no_splice || cli.net.checksum {
        // A digest needs the bytes in memory.
        DataPath::Copy
    } else {
        DataPath::Splice
    }
}

/// The inputs: the FILEs, then each `--listen` (a listener accepting `--max-conns`
/// connections is that many inputs); standard input when there is none.
fn inputs(cli: &Cli) -> Vec<InputSpec> {
    let conns = cli.net.max_conns as usize;
    let mut inputs = Vec::new();
    let listens = cli.net.listen.iter().map(|a| Target::Tcp(a.clone()));
    for target in cli.files.iter().cloned().chain(listens) {
        match target {
            Target::Standard => inputs.push(InputSpec::Stdin),
            Target::Path(path) => inputs.push(InputSpec::File(path)),
            Target::Tcp(address) if address.listens() => {
                inputs.extend(std::iter::repeat_n(InputSpec::Tcp(address), conns))
            }
            Target::Tcp(address) => inputs.push(InputSpec::Tcp(address)),
        }
    }
    if inputs.is_empty() {
        inputs.push(InputSpec::Stdin);
    }
    inputs
}

/// The outputs: each `-o`, then each `--connect`; standard output when there is none.
fn outputs(cli: &Cli) -> Vec<OutputSpec> {
    let connects = cli.net.connect.iter().map(|a| Target::Tcp(a.clone()));
    let targets = cli.output.iter().map(|o| o.target.clone()).chain(connects);
    let outputs: Vec<OutputSpec> = targets
        .map(|target| match target {
            Target::Standard => OutputSpec::Stdout,
            Target::Path(path) => OutputSpec::File {
                path,
                append: cli.append,
            },
            Target::Tcp(address) => OutputSpec::Tcp(address),
        })
        .collect();
    match outputs.is_empty() {
        true => vec![OutputSpec::Stdout],
        false => outputs,
    }
}

fn pace(cli: &Cli, rate: u64) -> PaceSpec {
    PaceSpec {
        rate,
        burst: cli.burst.unwrap_or_else(|| default_burst(rate)),
        unit: cli.rate_unit,
    }
}

/// Each output's policy and pace: its spec's own, else the flags'.
fn lanes(cli: &Cli) -> Vec<LaneSpec> {
    let lane = |slow: Option<SlowOutput>, rate: Option<u64>| LaneSpec {
        slow: slow.unwrap_or(cli.slow_output),
        pace: rate.or(cli.rate_limit).map(|rate| pace(cli, rate)),
    };
    let specs = cli.output.iter().map(|o| lane(o.slow, o.rate));
    let connects = cli.net.connect.iter().map(|_| lane(None, None));
    let lanes: Vec<LaneSpec> = specs.chain(connects).collect();
    match lanes.is_empty() {
        true => vec![lane(None, None)],
        false => lanes,
    }
}

impl From<&Cli> for Plan {
    fn from(cli: &Cli) -> Plan {
        let max_buffer = cli
            .max_buffer
            .map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
        let chunk_size = chunk_size(cli).min(max_buffer);
        // The read limit always counts bytes; `Cli::check` refuses a `--burst` counted in
        // records beside it.
        let read_pace = cli.read_rate.map(|rate| PaceSpec {
            rate,
            burst: cli.burst.unwrap_or_else(|| default_burst(rate)),
            unit: RateUnit::Bytes,
        });
        let (inputs, outputs) = (inputs(cli), outputs(cli));
        Plan {
            limits: limits(cli, chunk_size, inputs.len(), outputs.len()),
            lanes: lanes(cli),
            merge: cli.merge,
            detach_after: cli.detach_after,
            inputs,
            outputs,
            chunk_size,
            policy: cli.policy(),
            data_path: data_path(cli),
            read_pace,
            rate_unit: cli.rate_unit,
            burst: cli.burst,
            stats_format: cli.stats_format,
            quiet: cli.quiet,
            stats_file: cli.stats_file.clone(),
            interval: cli.interval,
            progress: cli.progress,
            expected_size: cli.size,
            stall_timeout: cli.stall_timeout,
            drain_timeout: cli.drain_timeout,
            control: control(cli),
            metrics: metrics(cli),
            spool: cli
                .spool
                .spool
                .clone()
                .zip(cli.spool.spool_max)
                .map(|(dir, max)| SpoolSpec { dir, max }),
            watermarks: Watermarks {
                start_at: cli.spool.start_at,
                start_after: cli.spool.start_after,
                resume_at: cli.spool.resume_at,
            },
            net: NetSpec::from(cli),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn plan(args: &[&str]) -> Plan {
        let cli = Cli::try_parse_checked(std::iter::once("bpipe").chain(args.iter().copied()));
        Plan::from(&cli.unwrap())
    }

    #[test]
    fn a_tcp_endpoint_takes_larger_chunks_unless_told() {
        assert_eq!(plan(&[]).chunk_size, 64 << 10);
        assert_eq!(plan(&["--connect", "h:1"]).chunk_size, 1 << 20);
        assert_eq!(plan(&["tcp-listen:9000"]).chunk_size, 1 << 20);
        assert_eq!(
            plan(&["--listen", "9000", "-b", "64K"]).chunk_size,
            64 << 10
        );
        assert_eq!(
            plan(&["--connect", "h:1", "-m", "256K"]).chunk_size,
            256 << 10
        );
    }

    #[test]
    fn defaults_are_one_stdin_one_stdout_and_the_splice_path() {
        let plan = plan(&[]);
        assert_eq!(plan.inputs, vec![InputSpec::Stdin]);
        assert_eq!(plan.outputs, vec![OutputSpec::Stdout]);
        assert_eq!(plan.data_path, DataPath::Splice);
        assert_eq!(plan.chunk_size, 64 << 10);
        assert_eq!(
            (plan.limits.chunks, plan.limits.bytes, plan.limits.slots),
            (16, 1 << 20, 19)
        );
        assert_eq!(plan.limits.delimiter, None);
        assert_eq!(plan.read_pace, None);
        assert_eq!(plan.lanes.len(), 1);
        assert_eq!(plan.lanes[0].pace, None);
        assert_eq!(plan.drain_timeout, Duration::from_secs(10));
    }

    #[test]
    fn max_buffer_caps_the_chunk_and_the_queue() {
        let plan = plan(&["-m", "10K", "-b", "64K", "-n", "4"]);
        assert_eq!(plan.chunk_size, 10 << 10);
        assert_eq!(plan.limits.bytes, 10 << 10);
    }

    #[test]
    fn line_mode_and_no_splice_choose_the_copy_path() {
        assert_eq!(
            plan(&["-l"]).data_path,
            DataPath::Lines { delimiter: b'\n' }
        );
        assert_eq!(plan(&["-0"]).data_path, DataPath::Lines { delimiter: 0 });
        assert_eq!(plan(&["-0"]).limits.delimiter, Some(0));
        assert_eq!(plan(&["--no-splice"]).data_path, DataPath::Copy);
        assert_eq!(DataPath::Lines { delimiter: 0 }.name(), "copy");
    }

    #[test]
    fn files_and_dash_become_inputs_in_order() {
        let plan = plan(&["a", "-", "b", "-o", "out", "--append"]);
        assert_eq!(
            plan.inputs,
            vec![
                InputSpec::File("a".into()),
                InputSpec::Stdin,
                InputSpec::File("b".into())
            ]
        );
        assert_eq!(
            plan.outputs,
            vec![OutputSpec::File {
                path: "out".into(),
                append: true
            }]
        );
    }

    #[test]
    fn each_output_has_its_own_lane_with_the_flags_as_defaults() {
        let plan = plan(&[
            "-o",
            "a",
            "-o",
            "-,slow=drop,rate=1M",
            "-L",
            "10M",
            "--slow-output",
            "detach",
            "-n",
            "4",
        ]);
        assert_eq!(plan.outputs[1], OutputSpec::Stdout);
        let slow: Vec<SlowOutput> = plan.lanes.iter().map(|l| l.slow).collect();
        assert_eq!(slow, [SlowOutput::Detach, SlowOutput::Drop]);
        let rates: Vec<u64> = plan.lanes.iter().map(|l| l.pace.unwrap().rate).collect();
        assert_eq!(rates, [10 << 20, 1 << 20]);
        // The queue's four, each lane's four, one per writer and three more.
        assert_eq!(plan.limits.slots, 4 * 3 + 2 + 3);
    }

    #[test]
    fn a_spool_and_watermarks_come_from_their_flags() {
        assert_eq!(plan(&[]).spool, None);
        assert_eq!(plan(&[]).watermarks, Watermarks::default());
        let plan = plan(&[
            "--spool",
            "/var/tmp",
            "--spool-max",
            "2G",
            "--start-at",
            "eof",
            "--start-after",
            "1m",
            "--resume-at",
            "25%",
        ]);
        let spool = plan.spool.unwrap();
        assert_eq!((spool.dir, spool.max), ("/var/tmp".into(), 2 << 30));
        assert_eq!(plan.watermarks.start_at, Some(Level::Eof));
        assert_eq!(plan.watermarks.start_after, Some(Duration::from_secs(60)));
        assert_eq!(plan.watermarks.resume_at, Some(Level::Percent(25.0)));
    }

    #[test]
    fn a_spool_needs_its_bound_and_a_start_delay_its_level() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("bpipe").chain(args.iter().copied())).is_ok()
        };
        assert!(!parse(&["--spool", "/tmp"]));
        assert!(!parse(&["--spool-max", "1G"]));
        assert!(!parse(&["--start-after", "1s"]));
        assert!(!parse(&[
            "--spool",
            "/tmp",
            "--spool-max",
            "1G",
            "--merge",
            "a",
            "b"
        ]));
        assert!(!parse(&["--resume-at", "eof"]));
    }

    #[test]
    fn bursts_default_to_a_tenth_of_a_second() {
        let plan = plan(&["-L", "10M", "--read-rate", "100K"]);
        assert_eq!(plan.lanes[0].pace.unwrap().burst, 1 << 20);
        assert_eq!(plan.read_pace.unwrap().burst, 10240);
        // At low rates, far less than a chunk: at most a second's worth, at least one unit.
        assert_eq!(self::plan(&["-L", "1K"]).lanes[0].pace.unwrap().burst, 102);
        assert_eq!(self::plan(&["-L", "1"]).lanes[0].pace.unwrap().burst, 1);
        let given = self::plan(&["-L", "10M", "--read-rate", "100K", "--burst", "5K"]);
        assert_eq!(given.lanes[0].pace.unwrap().burst, 5 << 10);
        assert_eq!(given.read_pace.unwrap().burst, 5 << 10);
    }

    #[test]
    fn under_lines_the_burst_counts_records() {
        let plan = plan(&["-l", "--rate-unit", "lines", "-L", "1000", "--burst", "7"]);
        let write = plan.lanes[0].pace.unwrap();
        assert_eq!((write.burst, write.unit), (7, RateUnit::Lines));
        let plan = self::plan(&[
            "-l",
            "--rate-unit",
            "lines",
            "-L",
            "1000",
            "--read-rate",
            "1M",
        ]);
        assert_eq!(plan.lanes[0].pace.unwrap().burst, 100);
        let read = plan.read_pace.unwrap();
        assert_eq!((read.burst, read.unit), ((1 << 20) / 10, RateUnit::Bytes));
        assert_eq!(default_burst(5), 1);
    }
}
