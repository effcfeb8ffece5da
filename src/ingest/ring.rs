//! The pre-roll ring: the last seconds of a camera's encoded packets, kept so that an evidence
//! clip can start before the moment an event was recognised.
//!
//! It holds encoded packets, not decoded frames: memory is bitrate x seconds (a 4 Mbit/s camera
//! over 8 s is 4 MB), against 3 MB per decoded 1080p frame. It always starts at a keyframe, and
//! drops whole GOPs from the front once the rest still covers the configured duration.

use std::collections::VecDeque;

use super::Packet;

/// A bounded buffer of recent packets, starting at a keyframe.
#[derive(Debug)]
pub struct PacketRing {
    packets: VecDeque<Packet>,
    bytes: usize,
    keep_s: f64,
    max_bytes: usize,
}

impl PacketRing {
    /// A ring that keeps at least `keep_s` seconds (plus up to one GOP), but never more than
    /// `max_bytes` of packet data.
    pub fn new(keep_s: f64, max_bytes: usize) -> Self {
        PacketRing {
            packets: VecDeque::new(),
            bytes: 0,
            keep_s,
            max_bytes,
        }
    }

    /// Adds the newest packet and drops what is no longer needed.
    pub fn push(&mut self, packet: Packet) {
        if self.packets.is_empty() && !packet.is_key {
            return; // A ring always starts at a keyframe.
        }
        self.bytes += packet.data.len();
        let newest_s = packet.pts_s;
        self.packets.push_back(packet);
        // Drop the oldest GOP while the GOP after it still starts early enough, or memory is over.
        while let Some(next_key) = self
            .packets
            .iter()
            .skip(1)
            .position(|p| p.is_key)
            .map(|i| i + 1)
        {
            let over_time = self.packets[next_key].pts_s <= newest_s - self.keep_s;
            if !(over_time || self.bytes > self.max_bytes) {
                break;
            }
            for p in self.packets.drain(..next_key) {
                self.bytes -= p.data.len();
            }
        }
    }

    /// Packets from the last keyframe at or before `from_s` (or the oldest held) to the newest.
    pub fn since(&self, from_s: f64) -> Vec<Packet> {
        let start = self
            .packets
            .iter()
            .rposition(|p| p.is_key && p.pts_s <= from_s)
            .unwrap_or(0);
        self.packets.range(start..).cloned().collect()
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

    /// Media time of the oldest and newest packet held.
    pub fn span_s(&self) -> Option<(f64, f64)> {
        Some((self.packets.front()?.pts_s, self.packets.back()?.pts_s))
    }

    /// Forgets everything (after a reconnect the old packets belong to another session).
    pub fn clear(&mut self) {
        self.packets.clear();
        self.bytes = 0;
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
    }
}
