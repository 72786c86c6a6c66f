//! The pipeline: everything after the ack (patent steps 12–15). Each accepted inbox entry is processed in
//! its own task (bounded), so a slow or dead platform never blocks other messages or playback. Every step
//! is idempotent: after a crash the pipeline resumes from the inbox and never refetches what is cached.

use crate::app::AppState;
use crate::board::apply_profile;
use crate::domain::{
    placeholder_name, placeholder_svg, Inbound, InboundKind, Message, MessageKind, MessageStatus,
    Participant,
};
use crate::provider::{FetchError, Fetched};
use crate::store::StoreError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

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

/// Run until the sender side closes: first the inbox left by a previous run, then each new entry.
pub async fn run(state: AppState, mut rx: mpsc::UnboundedReceiver<u64>, retry: RetryPolicy) {
    // The tasks live in a JoinSet owned here: when the app stops (this task is aborted) they stop too, and
    // nothing keeps the store open behind the shutdown. An interrupted entry resumes from the inbox.
    let mut workers = Workers {
        fetch_limit: Arc::new(Semaphore::new(8)),
        in_flight: Arc::default(),
        tasks: tokio::task::JoinSet::new(),
    };
    match state.store.inbox() {
        Ok(pending) => {
            if !pending.is_empty() {
                tracing::info!(
                    count = pending.len(),
                    "resuming accepted pushes from the inbox"
                );
            }
            for (seq, inbound) in pending {
                spawn_one(&state, &mut workers, seq, inbound, retry);
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot read the inbox"),
    }
    loop {
        tokio::select! {
            seq = rx.recv() => {
                let Some(seq) = seq else { break };
                match state.store.inbox_entry(seq) {
                    Ok(Some(inbound)) => spawn_one(&state, &mut workers, seq, inbound, retry),
                    Ok(None) => {}
                    Err(e) => tracing::error!(seq, error = %e, "cannot read an inbox entry"),
                }
            }
            // Reap finished tasks so the set does not grow over an evening.
            Some(_) = workers.tasks.join_next(), if !workers.tasks.is_empty() => {}
        }
    }
}

/// What the processing tasks share: a bound on concurrent platform fetches, and the entries in flight
/// (an entry can be woken twice: resumed at start and re-announced by a platform's retry).
struct Workers {
    fetch_limit: Arc<Semaphore>,
    in_flight: Arc<std::sync::Mutex<std::collections::HashSet<u64>>>,
    tasks: tokio::task::JoinSet<()>,
}

fn spawn_one(
    state: &AppState,
    workers: &mut Workers,
    seq: u64,
    inbound: Inbound,
    retry: RetryPolicy,
) {
    if !workers
        .in_flight
        .lock()
        .expect("in-flight lock")
        .insert(seq)
    {
        return;
    }
    let state = state.clone();
    let limit = workers.fetch_limit.clone();
    let in_flight = workers.in_flight.clone();
    workers.tasks.spawn(async move {
        // Only platform fetches are bounded: uploads already in the cache, joins and texts never wait
        // behind a slow platform.
        let needs_fetch = matches!(&inbound.kind, InboundKind::Media { media, .. } if !media.starts_with("cache:"));
        let _permit = if needs_fetch {
            limit.acquire_owned().await.ok()
        } else {
            None
        };
        match process(&state, seq, &inbound, retry).await {
            Ok(()) => {
                if let Err(e) = state.store.finish_inbox(seq) {
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
pub async fn process(
    state: &AppState,
    seq: u64,
    inbound: &Inbound,
    retry: RetryPolicy,
) -> Result<(), StoreError> {
    let wall = inbound.wall.as_str();
    match &inbound.kind {
        InboundKind::Join => {
            ensure_participant(state, inbound, retry).await?;
        }
        InboundKind::Leave => {
            // Someone who unfollowed stays on the wall with what they already said; nothing to fetch.
            tracing::info!(wall, sender = %inbound.sender, "participant left the account");
        }
        InboundKind::Text { text } => {
            let p = ensure_participant(state, inbound, retry).await?;
            let id = seq.to_string();
            if state.store.message(wall, &id)?.is_none() {
                let mut m = new_message(&id, &p.id, MessageKind::Text, inbound);
                m.status = MessageStatus::Ready;
                m.text = Some(text.chars().take(500).collect());
                state.board.save_message(wall, &m, true)?;
            }
        }
        InboundKind::Media {
            kind,
            media,
            transcript,
        } => {
            let p = ensure_participant(state, inbound, retry).await?;
            let id = seq.to_string();
            let existing = state.store.message(wall, &id)?;
            if let Some(m) = &existing {
                if m.status != MessageStatus::Fetching {
                    return Ok(()); // already done before a restart: never refetch
                }
            } else {
                let mut m = new_message(&id, &p.id, *kind, inbound);
                m.transcript = transcript.clone();
                state.board.save_message(wall, &m, true)?;
            }
            let outcome = fetch_and_prepare(state, inbound, *kind, media, retry).await;
            let message = state.store.update_message(wall, &id, |m| match &outcome {
                Ok(prepared) => {
                    m.status = MessageStatus::Ready;
                    m.error = None;
                    m.media_url = Some(format!("/media/{}", prepared.key));
                    m.duration_ms = prepared.duration_ms;
                    m.waveform = prepared.waveform.clone();
                    m.attempts = prepared.attempts;
                }
                Err((e, attempts)) => {
                    m.status = MessageStatus::Failed;
                    m.error = Some(e.clone());
                    m.attempts = *attempts;
                }
            })?;
            if let Some(m) = message {
                match &outcome {
                    Ok(_) => state.metrics.inc_ready(),
                    Err((e, _)) => {
                        state.metrics.inc_fetch_failed();
                        tracing::warn!(wall, message = %m.id, error = %e, "message failed");
                    }
                }
                state.publish(
                    wall,
                    crate::events::WallEvent::MessageUpdated { message: m.clone() },
                );
                if m.status == MessageStatus::Ready && m.kind == MessageKind::Voice {
                    state.playback.enqueue(wall, &m.id);
                }
            }
        }
    }
    Ok(())
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
        media_url: None,
        waveform: Vec::new(),
        text: None,
        attempts: 0,
    }
}

pub fn participant_id(inbound: &Inbound) -> String {
    format!("{}:{}", inbound.provider.as_str(), inbound.sender)
}

/// The participant for a push: created at once with a placeholder (the wall shows them immediately),
/// then given their real profile when the platform has one.
pub async fn ensure_participant(
    state: &AppState,
    inbound: &Inbound,
    retry: RetryPolicy,
) -> Result<Participant, StoreError> {
    let wall = inbound.wall.as_str();
    let id = participant_id(inbound);
    if let Some(p) = state.store.participant(wall, &id)? {
        return Ok(p);
    }
    let name = placeholder_name(&id);
    let svg = placeholder_svg(&id, &name);
    let key = state.store.put_media(svg.as_bytes(), "image/svg+xml")?;
    let mut p = Participant {
        id: id.clone(),
        person_id: id.clone(),
        display_name: name,
        avatar_url: format!("/media/{key}"),
        provider: inbound.provider,
        joined_at: inbound.received_at,
        has_profile: false,
    };
    if let Some(profile) = state.store.profile(inbound.provider, &inbound.sender)? {
        apply_profile(&mut p, &profile);
    }
    state.board.save_participant(wall, &p, true)?;
    if !p.has_profile {
        // The profile is fetched off this path: a slow platform does not delay the message.
        let state = state.clone();
        let inbound = inbound.clone();
        tokio::spawn(async move {
            if let Err(e) = refresh_profile(&state, &inbound.wall, &inbound.sender, retry).await {
                tracing::warn!(error = %e, "profile fetch failed");
            }
        });
    }
    Ok(p)
}

/// Fetch the sender's profile (step 13), cache the avatar, store it by sender id and update the wall.
pub async fn refresh_profile(
    state: &AppState,
    wall: &str,
    sender: &str,
    retry: RetryPolicy,
) -> anyhow::Result<()> {
    let Some(w) = state.wall(wall) else {
        return Ok(());
    };
    let provider = w.provider.clone();
    let fetched = with_retry(retry, || provider.fetch_profile(sender))
        .await
        .map_err(|(e, _)| anyhow::anyhow!(e))?;
    let Some(fetched) = fetched else {
        return Ok(());
    };
    state
        .board
        .store_profile(wall, provider.kind(), sender, fetched)?;
    Ok(())
}

struct Prepared {
    key: String,
    duration_ms: Option<u64>,
    waveform: Vec<f32>,
    attempts: u32,
}

async fn with_retry<T, F, Fut>(retry: RetryPolicy, mut f: F) -> Result<T, (String, u32)>
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
                let msg = if e.retryable {
                    format!("{} (gave up after {attempt} attempts)", e.message)
                } else {
                    e.message
                };
                return Err((msg, attempt));
            }
        }
    }
}

/// Fetch (or read from the cache) the media bytes, and for voice decode and analyse them once.
async fn fetch_and_prepare(
    state: &AppState,
    inbound: &Inbound,
    kind: MessageKind,
    media: &str,
    retry: RetryPolicy,
) -> Result<Prepared, (String, u32)> {
    let (key, attempts) = if let Some(key) = media.strip_prefix("cache:") {
        (key.to_string(), 0)
    } else {
        let Some(w) = state.wall(&inbound.wall) else {
            return Err(("wall no longer configured".into(), 0));
        };
        let provider = w.provider.clone();
        let mut attempts = 0;
        let fetched = with_retry(retry, || {
            attempts += 1;
            provider.fetch_media(media, kind)
        })
        .await?;
        let Fetched::Bytes {
            bytes,
            content_type,
        } = fetched;
        let key = state
            .store
            .put_media(&bytes, &content_type)
            .map_err(|e| (e.to_string(), attempts))?;
        (key, attempts)
    };
    let mut prepared = Prepared {
        key: key.clone(),
        duration_ms: None,
        waveform: Vec::new(),
        attempts,
    };
    if kind == MessageKind::Voice {
        let analysis = crate::media::analyse_cached(state, &key, state.config.audio.max_duration_s)
            .await
            .map_err(|e| (e, attempts))?;
        prepared.duration_ms = Some(analysis.duration_ms);
        prepared.waveform = analysis.waveform;
    }
    Ok(prepared)
}
