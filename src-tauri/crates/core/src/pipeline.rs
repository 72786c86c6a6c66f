//! The pipeline: everything after the ack (patent steps 12–15). Each accepted inbox entry is processed in
//! its own task (bounded), so a slow or dead platform never blocks other messages or playback. Every step
//! is idempotent: after a crash the pipeline resumes from the inbox and never refetches what is cached.
//!
//! It works through narrow handles (`Pipeline`'s fields): the store, the board (save + announce), the
//! walls' providers (fetch by reference), media (decode + analysis), the player (queue) and counters —
//! so it is unit-tested below with a fake provider and a temporary store.

use crate::board::{apply_profile, participant_id, Board};
use crate::domain::{
    placeholder_name, placeholder_svg, Inbound, InboundKind, MediaRef, Message, MessageKind,
    MessageStatus, Moderation, Participant,
};
use crate::inbox::Wakeups;
use crate::media::Media;
use crate::metrics::Metrics;
use crate::playback::Playback;
use crate::privacy::erase::{drop_in_flight, purged};
use crate::provider::{FetchError, Fetched};
use crate::store::{Store, StoreError};
use crate::walls::Walls;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How fetches are retried: bounded, with exponential backoff and jitter.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base: Duration::from_millis(500),
            max: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16));
        let capped = exp.min(self.max);
        let jitter = rand::random::<f64>() * 0.5 + 0.75;
        capped.mul_f64(jitter)
    }
}

/// What the pipeline works with. Cheap to clone (one clone per task).
#[derive(Clone)]
pub struct Pipeline {
    pub store: Store,
    pub board: Board,
    pub walls: Walls,
    pub media: Media,
    pub player: Playback,
    pub metrics: Arc<Metrics>,
    pub retry: RetryPolicy,
}

/// Why a fetch-and-prepare failed, as the operator reads it on the message, with the attempts made.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Failed {
    message: String,
    attempts: u32,
}

/// Why a profile could not be refreshed (logged; the wall keeps the generated name and picture).
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{message} (after {attempts} attempts)")]
    Fetch { message: String, attempts: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Failed> for ProfileError {
    fn from(f: Failed) -> Self {
        Self::Fetch {
            message: f.message,
            attempts: f.attempts,
        }
    }
}

impl Pipeline {
    /// Run until the sender side closes: first the inbox left by a previous run, then each new entry.
    pub async fn run(self, mut rx: Wakeups) {
        // The tasks live in a JoinSet owned here: when the app stops (this task is aborted) they stop
        // too, and nothing keeps the store open behind the shutdown. An interrupted entry resumes from
        // the inbox.
        let mut workers = Workers {
            fetch_limit: Arc::new(Semaphore::new(8)),
            in_flight: Arc::default(),
            tasks: tokio::task::JoinSet::new(),
        };
        match self.store.inbox() {
            Ok(pending) => {
                if !pending.is_empty() {
                    tracing::info!(
                        count = pending.len(),
                        "resuming accepted pushes from the inbox"
                    );
                }
                for (seq, inbound) in pending {
                    self.spawn_one(&mut workers, seq, inbound);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the inbox"),
        }
        loop {
            tokio::select! {
                woken = rx.recv() => {
                    let Some(woken) = woken else { break };
                    // The stored push (the first delivery's), if it still waits.
                    match self.store.pending(&woken) {
                        Ok(Some((seq, inbound))) => self.spawn_one(&mut workers, seq, inbound),
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = %e, "cannot read an accepted push"),
                    }
                }
                // Reap finished tasks so the set does not grow over an evening.
                Some(_) = workers.tasks.join_next(), if !workers.tasks.is_empty() => {}
            }
        }
    }

    fn spawn_one(&self, workers: &mut Workers, seq: u64, inbound: Inbound) {
        if !workers
            .in_flight
            .lock()
            .expect("in-flight lock")
            .insert(seq)
        {
            return;
        }
        let this = self.clone();
        let limit = workers.fetch_limit.clone();
        let in_flight = workers.in_flight.clone();
        workers.tasks.spawn(async move {
            // Only platform fetches are bounded: uploads already in the cache, joins and texts never
            // wait behind a slow platform.
            let needs_fetch = matches!(&inbound.kind, InboundKind::Media { media: MediaRef::Platform(_), .. });
            let _permit = if needs_fetch {
                limit.acquire_owned().await.ok()
            } else {
                None
            };
            match this.process(seq, &inbound).await {
                Ok(()) => {
                    if let Err(e) = this.store.finish_inbox(seq, &inbound) {
                        tracing::error!(seq, error = %e, "cannot clear an inbox entry");
                    }
                }
                Err(e) => {
                    tracing::error!(seq, error = %e, "processing a push failed; it stays in the inbox")
                }
            }
            in_flight.lock().expect("in-flight lock").remove(&seq);
        });
    }

    /// Process one accepted push. Idempotent.
    pub async fn process(&self, seq: u64, inbound: &Inbound) -> Result<(), StoreError> {
        let wall = inbound.wall.as_str();
        // A purge covers every push accepted before it, even one in flight (checked again after writes).
        if purged(&self.store, wall, seq)? {
            return Ok(());
        }
        match &inbound.kind {
            InboundKind::Join => {
                self.ensure_participant(inbound).await?;
            }
            InboundKind::Leave => {
                // Someone who unfollowed stays on the wall with what they already said.
                tracing::info!(wall, sender = %inbound.sender, "participant left the account");
            }
            InboundKind::Text { text } => {
                let p = self.ensure_participant(inbound).await?;
                let id = seq.to_string();
                if self.store.message(wall, &id)?.is_none() {
                    let mut m = new_message(&id, &p.id, MessageKind::Text, inbound);
                    m.moderation = self.board.initial_moderation(wall)?;
                    m.status = MessageStatus::Ready;
                    m.text = Some(text.chars().take(500).collect());
                    self.board.save_message(wall, &m, true)?;
                }
                if purged(&self.store, wall, seq)? {
                    return drop_in_flight(&self.store, wall, &id, &p.id, None);
                }
            }
            InboundKind::Media {
                kind,
                media,
                transcript,
            } => {
                let p = self.ensure_participant(inbound).await?;
                let id = seq.to_string();
                let mut media = media.clone();
                if let Some(m) = self.store.message(wall, &id)? {
                    if m.status != MessageStatus::Fetching {
                        return Ok(()); // already done before a restart: never refetch
                    }
                    // Fetched and cached before a crash, not yet ready: read from the cache.
                    if let Some(key) = m.media.filter(|k| self.store.has_media(k)) {
                        media = MediaRef::Cached(key);
                    }
                } else {
                    let mut m = new_message(&id, &p.id, *kind, inbound);
                    m.transcript = transcript.clone();
                    m.moderation = self.board.initial_moderation(wall)?;
                    self.board.save_message(wall, &m, true)?;
                }
                let outcome = self.fetch_and_prepare(inbound, &id, *kind, &media).await;
                if purged(&self.store, wall, seq)? {
                    let blob = outcome.as_ref().ok().map(|p| &p.key);
                    return drop_in_flight(&self.store, wall, &id, &p.id, blob);
                }
                // Stored, then made durable, then announced: the wall shows a voice as ready only
                // once that state (and its cached media) would survive a crash.
                let message = self.store.update_message(wall, &id, |m| match &outcome {
                    Ok(prepared) => {
                        m.status = MessageStatus::Ready;
                        m.error = None;
                        m.media = Some(prepared.key.clone());
                        m.duration_ms = prepared.duration_ms;
                        m.waveform = prepared.waveform.clone();
                        m.attempts = prepared.attempts;
                    }
                    Err(failed) => {
                        m.status = MessageStatus::Failed;
                        m.error = Some(failed.message.clone());
                        m.attempts = failed.attempts;
                    }
                })?;
                self.store.durable().await?;
                if let Some(m) = &message {
                    self.board.announce_updated(wall, m)?;
                }
                if let Some(m) = message {
                    match &outcome {
                        Ok(_) => self.metrics.inc_ready(),
                        Err(e) => {
                            self.metrics.inc_fetch_failed();
                            tracing::warn!(wall, message = %m.id, error = %e, "message failed");
                        }
                    }
                    // Held (pre-moderation) or from a banned sender: the speakers wait for the
                    // operator's approval (which queues it).
                    if m.status == MessageStatus::Ready
                        && m.kind == MessageKind::Voice
                        && m.moderation == Moderation::Approved
                        && !self.board.is_banned(wall, &m.participant_id)?
                    {
                        self.player.enqueue(wall, &m.id);
                    }
                }
            }
        }
        Ok(())
    }

    /// The participant for a push: created at once with a placeholder (the wall shows them
    /// immediately), then given their real profile when the platform has one.
    pub async fn ensure_participant(&self, inbound: &Inbound) -> Result<Participant, StoreError> {
        let wall = inbound.wall.as_str();
        let id = participant_id(inbound.provider, &inbound.sender);
        if let Some(p) = self.store.participant(wall, &id)? {
            return Ok(p);
        }
        let name = placeholder_name(&id);
        let svg = placeholder_svg(&id, &name);
        let key = self.store.put_media(svg.as_bytes(), "image/svg+xml")?;
        let mut p = Participant {
            id: id.clone(),
            person_id: id.clone(),
            display_name: name,
            avatar: key,
            thumb: None,
            provider: inbound.provider,
            joined_at: inbound.received_at,
            has_profile: false,
        };
        if let Some(profile) = self.store.profile(inbound.provider, &inbound.sender)? {
            apply_profile(&mut p, &profile);
        }
        self.board.save_participant(wall, &p, true)?;
        if !p.has_profile {
            // The profile is fetched off this path: a slow platform does not delay the message.
            let this = self.clone();
            let inbound = inbound.clone();
            tokio::spawn(async move {
                if let Err(e) = this.refresh_profile(&inbound.wall, &inbound.sender).await {
                    tracing::warn!(error = %e, "profile fetch failed");
                }
            });
        }
        Ok(p)
    }

    /// Fetch the sender's profile (step 13), cache the avatar, store it by sender id and update the wall.
    pub async fn refresh_profile(&self, wall: &str, sender: &str) -> Result<(), ProfileError> {
        let Some(w) = self.walls.get(wall) else {
            return Ok(());
        };
        let provider = w.provider.clone();
        let fetched = with_retry(self.retry, || provider.fetch_profile(sender)).await?;
        let Some(fetched) = fetched else {
            return Ok(());
        };
        self.board
            .store_profile(wall, provider.kind(), sender, fetched)
            .await?;
        Ok(())
    }

    /// Fetch (or read from the cache) the media bytes, and for voice analyse them once.
    /// A platform fetch is recorded on message `id` (its media key, made durable) as soon as the
    /// bytes are cached: a crash before it is ready does not fetch them again.
    async fn fetch_and_prepare(
        &self,
        inbound: &Inbound,
        id: &str,
        kind: MessageKind,
        media: &MediaRef,
    ) -> Result<Prepared, Failed> {
        let (key, attempts) = match media {
            MediaRef::Cached(key) => (key.clone(), 0),
            MediaRef::Platform(media) => {
                let Some(w) = self.walls.get(&inbound.wall) else {
                    return Err(Failed {
                        message: "wall no longer configured".into(),
                        attempts: 0,
                    });
                };
                let provider = w.provider.clone();
                let mut attempts = 0;
                let fetched = with_retry(self.retry, || {
                    attempts += 1;
                    provider.fetch_media(media, kind)
                })
                .await?;
                let Fetched::Bytes {
                    bytes,
                    content_type,
                } = fetched;
                let key = self
                    .store
                    .put_media(&bytes, &content_type)
                    .and_then(|key| {
                        self.store
                            .update_message(&inbound.wall, id, |m| m.media = Some(key.clone()))?;
                        Ok(key)
                    })
                    .map_err(|e| Failed {
                        message: e.to_string(),
                        attempts,
                    })?;
                if let Err(e) = self.store.durable().await {
                    tracing::warn!(error = %e, "the fetched media is not yet durable");
                }
                (key, attempts)
            }
        };
        let mut prepared = Prepared {
            key: key.clone(),
            duration_ms: None,
            waveform: Vec::new(),
            attempts,
        };
        if kind == MessageKind::Voice {
            let analysis = self.media.analysis(&key).await.map_err(|e| Failed {
                message: e.to_string(),
                attempts,
            })?;
            prepared.duration_ms = Some(analysis.duration_ms);
            prepared.waveform = analysis.waveform;
        }
        Ok(prepared)
    }
}

/// What the processing tasks share: a bound on concurrent platform fetches, and the entries in flight
/// (an entry can be woken twice: resumed at start and re-announced by a platform's retry).
struct Workers {
    fetch_limit: Arc<Semaphore>,
    in_flight: Arc<std::sync::Mutex<std::collections::HashSet<u64>>>,
    tasks: tokio::task::JoinSet<()>,
}

fn new_message(id: &str, participant: &str, kind: MessageKind, inbound: &Inbound) -> Message {
    Message {
        id: id.to_string(),
        participant_id: participant.to_string(),
        kind,
        status: MessageStatus::Fetching,
        error: None,
        duration_ms: None,
        received_at: inbound.received_at,
        played_count: 0,
        transcript: None,
        media: None,
        waveform: Vec::new(),
        text: None,
        attempts: 0,
        moderation: Moderation::Approved,
    }
}

struct Prepared {
    key: crate::domain::MediaKey,
    duration_ms: Option<u64>,
    waveform: Vec<f32>,
    attempts: u32,
}

async fn with_retry<T, F, Fut>(retry: RetryPolicy, mut f: F) -> Result<T, Failed>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, FetchError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.retryable && attempt < retry.attempts => {
                let d = retry.delay(attempt - 1);
                tracing::info!(attempt, delay_ms = d.as_millis() as u64, error = %e, "retrying fetch");
                tokio::time::sleep(d).await;
            }
            Err(e) => {
                let message = if e.retryable {
                    format!("{} (gave up after {attempt} attempts)", e.message)
                } else {
                    e.message
                };
                return Err(Failed {
                    message,
                    attempts: attempt,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playback::{Command, PlaybackTask};
    use crate::testing::{drain, fixture, FakePlatform, Fixture, WALL};

    fn pipeline(fx: &Fixture) -> (Pipeline, PlaybackTask) {
        let (player, task) = Playback::new(true);
        let p = Pipeline {
            store: fx.store.clone(),
            board: fx.board.clone(),
            walls: fx.walls.clone(),
            media: fx.media.clone(),
            player,
            metrics: Arc::default(),
            retry: RetryPolicy {
                attempts: 4,
                base: Duration::ZERO,
                max: Duration::ZERO,
            },
        };
        (p, task)
    }

    fn voice(dedup: &str) -> Inbound {
        Inbound {
            wall: WALL.into(),
            provider: crate::providers::telegram::PROVIDER,
            sender: "u1".into(),
            kind: InboundKind::Media {
                kind: MessageKind::Voice,
                media: MediaRef::Platform("file-1".into()),
                transcript: None,
            },
            pushed_at: 1,
            received_at: 2,
            dedup_key: dedup.into(),
        }
    }

    #[tokio::test]
    async fn a_voice_push_is_fetched_with_retries_analysed_announced_and_queued_once() {
        let fx = Fixture::new(FakePlatform {
            fail_first: 2,
            ..FakePlatform::serving(fixture("hello.ogg"), "audio/ogg")
        });
        let (p, mut task) = pipeline(&fx);
        let mut events = fx.events();
        p.process(7, &voice("a")).await.unwrap();

        let m = fx
            .store
            .message(WALL, "7")
            .unwrap()
            .expect("message stored");
        assert_eq!(m.status, MessageStatus::Ready, "{:?}", m.error);
        assert_eq!(m.attempts, 3, "two busy answers, then the bytes");
        assert!(m.duration_ms.unwrap() > 500, "{:?}", m.duration_ms);
        // A decode that returned silence would draw a flat line.
        assert!(m.waveform.iter().any(|v| *v > 0.5), "{:?}", m.waveform);
        let names: Vec<_> = drain(&mut events).iter().map(|e| e.name()).collect();
        assert_eq!(
            names,
            ["participant_joined", "message_added", "message_updated"]
        );
        assert_eq!(
            task.try_next(),
            Some(Command::Enqueue {
                wall: WALL.into(),
                id: "7".into()
            })
        );

        // Again (a restart, a platform retry): nothing is fetched, announced or queued twice.
        p.process(7, &voice("a")).await.unwrap();
        assert_eq!(
            fx.platform
                .fetches
                .load(std::sync::atomic::Ordering::SeqCst),
            3
        );
        assert!(drain(&mut events).is_empty());
        assert_eq!(task.try_next(), None);
    }

    #[tokio::test]
    async fn in_pre_moderation_a_voice_is_held_off_the_wall_and_the_queue_until_approved() {
        let fx = Fixture::new(FakePlatform::serving(fixture("hello.ogg"), "audio/ogg"));
        fx.board
            .set_mode(WALL, crate::domain::ModerationMode::Pre)
            .unwrap();
        let (p, mut task) = pipeline(&fx);
        let mut events = fx.events();
        let mut console = fx.hub.subscribe_admin();
        p.process(11, &voice("e")).await.unwrap();

        let m = fx.store.message(WALL, "11").unwrap().unwrap();
        assert_eq!(
            (m.status, m.moderation),
            (MessageStatus::Ready, Moderation::Pending)
        );
        let names: Vec<_> = drain(&mut events).iter().map(|e| e.name()).collect();
        assert_eq!(
            names,
            ["participant_joined"],
            "the person shows, the voice does not"
        );
        assert_eq!(task.try_next(), None, "not queued for the speakers");
        assert!(fx.board.view(WALL).unwrap().messages.is_empty());
        // The console saw it arrive and become ready, pending.
        let seen: Vec<_> = std::iter::from_fn(|| console.try_recv().ok()).collect();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen.iter().all(|e| matches!(e,
            crate::events::AdminEvent::Message { message, .. } if message.moderation == Moderation::Pending)));

        let (before, after) = fx
            .board
            .moderate(WALL, "11", Moderation::Approved)
            .unwrap()
            .unwrap();
        assert_eq!(
            (before.moderation, after.moderation),
            (Moderation::Pending, Moderation::Approved)
        );
        let names: Vec<_> = drain(&mut events).iter().map(|e| e.name()).collect();
        assert_eq!(names, ["message_added"]);
        assert_eq!(fx.board.view(WALL).unwrap().messages.len(), 1);
    }

    #[tokio::test]
    async fn a_banned_senders_voice_is_kept_but_neither_shown_nor_queued() {
        let fx = Fixture::new(FakePlatform::serving(fixture("hello.ogg"), "audio/ogg"));
        let (p, mut task) = pipeline(&fx);
        // Ids from the store's sequence, as the inbox gives them (a clear hides those given so far).
        let (first, second) = (
            fx.store.sequence_now().unwrap(),
            fx.store.sequence_now().unwrap(),
        );
        p.process(first, &voice("f")).await.unwrap();
        assert!(task.try_next().is_some());
        fx.board.set_banned(WALL, "telegram:u1", true).unwrap();
        let mut events = fx.events();
        p.process(second, &voice("g")).await.unwrap();
        assert!(
            fx.store
                .message(WALL, &second.to_string())
                .unwrap()
                .is_some(),
            "kept for the operator"
        );
        assert!(drain(&mut events).is_empty());
        assert_eq!(task.try_next(), None);
        let view = fx.board.view(WALL).unwrap();
        assert!(view.messages.is_empty() && view.participants.is_empty());
        // Cleared: what was shown before stays hidden after an unban.
        fx.board.set_banned(WALL, "telegram:u1", false).unwrap();
        assert_eq!(fx.board.view(WALL).unwrap().messages.len(), 2);
        fx.board.clear(WALL).unwrap();
        assert!(fx.board.view(WALL).unwrap().messages.is_empty());
    }

    #[tokio::test]
    async fn a_permanent_failure_fails_the_message_with_the_reason_and_queues_nothing() {
        let fx = Fixture::new(FakePlatform {
            permanent: true,
            ..FakePlatform::serving(Vec::new(), "audio/ogg")
        });
        let (p, mut task) = pipeline(&fx);
        p.process(8, &voice("b")).await.unwrap();
        let m = fx.store.message(WALL, "8").unwrap().unwrap();
        assert_eq!(m.status, MessageStatus::Failed);
        assert_eq!(m.error.as_deref(), Some("no media file-1"));
        assert_eq!(m.attempts, 1, "not retried");
        assert_eq!(task.try_next(), None);
    }

    #[tokio::test]
    async fn bytes_that_are_not_audio_fail_the_message_with_the_decoder_reason() {
        let fx = Fixture::new(FakePlatform::serving(
            b"hello, not audio".to_vec(),
            "audio/amr",
        ));
        let (p, mut task) = pipeline(&fx);
        p.process(9, &voice("c")).await.unwrap();
        let m = fx.store.message(WALL, "9").unwrap().unwrap();
        assert_eq!(m.status, MessageStatus::Failed);
        assert!(m.error.unwrap().contains("not a supported audio file"));
        assert_eq!(task.try_next(), None);
    }

    #[tokio::test]
    async fn a_text_push_is_ready_at_once_and_cut_to_500_characters() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        let (p, _task) = pipeline(&fx);
        let mut push = voice("d");
        push.kind = InboundKind::Text {
            text: "x".repeat(600),
        };
        p.process(10, &push).await.unwrap();
        let m = fx.store.message(WALL, "10").unwrap().unwrap();
        assert_eq!(
            (m.status, m.kind),
            (MessageStatus::Ready, MessageKind::Text)
        );
        assert_eq!(m.text.unwrap().len(), 500);
        assert_eq!(
            fx.platform
                .fetches
                .load(std::sync::atomic::Ordering::SeqCst),
            0
        );
    }
}
