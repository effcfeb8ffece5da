//! Retention: keeps the event directories under a disk budget and a maximum age, deleting the
//! oldest first, never one younger than the minimum age.
//!
//! The index lives in memory (rebuilt by one scan at start), so pruning after every event costs
//! nothing but the deletions. Sizes are counted per inode: a clip hard-linked into two event
//! directories counts once, and deleting one of them frees nothing until the other goes too.
//! The age of an event is the modification time of its `event.json`, which the writer stamps with
//! its clock when it writes the event.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::fsio::{self, TMP_PREFIX};

/// Name of the event record inside an event directory.
pub(crate) const EVENT_JSON: &str = "event.json";

/// Retention limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Limits {
    pub budget_bytes: Option<u64>,
    pub max_age: Option<Duration>,
    pub min_age: Duration,
}

#[derive(Debug)]
struct Entry {
    /// (device, inode, size) of each file.
    files: Vec<(u64, u64, u64)>,
}

/// What the output directory holds, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// (written at, directory name): ordered oldest first.
    order: BTreeSet<(SystemTime, String)>,
    entries: HashMap<String, Entry>,
    /// (device, inode) -> (size, references from indexed events).
    inodes: HashMap<(u64, u64), (u64, u32)>,
    total_bytes: u64,
}

/// What one pruning pass did.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Pruned {
    /// Directory names deleted, oldest first.
    pub deleted: Vec<String>,
    /// True when the budget is still exceeded because the remaining events are too young.
    pub over_budget: bool,
}

impl Index {
    /// Scans `out`: every directory holding an `event.json` is an event (others are left alone).
    pub fn scan(out: &Path) -> std::io::Result<Index> {
        let mut index = Index::default();
        for entry in fs::read_dir(out)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) || name.starts_with('.') || !entry.file_type()?.is_dir()
            {
                continue;
            }
            let json = entry.path().join(EVENT_JSON);
            let Ok(meta) = fs::metadata(&json) else {
                continue;
            };
            let written = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            index.add(&entry.path(), written)?;
        }
        Ok(index)
    }

    /// Adds the event directory `dir` (its name is the key) written at `written`.
    pub fn add(&mut self, dir: &Path, written: SystemTime) -> std::io::Result<()> {
        let name = dir_name(dir);
        if self.entries.contains_key(&name) {
            self.remove_entry(&name);
        }
        let mut files = Vec::new();
        for f in fs::read_dir(dir)? {
            let f = f?;
            let meta = f.metadata()?;
            if !meta.is_file() {
                continue;
            }
            let key = (meta.dev(), meta.ino());
            let slot = self.inodes.entry(key).or_insert((meta.len(), 0));
            if slot.1 == 0 {
                self.total_bytes += meta.len();
            }
            slot.1 += 1;
            files.push((meta.dev(), meta.ino(), meta.len()));
        }
        self.order.insert((written, name.clone()));
        self.entries.insert(name, Entry { files });
        Ok(())
    }

    fn remove_entry(&mut self, name: &str) {
        let Some(entry) = self.entries.remove(name) else {
            return;
        };
        self.order.retain(|(_, n)| n != name);
        for (dev, ino, _) in entry.files {
            if let Some(slot) = self.inodes.get_mut(&(dev, ino)) {
                slot.1 -= 1;
                if slot.1 == 0 {
                    self.total_bytes -= slot.0;
                    self.inodes.remove(&(dev, ino));
                }
            }
        }
    }

    /// Bytes the indexed events occupy (shared files once).
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Number of indexed events.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Event directory names, oldest first.
    pub fn names(&self) -> Vec<String> {
        self.order.iter().map(|(_, n)| n.clone()).collect()
    }

    /// Deletes events from `out`: every one older than `max_age`, then the oldest while over the
    /// budget; never one younger than `min_age`. Each deletion is a rename to a `.tmp-` name
    /// (atomic for readers) followed by removal; a crash in between leaves a leftover that the next
    /// start removes.
    pub fn prune(&mut self, out: &Path, now: SystemTime, limits: &Limits) -> Pruned {
        let mut pruned = Pruned::default();
        let age = |t: SystemTime| now.duration_since(t).unwrap_or(Duration::ZERO);
        while let Some((written, name)) = self.order.first().cloned() {
            let a = age(written);
            let too_old = limits.max_age.is_some_and(|m| a > m);
            let over = limits.budget_bytes.is_some_and(|b| self.total_bytes > b);
            if !(too_old || over) {
                break;
            }
            if a < limits.min_age {
                pruned.over_budget = over;
                break;
            }
            match delete_event_dir(out, &name) {
                Ok(()) => {
                    self.remove_entry(&name);
                    pruned.deleted.push(name);
                }
                Err(e) => {
                    tracing::warn!(dir = %out.join(&name).display(), "retention: cannot delete: {e}");
                    // Forget it rather than retry forever; the next start rescans.
                    self.remove_entry(&name);
                }
            }
        }
        pruned
    }
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Deletes `out/name` so that readers never see it half-deleted.
fn delete_event_dir(out: &Path, name: &str) -> std::io::Result<()> {
    let doomed: PathBuf = out.join(format!("{TMP_PREFIX}del-{name}"));
    fs::rename(out.join(name), &doomed)?;
    fsio::fsync_dir(out)?;
    fs::remove_dir_all(&doomed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_event(out: &Path, name: &str, bytes: usize, written: SystemTime) -> PathBuf {
        let dir = out.join(name);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("clip.mp4"), vec![0u8; bytes]).unwrap();
        fsio::write_atomic(&dir, EVENT_JSON, b"{}", Some(written)).unwrap();
        dir
    }

    /// An event `name` that links the clip of event directory `of` (overlapping events share one).
    fn share_clip(out: &Path, of: &Path, name: &str, written: SystemTime) -> PathBuf {
        let dir = out.join(name);
        fs::create_dir(&dir).unwrap();
        fs::hard_link(of.join("clip.mp4"), dir.join("clip.mp4")).unwrap();
        fsio::write_atomic(&dir, EVENT_JSON, b"{}", Some(written)).unwrap();
        dir
    }

    #[test]
    fn shared_files_count_once_and_scan_finds_what_add_found() {
        let out = tempfile::tempdir().unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let a = make_event(out.path(), "a", 1000, t0);
        share_clip(out.path(), &a, "b", t0 + Duration::from_secs(1));
        fs::create_dir(out.path().join("not-an-event")).unwrap();
        let idx = Index::scan(out.path()).unwrap();
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.total_bytes(), 1000 + 2 + 2);
        assert_eq!(idx.names(), vec!["a", "b"]);
    }

    #[test]
    fn deleting_one_of_two_sharing_events_frees_nothing_of_the_clip() {
        let out = tempfile::tempdir().unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let a = make_event(out.path(), "a", 1000, t0);
        let b = share_clip(out.path(), &a, "b", t0 + Duration::from_secs(10));
        let mut idx = Index::scan(out.path()).unwrap();
        let limits = Limits {
            budget_bytes: Some(1003),
            max_age: None,
            min_age: Duration::ZERO,
        };
        let p = idx.prune(out.path(), t0 + Duration::from_secs(20), &limits);
        assert_eq!(p.deleted, vec!["a"]);
        assert_eq!(idx.total_bytes(), 1002);
        assert!(b.join("clip.mp4").exists());
        assert!(!a.exists());
    }
}
