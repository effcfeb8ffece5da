//! Evidence: what a security guard gets for each event, in `<out>/<id>/`:
//! `clip.mp4` (stream copy of the camera's own packets from the last keyframe at or before
//! `start_s - pre_roll_s` through `end_s + post_roll_s`, `moov` first so it plays at once),
//! `snapshot.jpg` (the frame nearest the release with the trajectory, track, release point,
//! floor/bay/time label and an enlarged crop drawn on it) and `event.json` (the contract's record).
//!
//! - [`EvidenceConfig`]: pre/post-roll, ring size, retention, JPEG quality.
//! - [`EvidenceService`] / [`EvidenceClient`]: the `evidence` thread shared by all cameras, fed
//!   by [`EvidenceClient::submit`]; outcomes come back as [`EvidenceDone`] on a channel.
//! - [`EvidenceWriter`]: the synchronous core (one per output directory): atomic directories,
//!   id collisions, retention.
//!
//! - [`PersonSearcher`]: the person search at the release point, run by the evidence thread on
//!   frames decoded from the request's pre-roll packets (optional `persons` event fields).
//!
//! Per camera, ingest pushes packets into a [`SharedRing`](crate::ingest::ring::SharedRing) made
//! by [`EvidenceConfig::new_ring`], calls `finish()` on it when the source ends and `restart()`
//! after a reconnect. Layout, guarantees and figures: `docs/evidence.md`.

mod clip;
mod config;
mod decode;
mod fsio;
mod persons;
mod retention;
mod service;
mod snapshot;
#[doc(hidden)]
pub mod testing;
mod writer;

pub use config::EvidenceConfig;
pub use persons::{PERSONS_HANDLE, PersonSearcher};
pub use service::{EvidenceClient, EvidenceRequest, EvidenceService};
pub use snapshot::SnapshotOverlay;
pub use writer::{CLIP_NAME, EventInput, EvidenceDone, EvidenceWriter, SNAPSHOT_NAME, WriterStats};

#[cfg(test)]
mod tests;
