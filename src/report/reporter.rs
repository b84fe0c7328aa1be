//! Where stats records, error lines and the live line go: standard error, and the stats file.

use std::fs::File;
use std::io::{self, Write};

use crate::cli::StatsFormat;
use crate::io::stats_file::StatsFile;
use crate::report::Render;
use crate::report::human::Human;
use crate::report::json::Json;
use crate::report::progress::{self, Waiting};
use crate::report::snapshot::Snapshot;
use crate::supervise::outcome::error_line;

/// Who a record is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Audience {
    /// The run's own records: kept off standard error under `--quiet`.
    Routine,
    /// An operator asked for it (SIGUSR1): shown even under `--quiet`.
    Operator,
}

pub(crate) struct Reporter {
    stderr_form: Box<dyn Render>,
    /// No routine records on standard error (the stats file still gets them).
    quiet: bool,
    file: Option<StatsFile>,
    /// The expected total, for percent and ETA on the live line.
    expected: Option<u64>,
    progress_drawn: bool,
}

impl Reporter {
    pub(crate) fn new(
        format: StatsFormat,
        quiet: bool,
        file: Option<StatsFile>,
        expected: Option<u64>,
    ) -> Self {
        let stderr_form: Box<dyn Render> = match format {
            StatsFormat::Human => Box::new(Human),
            StatsFormat::Json => Box::new(Json),
        };
        Reporter {
            stderr_form,
            quiet,
            file,
            expected,
            progress_drawn: false,
        }
    }

    /// Writes a record to the stats file and, unless quiet for a routine record, to standard
    /// error. Each record is rendered first and written in one call, so records never
    /// interleave with the live line.
    pub(crate) fn emit(&mut self, snapshot: &Snapshot, audience: Audience) {
        let mut stderr = io::stderr().lock();
        self.clear_progress(&mut stderr);
        if audience == Audience::Operator || !self.quiet {
            let mut line = Vec::with_capacity(512);
            // Stats are a courtesy: a closed or full stderr must not stop the data.
            if self.stderr_form.render(snapshot, &mut line).is_ok() {
                let _ = stderr.write_all(&line);
            }
        }
        if let Some(file) = &mut self.file {
            let mut line = Vec::with_capacity(512);
            if Json.render(snapshot, &mut line).is_ok() {
                file.write(&line);
            }
        }
    }

    /// The total is known now (the input has ended), unless `--size` gave it.
    pub(crate) fn expect(&mut self, total: u64) {
        self.expected.get_or_insert(total);
    }

    /// The stats file's open, done on a thread of its own, has ended.
    pub(crate) fn stats_file_opened(&mut self, opened: anyhow::Result<File>) {
        match opened {
            Ok(opened) => {
                if let Some(file) = &mut self.file {
                    file.opened(opened);
                }
            }
            Err(e) => {
                self.error(&e);
                self.file.iter_mut().for_each(StatsFile::failed);
            }
        }
    }

    /// The stats file is a FIFO that no reader has opened yet.
    pub(crate) fn stats_file_waiting(&self) -> bool {
        self.file.as_ref().is_some_and(StatsFile::waiting)
    }

    fn clear_progress(&mut self, stderr: &mut impl Write) {
        if self.progress_drawn {
            let _ = stderr.write_all(b"\r\x1b[K");
            self.progress_drawn = false;
        }
    }

    pub(crate) fn draw_progress(&mut self, snapshot: &Snapshot, rate_out: f64, waiting: Waiting) {
        let line = progress::render(snapshot, rate_out, self.expected, waiting);
        let _ = io::stderr()
            .lock()
            .write_all(format!("\r\x1b[K{line}").as_bytes());
        self.progress_drawn = true;
    }

    /// A note, in the stderr form of the records, unless quiet. Notes stay off the stats file:
    /// like error lines, they are not stats records, and the file's readers expect only those.
    pub(crate) fn note(&mut self, note: &anyhow::Error) {
        if self.quiet {
            return;
        }
        let line = error_line(note);
        let message = line.strip_prefix("bpipe: ").unwrap_or(&line);
        let mut text = Vec::with_capacity(256);
        if self.stderr_form.note(message, &mut text).is_ok() {
            let mut stderr = io::stderr().lock();
            self.clear_progress(&mut stderr);
            let _ = stderr.write_all(&text);
        }
    }

    pub(crate) fn error(&mut self, error: &anyhow::Error) {
        self.line(&error_line(error));
    }

    /// One line on standard error, the live line cleared first.
    pub(crate) fn line(&mut self, text: &str) {
        let mut stderr = io::stderr().lock();
        self.clear_progress(&mut stderr);
        let _ = writeln!(stderr, "{text}");
    }
}
