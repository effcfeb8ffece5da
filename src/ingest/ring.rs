//! The pre-roll ring: the last seconds of a camera's encoded packets, kept so that an evidence
//! clip can start before the moment an event was recognised.
//!
//! It holds encoded packets, not decoded frames: memory is bitrate x seconds (a 4 Mbit/s camera
//! over 12 s is 6 MB), against 3 MB per decoded 1080p frame. It always starts at a keyframe, and
//! drops whole GOPs from the front once the rest still covers the configured duration.
//!
//! Sizing: an event is only known when its track ends, so at that moment the ring must still hold
//! the keyframe at or before `start_s - pre_roll`. With `keep_s >= pre_roll + longest event +
//! analysis lag`, it does (the ring adds up to one GOP on top of `keep_s` by keeping whole GOPs).
//! The evidence thread copies the packets it needs out of the ring (cheap: the payload is shared
//! through `Arc`) when a request arrives and then follows the ring by sequence number until the
//! post-roll is in, so a pending clip never holds the ring back.
//!
//! Every packet pushed in a session gets a sequence number; a reconnect starts a new session
//! ([`PacketRing::restart`]) and the end of a source is marked with [`PacketRing::finish`], so a
//! reader waiting for packets that will never come knows to stop waiting.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::Packet;

/// A ring shared between the ingest thread (writer) and the evidence thread (reader).
pub type SharedRing = Arc<Mutex<PacketRing>>;

/// A bounded buffer of recent packets, starting at a keyframe.
#[derive(Debug)]
pub struct PacketRing {
    packets: VecDeque<Packet>,
    /// Sequence number of `packets[0]`.
    first_seq: u64,
    /// Sequence number the next pushed packet gets.
    next_seq: u64,
    bytes: usize,
    keep_s: f64,
    max_bytes: usize,
    /// Largest `pts_s` pushed in this session.
    newest_pts_s: f64,
    session: u64,
    finished: bool,
    /// GOPs dropped early because the ring was over `max_bytes`.
    gops_dropped_for_memory: u64,
}

/// Packets copied out of a ring, with what a reader needs to continue from there.
#[derive(Debug, Clone)]
pub struct Taken {
    /// The packets, in stream (decode) order.
    pub packets: Vec<Packet>,
    /// Sequence number of `packets[0]` (consecutive after it).
    pub first_seq: u64,
    /// Sequence number of the packet after the last one taken (pass it to [`PacketRing::take_after`]).
    pub next_seq: u64,
    /// The ring session the packets belong to.
    pub session: u64,
    /// True when packets between the previous take and this one were dropped before being taken.
    pub gap: bool,
}

impl PacketRing {
    /// A ring that keeps at least `keep_s` seconds (plus up to one GOP), but never more than
    /// `max_bytes` of packet data (beyond the newest GOP, which is always kept).
    pub fn new(keep_s: f64, max_bytes: usize) -> Self {
        PacketRing {
            packets: VecDeque::new(),
            first_seq: 0,
            next_seq: 0,
            bytes: 0,
            keep_s,
            max_bytes,
            newest_pts_s: f64::NEG_INFINITY,
            session: 0,
            finished: false,
            gops_dropped_for_memory: 0,
        }
    }

    /// A new ring behind a mutex, ready to share between ingest and evidence.
    pub fn shared(keep_s: f64, max_bytes: usize) -> SharedRing {
        Arc::new(Mutex::new(PacketRing::new(keep_s, max_bytes)))
    }

    /// Adds the newest packet and drops what is no longer needed.
    pub fn push(&mut self, packet: Packet) {
        if self.packets.is_empty() && !packet.is_key {
            return; // A ring always starts at a keyframe.
        }
        self.bytes += packet.data.len();
        self.newest_pts_s = self.newest_pts_s.max(packet.pts_s);
        if self.packets.is_empty() {
            self.first_seq = self.next_seq;
        }
        self.next_seq += 1;
        self.packets.push_back(packet);
        let newest_s = self.newest_pts_s;
        // Drop the oldest GOP while the GOP after it still starts early enough, or memory is over.
        while let Some(next_key) = self
            .packets
            .iter()
            .skip(1)
            .position(|p| p.is_key)
            .map(|i| i + 1)
        {
            let over_time = self.packets[next_key].pts_s <= newest_s - self.keep_s;
            let over_memory = self.bytes > self.max_bytes;
            if !(over_time || over_memory) {
                break;
            }
            if over_memory && !over_time {
                self.gops_dropped_for_memory += 1;
            }
            for p in self.packets.drain(..next_key) {
                self.bytes -= p.data.len();
            }
            self.first_seq += next_key as u64;
        }
    }

    /// Packets from the last keyframe at or before `from_s` (or the oldest held) to the newest.
    pub fn since(&self, from_s: f64) -> Vec<Packet> {
        self.take_since(from_s).packets
    }

    /// Like [`PacketRing::since`], with the sequence number to continue from.
    pub fn take_since(&self, from_s: f64) -> Taken {
        let start = self
            .packets
            .iter()
            .rposition(|p| p.is_key && p.pts_s <= from_s + 1e-6)
            .unwrap_or(0);
        Taken {
            packets: self.packets.range(start..).cloned().collect(),
            first_seq: if self.packets.is_empty() {
                self.next_seq
            } else {
                self.first_seq + start as u64
            },
            next_seq: self.next_seq,
            session: self.session,
            gap: false,
        }
    }

    /// Packets pushed since sequence number `seq` (what [`Taken::next_seq`] said). `gap` is set
    /// when some of them were already dropped.
    pub fn take_after(&self, seq: u64) -> Taken {
        let gap = seq < self.first_seq && !self.packets.is_empty();
        let skip = seq.saturating_sub(self.first_seq) as usize;
        Taken {
            packets: self.packets.iter().skip(skip).cloned().collect(),
            first_seq: seq.max(self.first_seq).min(self.next_seq),
            next_seq: self.next_seq,
            session: self.session,
            gap,
        }
    }

    /// Marks the end of the current session's packets (end of file, source failed, cancelled):
    /// readers stop waiting for more.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// True once [`PacketRing::finish`] was called in this session.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Starts a new session (after a reconnect): forgets the old packets, whose timestamps belong
    /// to another connection, and tells readers of the old session that it ended.
    pub fn restart(&mut self) {
        self.clear();
        self.session += 1;
        self.finished = false;
        self.newest_pts_s = f64::NEG_INFINITY;
    }

    /// The current session number (0 for the first, +1 per [`PacketRing::restart`]).
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Largest presentation time pushed in this session, or `None` before the first packet.
    pub fn newest_pts_s(&self) -> Option<f64> {
        self.newest_pts_s.is_finite().then_some(self.newest_pts_s)
    }

    /// GOPs dropped before `keep_s` was reached because the memory cap was hit (a sign the cap is
    /// too small for the camera's bitrate).
    pub fn gops_dropped_for_memory(&self) -> u64 {
        self.gops_dropped_for_memory
    }

    /// Bytes of packet data held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of packets held.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Media time of the oldest and newest packet held (decode order).
    pub fn span_s(&self) -> Option<(f64, f64)> {
        Some((self.packets.front()?.pts_s, self.packets.back()?.pts_s))
    }

    /// Forgets the packets held (the session and its sequence numbers go on).
    pub fn clear(&mut self) {
        self.packets.clear();
        self.bytes = 0;
        self.first_seq = self.next_seq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn pkt(i: i64, gop: i64, size: usize) -> Packet {
        Packet {
            pts: i,
            dts: i,
            duration: 1,
            pts_s: i as f64 * 0.04,
            is_key: i % gop == 0,
            data: Arc::from(vec![0u8; size]),
        }
    }

    #[test]
    fn keeps_the_duration_from_a_keyframe() {
        let mut ring = PacketRing::new(4.0, usize::MAX);
        for i in 0..1000 {
            ring.push(pkt(i, 50, 100));
        }
        let (oldest, newest) = ring.span_s().unwrap();
        assert!(newest - oldest >= 4.0, "{oldest}..{newest}");
        assert!(
            newest - oldest < 4.0 + 2.0 + 1e-9,
            "at most one GOP extra: {oldest}..{newest}"
        );
        assert!(ring.since(0.0)[0].is_key);
        assert_eq!(ring.bytes(), ring.len() * 100);
    }

    #[test]
    fn since_starts_at_the_keyframe_at_or_before() {
        let mut ring = PacketRing::new(10.0, usize::MAX);
        for i in 0..300 {
            ring.push(pkt(i, 50, 10));
        }
        // Keyframes every 2 s: 5.0 s lies in the GOP starting at 4.0 s.
        let got = ring.since(5.0);
        assert!(got[0].is_key);
        assert!((got[0].pts_s - 4.0).abs() < 1e-9);
        assert_eq!(got.last().unwrap().pts, 299);
        // Exactly on a keyframe: that keyframe.
        assert!((ring.since(6.0)[0].pts_s - 6.0).abs() < 1e-9);
    }

    #[test]
    fn memory_cap_drops_whole_gops_and_skips_leading_non_keys() {
        let mut ring = PacketRing::new(100.0, 5_000);
        ring.push(pkt(1, 50, 10)); // not a keyframe: ignored
        assert!(ring.is_empty());
        for i in 0..500 {
            ring.push(pkt(i, 50, 100));
        }
        assert!(ring.bytes() <= 5_000 + 50 * 100);
        assert!(ring.since(0.0)[0].is_key);
        assert!(ring.gops_dropped_for_memory() > 0);
    }

    #[test]
    fn a_reader_follows_the_ring_by_sequence_number() {
        let mut ring = PacketRing::new(4.0, usize::MAX);
        for i in 0..120 {
            ring.push(pkt(i, 50, 10));
        }
        let first = ring.take_since(3.0);
        assert_eq!(first.packets[0].pts, 50);
        assert_eq!(first.packets.last().unwrap().pts, 119);
        for i in 120..130 {
            ring.push(pkt(i, 50, 10));
        }
        assert_eq!(first.first_seq, 50);
        assert_eq!(first.next_seq, 120);
        let next = ring.take_after(first.next_seq);
        assert!(!next.gap);
        assert_eq!(next.first_seq, 120);
        let pts: Vec<i64> = next.packets.iter().map(|p| p.pts).collect();
        assert_eq!(pts, (120..130).collect::<Vec<_>>());
        // Nothing new: nothing taken.
        assert!(ring.take_after(next.next_seq).packets.is_empty());
        // A reader that fell behind the ring learns that it missed packets.
        for i in 130..400 {
            ring.push(pkt(i, 50, 10));
        }
        let late = ring.take_after(next.next_seq);
        assert!(late.gap);
        assert!(late.packets[0].is_key);
    }

    #[test]
    fn finish_and_restart_mark_session_boundaries() {
        let mut ring = PacketRing::new(4.0, usize::MAX);
        for i in 0..60 {
            ring.push(pkt(i, 50, 10));
        }
        assert_eq!(ring.newest_pts_s(), Some(59.0 * 0.04));
        assert!(!ring.is_finished());
        ring.finish();
        assert!(ring.is_finished());
        let s0 = ring.session();
        ring.restart();
        assert_eq!(ring.session(), s0 + 1);
        assert!(!ring.is_finished());
        assert!(ring.is_empty());
        assert_eq!(ring.newest_pts_s(), None);
        // Sequence numbers go on after a restart, so old readers cannot mistake new packets.
        let t = ring.take_since(0.0);
        ring.push(pkt(0, 50, 10));
        let after = ring.take_after(t.next_seq);
        assert_eq!(after.packets.len(), 1);
        assert_eq!(after.session, s0 + 1);
    }
}
