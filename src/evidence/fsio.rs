//! Crash-safe file system steps: every file is written under a temporary name, flushed to disk
//! and renamed into place; directories are fsynced after entries appear or disappear in them.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Prefix of every temporary entry in an output directory; whatever carries it is unfinished
/// work (or a deletion in progress) and is removed at the next start.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// The temporary name a file `name` is written under before it is renamed to `name`.
pub(crate) fn part_name(name: &str) -> String {
    format!(".{name}.part")
}

/// Flushes a directory's entries (new, renamed, removed names) to disk.
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flushes a file's contents to disk.
pub(crate) fn fsync_file(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Writes `bytes` to `dir/name` through `dir/.name.part`: write, fsync, rename. The caller
/// fsyncs `dir` once all its files are in place. Optionally stamps the file's modification time
/// (retention reads it back as the time the event was written).
pub(crate) fn write_atomic(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    mtime: Option<SystemTime>,
) -> io::Result<PathBuf> {
    let part = dir.join(part_name(name));
    let target = dir.join(name);
    let result = (|| {
        let mut f = File::create(&part)?;
        f.write_all(bytes)?;
        if let Some(t) = mtime {
            f.set_modified(t)?;
        }
        f.sync_all()?;
        drop(f);
        fs::rename(&part, &target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result.map(|()| target)
}

/// Moves a finished file `dir/.name.part` to `dir/name` after flushing it.
pub(crate) fn commit_part(dir: &Path, name: &str) -> io::Result<PathBuf> {
    let part = dir.join(part_name(name));
    let target = dir.join(name);
    fsync_file(&part)?;
    fs::rename(&part, &target)?;
    Ok(target)
}

/// Removes every `.tmp-*` entry directly under `dir` (leftovers of a crash or of an interrupted
/// deletion). Returns how many were removed.
pub(crate) fn remove_tmp_entries(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(TMP_PREFIX) {
            continue;
        }
        let path = entry.path();
        let r = if entry.file_type()?.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match r {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if removed > 0 {
        fsync_dir(dir)?;
    }
    Ok(removed)
}

/// A one-line description of an I/O failure for `event.json` (`No space left on device`, ...).
pub(crate) fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        // Strip Rust's " (os error 28)" suffix: the reader is a person.
        Some(_) => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_only_the_final_file() {
        let dir = tempfile::tempdir().unwrap();
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let p = write_atomic(dir.path(), "a.json", b"{}", Some(t)).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"{}");
        assert_eq!(fs::metadata(&p).unwrap().modified().unwrap(), t);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["a.json".to_string()]);
    }

    #[test]
    fn tmp_entries_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(".tmp-x")).unwrap();
        fs::write(dir.path().join(".tmp-x/clip.mp4"), b"partial").unwrap();
        fs::write(dir.path().join(".tmp-y"), b"").unwrap();
        fs::create_dir(dir.path().join("cam-000000001-01")).unwrap();
        assert_eq!(remove_tmp_entries(dir.path()).unwrap(), 2);
        assert!(dir.path().join("cam-000000001-01").exists());
        assert!(!dir.path().join(".tmp-x").exists());
    }

    #[test]
    fn io_errors_read_as_one_plain_line() {
        let e = io::Error::from_raw_os_error(28);
        assert_eq!(describe(&e), "No space left on device");
    }
}
