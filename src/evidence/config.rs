//! Evidence settings: pre/post-roll, the pre-roll ring's size, retention and snapshot quality.

use serde::{Deserialize, Serialize};

use crate::bail;
use crate::error::Result;

/// How evidence is cut, kept and pruned. Every field has a default (stated on it), so a config
/// file only names what it changes.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceConfig {
    /// Seconds of video before an event's `start_s` that its clip covers (the clip starts at the
    /// last keyframe at or before that moment, so it may reach up to one GOP further back).
    /// Default: 3.0 (the contract's minimum).
    pub pre_roll_s: f64,
    /// Seconds of video after an event's `end_s` that its clip covers. Default: 2.0 (the
    /// contract's minimum).
    pub post_roll_s: f64,
    /// Longest event (first to last track point) whose clip still reaches its full pre-roll, for
    /// sizing the ring. Default: 6.0 (a fall from 100 m lasts about 4.5 s).
    pub max_event_s: f64,
    /// Time from an event's last track point until its request reaches the evidence thread (track
    /// closing, fitting, queueing), for sizing the ring. Default: 1.0.
    pub analysis_lag_s: f64,
    /// Cap on one camera's pre-roll ring memory, bytes; whole GOPs are dropped early above it.
    /// Default: 32 MiB (12 s at ~20 Mbit/s).
    pub ring_max_bytes: usize,
    /// Longest clip that overlapping events of one camera may share; beyond it a later event gets
    /// its own clip. Default: 60.0.
    pub max_clip_s: f64,
    /// Longest wall-clock wait for a post-roll to arrive (a live source that stalls without
    /// reconnecting); the clip is then cut with what arrived. Files never time out (their end is
    /// signalled). Default: 30.0.
    pub post_roll_timeout_s: f64,
    /// How often the evidence thread looks for new packets of pending clips, milliseconds.
    /// Default: 100.
    pub poll_ms: u64,
    /// Disk budget for all event directories, bytes; the oldest events are deleted beyond it.
    /// `None` = unlimited. Default: 20 GiB.
    pub retention_budget_bytes: Option<u64>,
    /// Events older than this (by the time they were written) are deleted, seconds. `None` = kept
    /// until the budget needs the space. Default: 90 days.
    pub retention_max_age_s: Option<u64>,
    /// Events younger than this are never deleted, whatever the budget says, seconds.
    /// Default: 24 h.
    pub retention_min_age_s: u64,
    /// JPEG quality of snapshots, 1-100. Default: 90.
    pub jpeg_quality: u8,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        EvidenceConfig {
            pre_roll_s: 3.0,
            post_roll_s: 2.0,
            max_event_s: 6.0,
            analysis_lag_s: 1.0,
            ring_max_bytes: 32 << 20,
            max_clip_s: 60.0,
            post_roll_timeout_s: 30.0,
            poll_ms: 100,
            retention_budget_bytes: Some(20 << 30),
            retention_max_age_s: Some(90 * 24 * 3600),
            retention_min_age_s: 24 * 3600,
            jpeg_quality: 90,
        }
    }
}

impl EvidenceConfig {
    /// Seconds of packets each camera's pre-roll ring keeps (it adds up to one GOP on top):
    /// `pre_roll_s + max_event_s + analysis_lag_s`.
    pub fn ring_keep_s(&self) -> f64 {
        self.pre_roll_s + self.max_event_s + self.analysis_lag_s
    }

    /// A pre-roll ring sized by this configuration, shared between ingest and evidence.
    pub fn new_ring(&self) -> crate::ingest::ring::SharedRing {
        crate::ingest::ring::PacketRing::shared(self.ring_keep_s(), self.ring_max_bytes)
    }

    /// Checks the values make sense together; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let finite_nonneg = |name: &str, v: f64| -> Result<()> {
            if !(v.is_finite() && v >= 0.0) {
                bail!(
                    InvalidInput,
                    "evidence: {name} must be a number >= 0, got {v}"
                );
            }
            Ok(())
        };
        finite_nonneg("pre_roll_s", self.pre_roll_s)?;
        finite_nonneg("post_roll_s", self.post_roll_s)?;
        finite_nonneg("max_event_s", self.max_event_s)?;
        finite_nonneg("analysis_lag_s", self.analysis_lag_s)?;
        finite_nonneg("post_roll_timeout_s", self.post_roll_timeout_s)?;
        if !(self.max_clip_s.is_finite() && self.max_clip_s > 0.0) {
            bail!(
                InvalidInput,
                "evidence: max_clip_s must be > 0, got {}",
                self.max_clip_s
            );
        }
        if self.ring_max_bytes < 1 << 20 {
            bail!(
                InvalidInput,
                "evidence: ring_max_bytes must be at least 1 MiB, got {}",
                self.ring_max_bytes
            );
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            bail!(
                InvalidInput,
                "evidence: jpeg_quality must be 1-100, got {}",
                self.jpeg_quality
            );
        }
        if self.poll_ms == 0 {
            bail!(InvalidInput, "evidence: poll_ms must be > 0");
        }
        if let Some(max) = self.retention_max_age_s
            && max < self.retention_min_age_s
        {
            bail!(
                InvalidInput,
                "evidence: retention_max_age_s ({max}) is below retention_min_age_s ({})",
                self.retention_min_age_s
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_from_an_empty_table_and_unknown_fields_are_refused() {
        let c: EvidenceConfig = toml::from_str("").unwrap();
        assert_eq!(c, EvidenceConfig::default());
        c.validate().unwrap();
        assert_eq!(c.ring_keep_s(), 10.0);
        let c: EvidenceConfig = toml::from_str("pre_roll_s = 5.0\njpeg_quality = 70").unwrap();
        assert_eq!(c.pre_roll_s, 5.0);
        assert_eq!(c.jpeg_quality, 70);
        assert!(toml::from_str::<EvidenceConfig>("pre_rol_s = 5.0").is_err());
    }

    #[test]
    fn validation_names_the_bad_field() {
        let c = EvidenceConfig {
            jpeg_quality: 0,
            ..Default::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("jpeg_quality")
        );
        let c = EvidenceConfig {
            retention_max_age_s: Some(10),
            retention_min_age_s: 20,
            ..Default::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("retention_max_age_s")
        );
        let c = EvidenceConfig {
            post_roll_s: f64::NAN,
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }
}
