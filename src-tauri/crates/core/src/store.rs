//! The store: our own type around sled 0.34 (beta by its own README — nothing outside this module
//! touches sled). Trees: `dedup` (provider + wall + platform key → the push's sequence, followed by the
//! push itself while it waits for the pipeline: accepting a push is one write), `inbox` (the pending
//! pushes of schema 1, by sequence; moved into `dedup` at open), `participants`, `messages`, `media` (content-addressed blobs),
//! `profiles` (the patent's "first identifier → user info" table), `meta`, `audit` (the operator's
//! actions, by sequence), `wall_settings` (per-wall runtime settings the operator changes live),
//! `bans` (wall + participant id), `speaker_queue` (the voices waiting for the speakers, see `queue`),
//! two indexes kept beside the records they point at: `participant_order` (wall + join time + id: a
//! wall's people newest first without reading them all); one person's messages are found through
//! an index kept in memory (`ByParticipant`, built from `messages` at open),
//! `quarantine` (records that could not be read, moved aside by `{tree}\0{key}`: never deleted, never
//! a stop — see "Corrupt records" below).
//!
//! Durability: a push is acknowledged only after `durable()` returns. One flusher thread flushes whatever
//! has been written and wakes every writer that wrote before that flush (group commit): sled's
//! `flush_async` deadlocks under concurrency (spacejam/sled#1308) and a flush per request caps throughput.
//!
//! Corrupt records: a record that does not decode (or a key of the wrong shape) is logged, counted by
//! tree (`corrupt_counts`, shown on `/metrics`), moved to `quarantine` and skipped; the rest of the tree
//! reads on. A database that does not open at all is moved aside to `data_dir/corrupt-<time>/` and a
//! new, empty one is opened (`Store::open_or_recover`), with a notice for the operator (`notices`).
//! The schema version (`meta/schema`) is checked at open: a newer one is refused with both versions named.

use crate::domain::{Inbound, Message, Participant, Provider};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The layout of the trees this build reads and writes (`meta/schema`). 3: blobs are files under
/// `media/` (2: in the `media` tree). 2: a pending push lives in its dedup record (1: in `inbox`,
/// beside an 8-byte dedup record).
const SCHEMA: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("storage: corrupt record: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("storage: the disk did not confirm the write in time")]
    FlushTimeout,
    #[error("storage: the disk is nearly full ({free} bytes free, below the {min} kept free); retry later")]
    DiskFull { free: u64, min: u64 },
    #[error("storage: media file: {0}")]
    Blob(#[from] std::io::Error),
    /// A store job on the blocking pool panicked or was cancelled (the runtime shutting down).
    #[error("storage: a background store job did not finish: {0}")]
    Task(String),
    #[error(
        "storage: the database has schema version {found}, newer than this build's {}: use a newer voicewall, or move the data dir aside",
        SCHEMA
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

/// The stored media against its cap (`[storage] max_bytes`), for `/healthz` `media`: bytes of the blobs
/// stored now, and those evicted since start.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct MediaUsage {
    pub bytes: u64,
    pub max_bytes: u64,
    pub evicted_blobs: u64,
    pub evicted_bytes: u64,
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
    /// The avatar's thumbnail (`crate::avatar`), when it has one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::stored::optional_key"
    )]
    pub thumb: Option<crate::domain::MediaKey>,
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
    /// The blobs (files); their metadata is in `media_meta`, written only once the file is durable.
    blobs: crate::blobs::BlobDir,
    /// Held across naming or removing a blob and its metadata, so the two never disagree.
    blob_lock: Mutex<()>,
    media_meta: sled::Tree,
    profiles: sled::Tree,
    meta: sled::Tree,
    audit: sled::Tree,
    wall_settings: sled::Tree,
    bans: sled::Tree,
    /// Which records name a blob: `{media key}\0{wall}\0{record}` (record `p:{participant}` or
    /// `m:{message}`), so "does wall W show blob K" is one prefix scan (`media_records`).
    media_index: sled::Tree,
    quarantine: sled::Tree,
    /// Each blob by when it was first stored: sequence (big-endian) → media key. Eviction goes oldest
    /// first through it (`media_oldest`).
    media_age: sled::Tree,
    /// Bytes of the blobs stored (counted once at open, then kept by `put_media` / `remove_media`).
    media_bytes: AtomicU64,
    /// `[storage] max_bytes` (`u64::MAX` until set: nothing is evicted).
    media_cap: AtomicU64,
    evicted_blobs: AtomicU64,
    evicted_bytes: AtomicU64,
    /// Woken when a new blob takes the media over its cap (the evictor waits on it).
    media_over: Arc<tokio::sync::Notify>,
    /// Accepted pushes not yet processed (counted once at open, then kept by `accept` and
    /// `finish_inbox`).
    pending: AtomicU64,
    /// Corrupt records met since start, by tree.
    corrupt: Mutex<BTreeMap<String, u64>>,
    /// What the operator must know about the store, by topic (shown on `/healthz` and the console's
    /// health).
    notices: Mutex<BTreeMap<String, String>>,
    /// Each wall's figures (`Store::tally`), built by one scan on first use, then kept by every write of
    /// a message or participant. The lock is held across the write so a first scan never counts it twice.
    tallies: Mutex<std::collections::HashMap<String, crate::tally::Tally>>,
    speaker_queue: sled::Tree,
    participant_order: sled::Tree,
    /// One person's messages without scanning the wall's (`ByParticipant`).
    by_participant: Mutex<ByParticipant>,
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

/// sled's page cache, in bytes (`[storage] cache_bytes`). The process holds several times this figure
/// once the database outgrows it (sled's accounting undercounts what a cached page costs): in the 50
/// pushes/s soak, RSS kept growing with the database at 64 MiB (+2.5 MiB a minute after 35 minutes)
/// and levelled off at 8 MiB. Blobs are files (`blobs`), not in this cache.
pub const CACHE_CAPACITY: u64 = 8 * 1024 * 1024;

/// Whether a `media_meta` key names a blob: `{key}.{suffix}` entries are derived data (a decode's
/// analysis, peaks), never blobs.
fn names_a_blob(key: &[u8]) -> bool {
    !key.contains(&b'.')
}

/// Each participant's messages, by `{wall}\0{participant}`: their sequences, ascending. Kept in memory
/// (8 bytes a message), built from `messages` at open and kept by every write of a message. Schema 3
/// kept it in sled, as one record a message inserted at one point per participant: that tree alone
/// grew sled's memory by about 1.5 MiB per 10,000 messages in a bare-sled test, where appending to
/// `messages` (keys in arrival order) levels off. (In the 1-hour soak it was a small part of the
/// growth: see the allocator's figures in `/metrics` and the soak rows of the README.)
#[derive(Default)]
struct ByParticipant(std::collections::HashMap<Box<[u8]>, Vec<u64>>);

impl ByParticipant {
    fn key(wall: &str, participant: &str) -> Vec<u8> {
        Store::wall_key(wall, participant)
    }

    fn of(&self, wall: &str, participant: &str) -> &[u64] {
        self.0
            .get(Self::key(wall, participant).as_slice())
            .map_or(&[], Vec::as_slice)
    }

    fn add(&mut self, wall: &str, participant: &str, id: &str) {
        let Ok(seq) = id.parse::<u64>() else { return };
        let seqs = self
            .0
            .entry(Self::key(wall, participant).into_boxed_slice())
            .or_default();
        match seqs.last() {
            // Messages arrive in sequence order: an append, nearly always.
            Some(&last) if last >= seq => {
                if let Err(at) = seqs.binary_search(&seq) {
                    seqs.insert(at, seq);
                }
            }
            _ => seqs.push(seq),
        }
    }

    fn remove(&mut self, wall: &str, participant: &str, id: &str) {
        let Ok(seq) = id.parse::<u64>() else { return };
        let key = Self::key(wall, participant);
        let Some(seqs) = self.0.get_mut(key.as_slice()) else {
            return;
        };
        if let Ok(at) = seqs.binary_search(&seq) {
            seqs.remove(at);
        }
        if seqs.is_empty() {
            self.0.remove(key.as_slice());
        }
    }
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with_cache(dir, CACHE_CAPACITY)
    }

    /// [`Store::open`] with another page-cache size (`[storage] cache_bytes`; tests of the cache's bound).
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self> {
        let db = open_db(&dir.join("db"), cache_bytes)?;
        let meta = db.open_tree("meta")?;
        match meta.get("schema")? {
            None => {
                meta.insert("schema", SCHEMA.to_string().as_bytes())?;
            }
            Some(v) => {
                let found = String::from_utf8_lossy(&v).into_owned();
                match found.parse::<u32>() {
                    Ok(n) if n == SCHEMA => {}
                    // Older layouts: none before 1 (an unversioned database is written as 1 above).
                    Ok(n) if n < SCHEMA => {
                        meta.insert("schema", SCHEMA.to_string().as_bytes())?;
                    }
                    _ => return Err(StoreError::Schema { found }),
                }
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
            blobs: crate::blobs::BlobDir::open(dir.join("media"))?,
            blob_lock: Mutex::default(),
            media_meta: db.open_tree("media_meta")?,
            profiles: db.open_tree("profiles")?,
            meta,
            audit: db.open_tree("audit")?,
            wall_settings: db.open_tree("wall_settings")?,
            bans: db.open_tree("bans")?,
            media_index: db.open_tree("media_index")?,
            quarantine: db.open_tree("quarantine")?,
            media_age: db.open_tree("media_age")?,
            media_bytes: AtomicU64::new(0),
            media_cap: AtomicU64::new(u64::MAX),
            evicted_blobs: AtomicU64::new(0),
            evicted_bytes: AtomicU64::new(0),
            media_over: Arc::default(),
            pending: AtomicU64::new(0),
            corrupt: Mutex::default(),
            notices: Mutex::default(),
            tallies: Mutex::default(),
            speaker_queue: db.open_tree("speaker_queue")?,
            participant_order: db.open_tree("participant_order")?,
            by_participant: Mutex::default(),
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
        store.build_indexes()?;
        store.index_messages()?;
        store.migrate_inbox()?;
        store.count_pending()?;
        store.migrate_media()?;
        store.count_media()?;
        Ok(store)
    }

    /// Count the stored media's bytes (from the metadata and one listing of the blob directory: no blob
    /// is read), reconcile the two after a crash, and, once, date the blobs
    /// stored before `media_age` existed, as older than any new one: a message's media by the
    /// message's sequence, then the others (avatars, …) in key order.
    fn count_media(&self) -> Result<()> {
        const DATED: &str = "media_age_v1";
        let date = self.inner.meta.get(DATED)?.is_none();
        let mut dated = std::collections::HashSet::new();
        if date {
            let mut by_arrival: Vec<(u64, String)> = Vec::new();
            for r in self.iter_all_messages() {
                let (_, m) = r?;
                if let Some(key) = m.media {
                    by_arrival.push((m.id.parse().unwrap_or(0), key.as_str().to_string()));
                }
            }
            by_arrival.sort();
            for (_, key) in by_arrival {
                if self.inner.media_meta.contains_key(key.as_bytes())? && dated.insert(key.clone())
                {
                    let seq = self.inner.db.generate_id()?;
                    self.inner
                        .media_age
                        .insert(seq.to_be_bytes(), key.as_bytes())?;
                }
            }
        }
        let mut bytes = 0;
        // The files no metadata has named yet.
        let mut unnamed: std::collections::HashSet<String> =
            self.inner.blobs.keys()?.into_iter().collect();
        for r in self.inner.media_meta.iter() {
            let (k, v) = r?;
            if !names_a_blob(&k) {
                continue;
            }
            let Some(meta) = self.decode::<MediaMeta>("media_meta", &self.inner.media_meta, &k, &v)
            else {
                continue;
            };
            let key = String::from_utf8_lossy(&k).into_owned();
            if !unnamed.remove(&key) {
                // Removed (evicted, erased) just before a crash that lost the removal of its
                // metadata: what names it reads as missing media.
                self.quarantine(
                    "media_meta",
                    &self.inner.media_meta,
                    &k,
                    &v,
                    "its file is gone",
                );
                self.remove_derived(&key)?;
                continue;
            }
            bytes += meta.len;
            if date && !dated.contains(&key) {
                let seq = self.inner.db.generate_id()?;
                self.inner.media_age.insert(seq.to_be_bytes(), k)?;
            }
        }
        if date {
            self.inner.meta.insert(DATED, "1")?;
        }
        // A file no metadata names: written just before a crash that lost its metadata (never shown).
        for key in &unnamed {
            self.inner.blobs.remove(key)?;
        }
        if !unnamed.is_empty() {
            tracing::info!(count = unnamed.len(), "media files no record names removed");
        }
        self.inner.media_bytes.store(bytes, Ordering::SeqCst);
        Ok(())
    }

    /// Schema 2 kept blobs in the `media` tree: write each as a file, then drop it from the tree.
    /// Idempotent: a blob leaves the tree only once its file is durable, so a crash here redoes the
    /// rest at the next open.
    fn migrate_media(&self) -> Result<()> {
        let tree = self.inner.db.open_tree("media")?;
        if tree.is_empty() {
            return Ok(());
        }
        let total = tree.len();
        tracing::info!(
            count = total,
            "moving the media blobs out of the database into files"
        );
        let mut moved = 0;
        for r in tree.iter() {
            let (k, v) = r?;
            let key = String::from_utf8_lossy(&k).into_owned();
            // A blob without metadata was never served (a crash between the two writes).
            if crate::domain::MediaKey::parse(&key).is_ok()
                && self.inner.media_meta.contains_key(&k)?
            {
                let staged = self.inner.blobs.stage(&v)?;
                self.inner.blobs.commit(staged, &key)?;
                moved += 1;
                if moved % 500 == 0 {
                    tracing::info!(moved, total, "moving the media blobs into files");
                }
            }
            tree.remove(&k)?;
        }
        self.inner.db.flush()?;
        self.inner.db.drop_tree("media")?;
        tracing::info!(count = moved, "media blobs moved into files (schema 3)");
        Ok(())
    }

    /// Set the stored media's cap (`[storage] max_bytes`).
    pub fn set_media_cap(&self, max_bytes: u64) {
        self.inner.media_cap.store(max_bytes, Ordering::SeqCst);
        if self.media_over_cap() {
            self.inner.media_over.notify_one();
        }
    }

    /// The stored media against its cap (`/healthz` `media`): no blob is read.
    pub fn media_usage(&self) -> MediaUsage {
        let cap = self.inner.media_cap.load(Ordering::SeqCst);
        MediaUsage {
            bytes: self.inner.media_bytes.load(Ordering::SeqCst),
            max_bytes: cap,
            evicted_blobs: self.inner.evicted_blobs.load(Ordering::SeqCst),
            evicted_bytes: self.inner.evicted_bytes.load(Ordering::SeqCst),
        }
    }

    /// Whether the stored media is over its cap.
    pub fn media_over_cap(&self) -> bool {
        let u = self.media_usage();
        u.bytes > u.max_bytes
    }

    /// Wait until a new blob takes the media over its cap (or the cap is lowered under it).
    pub async fn media_went_over(&self) {
        self.inner.media_over.notified().await
    }

    /// Up to `limit` blobs, oldest stored first, from `after` on (a `media_age` key this returned;
    /// `None`: from the oldest): (its `media_age` key, media key).
    pub fn media_oldest(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, String)>> {
        let from = after.map(|a| [a, &[0]].concat()).unwrap_or_default();
        self.inner
            .media_age
            .range(from..)
            .take(limit)
            .map(|r| {
                let (k, v) = r?;
                Ok((k.to_vec(), String::from_utf8_lossy(&v).into_owned()))
            })
            .collect()
    }

    /// Evict a blob (and what is derived from it) to keep the media under its cap; `age` is its
    /// `media_age` key. Returns the bytes freed (0: it was gone already).
    pub fn evict_media(&self, key: &str, age: &[u8]) -> Result<u64> {
        let removed = self.remove_media_len(key)?;
        self.inner.media_age.remove(age)?;
        let Some(freed) = removed else {
            return Ok(0);
        };
        self.inner.evicted_blobs.fetch_add(1, Ordering::SeqCst);
        self.inner.evicted_bytes.fetch_add(freed, Ordering::SeqCst);
        Ok(freed)
    }

    /// Remove an age entry whose blob is gone (erased or purged since it was stored).
    pub fn drop_media_age(&self, age: &[u8]) -> Result<()> {
        self.inner.media_age.remove(age)?;
        Ok(())
    }

    /// Every record naming blob `key`, on every wall: (wall, `p:{participant}` or `m:{message}`).
    pub fn media_users(&self, key: &str) -> Result<Vec<(String, String)>> {
        let prefix = [key.as_bytes(), &[0]].concat();
        self.inner
            .media_index
            .scan_prefix(&prefix)
            .keys()
            .map(|k| {
                let k = k?;
                Ok(split_key(&k[prefix.len()..]))
            })
            .collect()
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

    /// Open the store; when the database itself is unreadable (not locked by another process, not a
    /// newer schema: those are refused), move it aside to `dir/corrupt-<time>/` and start empty, with a
    /// notice for the operator. `now_ms` names the moved directory.
    pub fn open_or_recover(dir: &Path, now_ms: u64, cache_bytes: u64) -> Result<Self> {
        match Self::open_with_cache(dir, cache_bytes) {
            Ok(s) => Ok(s),
            Err(e) if is_unreadable(&e) => {
                let aside = dir.join(format!("corrupt-{now_ms}"));
                tracing::error!(error = %e, moved_to = %aside.display(), "the database does not open: moved aside, starting empty");
                std::fs::create_dir_all(&aside).map_err(sled::Error::Io)?;
                std::fs::rename(dir.join("db"), aside.join("db")).map_err(sled::Error::Io)?;
                // Its blobs go with it: no record of the new database names them.
                if dir.join("media").exists() {
                    std::fs::rename(dir.join("media"), aside.join("media"))
                        .map_err(sled::Error::Io)?;
                }
                let store = Self::open_with_cache(dir, cache_bytes)?;
                store.notice(format!(
                    "the database did not open ({e}); it was moved to {} and the kiosk started empty",
                    aside.display()
                ));
                Ok(store)
            }
            Err(e) => Err(e),
        }
    }

    /// Tell the operator something about the store (kept until restart).
    pub fn notice(&self, text: String) {
        self.set_notice("database", Some(text));
    }

    /// Set (or clear, `None`) the notice on one topic (`database`, `disk`).
    pub fn set_notice(&self, topic: &str, text: Option<String>) {
        let mut notices = self.inner.notices.lock().expect("notices lock");
        match text {
            Some(t) => notices.insert(topic.to_string(), t),
            None => notices.remove(topic),
        };
    }

    /// What the operator must know about the store (`/healthz` `notices`).
    pub fn notices(&self) -> Vec<String> {
        let notices = self.inner.notices.lock().expect("notices lock");
        notices.values().cloned().collect()
    }

    /// Corrupt records met since start, by tree (`voicewall_corrupt_records_total`).
    pub fn corrupt_counts(&self) -> Vec<(String, u64)> {
        let counts = self.inner.corrupt.lock().expect("corrupt lock");
        counts.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Move an unreadable record of `tree` to the quarantine tree, log and count it.
    fn quarantine(&self, name: &str, tree: &sled::Tree, key: &[u8], value: &[u8], why: &str) {
        tracing::error!(tree = name, key = %String::from_utf8_lossy(key), error = why, "corrupt record moved to quarantine");
        *self
            .inner
            .corrupt
            .lock()
            .expect("corrupt lock")
            .entry(name.to_string())
            .or_default() += 1;
        let mut qkey = name.as_bytes().to_vec();
        qkey.push(0);
        qkey.extend_from_slice(key);
        if let Err(e) = self
            .inner
            .quarantine
            .insert(qkey, value)
            .and_then(|_| tree.remove(key))
        {
            tracing::error!(tree = name, error = %e, "cannot move a corrupt record aside");
        }
    }

    /// Decode one record, or quarantine it and give `None`.
    fn decode<T: DeserializeOwned>(
        &self,
        name: &str,
        tree: &sled::Tree,
        key: &[u8],
        value: &[u8],
    ) -> Option<T> {
        match serde_json::from_slice(value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.quarantine(name, tree, key, value, &e.to_string());
                None
            }
        }
    }

    /// One record by key; a corrupt one is quarantined and reads as absent.
    fn get_checked<T: DeserializeOwned>(
        &self,
        name: &str,
        tree: &sled::Tree,
        key: &[u8],
    ) -> Result<Option<T>> {
        Ok(tree
            .get(key)?
            .and_then(|v| self.decode(name, tree, key, &v)))
    }

    /// The records under a prefix, corrupt ones quarantined and skipped.
    fn scan_checked<T: DeserializeOwned>(
        &self,
        name: &str,
        tree: &sled::Tree,
        prefix: &[u8],
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for r in tree.scan_prefix(prefix) {
            let (k, v) = r?;
            out.extend(self.decode(name, tree, &k, &v));
        }
        Ok(out)
    }

    /// A tree's records read one at a time (`records` picks them: all, a prefix), each decoded;
    /// a corrupt one is quarantined and skipped, and the iteration goes on.
    fn iter_checked<T: DeserializeOwned + Send + 'static>(
        &self,
        name: &'static str,
        tree: &sled::Tree,
        records: impl FnOnce(&sled::Tree) -> sled::Iter,
    ) -> impl Iterator<Item = Result<(sled::IVec, T)>> + Send + 'static {
        let store = self.clone();
        let tree = tree.clone();
        records(&tree).filter_map(move |r| match r {
            Err(e) => Some(Err(e.into())),
            Ok((k, v)) => store.decode(name, &tree, &k, &v).map(|t| Ok((k, t))),
        })
    }

    /// Remove a record and return what it held; a corrupt one is quarantined (not lost) and reads as
    /// absent.
    fn take_checked<T: DeserializeOwned>(
        &self,
        name: &str,
        tree: &sled::Tree,
        key: &[u8],
    ) -> Result<Option<T>> {
        Ok(tree
            .remove(key)?
            .and_then(|v| self.decode(name, tree, key, &v)))
    }

    /// The records of the quarantine tree, as (tree, key) — for the operator and tests.
    pub fn quarantined(&self) -> Result<Vec<(String, Vec<u8>)>> {
        self.inner
            .quarantine
            .iter()
            .keys()
            .map(|k| {
                let k = k?;
                let cut = k.iter().position(|b| *b == 0).unwrap_or(k.len());
                let key = k.get(cut + 1..).unwrap_or_default().to_vec();
                Ok((String::from_utf8_lossy(&k[..cut]).into_owned(), key))
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

    /// Record a push unless its dedup key was seen. Not durable until `durable()`.
    ///
    /// One write: the dedup record is claimed with a compare-and-swap whose value is the push's
    /// sequence followed by the push (JSON) — the pending push is its dedup record, until
    /// `finish_inbox` cuts the value back to the sequence. (Schema 1 wrote an `inbox` entry and then the
    /// dedup record: two writes per push, and the ack waited for both to be flushed — issue 19.) No
    /// sled transaction: the first one turns on sled's process-wide lock, which every later read and
    /// write of every tree then takes.
    pub fn accept(&self, inbound: &Inbound) -> Result<Accepted> {
        let dedup_key = Self::dedup_key_of(inbound);
        let existing = self.inner.dedup.get(dedup_key.as_bytes())?;
        match &existing {
            Some(e) if e.len() >= 8 => return Ok(Accepted::Duplicate(seq_of(e))),
            // A value too short for a sequence is corrupt: the push is taken as new (replacing it).
            Some(_) => tracing::error!(key = %dedup_key, "corrupt dedup record replaced"),
            None => {}
        }
        let seq = self.inner.db.generate_id()?;
        let mut value = Vec::with_capacity(256);
        value.extend_from_slice(&seq.to_be_bytes());
        serde_json::to_writer(&mut value, inbound)?;
        let claimed = self.inner.dedup.compare_and_swap(
            dedup_key.as_bytes(),
            existing.as_deref(),
            Some(value),
        )?;
        match claimed {
            Ok(()) => {
                self.inner.pending.fetch_add(1, Ordering::SeqCst);
                Ok(Accepted::New(seq))
            }
            Err(lost) => Ok(Accepted::Duplicate(
                lost.current
                    .as_deref()
                    .filter(|c| c.len() >= 8)
                    .map(seq_of)
                    .unwrap_or(seq),
            )),
        }
    }

    /// The dedup key of a push: provider, wall and the platform's own key.
    fn dedup_key_of(inbound: &Inbound) -> String {
        format!(
            "{}\0{}\0{}",
            inbound.provider.as_str(),
            inbound.wall,
            inbound.dedup_key
        )
    }

    /// The push a dedup record holds, if it is still pending; a pending record that does not decode is
    /// quarantined (it reads as absent).
    fn pending_of(&self, key: &[u8], value: &[u8]) -> Option<(u64, Inbound)> {
        if value.len() <= 8 {
            return None;
        }
        match serde_json::from_slice::<Inbound>(&value[8..]) {
            Ok(inbound) => Some((seq_of(value), inbound)),
            Err(e) => {
                self.quarantine("dedup", &self.inner.dedup, key, value, &e.to_string());
                let _ = self
                    .inner
                    .pending
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                        Some(n.saturating_sub(1))
                    });
                None
            }
        }
    }

    /// Accepted pushes not yet processed, oldest first (the pipeline resumes from these after a crash).
    /// A corrupt one is quarantined and skipped. One pass over the dedup records.
    pub fn inbox(&self) -> Result<Vec<(u64, Inbound)>> {
        let mut out = Vec::new();
        for r in self.inner.dedup.iter() {
            let (k, v) = r?;
            out.extend(self.pending_of(&k, &v));
        }
        out.sort_by_key(|(seq, _)| *seq);
        Ok(out)
    }

    /// The push stored for `inbound`'s dedup key (the first delivery's, not a retry's) with its
    /// sequence, if it is accepted and not yet processed.
    pub fn pending(&self, inbound: &Inbound) -> Result<Option<(u64, Inbound)>> {
        let key = Self::dedup_key_of(inbound);
        Ok(self
            .inner
            .dedup
            .get(key.as_bytes())?
            .and_then(|v| self.pending_of(key.as_bytes(), &v)))
    }

    /// Accepted pushes not yet processed (a counter: no scan).
    pub fn inbox_len(&self) -> usize {
        self.inner.pending.load(Ordering::SeqCst) as usize
    }

    /// The push `seq` is processed: its dedup record keeps the sequence only (retries stay
    /// duplicates). A record that names another push (the wall was purged and the key reused) is left.
    pub fn finish_inbox(&self, seq: u64, inbound: &Inbound) -> Result<()> {
        let key = Self::dedup_key_of(inbound);
        loop {
            let Some(current) = self.inner.dedup.get(key.as_bytes())? else {
                return Ok(());
            };
            if current.len() <= 8 || seq_of(&current) != seq {
                return Ok(());
            }
            let done = self.inner.dedup.compare_and_swap(
                key.as_bytes(),
                Some(&current[..]),
                Some(&seq.to_be_bytes()[..]),
            )?;
            if done.is_ok() {
                self.inner.pending.fetch_sub(1, Ordering::SeqCst);
                return Ok(());
            }
        }
    }

    /// Count the pending pushes once, at open.
    fn count_pending(&self) -> Result<()> {
        let mut n = 0;
        for r in self.inner.dedup.iter() {
            let (_, v) = r?;
            if v.len() > 8 {
                n += 1;
            }
        }
        self.inner.pending.store(n, Ordering::SeqCst);
        Ok(())
    }

    /// Schema 1 kept a pending push in `inbox` (by sequence) beside an 8-byte dedup record naming it:
    /// move each such push into its dedup record, and drop the entries no record names (a duplicate
    /// that lost the race, or a crash between the two writes: never acknowledged). Idempotent: an
    /// entry is removed only after its record holds it, so a crash here redoes the rest at next open.
    fn migrate_inbox(&self) -> Result<()> {
        let tree = &self.inner.inbox;
        let mut moved = 0;
        for r in tree.iter() {
            let (k, v) = r?;
            if k.len() != 8 {
                self.quarantine("inbox", tree, &k, &v, "key is not an 8-byte sequence");
                continue;
            }
            let seq = seq_of(&k);
            let Some(inbound) = self.decode::<Inbound>("inbox", tree, &k, &v) else {
                continue;
            };
            let key = Self::dedup_key_of(&inbound);
            let owner = self.inner.dedup.get(key.as_bytes())?;
            if owner.as_deref().filter(|o| o.len() == 8).map(seq_of) == Some(seq) {
                let mut value = seq.to_be_bytes().to_vec();
                value.extend_from_slice(&v);
                self.inner.dedup.insert(key.as_bytes(), value)?;
                moved += 1;
            }
            tree.remove(k)?;
        }
        if moved > 0 {
            tracing::info!(count = moved, "pending pushes moved to the schema 2 layout");
        }
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
        self.get_checked(
            "participants",
            &self.inner.participants,
            &Self::wall_key(wall, id),
        )
    }

    pub fn put_participant(&self, wall: &str, p: &Participant) -> Result<()> {
        let key = Self::wall_key(wall, &p.id);
        let old: Option<Participant> = self.tallied(wall, |t| {
            let old = self
                .inner
                .participants
                .insert(&key, serde_json::to_vec(p)?)?;
            if old.is_none() {
                t.participant(true);
            }
            Ok(old.and_then(|v| serde_json::from_slice(&v).ok()))
        })?;
        if let Some(old) = &old {
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
        let record = format!("p:{}", p.id);
        let (before, before_thumb) = old.map_or((None, None), |o| (Some(o.avatar), o.thumb));
        self.index_media(wall, before.as_ref(), Some(&p.avatar), &record)?;
        // The thumbnail is named by the same record (media access treats it as the avatar).
        if before_thumb.is_some() && before_thumb.as_ref() != Some(&p.avatar) {
            self.index_media(wall, before_thumb.as_ref(), None, &record)?;
        }
        self.index_media(wall, None, p.thumb.as_ref(), &record)
    }

    /// `wall\0` + join time (big-endian) + id: the `participant_order` index.
    fn order_key(wall: &str, joined_at: u64, id: &str) -> Vec<u8> {
        let mut k = Self::wall_prefix(wall);
        k.extend_from_slice(&joined_at.to_be_bytes());
        k.extend_from_slice(id.as_bytes());
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

    /// Whether a participant has any message on the wall (one lookup in the in-memory index).
    pub fn has_messages(&self, wall: &str, participant: &str) -> Result<bool> {
        Ok(!self.by_participant().of(wall, participant).is_empty())
    }

    /// A participant's messages, oldest first, through the in-memory index.
    pub fn messages_of(&self, wall: &str, participant: &str) -> Result<Vec<Message>> {
        let seqs = self.by_participant().of(wall, participant).to_vec();
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if let Some(m) = self.message(wall, &seq.to_string())? {
                out.push(m);
            }
        }
        Ok(out)
    }

    fn by_participant(&self) -> std::sync::MutexGuard<'_, ByParticipant> {
        self.inner
            .by_participant
            .lock()
            .expect("by-participant lock")
    }

    /// Keep the in-memory index in step with a message written (`after`) over `before`; called under
    /// the tally lock, with the write, so a concurrent removal never leaves an entry behind.
    fn reindex(&self, wall: &str, before: Option<&Message>, after: Option<&Message>) {
        let mut index = self.by_participant();
        if let Some(b) = before {
            if after.is_none_or(|a| a.participant_id != b.participant_id) {
                index.remove(wall, &b.participant_id, &b.id);
            }
        }
        if let Some(a) = after {
            index.add(wall, &a.participant_id, &a.id);
        }
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
            let (k, v) = r?;
            if out.len() == limit {
                let next = out.last().map(|m| m.id.clone());
                return Ok((out, next));
            }
            let Some(m) = self.decode::<Message>("messages", &self.inner.messages, &k, &v) else {
                continue;
            };
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
        self.inner.meta.insert(BUILT, "1")?;
        Ok(())
    }

    /// Read every message once at open (corrupt ones are quarantined and left out, as everywhere) to
    /// build the in-memory by-participant index and every wall's tally, so a wall's first figures
    /// are a copy, not a second read of its messages. Schema 3 kept the index in sled, as a tree this
    /// drops.
    fn index_messages(&self) -> Result<()> {
        let mut index = ByParticipant::default();
        let mut tallies: std::collections::HashMap<String, crate::tally::Tally> =
            std::collections::HashMap::new();
        for r in self.iter_all_messages() {
            let (wall, m) = r?;
            index.add(&wall, &m.participant_id, &m.id);
            match tallies.get_mut(&wall) {
                Some(t) => t.message(None, Some(&m)),
                None => tallies.entry(wall).or_default().message(None, Some(&m)),
            }
        }
        for (wall, t) in &mut tallies {
            t.participants = self
                .inner
                .participants
                .scan_prefix(Self::wall_prefix(wall))
                .count();
        }
        *self.by_participant() = index;
        // Under the tally lock: a wall's first `tally` either waits for these or comes after them.
        self.inner
            .tallies
            .lock()
            .expect("tally lock")
            .extend(tallies);
        self.inner.db.drop_tree("messages_by_participant")?;
        Ok(())
    }

    pub fn participants(&self, wall: &str) -> Result<Vec<Participant>> {
        let mut v: Vec<Participant> = self.scan_checked(
            "participants",
            &self.inner.participants,
            &Self::wall_prefix(wall),
        )?;
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

    /// How many participants a wall has (keys only, nothing decoded): for `max_participants`.
    pub fn count_participants(&self, wall: &str) -> usize {
        self.inner
            .participants
            .scan_prefix(Self::wall_prefix(wall))
            .keys()
            .count()
    }

    /// How many messages a wall has (keys only, nothing decoded): for `max_messages`.
    pub fn count_messages(&self, wall: &str) -> usize {
        self.inner
            .messages
            .scan_prefix(Self::wall_prefix(wall))
            .keys()
            .count()
    }

    pub fn message(&self, wall: &str, id: &str) -> Result<Option<Message>> {
        self.get_checked(
            "messages",
            &self.inner.messages,
            &Self::message_key(wall, id),
        )
    }

    pub fn put_message(&self, wall: &str, m: &Message) -> Result<()> {
        let old: Option<Message> = self.tallied(wall, |t| {
            let old: Option<Message> = self
                .inner
                .messages
                .insert(Self::message_key(wall, &m.id), serde_json::to_vec(m)?)?
                .and_then(|v| serde_json::from_slice(&v).ok());
            t.message(old.as_ref(), Some(m));
            self.reindex(wall, old.as_ref(), Some(m));
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

    /// A wall's messages in arrival order; corrupt ones are quarantined and left out.
    pub fn messages(&self, wall: &str) -> Result<Vec<Message>> {
        self.scan_checked("messages", &self.inner.messages, &Self::wall_prefix(wall))
    }

    /// Apply `f` to a stored message and return the new value (None when it does not exist, or is
    /// corrupt: then it is quarantined, never deleted).
    pub fn update_message(
        &self,
        wall: &str,
        id: &str,
        f: impl Fn(&mut Message),
    ) -> Result<Option<Message>> {
        let key = Self::message_key(wall, id);
        let mut out = None;
        let mut before: Option<Message> = None;
        let mut corrupt = None;
        self.tallied(wall, |t| {
            self.inner.messages.update_and_fetch(&key, |old| {
                let old = old?;
                match serde_json::from_slice::<Message>(old) {
                    Ok(mut m) => {
                        before = Some(m.clone());
                        f(&mut m);
                        let bytes = serde_json::to_vec(&m).unwrap_or_else(|_| old.to_vec());
                        out = Some(m);
                        Some(bytes)
                    }
                    Err(e) => {
                        // Left as it is; moved aside below.
                        out = None;
                        corrupt = Some((old.to_vec(), e.to_string()));
                        Some(old.to_vec())
                    }
                }
            })?;
            if out.is_some() {
                t.message(before.as_ref(), out.as_ref());
                self.reindex(wall, before.as_ref(), out.as_ref());
            }
            Ok(())
        })?;
        if let Some((value, why)) = corrupt {
            self.quarantine("messages", &self.inner.messages, &key, &value, &why);
        }
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
        // Corrupt records are quarantined and left out, as everywhere a wall is read.
        for m in self.messages(wall)? {
            t.message(None, Some(&m));
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

    /// Run `f` on tokio's blocking pool: a blob's write syncs a file and its directory (about 1 ms
    /// here), which must not hold one of the server's async workers.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Store a blob by its content hash; returns the key (served at `/media/{key}`).
    pub fn put_media(&self, bytes: &[u8], content_type: &str) -> Result<crate::domain::MediaKey> {
        let key = crate::domain::MediaKey::of(bytes);
        let meta = MediaMeta {
            content_type: content_type.to_string(),
            len: bytes.len() as u64,
        };
        // Stored already: the metadata only (its content type may differ).
        if self.inner.media_meta.contains_key(key.as_bytes())? && self.inner.blobs.exists(&key) {
            put_json(&self.inner.media_meta, key.as_bytes(), &meta)?;
            return Ok(key);
        }
        // Written and synced outside the lock; named, and its metadata written, under it.
        let staged = self.inner.blobs.stage(bytes)?;
        let new = {
            let _named = self.inner.blob_lock.lock().expect("blob lock");
            self.inner.blobs.commit(staged, &key)?;
            self.inner
                .media_meta
                .insert(key.as_bytes(), serde_json::to_vec(&meta)?)?
                .is_none()
        };
        if new {
            let seq = self.inner.db.generate_id()?;
            self.inner
                .media_age
                .insert(seq.to_be_bytes(), key.as_bytes())?;
            self.inner
                .media_bytes
                .fetch_add(bytes.len() as u64, Ordering::SeqCst);
            if self.media_over_cap() {
                self.inner.media_over.notify_one();
            }
        }
        Ok(key)
    }

    pub fn media(&self, key: &str) -> Result<Option<(MediaMeta, Vec<u8>)>> {
        let Some(meta) = self.media_info(key)? else {
            return Ok(None);
        };
        Ok(self.inner.blobs.read(key)?.map(|b| (meta, b)))
    }

    /// A blob's metadata (no byte of it is read).
    pub fn media_info(&self, key: &str) -> Result<Option<MediaMeta>> {
        if !names_a_blob(key.as_bytes()) {
            return Ok(None);
        }
        self.get_checked::<MediaMeta>("media_meta", &self.inner.media_meta, key.as_bytes())
    }

    /// A blob's metadata and its file, for streaming it (`/media/{key}`). The file may be gone by the
    /// time it is opened (evicted): that reads as missing.
    pub fn media_file(&self, key: &str) -> Result<Option<(MediaMeta, std::path::PathBuf)>> {
        Ok(self
            .media_info(key)?
            .map(|meta| (meta, self.inner.blobs.path(key))))
    }

    /// Whether a blob is in the cache.
    pub fn has_media(&self, key: &str) -> bool {
        names_a_blob(key.as_bytes()) && self.inner.media_meta.contains_key(key).unwrap_or(false)
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
        self.get_checked(
            "media_meta",
            &self.inner.media_meta,
            format!("{key}.{suffix}").as_bytes(),
        )
    }

    pub fn profile(&self, provider: Provider, user: &str) -> Result<Option<Profile>> {
        self.get_checked(
            "profiles",
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
        let mut out = Vec::new();
        for r in self.inner.audit.iter().rev() {
            if out.len() == limit {
                break;
            }
            let (k, v) = r?;
            out.extend(self.decode("audit", &self.inner.audit, &k, &v));
        }
        Ok(out)
    }

    /// A number greater than every message id (inbox sequence) given so far, and smaller than every
    /// one given later.
    pub fn sequence_now(&self) -> Result<u64> {
        Ok(self.inner.db.generate_id()?)
    }

    /// A wall's runtime settings as last saved, if ever.
    pub fn wall_settings<T: DeserializeOwned>(&self, wall: &str) -> Result<Option<T>> {
        self.get_checked("wall_settings", &self.inner.wall_settings, wall.as_bytes())
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

    // --- The speaker queue (`queue`): one record per waiting voice, by wall + message id. ---

    /// Every waiting voice, in no particular order (the queue orders them).
    pub fn queued<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.scan_checked("speaker_queue", &self.inner.speaker_queue, &[])
    }

    pub fn put_queued<T: Serialize>(&self, wall: &str, id: &str, entry: &T) -> Result<()> {
        put_json(&self.inner.speaker_queue, &Self::wall_key(wall, id), entry)
    }

    /// Whether a voice waits for the speakers (or plays now: it stays queued until it ends).
    pub fn is_queued(&self, wall: &str, id: &str) -> Result<bool> {
        Ok(self
            .inner
            .speaker_queue
            .contains_key(Self::wall_key(wall, id))?)
    }

    pub fn remove_queued(&self, wall: &str, id: &str) -> Result<()> {
        self.inner.speaker_queue.remove(Self::wall_key(wall, id))?;
        Ok(())
    }

    pub fn clear_queued(&self) -> Result<()> {
        self.inner.speaker_queue.clear()?;
        Ok(())
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
        let prefix = Self::wall_prefix(wall);
        self.iter_checked("messages", &self.inner.messages, move |t| {
            t.scan_prefix(&prefix)
        })
        .map(|r| r.map(|(_, m)| m))
    }

    /// Every wall's messages, as (wall, message), one at a time.
    pub fn iter_all_messages(
        &self,
    ) -> impl Iterator<Item = Result<(String, Message)>> + Send + 'static {
        self.iter_checked("messages", &self.inner.messages, |t| t.iter())
            .map(|r| r.map(|(k, m)| (split_key(&k).0, m)))
    }

    /// Every wall's participants, as (wall, participant), one at a time.
    pub fn iter_all_participants(
        &self,
    ) -> impl Iterator<Item = Result<(String, Participant)>> + Send + 'static {
        self.iter_checked("participants", &self.inner.participants, |t| t.iter())
            .map(|r| r.map(|(k, p)| (split_key(&k).0, p)))
    }

    /// Every stored profile, as (provider name, the sender's id on it, profile), one at a time.
    pub fn iter_profiles(
        &self,
    ) -> impl Iterator<Item = Result<(String, String, Profile)>> + Send + 'static {
        self.iter_checked("profiles", &self.inner.profiles, |t| t.iter())
            .map(|r| {
                r.map(|(k, p)| {
                    let (provider, user) = split_key(&k);
                    (provider, user, p)
                })
            })
    }

    pub fn remove_message(&self, wall: &str, id: &str) -> Result<Option<Message>> {
        let m: Option<Message> = self.tallied(wall, |t| {
            let m: Option<Message> = self.take_checked(
                "messages",
                &self.inner.messages,
                &Self::message_key(wall, id),
            )?;
            t.message(m.as_ref(), None);
            self.reindex(wall, m.as_ref(), None);
            Ok(m)
        })?;
        if let Some(m) = &m {
            self.index_media(wall, m.media.as_ref(), None, &format!("m:{}", m.id))?;
        }
        Ok(m)
    }

    pub fn remove_participant(&self, wall: &str, id: &str) -> Result<Option<Participant>> {
        let p: Option<Participant> = self.tallied(wall, |t| {
            let p: Option<Participant> = self.take_checked(
                "participants",
                &self.inner.participants,
                &Self::wall_key(wall, id),
            )?;
            if p.is_some() {
                t.participant(false);
            }
            Ok(p)
        })?;
        if let Some(p) = &p {
            let record = format!("p:{}", p.id);
            self.index_media(wall, Some(&p.avatar), None, &record)?;
            self.index_media(wall, p.thumb.as_ref(), None, &record)?;
            self.inner
                .participant_order
                .remove(Self::order_key(wall, p.joined_at, &p.id))?;
        }
        Ok(p)
    }

    pub fn remove_profile(&self, provider: &str, user: &str) -> Result<Option<Profile>> {
        self.take_checked(
            "profiles",
            &self.inner.profiles,
            &Self::wall_key(provider, user),
        )
    }

    /// Delete a blob, its metadata and everything derived from it (`{key}.{suffix}`: the decoded
    /// audio's analysis, …). True when there was a blob.
    pub fn remove_media(&self, key: &str) -> Result<bool> {
        Ok(self.remove_media_len(key)?.is_some())
    }

    /// [`Store::remove_media`], giving the blob's length when there was one.
    fn remove_media_len(&self, key: &str) -> Result<Option<u64>> {
        if !names_a_blob(key.as_bytes()) {
            return Ok(None);
        }
        // The bytes were counted from the metadata: they are uncounted with it, file or not.
        let len = {
            let _named = self.inner.blob_lock.lock().expect("blob lock");
            let removed = self.inner.media_meta.remove(key)?;
            self.inner.blobs.remove(key)?;
            removed.map(|m| {
                serde_json::from_slice::<MediaMeta>(&m)
                    .map(|m| m.len)
                    .unwrap_or(0)
            })
        };
        if let Some(len) = len {
            // Never below 0 (a blob stored before its length was counted).
            let _ = self
                .inner
                .media_bytes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                    Some(b.saturating_sub(len))
                });
        }
        self.remove_derived(key)?;
        Ok(len)
    }

    /// Drop what is derived from blob `key` (`{key}.{suffix}`).
    fn remove_derived(&self, key: &str) -> Result<()> {
        let derived = format!("{key}.");
        for r in self.inner.media_meta.scan_prefix(derived.as_bytes()).keys() {
            self.inner.media_meta.remove(r?)?;
        }
        Ok(())
    }

    /// Every blob's key (the media cache's contents, for checks and tests).
    pub fn media_keys(&self) -> Result<Vec<String>> {
        Ok(self.inner.blobs.keys()?)
    }

    /// Drop the accepted pushes of a wall still waiting for the pipeline (their dedup records keep
    /// the sequence only); returns them.
    pub fn remove_inbox_of(&self, wall: &str) -> Result<Vec<Inbound>> {
        let mut removed = Vec::new();
        for (seq, inbound) in self.inbox()? {
            if inbound.wall == wall {
                self.finish_inbox(seq, &inbound)?;
                removed.push(inbound);
            }
        }
        Ok(removed)
    }

    /// Delete a wall's dedup records (they hold platform message ids and sender ids) whose push was
    /// accepted at or before sequence `through` (`u64::MAX`: all of them) and is processed; returns how
    /// many.
    pub fn remove_dedup_of(&self, wall: &str, through: u64) -> Result<usize> {
        // Keys are `{provider}\0{wall}\0{key}` (`dedup_key_of`). The platforms are the ones present in
        // the tree, not a list: from each key's provider, scan that provider's keys of this wall, then
        // jump past all of that provider's keys (`{provider}\x01` sorts after every `{provider}\0…`).
        let mut n = 0;
        let mut from: Vec<u8> = Vec::new();
        while let Some(r) = self.inner.dedup.range(from.as_slice()..).next() {
            let (first, _) = r?;
            let Some(end) = first.iter().position(|b| *b == 0) else {
                // Not a dedup key (no provider part): step over it.
                from = [&first[..], &[0]].concat();
                continue;
            };
            let provider = &first[..end];
            let prefix = [provider, b"\0", wall.as_bytes(), b"\0"].concat();
            for r in self.inner.dedup.scan_prefix(&prefix) {
                let (k, v) = r?;
                // A push still waiting for the pipeline keeps its record (it is the push): it goes
                // once processed (a purge drops the waiting ones first, `remove_inbox_of`).
                if v.len() <= 8 && seq_of(&v) <= through {
                    self.inner.dedup.remove(k)?;
                    n += 1;
                }
            }
            from = [provider, b"\x01"].concat();
        }
        Ok(n)
    }

    /// Write raw bytes into a tree (tests: a corrupt record, a key of the wrong length).
    #[cfg(test)]
    pub(crate) fn insert_raw(&self, tree: &str, key: &[u8], value: &[u8]) {
        let tree = self.inner.db.open_tree(tree).expect("tree");
        tree.insert(key, value).expect("insert");
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
/// The big-endian sequence a key or a dedup record starts with (0 when it is too short).
fn seq_of(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    if let Some(head) = v.get(..8) {
        b.copy_from_slice(head);
    }
    u64::from_be_bytes(b)
}

/// A `{head}\0{rest}` key as (head, rest).
fn split_key(k: &[u8]) -> (String, String) {
    let cut = k.iter().position(|b| *b == 0).unwrap_or(k.len());
    let head = String::from_utf8_lossy(&k[..cut]).into_owned();
    let rest = String::from_utf8_lossy(k.get(cut + 1..).unwrap_or_default()).into_owned();
    (head, rest)
}

/// Whether an open failed because the database's files are unreadable (rather than locked by another
/// process, not permitted, or of a newer schema): then it is moved aside.
fn is_unreadable(e: &StoreError) -> bool {
    match e {
        StoreError::Sled(sled::Error::Io(io)) => {
            io.kind() != std::io::ErrorKind::PermissionDenied
                && !io.to_string().contains("could not acquire lock")
        }
        StoreError::Sled(_) | StoreError::Corrupt(_) => true,
        StoreError::FlushTimeout
        | StoreError::Schema { .. }
        | StoreError::DiskFull { .. }
        | StoreError::Blob(_)
        | StoreError::Task(_) => false,
    }
}

/// Open sled, waiting a little for a lock still held by a process that is exiting (a quick restart).
fn open_db(path: &Path, cache_bytes: u64) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
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

fn put_json<T: Serialize>(tree: &sled::Tree, key: &[u8], value: &T) -> Result<()> {
    tree.insert(key, serde_json::to_vec(value)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InboundKind, MessageKind};

    fn push(key: &str) -> Inbound {
        Inbound {
            wall: "main".into(),
            provider: crate::providers::wechat::PROVIDER,
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

    /// A wall's dedup records go for every platform present in the tree, whatever the registry says;
    /// another wall's stay, and so do the wall's records accepted after `through`.
    #[test]
    fn a_walls_dedup_records_go_for_every_platform_in_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut through = 0;
        for (i, provider) in ["web", "wechat", "telegram", "matrix", "a"]
            .into_iter()
            .enumerate()
        {
            for wall in ["main", "mainx", "other"] {
                let mut p = push(&format!("k{i}"));
                p.wall = wall.into();
                // An unregistered name too (`Provider::new` is the platforms' own; a test may).
                p.provider = crate::domain::Provider::new(provider);
                let seq = store.accept(&p).unwrap().seq();
                store.finish_inbox(seq, &p).unwrap();
                if provider == "telegram" && wall == "main" {
                    through = seq;
                }
            }
        }
        let walls_left = |store: &Store| -> Vec<String> {
            let mut walls: Vec<String> = store
                .inner
                .dedup
                .iter()
                .keys()
                .map(|k| {
                    let k = k.unwrap();
                    let k = String::from_utf8_lossy(&k).into_owned();
                    let parts: Vec<&str> = k.split('\0').collect();
                    format!("{}/{}", parts[1], parts[0])
                })
                .collect();
            walls.sort();
            walls
        };
        // Up to the telegram push of `main`: web, wechat, telegram.
        assert_eq!(store.remove_dedup_of("main", through).unwrap(), 3);
        let left = walls_left(&store);
        assert!(left.contains(&"main/matrix".to_string()), "{left:?}");
        assert_eq!(left.iter().filter(|w| w.starts_with("main/")).count(), 2);
        assert_eq!(store.remove_dedup_of("main", u64::MAX).unwrap(), 2);
        let left = walls_left(&store);
        assert!(!left.iter().any(|w| w.starts_with("main/")), "{left:?}");
        assert_eq!(left.iter().filter(|w| w.starts_with("mainx/")).count(), 5);
        assert_eq!(left.iter().filter(|w| w.starts_with("other/")).count(), 5);
    }

    /// A push is accepted with one write (its dedup record holds it), processed by cutting the record
    /// back to its sequence: the pending count follows, across a reopen, and retries stay duplicates.
    #[tokio::test]
    async fn a_pending_push_is_its_dedup_record_until_it_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b);
        {
            let store = Store::open(dir.path()).unwrap();
            let before = store.inner.db.size_on_disk().unwrap();
            a = store.accept(&push("a")).unwrap().seq();
            b = store.accept(&push("b")).unwrap().seq();
            assert!(
                store.inner.inbox.is_empty(),
                "nothing but the dedup record is written"
            );
            assert_eq!(store.inner.dedup.len(), 2);
            assert!(store.inner.db.size_on_disk().unwrap() >= before);
            assert_eq!(store.inbox_len(), 2);
            assert_eq!(store.pending(&push("a")).unwrap(), Some((a, push("a"))));
            // A retry is answered with the first delivery's push, not its own.
            let mut retry = push("a");
            retry.received_at = 99;
            assert_eq!(store.pending(&retry).unwrap(), Some((a, push("a"))));
            store.finish_inbox(a, &push("a")).unwrap();
            // Twice, or with another push's sequence: nothing more changes.
            store.finish_inbox(a, &push("a")).unwrap();
            store.finish_inbox(a, &push("b")).unwrap();
            assert_eq!(store.inbox_len(), 1);
            assert_eq!(store.pending(&push("a")).unwrap(), None);
            assert_eq!(
                &store
                    .inner
                    .dedup
                    .get(Store::dedup_key_of(&push("a")))
                    .unwrap()
                    .unwrap()[..],
                &a.to_be_bytes()[..],
                "the processed push keeps its sequence only"
            );
            store.durable().await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.inbox_len(), 1, "counted again at open");
        assert_eq!(store.inbox().unwrap(), vec![(b, push("b"))]);
        assert_eq!(store.accept(&push("a")).unwrap(), Accepted::Duplicate(a));
        assert_eq!(store.accept(&push("b")).unwrap(), Accepted::Duplicate(b));
        assert_eq!(store.inbox_len(), 1);
        // Dedup records go (a purge, retention) once their push is processed, never while it waits.
        assert_eq!(
            store.remove_dedup_of("main", u64::MAX).unwrap(),
            1,
            "a's only"
        );
        assert_eq!(store.inbox().unwrap(), vec![(b, push("b"))]);
        // A purge of the wall drops what waits (and it is no longer pending).
        assert_eq!(store.remove_inbox_of("main").unwrap(), vec![push("b")]);
        assert_eq!(store.inbox_len(), 0);
        assert!(store.inbox().unwrap().is_empty());
        assert_eq!(
            store.remove_dedup_of("main", u64::MAX).unwrap(),
            1,
            "b's, dropped"
        );
    }

    /// A data dir of schema 1 (a pending push in `inbox` beside its 8-byte dedup record) opens with its
    /// pending pushes moved into their dedup records, in order; an entry no record names (a crash
    /// between schema 1's two writes: never acknowledged) is dropped.
    #[tokio::test]
    async fn a_schema_1_inbox_is_moved_into_the_dedup_records_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.inner.meta.insert("schema", "1").unwrap();
            for (seq, key) in [(77u64, "first"), (78, "second")] {
                let inbound = push(key);
                store
                    .inner
                    .inbox
                    .insert(seq.to_be_bytes(), serde_json::to_vec(&inbound).unwrap())
                    .unwrap();
                store
                    .inner
                    .dedup
                    .insert(Store::dedup_key_of(&inbound).as_bytes(), &seq.to_be_bytes())
                    .unwrap();
            }
            // Written, its key never claimed.
            store
                .inner
                .inbox
                .insert(
                    79u64.to_be_bytes(),
                    serde_json::to_vec(&push("crashed")).unwrap(),
                )
                .unwrap();
            // A processed push: its dedup record only.
            store
                .inner
                .dedup
                .insert(
                    Store::dedup_key_of(&push("done")).as_bytes(),
                    &5u64.to_be_bytes(),
                )
                .unwrap();
            store.durable().await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.meta_get("schema").unwrap().as_deref(), Some("3"));
        assert!(store.inner.inbox.is_empty());
        assert_eq!(store.inbox_len(), 2);
        assert_eq!(
            store.inbox().unwrap(),
            vec![(77, push("first")), (78, push("second"))]
        );
        assert_eq!(
            store.accept(&push("first")).unwrap(),
            Accepted::Duplicate(77)
        );
        assert_eq!(store.accept(&push("done")).unwrap(), Accepted::Duplicate(5));
        assert!(matches!(
            store.accept(&push("crashed")).unwrap(),
            Accepted::New(_)
        ));
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

    fn message(id: &str) -> Message {
        crate::testing::ready_voice(id, None)
    }

    fn corrupt(store: &Store, tree: &str) -> u64 {
        store
            .corrupt_counts()
            .into_iter()
            .find(|(t, _)| t == tree)
            .map_or(0, |(_, n)| n)
    }

    #[tokio::test]
    async fn an_undecodable_pending_push_is_quarantined_and_the_others_still_resume() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            // Schema 1's inbox, with a bad entry: moved aside at the next open.
            store.insert_raw("inbox", b"short", b"{}");
            store.insert_raw("inbox", &9u64.to_be_bytes(), b"{not json");
            // A pending push of schema 2 that does not decode.
            store.insert_raw(
                "dedup",
                b"wechat\0main\0bad",
                &[&10u64.to_be_bytes()[..], b"{not json"].concat(),
            );
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(corrupt(&store, "inbox"), 2);
        let a = store.accept(&push("a")).unwrap().seq();
        let b = store.accept(&push("b")).unwrap().seq();
        let seqs: Vec<u64> = store.inbox().unwrap().iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [a, b], "both good pushes resume");
        assert_eq!(corrupt(&store, "dedup"), 1);
        assert_eq!(store.inbox_len(), 2, "the bad one is not pending any more");
        let q = store.quarantined().unwrap();
        assert_eq!(q.len(), 3, "moved aside, not deleted: {q:?}");
        // Gone: the next read does not meet it again.
        assert_eq!(store.inbox().unwrap().len(), 2);
        assert_eq!(corrupt(&store, "dedup"), 1);
        assert_eq!(store.pending(&push("a")).unwrap().map(|(s, _)| s), Some(a));
    }

    /// One person's messages come from an index kept in memory: it follows writes (in any order), a
    /// change of sender and removals, is built again at the next open, and schema 3's sled tree for it
    /// is dropped.
    #[test]
    fn a_persons_messages_follow_writes_and_removals_and_are_found_again_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let with = |id: &str, who: &str| Message {
            participant_id: who.into(),
            ..message(id)
        };
        let check = |store: &Store| {
            let of = |wall: &str, who: &str| -> Vec<String> {
                let theirs = store.messages_of(wall, who).unwrap();
                theirs.into_iter().map(|m| m.id).collect()
            };
            assert_eq!(of("main", "web:a"), ["1"]);
            assert_eq!(of("main", "web:b"), ["4"]);
            assert_eq!(of("main", "web:c"), ["2"]);
            assert_eq!(of("main", "web:e"), ["6", "7", "8"]);
            assert_eq!(of("other", "web:a"), ["5"]);
            assert!(store.has_messages("main", "web:a").unwrap());
            assert!(!store.has_messages("main", "web:d").unwrap());
            assert!(!store.has_messages("other", "web:b").unwrap());
        };
        let figures = {
            let store = Store::open(dir.path()).unwrap();
            // Kept by every write from here on (the first calls scan empty walls).
            store.tally("main").unwrap();
            store.tally("other").unwrap();
            for (wall, who) in [("main", "web:a"), ("main", "web:b"), ("other", "web:a")] {
                store.put_participant(wall, &person(who)).unwrap();
            }
            // What schema 3 kept in sled.
            store.insert_raw(
                "messages_by_participant",
                b"main\0web:d\0\0\0\0\0\0\0\0\x09",
                b"",
            );
            for (id, who) in [
                ("1", "web:a"),
                ("2", "web:b"),
                ("3", "web:a"),
                ("4", "web:a"),
            ] {
                store.put_message("main", &with(id, who)).unwrap();
            }
            store.put_message("main", &with("7", "web:e")).unwrap();
            store.put_message("main", &with("6", "web:e")).unwrap();
            let failed = Message {
                status: crate::domain::MessageStatus::Failed,
                error: Some("the platform answered 404".into()),
                ..with("8", "web:e")
            };
            store.put_message("main", &failed).unwrap();
            store.put_message("other", &with("5", "web:a")).unwrap();
            store.remove_message("main", "3").unwrap();
            store.put_message("main", &with("4", "web:b")).unwrap();
            store
                .update_message("main", "2", |m| m.participant_id = "web:c".into())
                .unwrap();
            store.put_message("main", &with("2", "web:c")).unwrap();
            check(&store);
            [store.tally("main").unwrap(), store.tally("other").unwrap()]
        };
        let store = Store::open(dir.path()).unwrap();
        check(&store);
        // The same read at open built every wall's figures: each is the one the writes kept, and what
        // a scan of the wall finds.
        for (wall, kept) in ["main", "other"].into_iter().zip(figures) {
            let built = store.inner.tallies.lock().unwrap().get(wall).cloned();
            assert_eq!(built.as_ref(), Some(&kept), "{wall}");
            assert_eq!(store.scan_tally(wall).unwrap(), kept, "{wall}");
        }
        let main = store.tally("main").unwrap();
        let counted = main.pending + main.approved + main.rejected + main.removed;
        assert_eq!(counted, 6, "messages 1, 2, 4, 6, 7 and 8: {main:?}");
        assert_eq!((main.participants, main.failed), (2, 1), "{main:?}");
        let listed: Vec<&str> = main
            .failed_fetches
            .iter()
            .map(|f| f.message_id.as_str())
            .collect();
        assert_eq!(listed, ["8"]);
        assert_eq!(store.tally("other").unwrap().participants, 1);
        let trees = store.inner.db.tree_names();
        assert!(!trees.iter().any(|t| &t[..] == b"messages_by_participant"));
    }

    #[test]
    fn a_corrupt_message_is_left_out_of_the_wall_and_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put_message("main", &message("1")).unwrap();
        store.put_message("main", &message("3")).unwrap();
        let bad = Store::message_key("main", "2");
        store.insert_raw("messages", &bad, b"\xff garbage");
        let ids: Vec<String> = store
            .messages("main")
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, ["1", "3"]);
        assert_eq!(corrupt(&store, "messages"), 1);
        assert_eq!(
            store.quarantined().unwrap(),
            [("messages".to_string(), bad)]
        );
        // A corrupt participant likewise.
        store.insert_raw("participants", &Store::wall_key("main", "x"), b"[");
        assert!(store.participants("main").unwrap().is_empty());
        assert!(store.participant("main", "x").unwrap().is_none());
        assert_eq!(corrupt(&store, "participants"), 1);
    }

    fn person(id: &str) -> Participant {
        Participant {
            id: id.into(),
            person_id: id.into(),
            display_name: id.into(),
            avatar: crate::domain::MediaKey::of(id.as_bytes()),
            thumb: None,
            provider: crate::providers::web::PROVIDER,
            joined_at: 1,
            has_profile: false,
        }
    }

    /// Whether `tree`/`key` is in the quarantine tree.
    fn quarantined(store: &Store, tree: &str, key: &[u8]) -> bool {
        store
            .quarantined()
            .unwrap()
            .contains(&(tree.to_string(), key.to_vec()))
    }

    /// The privacy iterators (retention, purge, export) and the removals they drive: one corrupt record
    /// is quarantined and skipped, and the good ones still come back.
    #[test]
    fn the_privacy_iterators_skip_a_corrupt_record_and_read_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for id in ["1", "3"] {
            store.put_message("main", &message(id)).unwrap();
        }
        let bad_message = Store::message_key("main", "2");
        store.insert_raw("messages", &bad_message, b"\xff garbage");
        let ids: Vec<String> = store.iter_messages("main").map(|m| m.unwrap().id).collect();
        assert_eq!(ids, ["1", "3"]);
        assert!(quarantined(&store, "messages", &bad_message));
        store.insert_raw("messages", &bad_message, b"{");
        let all: Vec<(String, String)> = store
            .iter_all_messages()
            .map(|r| r.map(|(w, m)| (w, m.id)).unwrap())
            .collect();
        assert_eq!(
            all,
            [("main".into(), "1".into()), ("main".into(), "3".into())]
        );
        assert_eq!(corrupt(&store, "messages"), 2);

        store.put_participant("main", &person("a")).unwrap();
        store.put_participant("main", &person("c")).unwrap();
        let bad_person = Store::wall_key("main", "b");
        store.insert_raw("participants", &bad_person, b"[1,");
        let people: Vec<String> = store
            .iter_all_participants()
            .map(|r| r.unwrap().1.id)
            .collect();
        assert_eq!(people, ["a", "c"]);
        assert!(quarantined(&store, "participants", &bad_person));

        let profile = Profile {
            nickname: "n".into(),
            ..Default::default()
        };
        store
            .put_profile(crate::providers::wechat::PROVIDER, "o1", &profile)
            .unwrap();
        store
            .put_profile(crate::providers::wechat::PROVIDER, "o3", &profile)
            .unwrap();
        let bad_profile = Store::wall_key("wechat", "o2");
        store.insert_raw("profiles", &bad_profile, b"nope");
        let users: Vec<String> = store.iter_profiles().map(|r| r.unwrap().1).collect();
        assert_eq!(users, ["o1", "o3"]);
        assert!(quarantined(&store, "profiles", &bad_profile));

        // Removing a corrupt record (a purge) keeps it aside instead of failing.
        store.insert_raw("messages", &Store::message_key("main", "5"), b"{");
        assert!(store.remove_message("main", "5").unwrap().is_none());
        assert!(quarantined(
            &store,
            "messages",
            &Store::message_key("main", "5")
        ));
        store.insert_raw("participants", &Store::wall_key("main", "d"), b"{");
        assert!(store.remove_participant("main", "d").unwrap().is_none());
        store.insert_raw("profiles", &Store::wall_key("wechat", "o4"), b"{");
        assert!(store.remove_profile("wechat", "o4").unwrap().is_none());
        assert!(quarantined(
            &store,
            "profiles",
            &Store::wall_key("wechat", "o4")
        ));
        assert_eq!(corrupt(&store, "profiles"), 2);
    }

    /// The one-record readers (the operator's records, profiles, media metadata, derived entries, the
    /// speaker queue): a corrupt record reads as absent (or is left out of the list) and is kept aside.
    #[test]
    fn every_single_record_reader_quarantines_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();

        store.append_audit(&"first").unwrap();
        let bad_audit = store.sequence_now().unwrap().to_be_bytes();
        store.insert_raw("audit", &bad_audit, b"{");
        store.append_audit(&"third").unwrap();
        let newest: Vec<String> = store.audit_newest(10).unwrap();
        assert_eq!(newest, ["third", "first"]);
        assert!(quarantined(&store, "audit", &bad_audit));

        store.insert_raw("wall_settings", b"main", b"{\"mode\":");
        assert!(store
            .wall_settings::<crate::domain::WallSettings>("main")
            .unwrap()
            .is_none());
        assert!(quarantined(&store, "wall_settings", b"main"));

        store.put_queued("main", "1", &"one").unwrap();
        store.insert_raw("speaker_queue", &Store::wall_key("main", "2"), b"{");
        store.put_queued("main", "3", &"three").unwrap();
        assert_eq!(store.queued::<String>().unwrap(), ["one", "three"]);
        assert!(quarantined(
            &store,
            "speaker_queue",
            &Store::wall_key("main", "2")
        ));

        let bad_profile = Store::wall_key("wechat", "o9");
        store.insert_raw("profiles", &bad_profile, b"\x00");
        assert!(store
            .profile(crate::providers::wechat::PROVIDER, "o9")
            .unwrap()
            .is_none());
        assert!(quarantined(&store, "profiles", &bad_profile));

        let key = store.put_media(b"voice", "audio/ogg").unwrap();
        store.put_derived(key.as_str(), "analysis", &7u32).unwrap();
        let derived = format!("{key}.bad");
        store.insert_raw("media_meta", derived.as_bytes(), b"{");
        assert_eq!(
            store.derived::<u32>(key.as_str(), "analysis").unwrap(),
            Some(7)
        );
        assert!(store.derived::<u32>(key.as_str(), "bad").unwrap().is_none());
        assert!(quarantined(&store, "media_meta", derived.as_bytes()));
        store.insert_raw("media_meta", key.as_bytes(), b"{");
        assert!(store.media(key.as_str()).unwrap().is_none());
        assert!(quarantined(&store, "media_meta", key.as_bytes()));
        assert_eq!(corrupt(&store, "media_meta"), 2);
    }

    /// The media's bytes are counted again at open; the blobs of a store written before `media_age`
    /// are dated by their message's arrival (eviction goes oldest first), the rest after them.
    #[test]
    fn media_bytes_survive_reopen_and_older_blobs_are_dated_by_their_message() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<String>;
        {
            let store = Store::open(dir.path()).unwrap();
            let avatar = store.put_media(b"avatar", "image/png").unwrap();
            // Stored in the reverse order of the messages that name them.
            let mut k: Vec<crate::domain::MediaKey> = ["ccc", "bb", "a"]
                .iter()
                .map(|b| store.put_media(b.as_bytes(), "audio/ogg").unwrap())
                .collect();
            k.reverse();
            for (i, key) in k.iter().enumerate() {
                let m = crate::testing::ready_voice(&(i + 1).to_string(), Some(key.clone()));
                store.put_message("main", &m).unwrap();
            }
            assert_eq!(store.media_usage().bytes, 6 + 6);
            // As a store written before the dates existed.
            store.inner.media_age.clear().unwrap();
            store.inner.meta.remove("media_age_v1").unwrap();
            keys = k
                .iter()
                .map(|k| k.as_str().to_string())
                .chain([avatar.as_str().to_string()])
                .collect();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.media_usage().bytes, 12);
        let oldest: Vec<String> = store
            .media_oldest(None, 10)
            .unwrap()
            .into_iter()
            .map(|(_, k)| k)
            .collect();
        assert_eq!(oldest, keys);
    }

    #[test]
    fn a_dedup_value_of_the_wrong_length_does_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_raw("dedup", b"wechat\0main\0k", b"abc");
        let first = store.accept(&push("k")).unwrap();
        assert!(matches!(first, Accepted::New(_)), "{first:?}");
        assert_eq!(
            store.accept(&push("k")).unwrap(),
            Accepted::Duplicate(first.seq())
        );
    }

    #[test]
    fn updating_a_corrupt_message_keeps_it_aside_instead_of_deleting_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = Store::message_key("main", "4");
        store.insert_raw("messages", &key, b"{\"id\":");
        let updated = store
            .update_message("main", "4", |m| m.played_count += 1)
            .unwrap();
        assert!(updated.is_none());
        assert_eq!(
            store.quarantined().unwrap(),
            [("messages".to_string(), key)]
        );
        assert_eq!(corrupt(&store, "messages"), 1);
    }

    #[test]
    fn a_database_that_does_not_open_is_moved_aside_and_the_store_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.put_message("main", &message("1")).unwrap();
            store.flush().unwrap();
        }
        // Overwrite sled's files with garbage.
        for entry in std::fs::read_dir(dir.path().join("db")).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::write(&path, vec![0xA5u8; 4096]).unwrap();
            }
        }
        assert!(Store::open(dir.path()).is_err(), "garbage does not open");
        let store = Store::open_or_recover(dir.path(), 1234, CACHE_CAPACITY).unwrap();
        assert!(store.messages("main").unwrap().is_empty());
        assert!(dir.path().join("corrupt-1234/db").is_dir(), "kept aside");
        let notices = store.notices();
        assert_eq!(notices.len(), 1);
        assert!(notices[0].contains("corrupt-1234"), "{notices:?}");
        // A good database opens without a notice.
        drop(store);
        assert!(Store::open_or_recover(dir.path(), 5678, CACHE_CAPACITY)
            .unwrap()
            .notices()
            .is_empty());
    }

    /// Schema 3: blobs are files. A schema 2 data dir's `media` tree is moved into files at open (a
    /// blob without metadata, never served, is dropped), and the tree is gone.
    #[tokio::test]
    async fn schema_2_blobs_are_moved_out_of_the_database_into_files_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let voice = b"a voice of schema 2".to_vec();
        let key = crate::domain::MediaKey::of(&voice);
        let stray = crate::domain::MediaKey::of(b"never named");
        {
            let store = Store::open(dir.path()).unwrap();
            store.inner.meta.insert("schema", "2").unwrap();
            let tree = store.inner.db.open_tree("media").unwrap();
            tree.insert(key.as_bytes(), voice.as_slice()).unwrap();
            tree.insert(stray.as_bytes(), &b"never named"[..]).unwrap();
            put_json(
                &store.inner.media_meta,
                key.as_bytes(),
                &MediaMeta {
                    content_type: "audio/ogg".into(),
                    len: voice.len() as u64,
                },
            )
            .unwrap();
            store.durable().await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.meta_get("schema").unwrap().as_deref(), Some("3"));
        let (meta, bytes) = store.media(&key).unwrap().expect("moved");
        assert_eq!(
            (meta.content_type.as_str(), bytes),
            ("audio/ogg", voice.clone())
        );
        assert_eq!(
            std::fs::read(dir.path().join("media").join(key.as_str())).unwrap(),
            voice
        );
        assert_eq!(store.media_keys().unwrap(), vec![key.as_str().to_string()]);
        assert_eq!(store.media_usage().bytes, voice.len() as u64);
        assert!(!store
            .inner
            .db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == b"media"));
    }

    /// The file and its metadata never disagree after a crash: metadata whose file is gone (a removal
    /// half done) is quarantined, a file no metadata names (a write half done) is removed, and the
    /// bytes held are counted from what is left.
    #[tokio::test]
    async fn a_blob_and_its_metadata_are_reconciled_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let (kept, gone) = {
            let store = Store::open(dir.path()).unwrap();
            let kept = store.put_media(b"kept voice", "audio/ogg").unwrap();
            let gone = store.put_media(b"file lost", "audio/ogg").unwrap();
            store.put_derived(&gone, "peaks", &vec![1, 2, 3]).unwrap();
            store.durable().await.unwrap();
            (kept, gone)
        };
        std::fs::remove_file(dir.path().join("media").join(gone.as_str())).unwrap();
        let orphan = crate::domain::MediaKey::of(b"orphan");
        std::fs::write(dir.path().join("media").join(orphan.as_str()), b"orphan").unwrap();

        let store = Store::open(dir.path()).unwrap();
        assert!(store.media(&gone).unwrap().is_none());
        assert!(!store.has_media(&gone));
        assert!(store
            .inner
            .media_meta
            .scan_prefix(format!("{gone}."))
            .next()
            .is_none());
        assert_eq!(corrupt(&store, "media_meta"), 1);
        assert_eq!(store.media_keys().unwrap(), vec![kept.as_str().to_string()]);
        assert_eq!(store.media_usage().bytes, b"kept voice".len() as u64);
        assert_eq!(store.media(&kept).unwrap().unwrap().1, b"kept voice");
        // Removal unlinks the file.
        assert!(store.remove_media(&kept).unwrap());
        assert!(!dir.path().join("media").join(kept.as_str()).exists());
        assert_eq!(store.media_usage().bytes, 0);
        // A file deleted behind the kiosk's back: its bytes still leave the count with its metadata.
        let lost = store.put_media(b"deleted outside", "audio/ogg").unwrap();
        std::fs::remove_file(dir.path().join("media").join(lost.as_str())).unwrap();
        assert!(store.media(&lost).unwrap().is_none(), "reads as missing");
        assert!(store.remove_media(&lost).unwrap());
        assert_eq!(store.media_usage().bytes, 0);
    }

    #[test]
    fn a_newer_schema_is_refused_naming_both_versions_and_an_older_one_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.inner.meta.insert("schema", "0").unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.meta_get("schema").unwrap().as_deref(), Some("3"));
        store.inner.meta.insert("schema", "7").unwrap();
        drop(store);
        let e = Store::open(dir.path()).err().expect("refused").to_string();
        assert!(
            e.contains("schema version 7") && e.contains("build's 3"),
            "{e}"
        );
        // Refused, not moved aside: a newer build can still read it.
        let e = Store::open_or_recover(dir.path(), 1, CACHE_CAPACITY)
            .err()
            .expect("refused");
        assert!(matches!(e, StoreError::Schema { .. }));
        assert!(!dir.path().join("corrupt-1").exists());
    }
}
