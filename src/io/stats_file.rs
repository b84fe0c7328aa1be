//! The `--stats-file`, opened without holding up the run: opening a FIFO waits for its reader,
//! so a FIFO is opened on a thread of its own, and the records wait in memory until it is open.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::thread;

use anyhow::Context;

use crate::io::endpoint::NamedFile;

/// The most that waits for the file: what a pipe holds by default, so that handing it over to a
/// FIFO's new reader does not block. The oldest records give way first: the exit record, the
/// last, is always kept.
const WAITING_BYTES: usize = 64 * 1024;

/// Nothing stops the stats file's open: the run ends without it instead.
static NEVER: AtomicBool = AtomicBool::new(false);

pub(crate) struct StatsFile {
    state: State,
}

enum State {
    /// Records not written yet, oldest first.
    Waiting {
        records: VecDeque<Vec<u8>>,
        bytes: usize,
    },
    Open(File),
    /// The open failed after the checks had passed; that was reported.
    Failed,
}

fn open_now(file: &NamedFile) -> anyhow::Result<File> {
    let Some(opened) = file.open(&NEVER)? else {
        unreachable!("nothing raises the stats file's stop");
    };
    Ok(opened)
}

impl StatsFile {
    /// Opens `file` now, or, for a FIFO, on a thread that hands the result to `opened` once a
    /// reader has come; the caller passes it on to `StatsFile::opened`.
    pub(crate) fn open(
        file: NamedFile,
        opened: impl FnOnce(anyhow::Result<File>) + Send + 'static,
    ) -> anyhow::Result<StatsFile> {
        if !file.fifo {
            return Ok(StatsFile {
                state: State::Open(open_now(&file)?),
            });
        }
        thread::Builder::new()
            .name("stats-file".into())
            .spawn(move || opened(open_now(&file)))
            .context("cannot start the stats-file thread")?;
        Ok(StatsFile {
            state: State::Waiting {
                records: VecDeque::new(),
                bytes: 0,
            },
        })
    }

    /// Writes a record, or keeps it until the file is open. Stats are a courtesy: a failed
    /// write must not stop the data.
    pub(crate) fn write(&mut self, record: &[u8]) {
        match &mut self.state {
            State::Open(file) => {
                let _ = file.write_all(record);
            }
            State::Waiting { records, bytes } => {
                records.push_back(record.to_vec());
                *bytes += record.len();
                while *bytes > WAITING_BYTES && records.len() > 1 {
                    *bytes -= records.pop_front().map_or(0, |r| r.len());
                }
            }
            State::Failed => {}
        }
    }

    /// The file is open: the records kept so far go out at once, in one write.
    pub(crate) fn opened(&mut self, mut file: File) {
        if let State::Waiting { records, .. } = &mut self.state {
            let kept: Vec<u8> = records.drain(..).flatten().collect();
            let _ = file.write_all(&kept);
        }
        self.state = State::Open(file);
    }

    pub(crate) fn failed(&mut self) {
        self.state = State::Failed;
    }

    /// Still waiting for a FIFO's reader.
    pub(crate) fn waiting(&self) -> bool {
        matches!(self.state, State::Waiting { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::io::Read;
    use std::sync::mpsc;

    fn fifo(name: &str) -> (std::path::PathBuf, NamedFile) {
        let dir = std::env::temp_dir().join(format!("bpipe-stats-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fifo");
        let c_path = CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path and a valid mode.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let file = NamedFile {
            path: c_path,
            name: name.into(),
            flags: libc::O_WRONLY | libc::O_TRUNC | libc::O_CREAT,
            fifo: true,
        };
        (dir, file)
    }

    #[test]
    fn records_wait_for_a_fifo_reader_and_the_latest_are_kept() {
        let (dir, file) = fifo("wait");
        let (tx, rx) = mpsc::channel();
        let mut stats = StatsFile::open(file, move |opened| tx.send(opened).unwrap()).unwrap();
        assert!(stats.waiting());
        let record = |i: usize| format!("{i:0999}\n").into_bytes();
        let count = 2 * WAITING_BYTES / 1000;
        (0..count).for_each(|i| stats.write(&record(i)));
        let mut reader = File::open(dir.join("fifo")).unwrap();
        stats.opened(rx.recv().unwrap().unwrap());
        assert!(!stats.waiting());
        stats.write(b"last\n");
        drop(stats);
        let mut text = Vec::new();
        reader.read_to_end(&mut text).unwrap();
        let kept = (count - WAITING_BYTES / 1000..count).flat_map(record);
        assert_eq!(text, kept.chain(*b"last\n").collect::<Vec<u8>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
