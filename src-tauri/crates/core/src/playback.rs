//! The kiosk's one player: the speaker queue of ready voice messages (`queue`: kept in the store, fair
//! between people, bounded), "play now" for taps and the operator (interrupting with a short fade),
//! pause / skip / stop / volume. Reports on the wall's events
//! stream: `playback_started`, `playback_progress` (10 Hz), `playback_finished`; bumps `played_count`.
//! Replays come from the cache, never the network. The operator also sees the queue in order, moves a
//! message to the front ("play next"), takes one out (stopping it when it plays), and may turn on an
//! idle loop per wall that replays approved voices when nothing new arrived for a while.
//!
//! `Playback` is the handle (commands, what plays now, the output's status); `PlaybackTask::run` is the
//! player itself, given an opened output and narrow handles (`Player`), so it is unit-tested below with
//! a detached output whose samples the test pulls.

use crate::board::Board;
use crate::config::AudioConfig;
use crate::domain::{MessageKind, MessageStatus, PlaybackState, QueueItem};
use crate::events::{AdminEvent, Hub, WallEvent};
use crate::media::Media;
use crate::metrics::Metrics;
use crate::queue::SpeakerQueue;
use crate::store::Store;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use voicewall_audio::{Output, OutputKind};

#[derive(Debug, PartialEq)]
pub enum Command {
    Enqueue {
        wall: String,
        id: String,
    },
    PlayNow {
        wall: String,
        id: String,
    },
    Skip,
    Stop,
    Pause,
    Resume,
    Volume(f32),
    /// Take a message out of the queue, and stop it if it plays (removed, rejected, banned).
    Remove {
        wall: String,
        id: String,
    },
    /// Move (or put) a message at the front of the queue, after what plays now.
    PlayNext {
        wall: String,
        id: String,
    },
}

pub use crate::domain::NowPlaying;

/// The operator-visible state of the sound output.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OutputStatus {
    /// "ok", "no_device", "null", "unavailable" (it could not be opened at start: messages go on in
    /// silence while it is tried again, less and less often), "lost" (the device went away: messages go
    /// on in silence while it is tried again every 2 s) or "reopened" (it came back and plays; `detail`
    /// says how often).
    pub state: String,
    pub detail: String,
    pub queued: usize,
    pub paused: bool,
    /// The queue's cap (`[audio] queue_max`) and the voices it dropped since start.
    pub queue_max: usize,
    pub queue_dropped: u64,
}

/// The player's handle: send commands, read what plays. Cheap to clone.
#[derive(Clone)]
pub struct Playback {
    tx: mpsc::UnboundedSender<Command>,
    now: Arc<Mutex<Option<NowPlaying>>>,
    status: Arc<Mutex<OutputStatus>>,
    /// The queue in order and the volume, as of the player's last turn.
    seen: Arc<Mutex<Seen>>,
    autoplay: bool,
    /// The last clips started (wall, id, clip), newest last: when the sink pulled each one's first
    /// sample, for the latency bench.
    clips: Arc<Mutex<VecDeque<(String, String, voicewall_audio::Playing)>>>,
}

/// Clips whose first sample time is kept.
const CLIPS_KEPT: usize = 16;

#[derive(Clone, Debug, Default, PartialEq)]
struct Seen {
    queue: Vec<(String, String)>,
    volume: f32,
}

/// The receiving half, run once the rest of the app exists.
pub struct PlaybackTask {
    rx: mpsc::UnboundedReceiver<Command>,
    handle: Playback,
}

/// What the player works with.
pub struct Player {
    pub store: Store,
    pub board: Board,
    pub events: Hub,
    pub media: Media,
    pub metrics: Arc<Metrics>,
    /// The walls whose never-played voices are queued at start, in order.
    pub walls: Vec<String>,
    /// Silence between two messages.
    pub gap: Duration,
    /// The speaker queue's cap.
    pub queue_max: usize,
}

impl Playback {
    pub fn new(autoplay: bool) -> (Self, PlaybackTask) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = Self {
            tx,
            now: Arc::default(),
            status: Arc::new(Mutex::new(OutputStatus {
                state: "starting".into(),
                detail: String::new(),
                queued: 0,
                paused: false,
                queue_max: 0,
                queue_dropped: 0,
            })),
            seen: Arc::new(Mutex::new(Seen {
                queue: Vec::new(),
                volume: 1.0,
            })),
            autoplay,
            clips: Arc::default(),
        };
        (handle.clone(), PlaybackTask { rx, handle })
    }

    fn send(&self, c: Command) {
        let _ = self.tx.send(c);
    }

    /// A new ready message: queued when auto-play is on.
    pub fn enqueue(&self, wall: &str, id: &str) {
        if self.autoplay {
            self.send(Command::Enqueue {
                wall: wall.into(),
                id: id.into(),
            });
        }
    }

    /// For tests: queue a message whatever auto-play says.
    #[cfg(test)]
    pub fn enqueue_now(&self, wall: &str, id: &str) {
        self.send(Command::Enqueue {
            wall: wall.into(),
            id: id.into(),
        });
    }

    pub fn play_now(&self, wall: &str, id: &str) {
        self.send(Command::PlayNow {
            wall: wall.into(),
            id: id.into(),
        });
    }
    pub fn skip(&self) {
        self.send(Command::Skip);
    }
    pub fn stop(&self) {
        self.send(Command::Stop);
    }
    pub fn pause(&self) {
        self.send(Command::Pause);
    }
    pub fn resume(&self) {
        self.send(Command::Resume);
    }
    pub fn set_volume(&self, v: f32) {
        self.send(Command::Volume(v.clamp(0.0, 1.0)));
    }
    /// Take a message out of the queue; stop it if it is playing.
    pub fn remove(&self, wall: &str, id: &str) {
        self.send(Command::Remove {
            wall: wall.into(),
            id: id.into(),
        });
    }
    /// Play this message next (after what plays now).
    pub fn play_next(&self, wall: &str, id: &str) {
        self.send(Command::PlayNext {
            wall: wall.into(),
            id: id.into(),
        });
    }

    /// The queue in order, as of the player's last turn.
    pub fn queue(&self) -> Vec<(String, String)> {
        self.seen.lock().expect("seen lock").queue.clone()
    }

    /// When the sound output pulled the first sample of a message lately started (the latency bench's
    /// "push → first sample"); None before, or when it started too long ago.
    pub fn first_sample(&self, wall: &str, id: &str) -> Option<std::time::Instant> {
        let clips = self.clips.lock().expect("clips lock");
        let (_, _, clip) = clips.iter().rev().find(|(w, i, _)| w == wall && i == id)?;
        clip.first_sample_at()
    }

    /// What plays on any wall now.
    pub fn now_playing_any(&self) -> Option<NowPlaying> {
        self.now.lock().expect("now lock").clone()
    }

    /// The player as the operator sees it; `name` gives a message's sender name (wall, message id).
    pub fn state(&self, name: impl Fn(&str, &str) -> String) -> PlaybackState {
        let seen = self.seen.lock().expect("seen lock").clone();
        let status = self.status();
        PlaybackState {
            now_playing: self.now_playing_any(),
            paused: status.paused,
            queue_max: status.queue_max,
            volume: seen.volume,
            queue: seen
                .queue
                .iter()
                .map(|(wall, id)| QueueItem {
                    wall: wall.clone(),
                    message_id: id.clone(),
                    name: name(wall, id),
                })
                .collect(),
        }
    }

    pub fn now_playing(&self, wall: &str) -> Option<NowPlaying> {
        self.now
            .lock()
            .expect("now lock")
            .clone()
            .filter(|n| n.wall == wall)
    }

    pub fn status(&self) -> OutputStatus {
        self.status.lock().expect("status lock").clone()
    }

    fn set_status(&self, s: &str, detail: &str) {
        let mut st = self.status.lock().expect("status lock");
        st.state = s.into();
        st.detail = detail.into();
    }

    /// The sound device's health on `/healthz`: `ok`, `unavailable`, `lost` or `reopened`.
    fn device_status(&self, output: &str, h: &voicewall_audio::DeviceHealth) {
        let (state, detail) = device_state(output, h);
        self.set_status(state, &detail);
    }
}

fn device_state(output: &str, h: &voicewall_audio::DeviceHealth) -> (&'static str, String) {
    let error = h.last_error.as_deref().unwrap_or("?");
    match (h.open, h.reopened) {
        (true, 0) if h.failed_at_start > 0 => (
            "ok",
            format!(
                "{output} — opened after {} failed attempt(s) at start",
                h.failed_at_start
            ),
        ),
        (true, 0) => ("ok", output.to_string()),
        (false, _) if h.lost == 0 => (
            "unavailable",
            format!(
                "{output} — cannot be opened ({} attempt(s)), trying again less and less often (at most every 30 s): {error}",
                h.failed_at_start
            ),
        ),
        (true, n) => (
            "reopened",
            format!("{output} — reopened {n} time(s) after a loss (last: {error})"),
        ),
        (false, _) => (
            "lost",
            format!("{output} — device lost, trying again every 2 s: {error}"),
        ),
    }
}

/// Why the kiosk has no sound output (it carries on without: messages still appear).
#[derive(Debug, thiserror::Error)]
pub enum NoOutput {
    #[error(transparent)]
    Device(#[from] voicewall_audio::OutputError),
    #[error("opening the sound output crashed")]
    Crashed,
}

/// Open the configured output (off the async threads: a device may take a while to answer).
pub async fn open_output(audio: &AudioConfig) -> Result<Output, NoOutput> {
    let kind = OutputKind::from_config(&audio.output);
    let volume = audio.volume;
    // Retrying: a kiosk whose sound server comes up after it must not stay silent until a restart.
    match tokio::task::spawn_blocking(move || Output::open_retrying(&kind)).await {
        Ok(Ok(o)) => {
            o.set_volume(volume);
            Ok(o)
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(NoOutput::Crashed),
    }
}

struct Current {
    wall: String,
    id: String,
    playing: voicewall_audio::Playing,
    /// When the clip should have played out: the player looks then, not only at its 100 ms tick, so
    /// short voices follow each other without a tick's wait.
    ends_at: tokio::time::Instant,
}

impl PlaybackTask {
    /// For tests: the next command sent to the player, if any.
    #[cfg(test)]
    pub fn try_next(&mut self) -> Option<Command> {
        self.rx.try_recv().ok()
    }

    /// Serve commands until the app stops. `output` is the opened output (`Err`: why there is none —
    /// messages still appear, playback is skipped); `null` says it is the silent null output.
    pub async fn run(self, player: Player, output: Result<Output, NoOutput>, null: bool) {
        let PlaybackTask { mut rx, handle } = self;
        let output = match output {
            Ok(o) => {
                let detail = o.describe();
                tracing::info!(output = %detail, "audio output open");
                handle.set_status(if null { "null" } else { "ok" }, &detail);
                if let Some(h) = o.health() {
                    handle.device_status(&detail, &h);
                }
                Some(Arc::new(o))
            }
            Err(e) => {
                tracing::warn!(error = %e, "no sound output: messages still appear, playback is skipped");
                handle.set_status("no_device", &e.to_string());
                None
            }
        };
        let p = PlayerRun {
            player,
            handle,
            output,
        };
        let (mut queue, first_start) =
            match SpeakerQueue::load(p.player.store.clone(), p.player.queue_max) {
                Ok(q) => q,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the speaker queue; the player stops");
                    return;
                }
            };
        if !queue.is_empty() {
            tracing::info!(count = queue.len(), "speaker queue resumed from the store");
        }
        if first_start && p.handle.autoplay {
            // Data from before the queue lived in the store: the ready voices the wall shows that
            // never played.
            for wall in &p.player.walls {
                let shown = p.player.board.view(wall).map(|v| v.messages);
                for m in shown.unwrap_or_default() {
                    if m.kind == MessageKind::Voice
                        && m.status == MessageStatus::Ready
                        && m.played_count == 0
                    {
                        logged(queue.push(wall, &m.id, &m.participant_id, arrival(&m.id)));
                    }
                }
            }
            if !queue.is_empty() {
                tracing::info!(
                    count = queue.len(),
                    "queued ready messages that never played"
                );
            }
        }
        let mut current: Option<Current> = None;
        let mut silent = p.silent();
        let mut paused = false;
        let mut volume = p.output.as_ref().map(|o| o.volume()).unwrap_or(1.0);
        let mut last_arrival = tokio::time::Instant::now();
        let mut idle = IdleLoop::default();
        type Turn = (Seen, Option<(String, String)>, bool);
        let mut last_turn: Option<Turn> = None;
        let mut next_start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let output = p.output.clone();
        loop {
            let ends_at = current
                .as_ref()
                .map(|c| c.ends_at)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    let fresh = matches!(cmd, Command::Enqueue { .. });
                    match cmd {
                        Command::Enqueue { wall, id } => {
                            let person = p.sender_of(&wall, &id);
                            logged(queue.push(&wall, &id, &person, arrival(&id)));
                        }
                        Command::PlayNow { wall, id } => {
                            if let Some(c) = current.take() {
                                logged(queue.done(&c.wall, &c.id));
                                p.finish(c, "interrupted");
                            }
                            let person = p.sender_of(&wall, &id);
                            logged(queue.play_next(&wall, &id, &person, arrival(&id)));
                            paused = false;
                            if let Some(o) = &output { o.resume(); }
                            next_start = tokio::time::Instant::now();
                        }
                        Command::Skip => {
                            paused = false;
                            if let Some(o) = &output { o.resume(); }
                            if let Some(c) = current.take() {
                                logged(queue.done(&c.wall, &c.id));
                                p.finish(c, "skipped");
                                next_start = tokio::time::Instant::now();
                            }
                        }
                        Command::Stop => {
                            logged(queue.clear());
                            paused = false;
                            if let Some(o) = &output { o.resume(); }
                            if let Some(c) = current.take() {
                                p.finish(c, "stopped");
                            }
                        }
                        Command::Pause => {
                            paused = true;
                            if let Some(o) = &output { o.pause(); }
                        }
                        Command::Resume => {
                            paused = false;
                            if let Some(o) = &output { o.resume(); }
                        }
                        Command::Volume(v) => {
                            if let Some(o) = &output { o.set_volume(v); }
                            volume = v;
                        }
                        Command::Remove { wall, id } => {
                            logged(queue.remove(&wall, &id));
                            if current.as_ref().is_some_and(|c| c.wall == wall && c.id == id) {
                                let c = current.take().expect("current");
                                p.finish(c, "removed");
                                next_start = tokio::time::Instant::now() + p.player.gap;
                            }
                        }
                        Command::PlayNext { wall, id } => {
                            let person = p.sender_of(&wall, &id);
                            logged(queue.play_next(&wall, &id, &person, arrival(&id)));
                        }
                    }
                    if fresh {
                        last_arrival = tokio::time::Instant::now();
                    }
                }
                _ = tokio::time::sleep_until(ends_at), if current.is_some() && !paused => {
                    if current.as_ref().is_some_and(|c| c.playing.is_finished()) {
                        let c = current.take().expect("current");
                        logged(queue.done(&c.wall, &c.id));
                        p.end(&c, "finished");
                        next_start = tokio::time::Instant::now() + p.player.gap;
                    } else if let Some(c) = current.as_mut() {
                        // Not yet (the sink runs a little behind, or it was paused): look again then.
                        let left = c.playing.duration_ms().saturating_sub(c.playing.position_ms());
                        c.ends_at = tokio::time::Instant::now() + Duration::from_millis(left.max(2));
                    }
                }
                _ = tick.tick() => {
                    if let Some(o) = &output {
                        if let Some(h) = o.health() {
                            p.handle.device_status(&o.describe(), &h);
                        }
                    }
                    if let Some(c) = &current {
                        if c.playing.is_finished() {
                            let c = current.take().expect("current");
                            logged(queue.done(&c.wall, &c.id));
                            p.end(&c, "finished");
                            next_start = tokio::time::Instant::now() + p.player.gap;
                        } else {
                            let position_ms = c.playing.position_ms();
                            let duration_ms = c.playing.duration_ms();
                            if let Some(n) = p.handle.now.lock().expect("now lock").as_mut() {
                                n.position_ms = position_ms;
                            }
                            p.player.events.publish(&c.wall, WallEvent::PlaybackProgress {
                                message_id: c.id.clone(), position_ms, duration_ms,
                            });
                        }
                    }
                }
            }
            // The device came up (it was unavailable since the start): the voices that waited for it,
            // kept in the store, are queued again.
            let silent_now = p.silent();
            if silent && !silent_now {
                match SpeakerQueue::load(p.player.store.clone(), p.player.queue_max) {
                    Ok((q, _)) => {
                        tracing::info!(
                            count = q.len(),
                            "sound output open: the waiting voices are queued again"
                        );
                        queue = q;
                    }
                    Err(e) => tracing::error!(error = %e, "cannot read the speaker queue"),
                }
            }
            silent = silent_now;
            if current.is_none() && !paused && tokio::time::Instant::now() >= next_start {
                if queue.is_empty() {
                    // The idle loop's replays do not go through the (stored) queue.
                    if let Some((wall, id)) = idle.next(&p.player, last_arrival) {
                        current = p.start(&wall, &id).await;
                    }
                }
                while current.is_none() {
                    let Some(e) = queue.take().unwrap_or_else(|e| {
                        tracing::error!(error = %e, "cannot read the speaker queue");
                        None
                    }) else {
                        break;
                    };
                    current = p.start(&e.wall, &e.id).await;
                    // Without a device the voice's record stays in the store: it plays once the
                    // device opens (or after a restart with one).
                    if current.is_none() && !p.silent() {
                        logged(queue.done(&e.wall, &e.id));
                    }
                }
            }
            {
                let mut s = p.handle.status.lock().expect("status lock");
                s.queued = queue.len();
                s.paused = paused;
                s.queue_max = queue.max();
                s.queue_dropped = queue.dropped();
            }
            let seen = Seen {
                queue: queue.list(),
                volume,
            };
            let now_id = p.handle.now_playing_any().map(|n| (n.wall, n.message_id));
            let turn = (seen.clone(), now_id, paused);
            if last_turn.as_ref() != Some(&turn) {
                *p.handle.seen.lock().expect("seen lock") = seen;
                p.player.events.publish_admin(AdminEvent::Queue(
                    p.handle.state(|wall, id| p.name_of(wall, id)),
                ));
                last_turn = Some(turn);
            }
        }
        if let Some(c) = current.take() {
            p.finish(c, "stopped");
        }
    }
}

struct PlayerRun {
    player: Player,
    handle: Playback,
    output: Option<Arc<Output>>,
}

/// The idle loop: per wall, when its `idle_loop_s` is set and nothing new arrived for that long, the
/// next approved voice the wall shows, round-robin (one at a time, only when the queue is empty).
#[derive(Default)]
struct IdleLoop {
    /// Per wall: the id of the last voice replayed.
    last: std::collections::HashMap<String, u64>,
}

impl IdleLoop {
    fn next(
        &mut self,
        player: &Player,
        last_arrival: tokio::time::Instant,
    ) -> Option<(String, String)> {
        let idle_for = last_arrival.elapsed();
        for wall in &player.walls {
            // The settings first (one read): the whole view only when this wall loops and is idle.
            let Some(after) = player.board.settings(wall).ok().and_then(|s| s.idle_loop_s) else {
                continue;
            };
            if idle_for < Duration::from_secs(after) {
                continue;
            }
            let Ok(view) = player.board.view(wall) else {
                continue;
            };
            let voices: Vec<u64> = view
                .messages
                .iter()
                .filter(|m| m.kind == MessageKind::Voice && m.status == MessageStatus::Ready)
                .filter_map(|m| m.id.parse().ok())
                .collect();
            let last = self.last.get(wall).copied().unwrap_or(0);
            let Some(next) = voices
                .iter()
                .find(|id| **id > last)
                .or(voices.first())
                .copied()
            else {
                continue;
            };
            self.last.insert(wall.clone(), next);
            return Some((wall.clone(), next.to_string()));
        }
        None
    }
}

/// A message's arrival order: its id is the inbox sequence (0 for anything else).
fn arrival(id: &str) -> u64 {
    id.parse().unwrap_or(0)
}

/// The speaker queue's store writes fail only with the store itself: logged, the player goes on.
fn logged<T>(r: Result<T, crate::store::StoreError>) {
    if let Err(e) = r {
        tracing::error!(error = %e, "cannot write the speaker queue");
    }
}

impl PlayerRun {
    /// Who sent a message (the queue's unit of fairness); empty when it is gone.
    fn sender_of(&self, wall: &str, id: &str) -> String {
        self.player
            .store
            .message(wall, id)
            .ok()
            .flatten()
            .map(|m| m.participant_id)
            .unwrap_or_default()
    }

    /// A queued message's sender name, for the operator.
    fn name_of(&self, wall: &str, id: &str) -> String {
        self.player
            .store
            .message(wall, id)
            .ok()
            .flatten()
            .and_then(|m| {
                self.player
                    .store
                    .participant(wall, &m.participant_id)
                    .ok()
                    .flatten()
            })
            .map(|p| p.display_name)
            .unwrap_or_default()
    }

    fn finished(&self, wall: &str, id: &str, outcome: &str) {
        self.player.events.publish(
            wall,
            WallEvent::PlaybackFinished {
                message_id: id.into(),
                outcome: outcome.into(),
            },
        );
    }

    /// No sound can come out: no output, or a device that has not opened since the start (it is being
    /// retried). A device lost mid-evening is not silent here: it carries on while it is reopened.
    fn silent(&self) -> bool {
        match &self.output {
            None => true,
            Some(o) => o.health().is_some_and(|h| !h.open && h.lost == 0),
        }
    }

    /// Start playing a message from the cache; None when it cannot be played (event sent).
    async fn start(&self, wall: &str, id: &str) -> Option<Current> {
        let message = self.player.store.message(wall, id).ok().flatten()?;
        let key = message.media.clone()?;
        let output = match &self.output {
            Some(o) if !self.silent() => o,
            // Nothing is played, nothing counted as played.
            _ => {
                self.finished(wall, id, "no_device");
                return None;
            }
        };
        let media = &self.player.media;
        let prepared = match media.analysis(&key).await {
            Ok(a) => media.decoded(&key).await.map(|d| (a, d)),
            Err(e) => Err(e),
        };
        let (analysis, decoded) = match prepared {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(wall, id, error = %e, "cannot play a message");
                self.finished(wall, id, "failed");
                return None;
            }
        };
        let playing = output.play(decoded, analysis.gain);
        let duration_ms = playing.duration_ms();
        {
            let mut clips = self.handle.clips.lock().expect("clips lock");
            if clips.len() >= CLIPS_KEPT {
                clips.pop_front();
            }
            clips.push_back((wall.into(), id.into(), playing.clone()));
        }
        *self.handle.now.lock().expect("now lock") = Some(NowPlaying {
            wall: wall.into(),
            message_id: id.into(),
            participant_id: message.participant_id.clone(),
            position_ms: 0,
            duration_ms,
        });
        self.player.events.publish(
            wall,
            WallEvent::PlaybackStarted {
                message_id: id.into(),
                participant_id: message.participant_id,
                duration_ms,
                kind: message.kind,
                media: message.media.clone(),
            },
        );
        Some(Current {
            wall: wall.into(),
            id: id.into(),
            playing,
            ends_at: tokio::time::Instant::now() + Duration::from_millis(duration_ms),
        })
    }

    fn finish(&self, c: Current, outcome: &str) {
        if let Some(o) = &self.output {
            o.stop();
        }
        self.end(&c, outcome);
    }

    fn end(&self, c: &Current, outcome: &str) {
        *self.handle.now.lock().expect("now lock") = None;
        if outcome == "finished" || outcome == "interrupted" || outcome == "skipped" {
            self.player.metrics.inc_played();
            if let Err(e) = self.player.board.count_playback(&c.wall, &c.id) {
                tracing::error!(error = %e, "cannot count a playback");
            }
        }
        self.finished(&c.wall, &c.id, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{fixture, FakePlatform, Fixture, WALL};
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn a_lost_and_reopened_device_reads_so_on_healthz() {
        let h = |open, lost, reopened| voicewall_audio::DeviceHealth {
            open,
            lost,
            reopened,
            last_error: (lost > 0).then(|| "device not available".into()),
            failed_at_start: 0,
        };
        assert_eq!(
            device_state("default", &h(true, 0, 0)),
            ("ok", "default".into())
        );
        let (state, detail) = device_state("default", &h(false, 1, 0));
        assert_eq!(state, "lost");
        assert!(detail.contains("device not available"), "{detail}");
        let (state, detail) = device_state("default", &h(true, 2, 2));
        assert_eq!(state, "reopened");
        assert!(detail.contains("reopened 2 time(s)"), "{detail}");
        // Not there at start: unavailable, then ok once it opens late.
        let late = |open| voicewall_audio::DeviceHealth {
            failed_at_start: 3,
            last_error: Some("no sound server".into()),
            ..h(open, 0, 0)
        };
        let (state, detail) = device_state("default", &late(false));
        assert_eq!(state, "unavailable");
        assert!(
            detail.contains("no sound server") && detail.contains("3 attempt(s)"),
            "{detail}"
        );
        let (state, detail) = device_state("default", &late(true));
        assert_eq!(state, "ok");
        assert!(detail.contains("after 3 failed attempt(s)"), "{detail}");
    }

    fn store_voice(fx: &Fixture, id: &str, bytes: &[u8]) {
        let key = fx.store.put_media(bytes, "audio/ogg").unwrap();
        let m = crate::testing::ready_voice(id, Some(key));
        fx.store.put_message(WALL, &m).unwrap();
    }

    fn player(fx: &Fixture) -> Player {
        Player {
            store: fx.store.clone(),
            board: fx.board.clone(),
            events: fx.hub.clone(),
            media: fx.media.clone(),
            metrics: Arc::default(),
            walls: vec![WALL.into()],
            gap: Duration::ZERO,
            queue_max: 200,
        }
    }

    /// A detached output whose mixed samples a thread pulls as fast as it can; returns the loudest
    /// sample heard when `stop` is set.
    fn pulled_output() -> (Output, Arc<AtomicBool>, std::thread::JoinHandle<f32>) {
        let (output, mut tap) = Output::detached(1, 16_000);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let listener = std::thread::spawn(move || {
            let mut peak = 0f32;
            while !flag.load(Ordering::Relaxed) {
                for s in tap.by_ref().take(1_600) {
                    peak = peak.max(s.abs());
                }
                std::thread::yield_now();
            }
            peak
        });
        (output, stop, listener)
    }

    async fn next_event(rx: &mut tokio::sync::broadcast::Receiver<WallEvent>) -> WallEvent {
        loop {
            match rx.recv().await.expect("events") {
                WallEvent::PlaybackProgress { .. } => continue,
                e => return e,
            }
        }
    }

    #[tokio::test]
    async fn a_never_played_voice_is_queued_at_start_played_through_and_counted() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        store_voice(&fx, "1", &fixture("hello.ogg"));
        let mut events = fx.events();
        let (handle, task) = Playback::new(true);
        let (output, stop, listener) = pulled_output();
        let run = tokio::spawn(task.run(player(&fx), Ok(output), false));

        match next_event(&mut events).await {
            WallEvent::PlaybackStarted {
                message_id,
                duration_ms,
                ..
            } => {
                assert_eq!(message_id, "1");
                assert!(duration_ms > 500, "{duration_ms}");
            }
            other => panic!("expected playback_started, got {other:?}"),
        }
        let mut played = None;
        while played.is_none() {
            match next_event(&mut events).await {
                WallEvent::MessageUpdated { message } => played = Some(message.played_count),
                WallEvent::PlaybackFinished { .. } => panic!("finished before it was counted"),
                _ => {}
            }
        }
        assert_eq!(played, Some(1));
        match next_event(&mut events).await {
            WallEvent::PlaybackFinished { outcome, .. } => assert_eq!(outcome, "finished"),
            other => panic!("expected playback_finished, got {other:?}"),
        }
        assert_eq!(handle.now_playing(WALL), None);
        stop.store(true, Ordering::Relaxed);
        // The speakers heard the voice, not silence.
        assert!(listener.join().unwrap() > 0.05);
        run.abort();
        assert_eq!(
            fx.media.decodes(),
            1,
            "analysis and playback share one decode"
        );
    }

    #[tokio::test]
    async fn removing_the_playing_message_stops_it_and_play_next_reorders_the_queue() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        for id in ["1", "2", "3"] {
            store_voice(&fx, id, &fixture("hello.ogg"));
        }
        let mut events = fx.events();
        let (handle, task) = Playback::new(false);
        let (output, stop, _listener) = pulled_output();
        let run = tokio::spawn(task.run(player(&fx), Ok(output), false));
        handle.pause();
        for id in ["1", "2", "3"] {
            handle.enqueue_now(WALL, id);
        }
        handle.play_next(WALL, "3");
        handle.remove(WALL, "2");
        handle.resume();
        match next_event(&mut events).await {
            WallEvent::PlaybackStarted { message_id, .. } => assert_eq!(message_id, "3"),
            other => panic!("expected playback_started, got {other:?}"),
        }
        handle.pause();
        handle.remove(WALL, "3");
        // Paused, it would never finish on its own: only the removal ends it (bounded, so a player
        // that ignores the removal fails here rather than hanging).
        let ended = tokio::time::timeout(Duration::from_secs(30), next_event(&mut events));
        match ended.await.expect("the removal never stopped the voice") {
            WallEvent::PlaybackFinished {
                message_id,
                outcome,
            } => assert_eq!((message_id.as_str(), outcome.as_str()), ("3", "removed")),
            other => panic!("expected playback_finished, got {other:?}"),
        }
        // Paused: the rest waits, in order, without "2".
        let mut console = fx.hub.subscribe_admin();
        handle.set_volume(0.25);
        loop {
            if let crate::events::AdminEvent::Queue(s) = console.recv().await.unwrap() {
                if s.volume == 0.25 {
                    let ids: Vec<_> = s.queue.iter().map(|q| q.message_id.as_str()).collect();
                    assert_eq!(ids, ["1"]);
                    assert!(s.paused && s.now_playing.is_none());
                    break;
                }
            }
        }
        assert_eq!(handle.queue(), [(WALL.to_string(), "1".to_string())]);
        stop.store(true, Ordering::Relaxed);
        run.abort();
    }

    #[tokio::test]
    async fn the_idle_loop_replays_the_approved_voice_again_and_again() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        store_voice(&fx, "7", &fixture("hello.ogg"));
        let mut held = crate::testing::ready_voice("8", None);
        held.moderation = crate::domain::Moderation::Pending;
        fx.store.put_message(WALL, &held).unwrap();
        let mut events = fx.events();
        let (_handle, task) = Playback::new(false);
        let (output, stop, _listener) = pulled_output();
        fx.board.set_idle_loop(WALL, Some(1)).unwrap();
        let run = tokio::spawn(task.run(player(&fx), Ok(output), false));
        // Nothing queued, auto-play off: only the idle loop can start it, and only the approved one.
        for _ in 0..2 {
            let started = tokio::time::timeout(Duration::from_secs(30), next_event(&mut events));
            match started.await.expect("the idle loop never replayed") {
                WallEvent::PlaybackStarted { message_id, .. } => assert_eq!(message_id, "7"),
                other => panic!("expected playback_started, got {other:?}"),
            }
            loop {
                if let WallEvent::PlaybackFinished { .. } = next_event(&mut events).await {
                    break;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        run.abort();
    }

    #[tokio::test]
    async fn without_an_output_a_tap_is_answered_no_device() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        store_voice(&fx, "2", &fixture("hello.ogg"));
        let mut events = fx.events();
        let (handle, task) = Playback::new(false);
        let run = tokio::spawn(task.run(
            player(&fx),
            Err(voicewall_audio::OutputError::NoDevice("no card".into()).into()),
            false,
        ));
        handle.play_now(WALL, "2");
        match next_event(&mut events).await {
            WallEvent::PlaybackFinished {
                message_id,
                outcome,
            } => assert_eq!((message_id.as_str(), outcome.as_str()), ("2", "no_device")),
            other => panic!("expected playback_finished, got {other:?}"),
        }
        assert_eq!(handle.status().state, "no_device");
        run.abort();
    }
}
