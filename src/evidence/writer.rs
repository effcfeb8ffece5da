//! The evidence writer: turns cut packets and finished events into complete event directories,
//! atomically, and keeps the output directory within its retention limits.
//!
//! One writer owns one output directory (an exclusive lock file keeps a second process out).
//! An event directory is assembled as `<out>/.tmp-<id>/` (clip, snapshot, `event.json`, each
//! written under a temporary name, fsynced and renamed), the directory is fsynced and renamed to
//! `<out>/<id>/`, and `<out>` is fsynced: a reader sees a whole event or none.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ab_glyph::FontRef;
use chrono::{DateTime, Local};

use super::clip::{self, ClipSpan};
use super::config::EvidenceConfig;
use super::fsio::{self, TMP_PREFIX};
use super::retention::{EVENT_JSON, Index, Limits};
use super::snapshot::{self, Annotation, SnapshotOverlay};
use crate::clock::Clock;
use crate::err;
use crate::error::{Error, Result};
use crate::events::{Event, event_id};
use crate::ingest::{Packet, StreamInfo};

/// File name of the clip inside an event directory.
pub const CLIP_NAME: &str = "clip.mp4";
/// File name of the snapshot inside an event directory.
pub const SNAPSHOT_NAME: &str = "snapshot.jpg";
const LOCK_NAME: &str = ".fallwatch-evidence.lock";

/// One event handed to the writer: the record from the analysis (its `clip` and `snapshot`
/// names are filled in here) and what the snapshot draws.
#[derive(Clone, Debug)]
pub struct EventInput {
    /// The event; `id` is kept unless it is taken, then its sequence number is bumped.
    pub event: Event,
    /// Drawing data for the snapshot.
    pub overlay: SnapshotOverlay,
}

/// The outcome for one event: the record as written (or as it would have been) and where.
#[derive(Debug)]
pub struct EvidenceDone {
    /// The event as in its `event.json`, with `clip`, `snapshot` and any `clip_error` /
    /// `snapshot_error` filled in.
    pub event: Event,
    /// The event's directory `<out>/<id>/`.
    pub dir: PathBuf,
    /// Set when not even `event.json` could be committed: the event exists only in this report.
    pub error: Option<Error>,
}

/// Test hooks: failures injected at exact points of the write.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailPoint {
    /// The clip write fails with ENOSPC part-way.
    ClipNoSpace,
    /// The snapshot write fails with ENOSPC.
    SnapshotNoSpace,
    /// The process "dies" after the files are written, before the directory is renamed.
    CrashBeforeRename,
}

/// Counters of a writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Event directories committed.
    pub events: u64,
    /// Clips muxed.
    pub clips_written: u64,
    /// Event directories that got an existing clip by hard link instead of a new one.
    pub clips_shared: u64,
    /// Events whose clip failed (`clip_error`).
    pub clip_errors: u64,
    /// Events whose snapshot failed (`snapshot_error`).
    pub snapshot_errors: u64,
    /// Events that could not be committed at all.
    pub event_errors: u64,
    /// Event directories deleted by retention.
    pub pruned: u64,
}

/// Writes event directories into one output directory. Not shared between threads: the
/// evidence thread owns it.
pub struct EvidenceWriter {
    out: PathBuf,
    cfg: EvidenceConfig,
    clock: Arc<dyn Clock>,
    index: Index,
    font: FontRef<'static>,
    stats: WriterStats,
    _lock: File,
    #[cfg(test)]
    pub(crate) fail: Option<FailPoint>,
}

/// An event being assembled in its temporary directory.
struct Staged {
    /// Position among the inputs (results come back in input order).
    slot: usize,
    event: Event,
    overlay: SnapshotOverlay,
    tmp: PathBuf,
}

impl EvidenceWriter {
    /// Opens (creating it if needed) the output directory `out`: takes its lock, removes the
    /// `.tmp-*` leftovers of a crash, indexes the events there and applies retention.
    pub fn new(out: &Path, cfg: EvidenceConfig, clock: Arc<dyn Clock>) -> Result<EvidenceWriter> {
        cfg.validate()?;
        let ctx = || format!("evidence directory {}", out.display());
        fs::create_dir_all(out)
            .map_err(|e| err!(Resource, "{}: cannot create", ctx()).with_source(e))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(out.join(LOCK_NAME))
            .map_err(|e| err!(Resource, "{}: cannot open the lock file", ctx()).with_source(e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(err!(
                    Resource,
                    "{}: in use by another fallwatch process",
                    ctx()
                ));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(err!(Resource, "{}: cannot lock", ctx()).with_source(e));
            }
        }
        let removed = fsio::remove_tmp_entries(out)
            .map_err(|e| err!(Resource, "{}: cannot remove leftovers", ctx()).with_source(e))?;
        if removed > 0 {
            tracing::info!(dir = %out.display(), "removed {removed} unfinished entries left by an earlier run");
        }
        let index = Index::scan(out)
            .map_err(|e| err!(Resource, "{}: cannot scan", ctx()).with_source(e))?;
        let mut w = EvidenceWriter {
            out: out.to_path_buf(),
            cfg,
            clock,
            index,
            font: snapshot::font(),
            stats: WriterStats::default(),
            _lock: lock,
            #[cfg(test)]
            fail: None,
        };
        w.prune();
        Ok(w)
    }

    /// The output directory.
    pub fn out_dir(&self) -> &Path {
        &self.out
    }

    /// The configuration in force.
    pub fn config(&self) -> &EvidenceConfig {
        &self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> WriterStats {
        self.stats
    }

    /// Bytes the indexed event directories occupy (shared clips counted once).
    pub fn disk_bytes(&self) -> u64 {
        self.index.total_bytes()
    }

    /// Number of event directories on disk.
    pub fn event_count(&self) -> usize {
        self.index.len()
    }

    /// Event directory names on disk, oldest first.
    pub fn event_names(&self) -> Vec<String> {
        self.index.names()
    }

    #[cfg(test)]
    fn fails(&self, p: FailPoint) -> bool {
        self.fail == Some(p)
    }

    #[cfg(not(test))]
    #[inline(always)]
    fn fails(&self, _: FailPoint) -> bool {
        false
    }

    /// Writes one event whose clip is cut from `packets` (the camera's recent packets in decode
    /// order, e.g. from the pre-roll ring) by the configured pre- and post-roll.
    pub fn write_event(
        &mut self,
        stream: &StreamInfo,
        packets: &[Packet],
        input: EventInput,
    ) -> EvidenceDone {
        let from_s = input.event.start_s - self.cfg.pre_roll_s;
        let to_s = input.event.end_s + self.cfg.post_roll_s;
        let r = clip::cut_range(packets, from_s, to_s);
        self.write_group(stream, &packets[r], None, vec![input])
            .pop()
            .expect("one event in, one out")
    }

    /// Writes events that share one clip: `packets` (decode order, starting at a keyframe) are
    /// muxed once into the first event's directory and hard-linked into the others'. With
    /// `link_from`, an already committed clip (and what it covers) is hard-linked instead, and
    /// `packets` serve only the snapshots (the clip is muxed from them if linking fails).
    pub(crate) fn write_group(
        &mut self,
        stream: &StreamInfo,
        packets: &[Packet],
        link_from: Option<(&Path, ClipSpan)>,
        inputs: Vec<EventInput>,
    ) -> Vec<EvidenceDone> {
        let now = self.clock.wall();
        let mut done: Vec<Option<EvidenceDone>> = (0..inputs.len()).map(|_| None).collect();
        let mut staged = self.stage_dirs(inputs, &mut done);
        if !staged.is_empty() {
            self.place_clip(stream, packets, link_from, &mut staged);
        }
        for st in staged {
            let slot = st.slot;
            match self.finish_event(stream, packets, st, now) {
                Some(d) => done[slot] = Some(d),
                None => return done.into_iter().flatten().collect(), // test hook: "crashed"
            }
        }
        self.prune();
        done.into_iter().flatten().collect()
    }

    /// Gives every event a free id and its temporary directory; failures go to `done`.
    fn stage_dirs(
        &mut self,
        inputs: Vec<EventInput>,
        done: &mut [Option<EvidenceDone>],
    ) -> Vec<Staged> {
        let mut staged: Vec<Staged> = Vec::new();
        for (slot, input) in inputs.into_iter().enumerate() {
            let mut event = input.event;
            event.clip = CLIP_NAME.into();
            event.snapshot = SNAPSHOT_NAME.into();
            let taken: Vec<&str> = staged.iter().map(|s| s.event.id.as_str()).collect();
            match self.free_id(&event, &taken) {
                Ok(id) => event.id = id,
                Err(e) => {
                    done[slot] = Some(self.failed(event, e));
                    continue;
                }
            }
            let tmp = self.out.join(format!("{TMP_PREFIX}{}", event.id));
            if let Err(e) = fs::create_dir(&tmp) {
                let e = err!(Resource, "cannot create {}", tmp.display()).with_source(e);
                done[slot] = Some(self.failed(event, e));
                continue;
            }
            staged.push(Staged {
                slot,
                event,
                overlay: input.overlay,
                tmp,
            });
        }
        staged
    }

    /// Writes (or links) the clip once into the first directory and hard-links it into the
    /// others; records the span or the failure in every event.
    fn place_clip(
        &mut self,
        stream: &StreamInfo,
        packets: &[Packet],
        link_from: Option<(&Path, ClipSpan)>,
        staged: &mut [Staged],
    ) {
        let clip = self.stage_clip(stream, packets, link_from, &staged[0].tmp);
        let first = staged[0].tmp.join(CLIP_NAME);
        for (i, st) in staged.iter_mut().enumerate() {
            let span = match &clip {
                Ok(span) if i == 0 => Ok(*span),
                Ok(span) => {
                    let target = st.tmp.join(CLIP_NAME);
                    fs::hard_link(&first, &target)
                        .map(|()| self.stats.clips_shared += 1)
                        .or_else(|_| {
                            fs::copy(&first, &target).and_then(|_| fsio::fsync_file(&target))
                        })
                        .map(|()| *span)
                        .map_err(|e| format!("cannot share the clip: {}", fsio::describe(&e)))
                }
                Err(e) => Err(e.clone()),
            };
            match span {
                Ok(span) => {
                    st.event.clip_start_s = Some(round_ms(span.start_s));
                    st.event.clip_end_s = Some(round_ms(span.end_s));
                }
                Err(e) => {
                    st.event.clip_error = Some(e);
                    self.stats.clip_errors += 1;
                }
            }
        }
    }

    /// Snapshot, `event.json`, rename into place, index. `None` when a test hook "crashed".
    fn finish_event(
        &mut self,
        stream: &StreamInfo,
        packets: &[Packet],
        st: Staged,
        now: SystemTime,
    ) -> Option<EvidenceDone> {
        let Staged {
            mut event,
            overlay,
            tmp,
            ..
        } = st;
        if let Err(e) = self.stage_snapshot(stream, packets, &event, &overlay, &tmp) {
            tracing::warn!(event = %event.id, "snapshot failed: {e}");
            event.snapshot_error = Some(one_line(&e));
            self.stats.snapshot_errors += 1;
        }
        let dir = self.out.join(&event.id);
        match self.commit(&event, &tmp, &dir, now) {
            Ok(()) => {
                self.stats.events += 1;
                if let Err(e) = self.index.add(&dir, now) {
                    tracing::warn!(dir = %dir.display(), "retention cannot index the event: {e}");
                }
                Some(EvidenceDone {
                    event,
                    dir,
                    error: None,
                })
            }
            Err(Commit::Crashed) => None,
            Err(Commit::Failed(e)) => {
                let _ = fs::remove_dir_all(&tmp);
                Some(self.failed(event, e))
            }
        }
    }

    fn failed(&mut self, event: Event, e: Error) -> EvidenceDone {
        tracing::error!(event = %event.id, "event not written: {e}");
        self.stats.event_errors += 1;
        EvidenceDone {
            dir: self.out.join(&event.id),
            event,
            error: Some(e),
        }
    }

    /// The event's id if it is free, else the same camera and millisecond with the next free
    /// sequence number.
    fn free_id(&self, event: &Event, staged: &[&str]) -> Result<String> {
        let taken = |id: &str| {
            staged.contains(&id)
                || self.out.join(id).exists()
                || self.out.join(format!("{TMP_PREFIX}{id}")).exists()
        };
        if !event.id.is_empty() && !taken(&event.id) {
            return Ok(event.id.clone());
        }
        let first_seq = event
            .id
            .rsplit('-')
            .next()
            .and_then(|s| s.parse::<u32>().ok())
            .map_or(1, |s| s + 1);
        (first_seq..=99)
            .map(|seq| event_id(&event.camera, event.start_s, seq))
            .find(|id| !taken(id))
            .ok_or_else(|| {
                err!(
                    Resource,
                    "no free event id for camera {} at {:.3} s (sequence 99 reached)",
                    event.camera,
                    event.start_s
                )
            })
    }

    /// Puts the clip into `tmp`; the error is the one-line text for `clip_error`.
    fn stage_clip(
        &mut self,
        stream: &StreamInfo,
        packets: &[Packet],
        link_from: Option<(&Path, ClipSpan)>,
        tmp: &Path,
    ) -> std::result::Result<ClipSpan, String> {
        if let Some((src, span)) = link_from {
            match fs::hard_link(src, tmp.join(CLIP_NAME)) {
                Ok(()) => {
                    self.stats.clips_shared += 1;
                    return Ok(span);
                }
                Err(e) => {
                    tracing::debug!(src = %src.display(), "cannot link the shared clip ({e}); writing a new one")
                }
            }
        }
        let part = tmp.join(fsio::part_name(CLIP_NAME));
        let inject = self
            .fails(FailPoint::ClipNoSpace)
            .then_some(packets.len() / 2);
        let result = clip::write_clip(&part, stream, packets, inject).and_then(|span| {
            fsio::commit_part(tmp, CLIP_NAME)
                .map(|_| span)
                .map_err(|e| err!(Resource, "cannot finish the clip").with_source(e))
        });
        match result {
            Ok(span) => {
                self.stats.clips_written += 1;
                Ok(span)
            }
            Err(e) => {
                let _ = fs::remove_file(&part);
                tracing::warn!(dir = %tmp.display(), "clip failed: {e}");
                Err(one_line(&e))
            }
        }
    }

    /// Decodes, draws and writes the snapshot into `tmp`.
    fn stage_snapshot(
        &self,
        stream: &StreamInfo,
        packets: &[Packet],
        event: &Event,
        overlay: &SnapshotOverlay,
        tmp: &Path,
    ) -> Result<()> {
        let frame = snapshot::decode_nearest(stream, packets, overlay.release_t_s)?;
        let mut image = frame.image;
        let title = format!(
            "floor {}, bay {}, {}",
            event.origin.floor,
            event.origin.bay,
            local_time(event, frame.pts_s)
                .map(|t| t.format("%H:%M:%S").to_string())
                .unwrap_or_else(|| "--:--:--".into())
        );
        let subtitle = format!(
            "{} \u{b7} {} \u{b7} t = {:.2} s",
            local_time(event, frame.pts_s)
                .map(|t| t.format("%Y-%m-%d UTC%:z").to_string())
                .unwrap_or_else(|| "no wall time".into()),
            event.camera,
            frame.pts_s
        );
        let annotation = Annotation {
            trajectory_px: &overlay.trajectory_px,
            track: &event.track,
            release_px: event.origin.px,
            object_box_px: snapshot::object_box(
                overlay.object_box_px,
                &event.track,
                overlay.release_t_s,
            ),
            title,
            subtitle,
        };
        snapshot::render(&mut image, &annotation, &self.font);
        let jpeg = snapshot::encode_jpeg(&image, self.cfg.jpeg_quality)?;
        let write = if self.fails(FailPoint::SnapshotNoSpace) {
            Err(std::io::Error::from_raw_os_error(28))
        } else {
            fsio::write_atomic(tmp, SNAPSHOT_NAME, &jpeg, None)
        };
        write.map(|_| ()).map_err(|e| {
            let _ = fs::remove_file(tmp.join(fsio::part_name(SNAPSHOT_NAME)));
            err!(Resource, "cannot write the snapshot").with_source(e)
        })
    }

    /// Writes `event.json`, fsyncs, and renames the directory into place.
    fn commit(
        &self,
        event: &Event,
        tmp: &Path,
        dir: &Path,
        now: SystemTime,
    ) -> std::result::Result<(), Commit> {
        let io = |what: &str, e: std::io::Error| {
            Commit::Failed(err!(Resource, "event {}: {what}", event.id).with_source(e))
        };
        let json = serde_json::to_vec_pretty(event).map_err(|e| {
            Commit::Failed(err!(Internal, "event {}: cannot serialise", event.id).with_source(e))
        })?;
        fsio::write_atomic(tmp, EVENT_JSON, &json, Some(now))
            .map_err(|e| io("cannot write event.json", e))?;
        fsio::fsync_dir(tmp).map_err(|e| io("cannot flush the directory", e))?;
        if self.fails(FailPoint::CrashBeforeRename) {
            return Err(Commit::Crashed);
        }
        fs::rename(tmp, dir).map_err(|e| io("cannot move the directory into place", e))?;
        fsio::fsync_dir(&self.out).map_err(|e| io("cannot flush the output directory", e))?;
        Ok(())
    }

    /// Applies retention now.
    pub fn prune(&mut self) {
        let limits = Limits {
            budget_bytes: self.cfg.retention_budget_bytes,
            max_age: self.cfg.retention_max_age_s.map(Duration::from_secs),
            min_age: Duration::from_secs(self.cfg.retention_min_age_s),
        };
        let pruned = self.index.prune(&self.out, self.clock.wall(), &limits);
        if !pruned.deleted.is_empty() {
            tracing::info!(dir = %self.out.display(), "retention deleted {} event(s), oldest {}", pruned.deleted.len(), pruned.deleted[0]);
        }
        if pruned.over_budget {
            tracing::warn!(
                dir = %self.out.display(),
                "over the disk budget ({} bytes) with only events younger than the minimum age left",
                self.index.total_bytes()
            );
        }
        self.stats.pruned += pruned.deleted.len() as u64;
    }
}

enum Commit {
    /// Test hook: stop as a crashed process would, leaving the temporary directory.
    Crashed,
    Failed(Error),
}

/// Wall time of media time `t_s` of the event, in the machine's time zone.
fn local_time(event: &Event, t_s: f64) -> Option<DateTime<Local>> {
    let start = DateTime::parse_from_rfc3339(&event.wall_time).ok()?;
    let offset = chrono::Duration::milliseconds(((t_s - event.start_s) * 1000.0).round() as i64);
    Some((start + offset).with_timezone(&Local))
}

/// An error as the one line stored in `event.json`.
fn one_line(e: &Error) -> String {
    e.to_string().replace('\n', " ")
}

fn round_ms(t: f64) -> f64 {
    (t * 1000.0).round() / 1000.0
}
