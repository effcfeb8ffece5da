//! The evidence thread (`evidence`, one per process, shared by all cameras): receives finished
//! events, waits for their post-roll without holding anyone up, merges overlapping events of a
//! camera into one clip, and writes the event directories.
//!
//! A request copies its pre-roll out of the camera's ring when it is made (on the analysis
//! thread, a few microseconds: packets are shared through `Arc`), so a busy evidence thread cannot
//! lose it. The evidence thread then follows the ring by sequence number every `poll_ms` until
//! a packet decoding after `end_s + post_roll_s` arrived, the source ended
//! ([`PacketRing::finish`](crate::ingest::ring::PacketRing::finish)), the ring started a new
//! session (reconnect), packets were lost, or `post_roll_timeout_s` of wall time passed; then the
//! clip is cut with what there is.
//!
//! Overlapping events of one camera share one clip: a request whose clip range overlaps a pending
//! clip's extends it (up to `max_clip_s`), and the clip is written once and hard-linked into
//! every event's directory. A request whose range lies inside the camera's last written clip
//! gets that clip hard-linked. Every event keeps its own snapshot and `event.json`.
//!
//! With a [`PersonSearcher`] (the detector runs), an event submitted with its camera's facade
//! model also gets the person search at its release point: started when the request is
//! accepted (decoded from the request's packets, crops to the detector pool), concluded when
//! its directory is written (see [`super::persons`]).

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use super::clip::{self, ClipSpan};
use super::config::EvidenceConfig;
use super::persons::PersonSearcher;
use super::snapshot::SnapshotOverlay;
use super::writer::{CLIP_NAME, EventInput, EvidenceDone, EvidenceWriter, WriterStats};
use crate::clock::Clock;
use crate::err;
use crate::error::Result;
use crate::events::Event;
use crate::ingest::ring::{PacketRing, SharedRing, Taken};
use crate::ingest::{Packet, StreamInfo};
use crate::physics::FacadeModel;

/// Requests queued for the evidence thread before `submit` blocks.
const QUEUE: usize = 64;

/// One finished event for the evidence thread, with the camera's pre-roll already taken.
pub struct EvidenceRequest {
    event: Event,
    overlay: SnapshotOverlay,
    stream: StreamInfo,
    ring: SharedRing,
    taken: Taken,
    done: Sender<EvidenceDone>,
    /// The camera's facade model: asks for the person search.
    facade: Option<Arc<FacadeModel>>,
}

impl std::fmt::Debug for EvidenceRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceRequest")
            .field("event", &self.event.id)
            .field("packets", &self.taken.packets.len())
            .finish()
    }
}

/// The sending side of the evidence thread; clone one per camera.
#[derive(Clone)]
pub struct EvidenceClient {
    tx: Sender<EvidenceRequest>,
    pre_roll_s: f64,
    /// How far before the release the person search reaches, seconds (0: no search).
    person_reach_s: f64,
}

impl std::fmt::Debug for EvidenceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EvidenceClient")
    }
}

impl EvidenceClient {
    /// Hands a finished event to the evidence thread. Takes the event's pre-roll out of `ring`
    /// now; the outcome arrives on `done` once the post-roll is in and the directory is written
    /// (also when writing failed: the event is always reported). Blocks only when 64 requests
    /// are already queued.
    pub fn submit(
        &self,
        event: Event,
        overlay: SnapshotOverlay,
        stream: &StreamInfo,
        ring: &SharedRing,
        done: Sender<EvidenceDone>,
    ) -> Result<()> {
        self.submit_with_facade(event, overlay, None, stream, ring, done)
    }

    /// As [`EvidenceClient::submit`]; with the camera's `facade` model (and a service started
    /// with a [`PersonSearcher`]) the frames before the release are also searched for persons,
    /// so the packets taken reach back that far too.
    pub fn submit_with_facade(
        &self,
        event: Event,
        overlay: SnapshotOverlay,
        facade: Option<Arc<FacadeModel>>,
        stream: &StreamInfo,
        ring: &SharedRing,
        done: Sender<EvidenceDone>,
    ) -> Result<()> {
        let mut from_s = event.start_s - self.pre_roll_s;
        if facade.is_some() && self.person_reach_s > 0.0 && overlay.release_t_s.is_finite() {
            // One frame of slack: the frame nearest the earliest time may precede it.
            from_s = from_s.min(overlay.release_t_s - self.person_reach_s - 0.1);
        }
        let taken = ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_since(from_s);
        let req = EvidenceRequest {
            event,
            overlay,
            stream: stream.clone(),
            ring: ring.clone(),
            taken,
            done,
            facade,
        };
        self.tx.send(req).map_err(|e| {
            err!(
                Internal,
                "evidence thread is gone; event {} not written",
                e.0.event.id
            )
        })
    }
}

/// The running evidence thread.
#[derive(Debug)]
pub struct EvidenceService {
    thread: JoinHandle<WriterStats>,
}

impl EvidenceService {
    /// Opens the output directory (lock, crash leftovers, retention: errors surface here) and
    /// starts the `evidence` thread. It runs until every [`EvidenceClient`] is dropped and the
    /// pending clips are written.
    pub fn spawn(
        out: &Path,
        cfg: EvidenceConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<(EvidenceService, EvidenceClient)> {
        Self::spawn_with_persons(out, cfg, clock, None)
    }

    /// As [`EvidenceService::spawn`], with the person search at the release point for events
    /// submitted with [`EvidenceClient::submit_with_facade`] (`None`: no search, no `persons`
    /// fields).
    pub fn spawn_with_persons(
        out: &Path,
        cfg: EvidenceConfig,
        clock: Arc<dyn Clock>,
        persons: Option<PersonSearcher>,
    ) -> Result<(EvidenceService, EvidenceClient)> {
        let writer = EvidenceWriter::new(out, cfg.clone(), clock.clone())?;
        let (tx, rx) = bounded(QUEUE);
        let person_reach_s = persons.as_ref().map_or(0.0, |p| p.config().reach_s());
        let worker = Worker {
            writer,
            clock,
            pending: Vec::new(),
            recent: Vec::new(),
            persons,
        };
        let thread = std::thread::Builder::new()
            .name("evidence".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| err!(Resource, "cannot start the evidence thread").with_source(e))?;
        Ok((
            EvidenceService { thread },
            EvidenceClient {
                tx,
                pre_roll_s: cfg.pre_roll_s,
                person_reach_s,
            },
        ))
    }

    /// Waits for the thread to finish (after every client was dropped) and returns its counters.
    pub fn join(self) -> Result<WriterStats> {
        self.thread
            .join()
            .map_err(|_| err!(Internal, "evidence thread panicked"))
    }
}

/// A clip waiting for its post-roll, with the events that share it.
struct Pending {
    ring: SharedRing,
    stream: StreamInfo,
    session: u64,
    from_s: f64,
    to_s: f64,
    /// Consecutive packets of the ring session, `first_seq..next_seq`.
    packets: Vec<Packet>,
    first_seq: u64,
    next_seq: u64,
    /// Largest decoding time seen, seconds.
    max_dts_s: f64,
    /// The events, where their outcome goes, and their person search.
    events: Vec<(EventInput, Sender<EvidenceDone>, Option<u64>)>,
    link_from: Option<(PathBuf, ClipSpan)>,
    since: Duration,
    /// Why the wait ended, once it did.
    complete: Option<&'static str>,
}

impl Pending {
    fn dts_s(stream: &StreamInfo, p: &Packet) -> f64 {
        p.pts_s - (p.pts - p.dts) as f64 * stream.tick_s()
    }

    fn append(&mut self, packets: Vec<Packet>) {
        for p in &packets {
            self.max_dts_s = self.max_dts_s.max(Self::dts_s(&self.stream, p));
        }
        self.packets.extend(packets);
    }

    /// Follows the ring; marks the clip complete when it can be cut.
    fn poll(&mut self, now: Duration, timeout: Duration) {
        if self.complete.is_some() {
            return;
        }
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.session() != self.session {
            self.complete = Some("the source reconnected");
            return;
        }
        let t = ring.take_after(self.next_seq);
        let finished = ring.is_finished();
        drop(ring);
        if t.gap {
            self.complete = Some("packets were lost before the evidence thread took them");
            return;
        }
        self.next_seq = t.next_seq;
        self.append(t.packets);
        if self.max_dts_s > self.to_s + 1e-6 && self.max_dts_s > self.cut_end_pts_s() + 1e-6 {
            // Every packet shown up to the cut's end decodes before it, so all of them are in.
            self.complete = Some("post-roll complete");
        } else if finished {
            self.complete = Some("the source ended");
        } else if self.stream.is_live && now.saturating_sub(self.since) >= timeout {
            // Only live sources can stall; a file's ingest always ends with finish(), however
            // slowly analysis runs.
            self.complete = Some("post-roll timed out");
        }
    }

    /// Latest frame time the clip would show if cut now.
    fn cut_end_pts_s(&self) -> f64 {
        let r = clip::cut_range(&self.packets, self.from_s, self.to_s);
        clip::end_pts_s(&self.packets[r])
    }

    fn overlaps(&self, from_s: f64, to_s: f64) -> bool {
        from_s <= self.to_s && to_s >= self.from_s
    }

    /// Takes `req` into this clip; `req.taken` was read from the ring after this clip's own take.
    fn merge(&mut self, req: EvidenceRequest, from_s: f64, to_s: f64, person: Option<u64>) {
        let t = req.taken;
        if t.first_seq < self.first_seq {
            let n = ((self.first_seq - t.first_seq) as usize).min(t.packets.len());
            let mut front: Vec<Packet> = t.packets[..n].to_vec();
            for p in &front {
                self.max_dts_s = self.max_dts_s.max(Self::dts_s(&self.stream, p));
            }
            front.append(&mut self.packets);
            self.packets = front;
            self.first_seq = t.first_seq;
        }
        let t_end = t.first_seq + t.packets.len() as u64;
        if t_end > self.next_seq && t.first_seq <= self.next_seq {
            let skip = (self.next_seq - t.first_seq) as usize;
            self.append(t.packets[skip..].to_vec());
            self.next_seq = t_end;
        }
        self.from_s = self.from_s.min(from_s);
        self.to_s = self.to_s.max(to_s);
        // A clip found complete but not yet written takes the new event too: wait again if the
        // new range needs more (the next poll decides).
        self.complete = None;
        if let Some((_, span)) = &self.link_from
            && !(span.start_s <= self.from_s.max(self.first_pts_s()) + 1e-6
                && span.end_s >= self.to_s - 1e-6)
        {
            self.link_from = None;
        }
        self.events.push((
            EventInput {
                event: req.event,
                overlay: req.overlay,
            },
            req.done,
            person,
        ));
    }

    fn first_pts_s(&self) -> f64 {
        self.packets.first().map_or(f64::INFINITY, |p| p.pts_s)
    }
}

/// The camera's last written clip, for events that fall inside it.
struct Recent {
    /// Weak: a finished camera's ring is not kept alive for this.
    ring: Weak<Mutex<PacketRing>>,
    session: u64,
    span: ClipSpan,
    path: PathBuf,
}

struct Worker {
    writer: EvidenceWriter,
    clock: Arc<dyn Clock>,
    pending: Vec<Pending>,
    recent: Vec<Recent>,
    persons: Option<PersonSearcher>,
}

impl Worker {
    fn run(mut self, rx: Receiver<EvidenceRequest>) -> WriterStats {
        let poll = Duration::from_millis(self.writer.config().poll_ms);
        let mut open = true;
        // Runs until every client is dropped and the pending clips are written.
        loop {
            if open {
                let got = if self.pending.is_empty() {
                    rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
                } else {
                    rx.recv_timeout(poll)
                };
                match got {
                    Ok(req) => self.accept(req),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => open = false,
                }
                while let Ok(req) = rx.try_recv() {
                    self.accept(req);
                }
            }
            if !open {
                // Every client is gone, so every camera's ingest and analysis has stopped: no
                // packet will come any more. Cut everything with what arrived.
                let now = self.clock.monotonic();
                let timeout = self.timeout();
                for p in self.pending.iter_mut() {
                    p.poll(now, timeout);
                    p.complete.get_or_insert("shutting down");
                }
            }
            self.write_completed(&rx);
            if !open && self.pending.is_empty() {
                break;
            }
        }
        self.writer.stats()
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.writer.config().post_roll_timeout_s)
    }

    fn accept(&mut self, req: EvidenceRequest) {
        let cfg = self.writer.config();
        let from_s = req.event.start_s - cfg.pre_roll_s;
        let to_s = req.event.end_s + cfg.post_roll_s;
        let max_clip_s = cfg.max_clip_s;
        let now = self.clock.monotonic();
        let timeout = self.timeout();
        // The person search decodes from the packets taken now (they reach back before the
        // release); its answers are collected when the directory is written.
        let person = match (&mut self.persons, &req.facade) {
            (Some(s), Some(facade)) => Some(s.start(
                &req.event,
                req.overlay.release_t_s,
                facade.clone(),
                &req.stream,
                &req.taken.packets,
            )),
            _ => None,
        };
        // Bring pending clips of this camera up to date first, so merged packets stay contiguous.
        for p in self.pending.iter_mut() {
            if Arc::ptr_eq(&p.ring, &req.ring) {
                p.poll(now, timeout);
            }
        }
        let mergeable = self.pending.iter_mut().find(|p| {
            Arc::ptr_eq(&p.ring, &req.ring)
                && p.session == req.taken.session
                && p.overlaps(from_s, to_s)
                && to_s.max(p.to_s) - from_s.min(p.from_s) <= max_clip_s
        });
        if let Some(p) = mergeable {
            tracing::debug!(event = %req.event.id, "shares a pending clip");
            p.merge(req, from_s, to_s, person);
            return;
        }
        if let Some(first) = req.taken.packets.first()
            && first.pts_s > from_s + 1e-6
            && first.pts_s > 0.05
        {
            tracing::warn!(
                event = %req.event.id,
                "pre-roll short: the ring starts at {:.2} s, the clip should start at {:.2} s (event longer than the ring?)",
                first.pts_s,
                from_s
            );
        }
        let first_pts_s = req.taken.packets.first().map_or(f64::INFINITY, |p| p.pts_s);
        let link_from = self
            .recent
            .iter()
            .find(|r| {
                std::ptr::eq(r.ring.as_ptr(), Arc::as_ptr(&req.ring))
                    && r.session == req.taken.session
                    && r.span.start_s <= from_s.max(first_pts_s) + 1e-6
                    && r.span.end_s >= to_s - 1e-6
            })
            .map(|r| (r.path.clone(), r.span));
        let mut p = Pending {
            ring: req.ring,
            stream: req.stream,
            session: req.taken.session,
            from_s,
            to_s,
            packets: Vec::new(),
            first_seq: req.taken.first_seq,
            next_seq: req.taken.next_seq,
            max_dts_s: f64::NEG_INFINITY,
            events: vec![(
                EventInput {
                    event: req.event,
                    overlay: req.overlay,
                },
                req.done,
                person,
            )],
            link_from,
            since: now,
            complete: None,
        };
        p.append(req.taken.packets);
        p.poll(now, timeout);
        self.pending.push(p);
    }

    /// Writes every pending clip that is complete. Pending clips are polled again between two
    /// writes, so a burst of slow writes cannot make the others fall behind their rings.
    fn write_completed(&mut self, rx: &Receiver<EvidenceRequest>) {
        let timeout = self.timeout();
        let mut drained = false;
        loop {
            if let Some(s) = &mut self.persons {
                s.pump();
            }
            let now = self.clock.monotonic();
            for p in self.pending.iter_mut() {
                p.poll(now, timeout);
            }
            if !self.pending.iter().any(|p| p.complete.is_some()) {
                return;
            }
            if !drained {
                // A request sent before the packets that completed a clip arrived is in the
                // channel now: take it first, so it can still share the clip.
                while let Ok(req) = rx.try_recv() {
                    self.accept(req);
                }
                drained = true;
            }
            let Some(i) = self.pending.iter().position(|p| p.complete.is_some()) else {
                return;
            };
            let p = self.pending.swap_remove(i);
            self.write(p);
        }
    }

    fn write(&mut self, p: Pending) {
        let range = clip::cut_range(&p.packets, p.from_s, p.to_s);
        let packets = &p.packets[range];
        tracing::debug!(
            events = p.events.len(),
            packets = packets.len(),
            "writing evidence ({})",
            p.complete.unwrap_or("")
        );
        let mut inputs = Vec::with_capacity(p.events.len());
        let mut senders = Vec::with_capacity(p.events.len());
        for (mut input, tx, person) in p.events {
            if let (Some(s), Some(key)) = (&mut self.persons, person) {
                s.finish(key, &mut input.event);
            }
            inputs.push(input);
            senders.push(tx);
        }
        let backup: Vec<Event> = inputs.iter().map(|i| i.event.clone()).collect();
        let link = p
            .link_from
            .as_ref()
            .map(|(path, span)| (path.as_path(), *span));
        let writer = &mut self.writer;
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            writer.write_group(&p.stream, packets, link, inputs)
        }));
        let dones = match result {
            Ok(d) => d,
            Err(_) => backup
                .into_iter()
                .map(|event| EvidenceDone {
                    dir: self.writer.out_dir().join(&event.id),
                    error: Some(err!(
                        Internal,
                        "evidence writer panicked on event {}",
                        event.id
                    )),
                    event,
                })
                .collect(),
        };
        // Remember the clip for later events that fall inside it.
        let committed = dones
            .iter()
            .find(|d| d.error.is_none() && d.event.clip_error.is_none());
        if let Some(d) = committed
            && let (Some(start_s), Some(end_s)) = (d.event.clip_start_s, d.event.clip_end_s)
        {
            self.recent.retain(|r| {
                r.ring.strong_count() > 0 && !std::ptr::eq(r.ring.as_ptr(), Arc::as_ptr(&p.ring))
            });
            self.recent.push(Recent {
                ring: Arc::downgrade(&p.ring),
                session: p.session,
                span: ClipSpan {
                    start_s,
                    end_s,
                    frames: 0,
                    bytes: 0,
                },
                path: d.dir.join(CLIP_NAME),
            });
        }
        for (done, tx) in dones.into_iter().zip(senders) {
            // A caller that stopped listening has nothing left to tell; the files are written.
            let _ = tx.send(done);
        }
    }
}
