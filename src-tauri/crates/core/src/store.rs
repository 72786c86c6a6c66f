//! The store: our own type around sled 0.34 (beta by its own README — nothing outside this module
//! touches sled). Trees: `inbox` (accepted pushes not yet processed, by sequence), `dedup` (provider +
//! wall + platform key → sequence), `participants`, `messages`, `media` (content-addressed blobs),
//! `profiles` (the patent's "first identifier → user info" table), `meta`, `audit` (the operator's
//! actions, by sequence), `wall_settings` (per-wall runtime settings the operator changes live),
//! `bans` (wall + participant id).
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
    /// Which records name a blob: `{media key}\0{wall}\0{record}` (record `p:{participant}` or
    /// `m:{message}`), so "does wall W show blob K" is one prefix scan (`media_records`).
    media_index: sled::Tree,
    /// Each wall's figures (`Store::tally`), built by one scan on first use, then kept by every write of
    /// a message or participant. The lock is held across the write so a first scan never counts it twice.
    tallies: Mutex<std::collections::HashMap<String, crate::tally::Tally>>,
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
            media_index: db.open_tree("media_index")?,
            tallies: Mutex::default(),
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
        store.index_media_once()?;
        Ok(store)
    }

    /// Build the media index of a store written before it existed (once).
    fn index_media_once(&self) -> Result<()> {
        if self.inner.meta.get("media_index")?.is_some() {
            return Ok(());
        }
        for r in self.iter_all_messages() {
            let (wall, m) = r?;
            self.index_media(&wall, None, m.media.as_ref(), &format!("m:{}", m.id))?;
        }
        for r in self.iter_all_participants() {
            let (wall, p) = r?;
            self.index_media(&wall, None, Some(&p.avatar), &format!("p:{}", p.id))?;
        }
        self.inner.meta.insert("media_index", "1")?;
        Ok(())
    }

    fn media_entry(key: &crate::domain::MediaKey, wall: &str, record: &str) -> Vec<u8> {
        let mut k = Self::wall_key(key.as_str(), wall);
        k.push(0);
        k.extend_from_slice(record.as_bytes());
        k
    }

    /// Record `record` of `wall` naming blob `now` instead of `before`.
    fn index_media(
        &self,
        wall: &str,
        before: Option<&crate::domain::MediaKey>,
        now: Option<&crate::domain::MediaKey>,
        record: &str,
    ) -> Result<()> {
        if before == now {
            if let Some(k) = now {
                self.inner
                    .media_index
                    .insert(Self::media_entry(k, wall, record), &[])?;
            }
            return Ok(());
        }
        if let Some(k) = before {
            self.inner
                .media_index
                .remove(Self::media_entry(k, wall, record))?;
        }
        if let Some(k) = now {
            self.inner
                .media_index
                .insert(Self::media_entry(k, wall, record), &[])?;
        }
        Ok(())
    }

    /// Does any record of any wall (a message, a participant) name blob `key`?
    pub fn media_named(&self, key: &crate::domain::MediaKey) -> Result<bool> {
        let mut prefix = key.as_str().as_bytes().to_vec();
        prefix.push(0);
        Ok(self.inner.media_index.scan_prefix(prefix).next().is_some())
    }

    /// The records of `wall` that name blob `key`: `p:{participant id}` (an avatar) or `m:{message id}`.
    pub fn media_records(&self, key: &crate::domain::MediaKey, wall: &str) -> Result<Vec<String>> {
        let prefix = Self::wall_key(key.as_str(), wall);
        self.inner
            .media_index
            .scan_prefix([prefix.as_slice(), &[0]].concat())
            .keys()
            .map(|k| {
                let k = k?;
                Ok(String::from_utf8_lossy(&k[prefix.len() + 1..]).into_owned())
            })
            .collect()
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
        let old: Option<Participant> = self.tallied(wall, |t| {
            let old = self
                .inner
                .participants
                .insert(Self::wall_key(wall, &p.id), serde_json::to_vec(p)?)?;
            if old.is_none() {
                t.participant(true);
            }
            Ok(old.and_then(|v| serde_json::from_slice(&v).ok()))
        })?;
        let before = old.map(|o| o.avatar);
        self.index_media(
            wall,
            before.as_ref(),
            Some(&p.avatar),
            &format!("p:{}", p.id),
        )
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
        let old: Option<Message> = self.tallied(wall, |t| {
            let old: Option<Message> = self
                .inner
                .messages
                .insert(Self::message_key(wall, &m.id), serde_json::to_vec(m)?)?
                .and_then(|v| serde_json::from_slice(&v).ok());
            t.message(old.as_ref(), Some(m));
            Ok(old)
        })?;
        let before = old.and_then(|o| o.media);
        self.index_media(
            wall,
            before.as_ref(),
            m.media.as_ref(),
            &format!("m:{}", m.id),
        )
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
        let mut before: Option<Message> = None;
        self.tallied(wall, |t| {
            self.inner.messages.update_and_fetch(&key, |old| {
                let old = old?;
                let mut m: Message = serde_json::from_slice(old).ok()?;
                before = Some(m.clone());
                f(&mut m);
                let bytes = serde_json::to_vec(&m).ok()?;
                out = Some(m);
                Some(bytes)
            })?;
            if out.is_some() {
                t.message(before.as_ref(), out.as_ref());
            }
            Ok(())
        })?;
        if let Some(m) = &out {
            self.index_media(
                wall,
                before.as_ref().and_then(|b| b.media.as_ref()),
                m.media.as_ref(),
                &format!("m:{}", m.id),
            )?;
        }
        Ok(out)
    }

    /// A wall's figures now (messages by moderation and status, participants, the newest failed
    /// fetches). The first call for a wall scans it once; every later one is a copy.
    pub fn tally(&self, wall: &str) -> Result<crate::tally::Tally> {
        let mut tallies = self.inner.tallies.lock().expect("tally lock");
        if let Some(t) = tallies.get(wall) {
            return Ok(t.clone());
        }
        let t = self.scan_tally(wall)?;
        tallies.insert(wall.to_string(), t.clone());
        Ok(t)
    }

    fn scan_tally(&self, wall: &str) -> Result<crate::tally::Tally> {
        let mut t = crate::tally::Tally::default();
        for m in self.iter_messages(wall) {
            t.message(None, Some(&m?));
        }
        t.participants = self
            .inner
            .participants
            .scan_prefix(Self::wall_prefix(wall))
            .count();
        Ok(t)
    }

    /// Run a write of a wall's message or participant with the wall's tally (if built) to update; the
    /// lock is held across the write so a first scan (`tally`) never sees it half done.
    fn tallied<T>(
        &self,
        wall: &str,
        write: impl FnOnce(&mut crate::tally::Tally) -> Result<T>,
    ) -> Result<T> {
        let mut tallies = self.inner.tallies.lock().expect("tally lock");
        match tallies.get_mut(wall) {
            Some(t) => write(t),
            None => write(&mut crate::tally::Tally::default()),
        }
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

    /// Every `meta` record whose key starts with `prefix`: (key, value).
    pub fn meta_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        self.inner
            .meta
            .scan_prefix(prefix)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                ))
            })
            .collect()
    }

    pub fn meta_remove(&self, key: &str) -> Result<()> {
        self.inner.meta.remove(key)?;
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
        let m: Option<Message> = self.tallied(wall, |t| {
            let m: Option<Message> = take_json(&self.inner.messages, &Self::message_key(wall, id))?;
            t.message(m.as_ref(), None);
            Ok(m)
        })?;
        if let Some(m) = &m {
            self.index_media(wall, m.media.as_ref(), None, &format!("m:{}", m.id))?;
        }
        Ok(m)
    }

    pub fn remove_participant(&self, wall: &str, id: &str) -> Result<Option<Participant>> {
        let p: Option<Participant> = self.tallied(wall, |t| {
            let p: Option<Participant> =
                take_json(&self.inner.participants, &Self::wall_key(wall, id))?;
            if p.is_some() {
                t.participant(false);
            }
            Ok(p)
        })?;
        if let Some(p) = &p {
            self.index_media(wall, Some(&p.avatar), None, &format!("p:{}", p.id))?;
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
