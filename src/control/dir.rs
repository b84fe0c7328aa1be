//! Where control sockets live: one per relay, named by its PID, in a directory only its user
//! can enter. A socket whose relay is gone (killed with -9) is removed by the next relay.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

fn uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// `$XDG_RUNTIME_DIR/bpipe`, else `/tmp/bpipe-UID`.
pub(crate) fn socket_dir_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
        Some(runtime) => Path::new(&runtime).join("bpipe"),
        None => PathBuf::from(format!("/tmp/bpipe-{}", uid())),
    }
}

/// The directory must be ours and closed to everyone else, or another user could put a socket
/// of theirs where a client looks for ours.
fn check_dir(dir: &Path) -> anyhow::Result<()> {
    let meta = fs::symlink_metadata(dir).with_context(|| dir.display().to_string())?;
    if !meta.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    if meta.uid() != uid() {
        bail!("{}: owned by user {}, not by us", dir.display(), meta.uid());
    }
    if meta.mode() & 0o077 != 0 {
        bail!(
            "{}: open to other users (mode {:o}); it must be 700",
            dir.display(),
            meta.mode() & 0o777
        );
    }
    Ok(())
}

/// The socket directory, made (0700) if missing, and checked.
pub(crate) fn socket_dir() -> anyhow::Result<PathBuf> {
    let dir = socket_dir_path();
    if !dir.exists() {
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| dir.display().to_string()),
        }
        // A umask may have taken bits away, never added any; make sure of 0700 anyway.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .with_context(|| dir.display().to_string())?;
    }
    check_dir(&dir)?;
    Ok(dir)
}

pub(crate) fn socket_for(pid: u32) -> PathBuf {
    socket_dir_path().join(format!("{pid}.sock"))
}

/// A PID names a socket in the directory; anything else is a path.
pub(crate) fn resolve(target: &str) -> PathBuf {
    match target.parse::<u32>() {
        Ok(pid) => socket_for(pid),
        Err(_) => PathBuf::from(target),
    }
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

fn pid_of(path: &Path) -> Option<u32> {
    path.file_name()?
        .to_str()?
        .strip_suffix(".sock")?
        .parse()
        .ok()
}

/// The relays with a socket in the directory, by PID; sockets of dead relays are removed.
pub(crate) fn running() -> Vec<(u32, PathBuf)> {
    let dir = socket_dir_path();
    if check_dir(&dir).is_err() {
        return Vec::new();
    }
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            pid_of(&path).map(|pid| (pid, path))
        })
        .filter(|(pid, path)| {
            let live = alive(*pid);
            if !live {
                let _ = fs::remove_file(path);
            }
            live
        })
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_is_a_socket_in_the_directory_and_anything_else_a_path() {
        assert_eq!(resolve("42"), socket_for(42));
        assert!(socket_for(42).ends_with("42.sock"));
        assert_eq!(resolve("./42"), PathBuf::from("./42"));
        assert_eq!(pid_of(Path::new("/x/42.sock")), Some(42));
        assert_eq!(pid_of(Path::new("/x/42.txt")), None);
    }

    #[test]
    fn a_directory_open_to_others_is_refused() {
        let dir = std::env::temp_dir().join(format!("bpipe-dir-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let error = check_dir(&dir).unwrap_err().to_string();
        assert!(error.contains("open to other users"), "{error}");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_dir(&dir).is_ok());
        fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn this_process_is_alive_and_a_huge_pid_is_not() {
        assert!(alive(std::process::id()));
        assert!(!alive(u32::MAX));
    }
}
