//! The `--metrics-file`: written whole to a temporary file beside it, then renamed over it, so
//! that a reader (node_exporter's textfile collector) sees the old text or the new, never part.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::io::name::quoted;

pub(crate) struct MetricsFile {
    path: PathBuf,
    /// In the same directory, so that the rename cannot cross file systems; named so that the
    /// collector, which reads `*.prom`, skips it.
    temporary: PathBuf,
    /// What messages call the file.
    name: String,
}

impl MetricsFile {
    /// Checks that the file can be written where it is named, by writing the temporary file
    /// once: a wrong directory stops bpipe before any byte moves, not at the first interval.
    pub(crate) fn new(path: &Path) -> anyhow::Result<MetricsFile> {
        let file_name = path
            .file_name()
            .with_context(|| format!("metrics file {}: not a file name", quoted(path)))?;
        let mut hidden = std::ffi::OsString::from(".");
        hidden.push(file_name);
        hidden.push(format!(".{}.tmp", std::process::id()));
        let file = MetricsFile {
            temporary: path.with_file_name(hidden),
            path: path.to_path_buf(),
            name: format!("metrics file {}", quoted(path)),
        };
        File::create(&file.temporary).with_context(|| file.name.clone())?;
        let _ = fs::remove_file(&file.temporary);
        Ok(file)
    }

    /// Replaces the file with `text`. On failure the old file stays as it was.
    pub(crate) fn write(&self, text: &str) -> anyhow::Result<()> {
        let written = File::create(&self.temporary)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .and_then(|()| fs::rename(&self.temporary, &self.path));
        if written.is_err() {
            let _ = fs::remove_file(&self.temporary);
        }
        written.with_context(|| self.name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bpipe-metrics-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_file_is_replaced_and_nothing_else_is_left() {
        let dir = scratch("replace");
        let path = dir.join("bpipe.prom");
        let file = MetricsFile::new(&path).unwrap();
        assert!(!path.exists(), "the check writes nothing under the name");
        file.write("a 1\n").unwrap();
        file.write("b 2\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "b 2\n");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["bpipe.prom"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_refused_at_once_by_name() {
        let dir = scratch("missing");
        let path = dir.join("no/such/dir/bpipe.prom");
        let error = MetricsFile::new(&path).err().unwrap();
        assert_eq!(
            crate::supervise::outcome::error_line(&error),
            format!(
                "bpipe: metrics file {}: No such file or directory",
                path.display()
            )
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = scratch("keep");
        let path = dir.join("bpipe.prom");
        let file = MetricsFile::new(&path).unwrap();
        file.write("old 1\n").unwrap();
        // The rename fails: a directory stands where the temporary file goes.
        fs::create_dir(&file.temporary).unwrap();
        assert!(file.write("new 2\n").is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "old 1\n");
        fs::remove_dir_all(&dir).unwrap();
    }
}
