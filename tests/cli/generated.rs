//! `man/bpipe.1` and `completions/*` are generated from the clap definition (`bpipe::cli::Cli`),
//! the same one `--help` prints, so they cannot drift from it. These tests regenerate them in
//! memory and fail when a committed file differs; `BPIPE_REGENERATE=1` writes them instead:
//!
//!     BPIPE_REGENERATE=1 cargo test --test cli generated
//!
//! The man page is clap_mangen's NAME, SYNOPSIS, DESCRIPTION and OPTIONS, plus the hand-written
//! roff sections below (the backpressure model, sizes, stats, signals, examples); its EXIT
//! STATUS table is built from `bpipe::cli::EXIT_STATUS`, the table `--help` ends with.
//!
//! The other tests here check that the files load: the man page through groff without warnings,
//! each completion script in its shell (bash always; zsh and fish when installed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bpipe::cli::{Cli, EXIT_STATUS};
use clap::CommandFactory;
use clap_complete::{Generator, Shell};

use crate::util;

pub(crate) const REFRESH: &str = "BPIPE_REGENERATE=1 cargo test --test cli generated";

/// The first line of every generated file but the zsh one, whose first line must be `#compdef`.
const GENERATED_NOTE: &str = "Generated from bpipe::cli::Cli by tests/cli/generated.rs: do not edit. \
     Refresh with: BPIPE_REGENERATE=1 cargo test --test cli generated";

const SHELLS: [Shell; 5] = [
    Shell::Bash,
    Shell::Zsh,
    Shell::Fish,
    Shell::PowerShell,
    Shell::Elvish,
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------------
// The hand-written parts of the man page. Plain roff for man(7): no tbl, no apostrophes at the
// start of a line, `\-` for every dash a reader might type, `\(aq` for a typed quote.

/// Follows the DESCRIPTION that clap_mangen renders from the command's long about.
const DESCRIPTION: &str = r#".PP
A pipe between two programs holds little (64\ KiB on Linux).
When the consumer falls behind, the producer soon blocks in
.BR write (2),
nothing tells which side was slow, and a producer that must never wait has no say in what is
lost.
.B bpipe
sits in the pipeline with a queue whose bounds you choose, applies a named policy when the queue
is full, and reports what happened: at exit, on
.BR SIGUSR1 ,
every
.BR \-\-interval ,
or as a live
.B \-\-progress
line.
.SS The backpressure model
.TP
.B Reader
A thread reads standard input, or each
.I FILE
in turn, into chunks of at most
.B \-\-chunk\-size
bytes.
A chunk holds what the input had ready when it was read, and it is offered to the queue at once:
bpipe waits for data to arrive, never for a block to fill, so a short read is passed on as it
is and a trickle of input is not delayed (unlike
.BR mbuffer (1)).
.TP
.B Queue
The chunks wait, in order, in a queue bounded by
.B \-\-chunks
(16 by default) and by
.B \-\-max\-buffer
bytes (by default, and at most, the chunk count times the chunk size: 1\ MiB); both bounds
hold, and a chunk is never larger than
.BR \-\-max\-buffer .
A read from a pipe often returns much less than a chunk, so to hold a given number of bytes, set
.B \-\-max\-buffer
and a chunk count large enough not to bind first.
.TP
.B Writer
A second thread takes the chunks in order and writes each one whole to standard output or to the
.B \-\-output
file.
A slow consumer holds up the writer; the queue then fills, and the overload policy decides what
the reader does.
.SS Overload policies
.B \-\-on\-full
says what happens to a new chunk when the queue is full:
.TP
.B block
The default.
The reader waits for room, and the producer waits once the pipe in front of
.B bpipe
is full: nothing is lost.
The time the reader waits is
.BR reader_blocked_s .
.TP
.BR drop " (also " \-d )
Drop-newest: the new chunk is discarded and the reader reads on, so the producer never waits for
the consumer.
What was already queued goes out in order.
.TP
.B drop\-oldest
The oldest queued chunk is discarded to make room for the new one, so the consumer gets the
freshest data.
A chunk or record the writer has started is never cut.
.TP
.B fail
The new chunk is counted as dropped, the reader stops, the writer writes what was accepted, and
.B bpipe
exits with status 3 after the line
.RB \(lq "bpipe: input rejected: ..." \(rq.
.PP
Dropped data is counted in
.BR bytes_dropped ,
.B chunks_dropped
and, in line mode,
.BR records_dropped .
.SS Line mode
With
.B \-\-lines
(or
.B \-\-null
for NUL\-terminated records) a chunk ends after the last delimiter read; the bytes after it wait
for the rest of their record, or until the chunk is full.
The policies then keep or drop whole records.
A record longer than a chunk travels in several chunks that are kept or dropped together: under
.BR drop ,
once the first chunk of a record has been accepted, the rest of it waits for room instead of being
cut off; under
.BR drop\-oldest ,
a record the writer has started is never removed.
A last record without a delimiter is passed on as it is.
.SS Rate limits
.B \-\-rate\-limit
paces the writer and
.B \-\-read\-rate
the reader, each with a token bucket that holds at most
.B \-\-burst
(by default the larger of one chunk and a tenth of a second at the rate) and starts full.
In any span of
.I T
seconds at most
.IR RATE " \(mu " T " + " burst
go through: after idle time, no more than the burst goes out faster than the rate, and no single
read or write is larger than the burst.
With
.B \-\-rate\-unit lines
(line mode only),
.B \-\-rate\-limit
and
.B \-\-burst
count records instead of bytes;
.B \-\-read\-rate
always counts bytes.
Time spent waiting for a limit is
.BR throttled_s .
.SS Stalls
With
.BI \-\-stall\-timeout " DURATION"\fR,
.B bpipe
exits with status 4 when nothing has moved for
.IR DURATION ,
and says which side stalled:
.RB \(lq "bpipe: input stalled: ..." \(rq
(the producer sent nothing and the queue is empty) or
.RB \(lq "bpipe: output stalled: ..." \(rq
(the consumer is not reading).
.SS Zero copy
Where the input and the output allow it,
.B bpipe
can move data with
.BR splice (2)
through kernel pipe buffers instead of copying it through its own memory; the stats key
.B path
says which path a run took
.RB ( splice " or " copy ),
and
.BR path_in " and " path_out
what each side did.
Line mode always copies, and so does
.BR \-\-no\-splice .
A slot pipe holds at most
.I /proc/sys/fs/pipe\-max\-size
(1\ MiB by default; more needs
.BR CAP_SYS_RESOURCE ),
so on this path a larger
.B \-\-chunk\-size
gives chunks of that size.
The slot pipes are made as the queue fills, so an idle
.B bpipe
holds one.
A process without
.B CAP_SYS_RESOURCE
or
.B CAP_SYS_ADMIN
is held by the kernel to its user\(aqs pipe budget,
.I /proc/sys/fs/pipe\-user\-pages\-soft
(16384 pages by default), shared by all the user\(aqs programs; such a
.B bpipe
keeps its whole ring within a quarter of it: its slot pipes shrink below the chunk size as far
as 64\ KiB, and a ring that does not fit even then is not made, and
.B bpipe
copies.
The splice path needs a pipe for each queue slot; when they cannot be made (see the limit on
open files), bpipe says so in a note and copies: a line on standard error, or with
.B \-\-stats\-format json
a record whose
.B event
is
.B note
and whose
.B message
says what happened.
.B \-\-quiet
hides notes, and they do not go to the
.BR \-\-stats\-file .
"#;

const SIZES_AND_RATES: &str = r#".SH SIZES AND RATES
Sizes
.RB ( \-\-chunk\-size ", " \-\-max\-buffer ", " \-\-burst ", " \-\-size )
follow
.BR dd (1):
a number of bytes with an optional suffix, whose letter may be upper or lower case.
.TP 16
.BR K ", " KiB
1024 bytes
.TP
.BR M ", " MiB
1024\ KiB
.TP
.BR G ", " GiB
1024\ MiB
.TP
.BR T ", " TiB
1024\ GiB
.TP
.BR KB ", " MB ", " GB ", " TB
powers of 1000: 1000, 1000000, and so on
.TP
.BR B " or none"
bytes
.PP
So
.BR 64K ", " 64k " and " 64KiB
are 65536 bytes,
.B 64KB
is 64000, and a fraction is allowed:
.B 1.5M
is 1572864 (rounded to the nearest byte).
A chunk is 1 byte to 1\ GiB; other sizes must be at least 1 byte.
.PP
Rates
.RB ( \-\-rate\-limit ", " \-\-read\-rate )
are sizes per second, with or without
.BR /s :
.BR 500K ", " 10MiB/s ", " 1.5G/s .
A rate of zero is refused.
With
.BR "\-\-rate\-unit lines" ,
the number given to
.B \-\-rate\-limit
and
.B \-\-burst
is a count of records per second.
.PP
Durations
.RB ( \-\-interval ", " \-\-stall\-timeout )
are written like
.BR 250ms ", " 1s ", " 2m ", " "1h 30m" ,
and must be longer than zero.
"#;

const STATS: &str = r#".SH STATS
At exit
.B bpipe
prints a summary on standard error (not with
.BR \-\-quiet ):
one line for people, starting with
.RB \(lq bpipe: \(rq,
or with
.B \-\-stats\-format json
one JSON object on one line.
The same record is printed on
.B SIGUSR1
(event
.BR signal ,
tagged
.B [signal]
in the human form) and every
.B \-\-interval
(event
.BR interval ,
tagged
.BR [interval] ),
even with
.BR \-\-quiet .
.B \-\-stats\-file
.I PATH
(created or truncated) receives every record, exit included, as JSON Lines, whatever the
.BR \-\-stats\-format .
.B \-\-progress
draws a live line instead, only when standard error is a terminal; with
.B \-\-size
it shows a percentage and an ETA.
.PP
The JSON keys, in order:
.TP
.B event
.BR exit ", " signal " or " interval .
.TP
.B elapsed_s
Seconds since
.B bpipe
started.
.TP
.B bytes_in
Bytes read from the input.
.TP
.B bytes_out
Bytes written to the output.
.TP
.B bytes_dropped
Bytes discarded by the overload policy (under
.BR fail ,
the rejected chunk).
.TP
.BR chunks_in ", " chunks_out ", " chunks_dropped
The same, counted in chunks.
.TP
.B records_dropped
Whole records discarded, in line mode; 0 otherwise.
.TP
.BR queue_chunks ", " queue_bytes
What the queue holds at that moment.
.TP
.BR queue_capacity_chunks ", " queue_capacity_bytes
The queue\(aqs bounds:
.BR \-\-chunks ,
and the smaller of
.B \-\-max\-buffer
and chunks \(mu chunk size.
.TP
.BR queue_peak_chunks ", " queue_peak_bytes
The most the queue has held.
.TP
.B reader_blocked_s
Seconds the reader waited for room in a full queue: time the producer was held back.
.TP
.B writer_idle_s
Seconds the writer waited for data in an empty queue: time the consumer could have taken more.
.TP
.B throttled_s
Seconds spent waiting for the rate limits, reader and writer added.
.TP
.BR throttled_read_s ", " throttled_write_s
The same for each side: the reader waiting for
.BR \-\-read\-rate ,
the writer waiting for
.BR \-\-rate\-limit .
.TP
.B bytes_unsent
Bytes accepted into the queue that will never be written, because the output failed or closed,
or
.B bpipe
was stopped by a signal; in the exit record, what the queue still held is included.
.TP
.B output_closed
.B true
when the consumer closed its end early (a broken pipe).
.TP
.B path
.B splice
or
.BR copy :
how the data moved (see
.BR "Zero copy" );
.B splice
only when both sides spliced.
.TP
.BR path_in ", " path_out
.B splice
or
.BR copy :
what the reader and the writer each did.
A side whose file the kernel will not splice (an output opened with
.BR O_APPEND ,
a terminal) reads and writes instead, and says
.BR copy .
.TP
.BR rate_in_Bps ", " rate_out_Bps
Interval records only: bytes per second read and written over the last interval.
.TP
.B exit_status
Exit record only: the status
.B bpipe
exits with.
.TP
.B message
Note records only (event
.BR note ,
with no other keys): what
.B bpipe
tells, as its line on standard error would (see
.BR "Zero copy" ).
.PP
At exit, every byte read is accounted for:
.BR bytes_in " = " bytes_out " + " bytes_dropped " + " bytes_unsent .
"#;

const SIGNALS: &str = r#".SH SIGNALS
.TP
.B SIGUSR1
Print a stats record now (event
.BR signal ),
on standard error and to the
.B \-\-stats\-file
if there is one, and carry on.
.TP
.BR SIGINT ", " SIGTERM ", " SIGHUP
Stop reading, write what was already accepted (at the
.B \-\-rate\-limit
if there is one), print the summary, and exit with status 128 +
.IR N ,
where
.I N
is the signal number: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP.
.IP
A second of these signals ends the run at once: what was not written yet is counted in
.BR bytes_unsent ,
and the exit status is that of the second signal.
"#;

/// Follows the table built from `EXIT_STATUS`.
const EXIT_NOTES: &str = r#".PP
On an error
.B bpipe
prints one line on standard error,
.RB \(lq "bpipe: " \fIwhat\fB: " \fIwhy\fR\(rq,
for instance
.RB \(lq "bpipe: write standard output: No space left on device" \(rq.
Status 141 is the one a shell reports for a process killed by SIGPIPE, so a pipeline such as
.B "bpipe | head"
reads the same as
.BR "cat | head" .
"#;

const EXAMPLES: &str = r#".SH EXAMPLES
A shell pipeline, with a summary on standard error at the end:
.PP
.RS 4
.EX
head \-c 100M /dev/urandom | bpipe > /dev/null
.EE
.RE
.PP
A log relay that must never block its producer: keep lines whole, and when the shipper falls
behind, lose the oldest lines rather than stall the application:
.PP
.RS 4
.EX
tail \-F /var/log/app.log |
  bpipe \-\-lines \-\-on\-full drop\-oldest \-n 4096 | ship\-logs
.EE
.RE
.PP
A bulk copy over ssh that leaves bandwidth for others, with a JSON stats record every 10
seconds:
.PP
.RS 4
.EX
tar cf \- /srv/data |
  bpipe \-L 20MiB/s \-i 10s \-\-stats\-format json 2> copy.jsonl |
  ssh backup \(aqcat > data.tar\(aq
.EE
.RE
.PP
A tape\-style writer: a 1\ GiB buffer keeps the drive streaming through the slow spells of the
producer, and the
.B \-\-progress
line shows how full it is
.RB ( \-m
sets the bytes, and 16384 chunks of up to 64\ KiB leave room for them).
.B bpipe
writes each chunk as it was read: it does not re\-block the data to a fixed size.
.PP
.RS 4
.EX
tar cf \- /home | bpipe \-m 1G \-n 16384 \-p \-o /dev/nst0
.EE
.RE
.PP
A stats dump from another shell, without stopping the transfer:
.PP
.RS 4
.EX
pkill \-USR1 \-x bpipe
.EE
.RE
.PP
A batch job that should fail early rather than pile up more than 256\ MiB, and notice a consumer
that hangs:
.PP
.RS 4
.EX
produce | bpipe \-\-on\-full fail \-m 256M \-n 4096 \-\-stall\-timeout 1m |
  consume
.EE
.RE
"#;

const SEE_ALSO: &str = r#".SH SEE ALSO
.BR pv (1),
.BR mbuffer (1),
.BR dd (1),
.BR splice (2),
.BR pipe (7)
"#;

// ---------------------------------------------------------------------------------------------
// Generation.

fn render(what: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    what(&mut out).expect("render to memory");
    String::from_utf8(out).expect("clap_mangen writes UTF-8")
}

/// Escapes text for a roff text line: backslashes and dashes, and a leading dot or quote.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', r"\e").replace('-', r"\-");
    if escaped.starts_with(['.', '\'']) {
        format!(r"\&{escaped}")
    } else {
        escaped
    }
}

/// `bpipe::cli::EXIT_STATUS` as a man page section: its indented lines are `STATUS  MEANING`.
fn exit_status_section() -> String {
    let mut section = String::from(".SH EXIT STATUS\n");
    let rows: Vec<(&str, &str)> = EXIT_STATUS
        .lines()
        .skip_while(|line| !line.starts_with(' '))
        .take_while(|line| line.starts_with(' '))
        .map(|line| {
            line.trim()
                .split_once(char::is_whitespace)
                .map(|(status, meaning)| (status, meaning.trim()))
                .unwrap_or_else(|| panic!("EXIT_STATUS line without a meaning: {line:?}"))
        })
        .collect();
    assert!(
        rows.len() >= 7,
        "EXIT_STATUS no longer looks like an indented table: {EXIT_STATUS}"
    );
    for (status, meaning) in rows {
        section += &format!(".TP 8\n.B {}\n{}\n", roff_text(status), roff_text(meaning));
    }
    section + EXIT_NOTES
}

fn man_page() -> String {
    let man = clap_mangen::Man::new(Cli::command());
    // Each render starts with roff's apostrophe preamble: keep the title's, strip the others'.
    let rendered = render(|w| man.render_title(w));
    let preamble = rendered[..rendered.find(".TH ").expect("a .TH line")].to_string();
    // clap_mangen writes an empty date as nothing at all, which shifts the later .TH arguments;
    // no date keeps the page byte-stable (the version is in the footer).
    let version = Cli::command().get_version().unwrap_or_default().to_string();
    let title = format!("{preamble}.TH BPIPE 1 \"\" \"bpipe {version}\" \"User Commands\"\n");
    let section = |text: String| {
        text.strip_prefix(preamble.as_str())
            .map(str::to_string)
            .unwrap_or(text)
    };

    // clap_mangen gives each help heading a section of its own; here they are subsections of
    // OPTIONS, in the order --help shows them.
    let mut options = section(render(|w| man.render_options_section(w)));
    let command = Cli::command();
    let mut headings: Vec<&str> = command
        .get_arguments()
        .filter_map(|arg| arg.get_help_heading())
        .collect();
    headings.dedup();
    for heading in headings {
        let generated = format!(".SH {}\n", heading.to_uppercase());
        let sub = if heading.contains(' ') {
            format!(".SS \"{heading}\"\n")
        } else {
            format!(".SS {heading}\n")
        };
        assert!(
            options.contains(&generated),
            "no {generated:?} in {options}"
        );
        options = options.replacen(&generated, &sub, 1);
    }

    [
        format!(".\\\" {GENERATED_NOTE}\n"),
        title,
        section(render(|w| man.render_name_section(w))),
        section(render(|w| man.render_synopsis_section(w))),
        section(render(|w| man.render_description_section(w))),
        DESCRIPTION.to_string(),
        options,
        SIZES_AND_RATES.to_string(),
        STATS.to_string(),
        SIGNALS.to_string(),
        exit_status_section(),
        EXAMPLES.to_string(),
        SEE_ALSO.to_string(),
    ]
    .concat()
}

fn completion(shell: Shell) -> String {
    let mut command = Cli::command();
    let script = render(|w| {
        clap_complete::generate(shell, &mut command, "bpipe", w);
        Ok(())
    });
    let note = format!("# {GENERATED_NOTE}\n");
    match script.split_once('\n') {
        // zsh's autoloader needs `#compdef` on the first line.
        Some((first, rest)) if first.starts_with("#compdef") => format!("{first}\n{note}{rest}"),
        _ => format!("{note}{script}"),
    }
}

/// Every generated file: its path from the repository root and its content.
fn generated_files() -> Vec<(String, String)> {
    let mut files = vec![("man/bpipe.1".to_string(), man_page())];
    for shell in SHELLS {
        files.push((
            format!("completions/{}", shell.file_name("bpipe")),
            completion(shell),
        ));
    }
    files
}

/// Checks the committed files against the generator once per test run, or with
/// `BPIPE_REGENERATE=1` writes them. The other tests here call it first, so that they never read
/// a file while it is being rewritten.
fn check_or_regenerate() -> &'static Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let regenerate = std::env::var_os("BPIPE_REGENERATE").is_some_and(|v| v == "1");
        let mut stale = Vec::new();
        for (path, content) in generated_files() {
            let full = root().join(&path);
            if regenerate {
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                let current = std::fs::read_to_string(&full).ok();
                if current.as_deref() != Some(content.as_str()) {
                    std::fs::write(&full, &content)
                        .unwrap_or_else(|e| panic!("cannot write {}: {e}", full.display()));
                    eprintln!("regenerated {path}");
                }
                continue;
            }
            match std::fs::read_to_string(&full) {
                Ok(committed) if committed == content => {}
                Ok(committed) => stale.push(format!(
                    "{path} differs from what the generator produces (first difference at line {})",
                    first_difference(&committed, &content)
                )),
                Err(e) => stale.push(format!("{path} cannot be read: {e}")),
            }
        }
        if stale.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "generated files are out of date:\n  {}\nRefresh them with:\n  {REFRESH}\n\
                 (the sources are bpipe::cli::Cli in src/cli.rs and the man page sections in \
                 tests/cli/generated.rs)",
                stale.join("\n  ")
            ))
        }
    })
}

fn first_difference(a: &str, b: &str) -> usize {
    a.lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()))
        + 1
}

#[test]
fn committed_files_match_the_generator() {
    if let Err(message) = check_or_regenerate() {
        panic!("{message}");
    }
}

// ---------------------------------------------------------------------------------------------
// The generated files work.

fn committed(path: &str) -> PathBuf {
    let _ = check_or_regenerate();
    root().join(path)
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Runs `program args...` in the repository root, bounded in time.
fn run_in_root(program: &str, args: &[&str]) -> util::Output {
    let child = Command::new(program)
        .args(args)
        .current_dir(root())
        .env("HOME", std::env::temp_dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    util::finish(child, util::DEADLINE)
}

fn stdout(out: &util::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn man_page_has_no_roff_warnings() {
    let page = committed("man/bpipe.1");
    if !installed("groff") {
        eprintln!("note: groff is not installed; man page not checked (apt-get install groff)");
        return;
    }
    let out = run_in_root("groff", &["-man", "-ww", "-z", page.to_str().unwrap()]);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "groff -man -ww -z man/bpipe.1: status {}, warnings:\n{}",
        out.code(),
        out.stderr
    );
}

#[test]
fn man_page_renders_every_section() {
    let page = committed("man/bpipe.1");
    if !installed("groff") {
        eprintln!("note: groff is not installed; man page not rendered (apt-get install groff)");
        return;
    }
    let out = run_in_root(
        "groff",
        &[
            "-man",
            "-Tutf8",
            "-rLL=80n",
            "-P-cbou",
            page.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "groff failed: {}", out.stderr);
    let text = stdout(&out);
    for heading in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "SIZES AND RATES",
        "STATS",
        "SIGNALS",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(
            text.lines().any(|line| line == heading),
            "no {heading} section in the rendered page:\n{text}"
        );
    }
    for sub in ["Input/Output", "Buffering", "Overload", "Rate", "Reporting"] {
        assert!(
            text.lines().any(|line| line.trim() == sub),
            "no {sub} subsection under OPTIONS:\n{text}"
        );
    }
    for typed in [
        "--on-full drop-oldest",
        "--stall-timeout",
        "bpipe: input rejected",
    ] {
        assert!(
            text.contains(typed),
            "{typed:?} does not render as typed:\n{text}"
        );
    }
}

/// Every key bpipe prints in its JSON records (exit and interval) is described under STATS.
#[test]
fn man_page_describes_every_stats_key() {
    let page = std::fs::read_to_string(committed("man/bpipe.1")).unwrap();
    let stats = &page[page.find(".SH STATS").unwrap()..page.find(".SH SIGNALS").unwrap()];
    // The tag of each .TP paragraph, as words: `.BR chunks_in ", " chunks_out` names two keys.
    let described: Vec<&str> = stats
        .lines()
        .zip(stats.lines().skip(1))
        .filter(|(line, _)| line.starts_with(".TP"))
        .flat_map(|(_, tag)| tag.split(|c: char| !(c.is_alphanumeric() || c == '_')))
        .collect();
    for key in stats_keys() {
        assert!(
            described.contains(&key.as_str()),
            "the STATS section of the man page does not describe the key {key}"
        );
    }
}

/// The keys of the records a real run prints: an interval record and the exit record.
pub(crate) fn stats_keys() -> Vec<String> {
    let out = util::sh(
        r#"(printf 'a\n'; sleep 0.3) | "$BPIPE" -i 100ms --stats-format json 2>&1 >/dev/null"#,
    );
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let mut keys: Vec<String> = Vec::new();
    let text = stdout(&out);
    for line in text.lines().filter(|l| l.starts_with('{')) {
        for (key, _) in util::Json::parse(line).0 {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    for expected in ["event", "bytes_in", "rate_in_Bps", "exit_status"] {
        assert!(
            keys.iter().any(|k| k == expected),
            "{expected} missing: {text}"
        );
    }
    keys
}

/// Loads the bash script and asks it what to offer after `bpipe WORDS... CURRENT`, as bash would
/// when TAB is pressed (`complete -p bpipe` first proves it registered itself).
fn bash_offers(words: &[&str]) -> (String, Vec<String>) {
    let script = committed("completions/bpipe.bash");
    let out = run_in_root(
        "bash",
        &[
            "-c",
            r#"source "$0" && complete -p bpipe || exit 1
               compopt() { :; }  # only works inside a completion bash itself started
               COMP_WORDS=(bpipe "$@"); COMP_CWORD=$#; COMP_LINE="${COMP_WORDS[*]}"
               COMP_POINT=${#COMP_LINE}
               _bpipe bpipe "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
               printf '%s\n' "${COMPREPLY[@]}""#,
            script.to_str().unwrap(),
        ]
        .into_iter()
        .chain(words.iter().copied())
        .collect::<Vec<_>>(),
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "sourcing completions/bpipe.bash failed ({}): {}",
        out.code(),
        out.stderr
    );
    let text = stdout(&out);
    let mut lines = text.lines();
    let registration = lines.next().unwrap_or_default().to_string();
    (registration, lines.map(str::to_string).collect())
}

#[test]
fn bash_completion_loads() {
    let (registration, policies) = bash_offers(&["--on-full", ""]);
    assert!(
        registration.starts_with("complete ") && registration.ends_with(" bpipe"),
        "{registration}"
    );
    assert_eq!(policies, ["block", "drop", "drop-oldest", "fail"]);
    let (_, mut options) = bash_offers(&["--stats-f"]);
    options.sort();
    assert_eq!(options, ["--stats-file", "--stats-format"]);
    // PATH values complete file names.
    let (_, files) = bash_offers(&["-o", "Cargo.t"]);
    assert_eq!(files, ["Cargo.toml"]);
    let (_, files) = bash_offers(&["--stats-file", "Cargo.t"]);
    assert_eq!(files, ["Cargo.toml"]);
}

#[test]
fn zsh_completion_loads() {
    let _ = committed("completions/_bpipe");
    if !installed("zsh") {
        eprintln!(
            "note: zsh is not installed; completions/_bpipe not loaded (apt-get install zsh)"
        );
        return;
    }
    let out = run_in_root(
        "zsh",
        &[
            "-f",
            "-c",
            "fpath=(completions $fpath); autoload -U compinit; compinit -u -D; \
             source completions/_bpipe && print -r -- ${_comps[bpipe]}",
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "loading completions/_bpipe in zsh failed ({}): {}",
        out.code(),
        out.stderr
    );
    assert_eq!(stdout(&out).trim(), "_bpipe", "{}", out.stderr);
}

#[test]
fn fish_completion_loads() {
    let _ = committed("completions/bpipe.fish");
    if !installed("fish") {
        eprintln!(
            "note: fish is not installed; completions/bpipe.fish not loaded (apt-get install fish)"
        );
        return;
    }
    let out = run_in_root(
        "fish",
        &[
            "--no-config",
            "-c",
            "source completions/bpipe.fish; and complete -C'bpipe --on-full '",
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "loading completions/bpipe.fish in fish failed ({}): {}",
        out.code(),
        out.stderr
    );
    let offered: Vec<String> = stdout(&out)
        .lines()
        .map(|line| line.split('\t').next().unwrap().to_string())
        .collect();
    assert_eq!(offered, ["block", "drop", "drop-oldest", "fail"]);
}

/// elvish only has its `edit:` module in an interactive session on a terminal; a stand-in with
/// the two names the script uses lets it load and run here.
#[test]
fn elvish_completion_loads() {
    let _ = committed("completions/bpipe.elv");
    if !installed("elvish") {
        eprintln!(
            "note: elvish is not installed; completions/bpipe.elv not loaded (apt-get install elvish)"
        );
        return;
    }
    let out = run_in_root(
        "elvish",
        &[
            "-norc",
            "-c",
            "var edit: = (ns [&completion:=(ns [&arg-completer=[&]]) \
                              &complex-candidate~={|text &display=''| put $text}])
             eval (slurp < completions/bpipe.elv)
             $edit:completion:arg-completer[bpipe] bpipe '' | to-lines",
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "loading completions/bpipe.elv in elvish failed ({}): {}",
        out.code(),
        out.stderr
    );
    let text = stdout(&out);
    for option in ["--on-full", "--stats-file", "-L"] {
        assert!(
            text.lines().any(|l| l == option),
            "{option} not offered:\n{text}"
        );
    }
}

/// PowerShell is not in Debian's packages: where it is missing, the script is checked for what
/// it must register; where it is installed, it must also load.
#[test]
fn powershell_completion_loads_where_installed() {
    let script = committed("completions/_bpipe.ps1");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(
        text.contains("Register-ArgumentCompleter -Native -CommandName 'bpipe'"),
        "completions/_bpipe.ps1 registers no completer for bpipe"
    );
    for flag in ["--on-full", "--stats-file", "--rate-limit", "--no-splice"] {
        assert!(
            text.contains(&format!("'{flag}'")),
            "completions/_bpipe.ps1 lacks {flag}"
        );
    }
    if !installed("pwsh") {
        eprintln!("note: pwsh is not installed; completions/_bpipe.ps1 checked but not loaded");
        return;
    }
    let out = run_in_root(
        "pwsh",
        &[
            "-NoProfile",
            "-NonInteractive",
            "-File",
            script.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "loading completions/_bpipe.ps1 in pwsh failed ({}): {}",
        out.code(),
        out.stderr
    );
}
