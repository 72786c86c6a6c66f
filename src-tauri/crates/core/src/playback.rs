//! The kiosk's one player: a queue of ready voice messages in arrival order, "play now" for taps and the
//! operator (interrupting with a short fade), pause / skip / stop / volume. Reports on the wall's events
//! stream: `playback_started`, `playback_progress` (10 Hz), `playback_finished`; bumps `played_count`.
//! Replays come from the cache, never the network.

use crate::app::AppState;
use crate::domain::{MessageKind, MessageStatus};
use crate::events::WallEvent;
use crate::media;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use voicewall_audio::{Output, OutputKind};

#[derive(Debug)]
enum Command {
    Enqueue { wall: String, id: String },
    PlayNow { wall: String, id: String },
    Skip,
    Stop,
    Pause,
    Resume,
    Volume(f32),
}

/// What is playing now, for the wall state.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NowPlaying {
    pub wall: String,
    pub message_id: String,
    pub participant_id: String,
    pub position_ms: u64,
    pub duration_ms: u64,
}

/// The operator-visible state of the sound output.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OutputStatus {
    /// "ok", "no_device", "null", or "lost" (the device went away; it is reopened when it is back).
    pub state: String,
    pub detail: String,
    pub queued: usize,
    pub paused: bool,
}

#[derive(Clone)]
pub struct Playback {
    tx: mpsc::UnboundedSender<Command>,
    now: Arc<Mutex<Option<NowPlaying>>>,
    status: Arc<Mutex<OutputStatus>>,
    autoplay: bool,
}

/// The receiving half, handed to `run` once the app state exists.
pub struct PlaybackTask {
    rx: mpsc::UnboundedReceiver<Command>,
}

impl Playback {
    pub fn new(autoplay: bool) -> (Self, PlaybackTask) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                tx,
                now: Arc::default(),
                status: Arc::new(Mutex::new(OutputStatus {
                    state: "starting".into(),
                    detail: String::new(),
                    queued: 0,
                    paused: false,
                })),
                autoplay,
            },
            PlaybackTask { rx },
        )
    }

    /// A new ready message: queued when auto-play is on.
    pub fn enqueue(&self, wall: &str, id: &str) {
        if self.autoplay {
            let _ = self.tx.send(Command::Enqueue {
                wall: wall.into(),
                id: id.into(),
            });
        }
    }

    pub fn play_now(&self, wall: &str, id: &str) {
        let _ = self.tx.send(Command::PlayNow {
            wall: wall.into(),
            id: id.into(),
        });
    }
    pub fn skip(&self) {
        let _ = self.tx.send(Command::Skip);
    }
    pub fn stop(&self) {
        let _ = self.tx.send(Command::Stop);
    }
    pub fn pause(&self) {
        let _ = self.tx.send(Command::Pause);
    }
    pub fn resume(&self) {
        let _ = self.tx.send(Command::Resume);
    }
    pub fn set_volume(&self, v: f32) {
        let _ = self.tx.send(Command::Volume(v.clamp(0.0, 1.0)));
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
}

struct Current {
    wall: String,
    id: String,
    playing: voicewall_audio::Playing,
}

/// Open the configured output (once) and serve commands until the app stops.
pub async fn run(state: AppState, task: PlaybackTask) {
    let PlaybackTask { mut rx } = task;
    let kind = OutputKind::from_config(&state.config.audio.output);
    let output = match tokio::task::spawn_blocking(move || Output::open(&kind)).await {
        Ok(Ok(o)) => {
            o.set_volume(state.config.audio.volume);
            let detail = o.describe();
            tracing::info!(output = %detail, "audio output open");
            set_status(
                &state,
                if state.config.audio.output == "null" {
                    "null"
                } else {
                    "ok"
                },
                &detail,
            );
            Some(Arc::new(o))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "no sound output: messages still appear, playback is skipped");
            set_status(&state, "no_device", &e.to_string());
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "opening the sound output crashed");
            set_status(&state, "no_device", "opening the sound output crashed");
            None
        }
    };
    let gap = Duration::from_millis(state.config.audio.gap_ms);
    let mut queue: VecDeque<(String, String)> = VecDeque::new();
    if state.playback.autoplay {
        // Ready voices that never played (the queue lives in memory; the messages in the store).
        for wall in state.config.walls.iter().map(|w| &w.id) {
            for m in state.store.messages(wall).unwrap_or_default() {
                if m.kind == MessageKind::Voice
                    && m.status == MessageStatus::Ready
                    && m.played_count == 0
                {
                    queue.push_back((wall.clone(), m.id));
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
    let mut paused = false;
    let mut next_start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                match cmd {
                    Command::Enqueue { wall, id } => queue.push_back((wall, id)),
                    Command::PlayNow { wall, id } => {
                        if let Some(c) = current.take() {
                            finish(&state, output.as_deref(), c, "interrupted");
                        }
                        queue.retain(|(w, i)| !(w == &wall && i == &id));
                        queue.push_front((wall, id));
                        paused = false;
                        if let Some(o) = &output { o.resume(); }
                        next_start = tokio::time::Instant::now();
                    }
                    Command::Skip => {
                        paused = false;
                        if let Some(o) = &output { o.resume(); }
                        if let Some(c) = current.take() {
                            finish(&state, output.as_deref(), c, "skipped");
                            next_start = tokio::time::Instant::now();
                        }
                    }
                    Command::Stop => {
                        queue.clear();
                        paused = false;
                        if let Some(o) = &output { o.resume(); }
                        if let Some(c) = current.take() {
                            finish(&state, output.as_deref(), c, "stopped");
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
                    }
                }
            }
            _ = tick.tick() => {
                if let Some(h) = output.as_ref().and_then(|o| o.health()) {
                    device_status(&state, &h);
                }
                if let Some(c) = &current {
                    if c.playing.is_finished() {
                        let c = current.take().expect("current");
                        end(&state, &c, "finished");
                        next_start = tokio::time::Instant::now() + gap;
                    } else {
                        let position_ms = c.playing.position_ms();
                        let duration_ms = c.playing.duration_ms();
                        if let Some(n) = state.playback.now.lock().expect("now lock").as_mut() {
                            n.position_ms = position_ms;
                        }
                        state.publish(&c.wall, WallEvent::PlaybackProgress {
                            message_id: c.id.clone(), position_ms, duration_ms,
                        });
                    }
                }
            }
        }
        if current.is_none() && !paused && tokio::time::Instant::now() >= next_start {
            while let Some((wall, id)) = queue.pop_front() {
                match start(&state, output.as_ref(), &wall, &id).await {
                    Some(c) => {
                        current = Some(c);
                        break;
                    }
                    None => continue,
                }
            }
        }
        {
            let mut s = state.playback.status.lock().expect("status lock");
            s.queued = queue.len();
            s.paused = paused;
        }
    }
    if let Some(c) = current.take() {
        finish(&state, output.as_deref(), c, "stopped");
    }
}

/// A sound device that was lost (unplugged) or came back shows on `/healthz` as `lost` / `ok`.
fn device_status(state: &AppState, h: &voicewall_audio::DeviceHealth) {
    let mut st = state.playback.status.lock().expect("status lock");
    let s = if h.open { "ok" } else { "lost" };
    let base = st
        .detail
        .split(" — ")
        .next()
        .unwrap_or_default()
        .to_string();
    let detail = match (h.open, h.reopened, &h.last_error) {
        (true, 0, _) => base,
        (true, n, _) => format!("{base} — reopened {n} time(s) after a loss"),
        (false, _, e) => format!(
            "{base} — device lost, reopening: {}",
            e.as_deref().unwrap_or("?")
        ),
    };
    st.state = s.into();
    st.detail = detail;
}

fn set_status(state: &AppState, s: &str, detail: &str) {
    let mut st = state.playback.status.lock().expect("status lock");
    st.state = s.into();
    st.detail = detail.into();
}

/// Decode from the cache and start playing; None when the message cannot be played (event sent).
async fn start(
    state: &AppState,
    output: Option<&Arc<Output>>,
    wall: &str,
    id: &str,
) -> Option<Current> {
    let message = state.store.message(wall, id).ok().flatten()?;
    let key = message
        .media_url
        .as_deref()?
        .strip_prefix("/media/")?
        .to_string();
    let Some(output) = output else {
        state.publish(
            wall,
            WallEvent::PlaybackFinished {
                message_id: id.into(),
                outcome: "no_device".into(),
            },
        );
        return None;
    };
    let max = state.config.audio.max_duration_s;
    let analysis = media::analyse_cached(state, &key, max).await;
    let decoded = media::decode_cached(state, &key, max).await;
    let (analysis, decoded) = match (analysis, decoded) {
        (Ok(a), Ok(d)) => (a, d),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(wall, id, error = %e, "cannot play a message");
            state.publish(
                wall,
                WallEvent::PlaybackFinished {
                    message_id: id.into(),
                    outcome: "failed".into(),
                },
            );
            return None;
        }
    };
    let playing = output.play(Arc::new(decoded), analysis.gain);
    let duration_ms = playing.duration_ms();
    *state.playback.now.lock().expect("now lock") = Some(NowPlaying {
        wall: wall.into(),
        message_id: id.into(),
        participant_id: message.participant_id.clone(),
        position_ms: 0,
        duration_ms,
    });
    state.publish(
        wall,
        WallEvent::PlaybackStarted {
            message_id: id.into(),
            participant_id: message.participant_id,
            duration_ms,
            kind: message.kind,
            media_url: message.media_url.clone(),
        },
    );
    Some(Current {
        wall: wall.into(),
        id: id.into(),
        playing,
    })
}

fn finish(state: &AppState, output: Option<&Output>, c: Current, outcome: &str) {
    if let Some(o) = output {
        o.stop();
    }
    end(state, &c, outcome);
}

fn end(state: &AppState, c: &Current, outcome: &str) {
    *state.playback.now.lock().expect("now lock") = None;
    if outcome == "finished" || outcome == "interrupted" || outcome == "skipped" {
        state.metrics.inc_played();
        if let Ok(Some(m)) = state
            .store
            .update_message(&c.wall, &c.id, |m| m.played_count += 1)
        {
            state.publish(&c.wall, WallEvent::MessageUpdated { message: m });
        }
    }
    state.publish(
        &c.wall,
        WallEvent::PlaybackFinished {
            message_id: c.id.clone(),
            outcome: outcome.into(),
        },
    );
}
