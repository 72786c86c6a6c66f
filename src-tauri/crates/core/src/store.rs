//! The store: our own type around sled 0.34 (beta by its own README — nothing outside this module
//! touches sled). Trees: `inbox` (accepted pushes not yet processed, by sequence), `dedup` (provider +
//! wall + platform key → sequence), `participants`, `messages`, `media` (content-addressed blobs),
//! `profiles` (the patent's "first identifier → user info" table), `meta`, `audit` (the operator's
//! actions, by sequence), `wall_settings` (per-wall runtime settings the operator changes live),
//! `bans` (wall + participant id), and two indexes kept beside the records they point at:
//! `participant_order` (wall + join time + id: a wall's people newest first without reading them all)
//! and `messages_by_participant` (wall + participant + sequence: one person's messages without scanning
//! the wall's).
//!
//! Durability: a push is acknowledged only after `durable()` returns. One flusher thread flushes whatever
//! has been written and wakes every writer that wrote before that flush (group commit): sled's
//! `flush_async` deadlocks under concurrency (spacejam/sled#1308) and a flush per request caps throughput.

use crate::domain::{Inbound, Message, Participant, Provider};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

const SCHEMA_VERSION: &[u8] = b"1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("storage: corrupt record: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("storage: the disk did not confirm the write in time")]
    FlushTimeout,
    #[error(
        "storage: schema version {found} is newer than this build understands ({SCHEMA_VERSION:?})"
    )]
    Schema { found: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Outcome of accepting a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    New(u64),
    /// A retry of a push already accepted (WeChat retries 3 times); carries the first one's sequence.
    Duplicate(u64),
}

impl Accepted {
    pub fn seq(self) -> u64 {
        match self {
            Accepted::New(s) | Accepted::Duplicate(s) => s,
        }
    }
}

/// A stored media blob's metadata.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MediaMeta {
    pub content_type: String,
    pub len: u64,
}

/// A profile fetched from a platform, by the sender's per-account id.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct Profile {
    pub nickname: String,
    /// The cached avatar (stored as `avatar_url: "/media/{key}"` by earlier versions: still read).
    #[serde(
        default,
        alias = "avatar_url",
        deserialize_with = "crate::domain::stored::optional_key"
    )]
    pub avatar: Option<crate::domain::MediaKey>,
    /// Platform-wide id (WeChat unionid): links one person across accounts.
    pub unionid: Option<String>,
    pub fetched_at: u64,
}

/// Where a page of participants ends: the last one's join time and id (`{joined_at}.{id}` on the wire).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParticipantCursor {
    pub joined_at: u64,
    pub id: String,
}

impl std::fmt::Display for ParticipantCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.joined_at, self.id)
    }
}

impl std::str::FromStr for ParticipantCursor {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let (t, id) = s.split_once('.').unwrap_or((s, ""));
        Ok(Self {
            joined_at: t.parse()?,
            id: id.to_string(),
        })
    }
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    inbox: sled::Tree,
    dedup: sled::Tree,
    participants: sled::Tree,
    messages: sled::Tree,
    media: sled::Tree,
    media_meta: sled::Tree,
    profiles: sled::Tree,
    meta: sled::Tree,
    audit: sled::Tree,
    wall_settings: sled::Tree,
    bans: sled::Tree,
    participant_order: sled::Tree,
    messages_by_participant: sled::Tree,
    written: Arc<AtomicU64>,
    flushed: watch::Receiver<u64>,
    wake: Mutex<Option<mpsc::Sender<()>>>,
    flusher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Inner {
    /// Stop the flusher and wait for it, so the database (and its file lock) is closed when the last
    /// `Store` goes: the same process (a restart, a test) can open it again at once.
    fn drop(&mut self) {
        drop(self.wake.lock().map(|mut w| w.take()));
        if let Some(handle) = self.flusher.lock().ok().and_then(|mut h| h.take()) {
            let _ = handle.join();
        }
    }
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self> {
        let db = open_db(&dir.join("db"))?;
        let meta = db.open_tree("meta")?;
        match meta.get("schema")? {
            None => {
                meta.insert("schema", SCHEMA_VERSION)?;
            }
            Some(v) if v.as_ref() == SCHEMA_VERSION => {}
            Some(v) => {
                return Err(StoreError::Schema {
                    found: String::from_utf8_lossy(&v).into(),
                })
            }
        }
        let (flushed_tx, flushed) = watch::channel(0u64);
        let (wake_tx, wake_rx) = mpsc::channel::<()>();
        let written = Arc::new(AtomicU64::new(0));
        let inner = Arc::new(Inner {
            inbox: db.open_tree("inbox")?,
            dedup: db.open_tree("dedup")?,
            participants: db.open_tree("participants")?,
            messages: db.open_tree("messages")?,
            media: db.open_tree("media")?,
            media_meta: db.open_tree("media_meta")?,
            profiles: db.open_tree("profiles")?,
            meta,
            audit: db.open_tree("audit")?,
            wall_settings: db.open_tree("wall_settings")?,
            bans: db.open_tree("bans")?,
            participant_order: db.open_tree("participant_order")?,
            messages_by_participant: db.open_tree("messages_by_participant")?,
            written: written.clone(),
            flushed,
            wake: Mutex::new(Some(wake_tx)),
            flusher: Mutex::new(None),
            db: db.clone(),
        });
        let handle = std::thread::Builder::new()
            .name("sled-flusher".into())
            .spawn(move || flusher(db, written, wake_rx, flushed_tx))
            .expect("spawn flusher thread");
        *inner.flusher.lock().expect("flusher lock") = Some(handle);
        let store = Self { inner };
        store.build_indexes()?;
        Ok(store)
    }

    /// Wait until everything written before this call is on disk (group commit).
    pub async fn durable(&self) -> Result<()> {
        let ticket = self.inner.written.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(wake) = self.inner.wake.lock().expect("wake lock").as_ref() {
            let _ = wake.send(());
        }
        let mut rx = self.inner.flushed.clone();
        let waited =
            tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|f| *f >= ticket)).await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            _ => Err(StoreError::FlushTimeout),
        }
    }

    /// Flush synchronously (shutdown).
    pub fn flush(&self) -> Result<()> {
        self.inner.db.flush()?;
        Ok(())
    }

    /// Record a push in the inbox unless its dedup key was seen. Not durable until `durable()`.
    pub fn accept(&self, inbound: &Inbound) -> Result<Accepted> {
        let dedup_key = format!(
            "{}\0{}\0{}",
            inbound.provider.as_str(),
            inbound.wall,
            inbound.dedup_key
        );
        let seq = self.inner.db.generate_id()?;
        let value = serde_json::to_vec(inbound)?;
        let result = (&self.inner.dedup, &self.inner.inbox).transaction(|(dedup, inbox)| {
            if let Some(existing) = dedup.get(dedup_key.as_bytes())? {
                let mut b = [0u8; 8];
                b.copy_from_slice(&existing);
                return Ok(Accepted::Duplicate(u64::from_be_bytes(b)));
            }
            dedup.insert(dedup_key.as_bytes(), &seq.to_be_bytes())?;
            inbox.insert(&seq.to_be_bytes(), value.as_slice())?;
            Ok::<_, ConflictableTransactionError<()>>(Accepted::New(seq))
        });
        match result {
            Ok(a) => Ok(a),
            Err(TransactionError::Storage(e)) => Err(e.into()),
            Err(TransactionError::Abort(())) => unreachable!("never aborts"),
        }
    }

    /// Accepted pushes not yet processed, oldest first (the pipeline resumes from these after a crash).
    pub fn inbox(&self) -> Result<Vec<(u64, Inbound)>> {
        self.inner
            .inbox
            .iter()
            .map(|r| {
                let (k, v) = r?;
                let mut b = [0u8; 8];
                b.copy_from_slice(&k);
                Ok((u64::from_be_bytes(b), serde_json::from_slice(&v)?))
            })
            .collect()
    }

    /// One accepted push by its sequence, if not yet processed.
    pub fn inbox_entry(&self, seq: u64) -> Result<Option<Inbound>> {
        get_json(&self.inner.inbox, &seq.to_be_bytes())
    }

    pub fn inbox_len(&self) -> usize {
        self.inner.inbox.len()
    }

    pub fn finish_inbox(&self, seq: u64) -> Result<()> {
        self.inner.inbox.remove(seq.to_be_bytes())?;
        Ok(())
    }

    fn wall_key(wall: &str, id: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(wall.len() + id.len() + 1);
        k.extend_from_slice(wall.as_bytes());
        k.push(0);
        k.extend_from_slice(id.as_bytes());
        k
    }

    fn wall_prefix(wall: &str) -> Vec<u8> {
        let mut k = wall.as_bytes().to_vec();
        k.push(0);
        k
    }

    pub fn participant(&self, wall: &str, id: &str) -> Result<Option<Participant>> {
        get_json(&self.inner.participants, &Self::wall_key(wall, id))
    }

    pub fn put_participant(&self, wall: &str, p: &Participant) -> Result<()> {
        let key = Self::wall_key(wall, &p.id);
        let old = self
            .inner
            .participants
            .insert(&key, serde_json::to_vec(p)?)?;
        if let Some(old) = old.and_then(|v| serde_json::from_slice::<Participant>(&v).ok()) {
            if old.joined_at != p.joined_at {
                self.inner.participant_order.remove(Self::order_key(
                    wall,
                    old.joined_at,
                    &old.id,
                ))?;
            }
        }
        self.inner
            .participant_order
            .insert(Self::order_key(wall, p.joined_at, &p.id), &[])?;
        Ok(())
    }

    /// `wall\0` + join time (big-endian) + id: the `participant_order` index.
    fn order_key(wall: &str, joined_at: u64, id: &str) -> Vec<u8> {
        let mut k = Self::wall_prefix(wall);
        k.extend_from_slice(&joined_at.to_be_bytes());
        k.extend_from_slice(id.as_bytes());
        k
    }

    /// `wall\0participant\0` + sequence (big-endian): the `messages_by_participant` index.
    fn by_participant_key(wall: &str, participant: &str, id: &str) -> Vec<u8> {
        let mut k = Self::wall_key(wall, participant);
        k.push(0);
        k.extend_from_slice(&id.parse::<u64>().unwrap_or(0).to_be_bytes());
        k
    }

    /// A wall's participants newest first (by join time), from just before `before` (a cursor this
    /// returned: `{joined_at}.{id}`), at most `limit`; with the cursor of the next older page, if any.
    pub fn participants_newest(
        &self,
        wall: &str,
        before: Option<&ParticipantCursor>,
        limit: usize,
        mut keep: impl FnMut(&Participant) -> bool,
    ) -> Result<(Vec<Participant>, Option<ParticipantCursor>)> {
        let prefix = Self::wall_prefix(wall);
        let end = match before {
            Some(c) => Self::order_key(wall, c.joined_at, &c.id),
            None => {
                let mut end = prefix.clone();
                end.push(0xff);
                end
            }
        };
        let mut out = Vec::new();
        for r in self
            .inner
            .participant_order
            .range(prefix.clone()..end)
            .rev()
        {
            let (k, _) = r?;
            let Some(rest) = k.get(prefix.len()..) else {
                continue;
            };
            if rest.len() < 8 {
                continue;
            }
            if out.len() == limit {
                let next = out.last().map(|p: &Participant| ParticipantCursor {
                    joined_at: p.joined_at,
                    id: p.id.clone(),
                });
                return Ok((out, next));
            }
            let id = String::from_utf8_lossy(&rest[8..]);
            if let Some(p) = self.participant(wall, &id)? {
                if keep(&p) {
                    out.push(p);
                }
            }
        }
        Ok((out, None))
    }

    /// A participant's messages, oldest first, from the `messages_by_participant` index.
    pub fn messages_of(&self, wall: &str, participant: &str) -> Result<Vec<Message>> {
        let mut prefix = Self::wall_key(wall, participant);
        prefix.push(0);
        let mut out = Vec::new();
        for k in self
            .inner
            .messages_by_participant
            .scan_prefix(&prefix)
            .keys()
        {
            let k = k?;
            let seq = seq_of(k.get(prefix.len()..).unwrap_or_default());
            if let Some(m) = self.message(wall, &seq.to_string())? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// A wall's messages newest first, from just before message sequence `before`, keeping those `keep`
    /// accepts, at most `limit`; with the cursor (a message id) of the next older page, if any.
    pub fn messages_newest(
        &self,
        wall: &str,
        before: Option<u64>,
        limit: usize,
        mut keep: impl FnMut(&Message) -> bool,
    ) -> Result<(Vec<Message>, Option<String>)> {
        let prefix = Self::wall_prefix(wall);
        let mut end = prefix.clone();
        end.extend_from_slice(&before.unwrap_or(u64::MAX).to_be_bytes());
        let mut out: Vec<Message> = Vec::new();
        for r in self.inner.messages.range(prefix..end).rev() {
            let (_, v) = r?;
            if out.len() == limit {
                let next = out.last().map(|m| m.id.clone());
                return Ok((out, next));
            }
            let m: Message = serde_json::from_slice(&v)?;
            if keep(&m) {
                out.push(m);
            }
        }
        Ok((out, None))
    }

    /// Build the indexes of a store written before they existed (once; marked in `meta`).
    fn build_indexes(&self) -> Result<()> {
        const BUILT: &str = "indexes_v1";
        if self.inner.meta.get(BUILT)?.is_some() {
            return Ok(());
        }
        for r in self.iter_all_participants() {
            let (wall, p) = r?;
            self.inner
                .participant_order
                .insert(Self::order_key(&wall, p.joined_at, &p.id), &[])?;
        }
        for r in self.iter_all_messages() {
            let (wall, m) = r?;
            self.inner.messages_by_participant.insert(
                Self::by_participant_key(&wall, &m.participant_id, &m.id),
                &[],
            )?;
        }
        self.inner.meta.insert(BUILT, "1")?;
        Ok(())
    }

    pub fn participants(&self, wall: &str) -> Result<Vec<Participant>> {
        let mut v: Vec<Participant> =
            scan_json(&self.inner.participants, &Self::wall_prefix(wall))?;
        v.sort_by(|a, b| a.joined_at.cmp(&b.joined_at).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    /// Messages are keyed by wall and their sequence (big-endian), so they list in arrival order.
    fn message_key(wall: &str, id: &str) -> Vec<u8> {
        let seq: u64 = id.parse().unwrap_or(0);
        let mut k = Self::wall_prefix(wall);
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    pub fn message(&self, wall: &str, id: &str) -> Result<Option<Message>> {
        get_json(&self.inner.messages, &Self::message_key(wall, id))
    }

    pub fn put_message(&self, wall: &str, m: &Message) -> Result<()> {
        put_json(&self.inner.messages, &Self::message_key(wall, &m.id), m)?;
        self.inner.messages_by_participant.insert(
            Self::by_participant_key(wall, &m.participant_id, &m.id),
            &[],
        )?;
        Ok(())
    }

    pub fn messages(&self, wall: &str) -> Result<Vec<Message>> {
        scan_json(&self.inner.messages, &Self::wall_prefix(wall))
    }

    /// Apply `f` to a stored message and return the new value (None when it does not exist).
    pub fn update_message(
        &self,
        wall: &str,
        id: &str,
        f: impl Fn(&mut Message),
    ) -> Result<Option<Message>> {
        let key = Self::message_key(wall, id);
        let mut out = None;
        self.inner.messages.update_and_fetch(&key, |old| {
            let old = old?;
            let mut m: Message = serde_json::from_slice(old).ok()?;
            f(&mut m);
            let bytes = serde_json::to_vec(&m).ok()?;
            out = Some(m);
            Some(bytes)
        })?;
        Ok(out)
    }

    /// Store a blob by its content hash; returns the key (served at `/media/{key}`).
    pub fn put_media(&self, bytes: &[u8], content_type: &str) -> Result<crate::domain::MediaKey> {
        let key = crate::domain::MediaKey::of(bytes);
        if !self.inner.media.contains_key(key.as_str())? {
            self.inner.media.insert(key.as_str(), bytes)?;
        }
        put_json(
            &self.inner.media_meta,
            key.as_bytes(),
            &MediaMeta {
                content_type: content_type.to_string(),
                len: bytes.len() as u64,
            },
        )?;
        Ok(key)
    }

    pub fn media(&self, key: &str) -> Result<Option<(MediaMeta, sled::IVec)>> {
        let Some(meta) = get_json::<MediaMeta>(&self.inner.media_meta, key.as_bytes())? else {
            return Ok(None);
        };
        Ok(self.inner.media.get(key)?.map(|b| (meta, b)))
    }

    /// Derived data stored beside a blob (e.g. decoded audio analysis), under `{key}.{suffix}`.
    pub fn put_derived<T: Serialize>(&self, key: &str, suffix: &str, value: &T) -> Result<()> {
        put_json(
            &self.inner.media_meta,
            format!("{key}.{suffix}").as_bytes(),
            value,
        )
    }

    pub fn derived<T: DeserializeOwned>(&self, key: &str, suffix: &str) -> Result<Option<T>> {
        get_json(&self.inner.media_meta, format!("{key}.{suffix}").as_bytes())
    }

    pub fn profile(&self, provider: Provider, user: &str) -> Result<Option<Profile>> {
        get_json(
            &self.inner.profiles,
            &Self::wall_key(provider.as_str(), user),
        )
    }

    pub fn put_profile(&self, provider: Provider, user: &str, p: &Profile) -> Result<()> {
        put_json(
            &self.inner.profiles,
            &Self::wall_key(provider.as_str(), user),
            p,
        )
    }

    pub fn meta_get(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .inner
            .meta
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn meta_put(&self, key: &str, value: &str) -> Result<()> {
        self.inner.meta.insert(key, value.as_bytes())?;
        Ok(())
    }

    // --- The operator's records (audit log, wall settings, bans): kept together here. ---

    /// Append one entry to the audit log; entries list in the order they were written.
    pub fn append_audit<T: Serialize>(&self, entry: &T) -> Result<()> {
        let seq = self.inner.db.generate_id()?;
        put_json(&self.inner.audit, &seq.to_be_bytes(), entry)
    }

    /// The newest `limit` audit entries, newest first.
    pub fn audit_newest<T: DeserializeOwned>(&self, limit: usize) -> Result<Vec<T>> {
        self.inner
            .audit
            .iter()
            .rev()
            .take(limit)
            .map(|r| {
                let (_, v) = r?;
                Ok(serde_json::from_slice(&v)?)
            })
            .collect()
    }

    /// A number greater than every message id (inbox sequence) given so far, and smaller than every
    /// one given later.
    pub fn sequence_now(&self) -> Result<u64> {
        Ok(self.inner.db.generate_id()?)
    }

    /// A wall's runtime settings as last saved, if ever.
    pub fn wall_settings<T: DeserializeOwned>(&self, wall: &str) -> Result<Option<T>> {
        get_json(&self.inner.wall_settings, wall.as_bytes())
    }

    pub fn put_wall_settings<T: Serialize>(&self, wall: &str, settings: &T) -> Result<()> {
        put_json(&self.inner.wall_settings, wall.as_bytes(), settings)
    }

    pub fn is_banned(&self, wall: &str, participant: &str) -> Result<bool> {
        Ok(self
            .inner
            .bans
            .contains_key(Self::wall_key(wall, participant))?)
    }

    /// Ban (`true`) or unban a participant of a wall.
    pub fn set_banned(&self, wall: &str, participant: &str, banned: bool) -> Result<()> {
        let key = Self::wall_key(wall, participant);
        if banned {
            self.inner.bans.insert(key, &[])?;
        } else {
            self.inner.bans.remove(key)?;
        }
        Ok(())
    }

    /// The participant ids banned on a wall.
    pub fn banned(&self, wall: &str) -> Result<std::collections::HashSet<String>> {
        let prefix = Self::wall_prefix(wall);
        self.inner
            .bans
            .scan_prefix(&prefix)
            .map(|r| {
                let (k, _) = r?;
                Ok(String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
            })
            .collect()
    }

    /// Bytes on disk, for /metrics.
    pub fn size_on_disk(&self) -> u64 {
        self.inner.db.size_on_disk().unwrap_or(0)
    }

    // --- Privacy (retention sweeper, purge, export): reading lazily and deleting. Kept together here. ---

    /// A wall's messages in arrival order, read one at a time (an export of 10,000 messages never
    /// holds them all).
    pub fn iter_messages(
        &self,
        wall: &str,
    ) -> impl Iterator<Item = Result<Message>> + Send + 'static {
        iter_json(self.inner.messages.scan_prefix(Self::wall_prefix(wall)))
    }

    /// Every wall's messages, as (wall, message), one at a time.
    pub fn iter_all_messages(
        &self,
    ) -> impl Iterator<Item = Result<(String, Message)>> + Send + 'static {
        iter_split(self.inner.messages.iter())
            .map(|r| r.and_then(|(wall, _, v)| Ok((wall, serde_json::from_slice(&v)?))))
    }

    /// Every wall's participants, as (wall, participant), one at a time.
    pub fn iter_all_participants(
        &self,
    ) -> impl Iterator<Item = Result<(String, Participant)>> + Send + 'static {
        iter_split(self.inner.participants.iter())
            .map(|r| r.and_then(|(wall, _, v)| Ok((wall, serde_json::from_slice(&v)?))))
    }

    /// Every stored profile, as (provider name, the sender's id on it, profile), one at a time.
    pub fn iter_profiles(
        &self,
    ) -> impl Iterator<Item = Result<(String, String, Profile)>> + Send + 'static {
        iter_split(self.inner.profiles.iter()).map(|r| {
            r.and_then(|(provider, user, v)| Ok((provider, user, serde_json::from_slice(&v)?)))
        })
    }

    pub fn remove_message(&self, wall: &str, id: &str) -> Result<Option<Message>> {
        let m: Option<Message> = take_json(&self.inner.messages, &Self::message_key(wall, id))?;
        if let Some(m) = &m {
            self.inner
                .messages_by_participant
                .remove(Self::by_participant_key(wall, &m.participant_id, &m.id))?;
        }
        Ok(m)
    }

    pub fn remove_participant(&self, wall: &str, id: &str) -> Result<Option<Participant>> {
        let p: Option<Participant> =
            take_json(&self.inner.participants, &Self::wall_key(wall, id))?;
        if let Some(p) = &p {
            self.inner
                .participant_order
                .remove(Self::order_key(wall, p.joined_at, &p.id))?;
        }
        Ok(p)
    }

    pub fn remove_profile(&self, provider: &str, user: &str) -> Result<Option<Profile>> {
        take_json(&self.inner.profiles, &Self::wall_key(provider, user))
    }

    /// Delete a blob, its metadata and everything derived from it (`{key}.{suffix}`: the decoded
    /// audio's analysis, …). True when there was a blob.
    pub fn remove_media(&self, key: &str) -> Result<bool> {
        let had = self.inner.media.remove(key)?.is_some();
        self.inner.media_meta.remove(key)?;
        let derived = format!("{key}.");
        for r in self.inner.media_meta.scan_prefix(derived.as_bytes()).keys() {
            self.inner.media_meta.remove(r?)?;
        }
        Ok(had)
    }

    /// Every blob's key (the media cache's contents, for checks and tests).
    pub fn media_keys(&self) -> impl Iterator<Item = Result<String>> + Send + 'static {
        self.inner
            .media
            .iter()
            .keys()
            .map(|r| Ok(String::from_utf8_lossy(&r?).into_owned()))
    }

    /// Delete the accepted pushes of a wall still waiting in the inbox; returns them.
    pub fn remove_inbox_of(&self, wall: &str) -> Result<Vec<Inbound>> {
        let mut removed = Vec::new();
        for r in self.inner.inbox.iter() {
            let (k, v) = r?;
            let inbound: Inbound = serde_json::from_slice(&v)?;
            if inbound.wall == wall {
                self.inner.inbox.remove(k)?;
                removed.push(inbound);
            }
        }
        Ok(removed)
    }

    /// Delete a wall's dedup records (they hold platform message ids and sender ids) whose push was
    /// accepted at or before sequence `through` (`u64::MAX`: all of them); returns how many.
    pub fn remove_dedup_of(&self, wall: &str, through: u64) -> Result<usize> {
        let mut n = 0;
        for provider in [Provider::Web, Provider::Wechat, Provider::Telegram] {
            let prefix = format!("{}\0{wall}\0", provider.as_str());
            for r in self.inner.dedup.scan_prefix(prefix.as_bytes()) {
                let (k, v) = r?;
                if seq_of(&v) <= through {
                    self.inner.dedup.remove(k)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Every key of every tree, as (tree, key) — for tests that prove nothing of a wall is left.
    pub fn dump_keys(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for name in self.inner.db.tree_names() {
            let tree = self.inner.db.open_tree(&name)?;
            let name = String::from_utf8_lossy(&name).into_owned();
            for k in tree.iter().keys() {
                out.push((name.clone(), k?.to_vec()));
            }
        }
        Ok(out)
    }
}

/// A big-endian sequence number as stored (a short value reads as 0).
fn seq_of(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    if v.len() == 8 {
        b.copy_from_slice(v);
    }
    u64::from_be_bytes(b)
}

/// Remove a record and return what it held.
fn take_json<T: DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Option<T>> {
    match tree.remove(key)? {
        Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
        None => Ok(None),
    }
}

/// The values of a sled iterator, decoded one at a time.
fn iter_json<T: DeserializeOwned>(iter: sled::Iter) -> impl Iterator<Item = Result<T>> {
    iter.values().map(|r| Ok(serde_json::from_slice(&r?)?))
}

/// A `{head}\0{rest}` keyed tree's records as (head, rest, value).
fn iter_split(
    iter: sled::Iter,
) -> impl Iterator<Item = Result<(String, String, sled::IVec)>> + Send + 'static {
    iter.map(|r| {
        let (k, v) = r?;
        let cut = k.iter().position(|b| *b == 0).unwrap_or(k.len());
        let head = String::from_utf8_lossy(&k[..cut]).into_owned();
        let rest = String::from_utf8_lossy(k.get(cut + 1..).unwrap_or_default()).into_owned();
        Ok((head, rest, v))
    })
}

/// Open sled, waiting a little for a lock still held by a process that is exiting (a quick restart).
fn open_db(path: &Path) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(64 * 1024 * 1024)
            .open()
        {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return Ok(other?),
        }
    }
}

/// The group-commit flusher: owns a handle on the database until the store closes its wake channel.
fn flusher(
    db: sled::Db,
    written: Arc<AtomicU64>,
    wake: mpsc::Receiver<()>,
    flushed: watch::Sender<u64>,
) {
    while wake.recv().is_ok() {
        while wake.try_recv().is_ok() {}
        let target = written.load(Ordering::SeqCst);
        match db.flush() {
            Ok(_) => {
                flushed.send_replace(target);
            }
            Err(e) => tracing::error!(error = %e, "sled flush failed; acks wait"),
        }
    }
}

fn get_json<T: DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Option<T>> {
    match tree.get(key)? {
        Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
        None => Ok(None),
    }
}

fn put_json<T: Serialize>(tree: &sled::Tree, key: &[u8], value: &T) -> Result<()> {
    tree.insert(key, serde_json::to_vec(value)?)?;
    Ok(())
}

fn scan_json<T: DeserializeOwned>(tree: &sled::Tree, prefix: &[u8]) -> Result<Vec<T>> {
    tree.scan_prefix(prefix)
        .map(|r| {
            let (_, v) = r?;
            Ok(serde_json::from_slice(&v)?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InboundKind, MessageKind};

    fn push(key: &str) -> Inbound {
        Inbound {
            wall: "main".into(),
            provider: Provider::Wechat,
            sender: "o1".into(),
            kind: InboundKind::Media {
                kind: MessageKind::Voice,
                media: crate::domain::MediaRef::Platform("m1".into()),
                transcript: None,
            },
            pushed_at: 1,
            received_at: 2,
            dedup_key: key.into(),
        }
    }

    #[tokio::test]
    async fn four_deliveries_make_one_inbox_entry_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let first;
        {
            let store = Store::open(dir.path()).unwrap();
            first = store.accept(&push("123")).unwrap();
            assert!(matches!(first, Accepted::New(_)));
            for _ in 0..3 {
                assert_eq!(
                    store.accept(&push("123")).unwrap(),
                    Accepted::Duplicate(first.seq())
                );
            }
            store.accept(&push("456")).unwrap();
            store.durable().await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let inbox = store.inbox().unwrap();
        assert_eq!(inbox.len(), 2);
        assert_eq!(inbox[0].0, first.seq());
        assert_eq!(inbox[0].1, push("123"));
        assert_eq!(
            store.accept(&push("123")).unwrap(),
            Accepted::Duplicate(first.seq())
        );
    }

    #[tokio::test]
    async fn concurrent_durable_waits_all_complete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut tasks = Vec::new();
        for i in 0..64 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.accept(&push(&i.to_string())).unwrap();
                s.durable().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.inbox_len(), 64);
    }

    #[test]
    fn media_is_content_addressed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.put_media(b"hello", "audio/amr").unwrap();
        let b = store.put_media(b"hello", "audio/amr").unwrap();
        assert_eq!(a, b);
        let (meta, bytes) = store.media(&a).unwrap().unwrap();
        assert_eq!(meta.content_type, "audio/amr");
        assert_eq!(&bytes[..], b"hello");
        assert!(store.media("nope").unwrap().is_none());
    }
}
