//! Where stats records, error lines and the live line go: standard error, and the stats file.

use std::fs::File;
use std::io::{self, Write};

use crate::cli::StatsFormat;
use crate::report::progress::{self, Waiting};
use crate::report::snapshot::Snapshot;
use crate::supervise::outcome::error_line;

pub struct Reporter {
    pub format: StatsFormat,
    /// No stats records on standard error (the stats file still gets them).
    pub quiet: bool,
    pub file: Option<File>,
    /// The expected total, for percent and ETA on the live line.
    pub expected: Option<u64>,
    progress_drawn: bool,
}

impl Reporter {
    pub fn new(
        format: StatsFormat,
        quiet: bool,
        file: Option<File>,
        expected: Option<u64>,
    ) -> Self {
        Reporter {
            format,
            quiet,
            file,
            expected,
            progress_drawn: false,
        }
    }

    /// Writes a record to the stats file and, unless quiet (or `force`d, for an operator's
    /// SIGUSR1), to standard error. Each record is rendered first and written in one call, so
    /// records never interleave with the live line.
    pub fn emit(&mut self, snapshot: &Snapshot, force: bool) {
        let mut stderr = io::stderr().lock();
        self.clear_progress(&mut stderr);
        if force || !self.quiet {
            let mut line = Vec::with_capacity(512);
            let rendered = match self.format {
                StatsFormat::Human => snapshot.write_human(&mut line),
                StatsFormat::Json => snapshot.write_json(&mut line),
            };
            // Stats are a courtesy: a closed or full stderr must not stop the data.
            if rendered.is_ok() {
                let _ = stderr.write_all(&line);
            }
        }
        if let Some(file) = &mut self.file {
            let mut line = Vec::with_capacity(512);
            if snapshot.write_json(&mut line).is_ok() {
                let _ = file.write_all(&line);
            }
        }
    }

    fn clear_progress(&mut self, stderr: &mut impl Write) {
        if self.progress_drawn {
            let _ = stderr.write_all(b"\r\x1b[K");
            self.progress_drawn = false;
        }
    }

    pub fn draw_progress(&mut self, snapshot: &Snapshot, rate_out: f64, waiting: Waiting) {
        let line = progress::render(snapshot, rate_out, self.expected, waiting);
        let _ = io::stderr()
            .lock()
            .write_all(format!("\r\x1b[K{line}").as_bytes());
        self.progress_drawn = true;
    }

    pub fn error(&mut self, error: &anyhow::Error) {
        self.line(&error_line(error));
    }

    /// One line on standard error, the live line cleared first.
    pub fn line(&mut self, text: &str) {
        let mut stderr = io::stderr().lock();
        self.clear_progress(&mut stderr);
        let _ = writeln!(stderr, "{text}");
    }
}
