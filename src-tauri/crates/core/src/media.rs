//! Decoded media: a cached voice is decoded once and its analysis (duration, waveform, loudness gain)
//! kept in the store beside the original bytes. The decoded samples are kept in a small in-memory cache
//! (bounded by bytes), so the pipeline's analysis and the player's playback share one decode — and a
//! web upload, decoded on arrival to refuse bad files at once, hands its decode here too.

use crate::store::{Store, StoreError};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use voicewall_audio::{Analysis, DecodeError, Decoded};

const ANALYSIS: &str = "analysis";
/// Decoded samples kept in memory: a few minutes of audio (60 s of 48 kHz stereo is 23 MB).
const CACHE_BYTES: usize = 96 * 1024 * 1024;

/// Why a cached blob cannot be played.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("media missing from the cache")]
    Missing,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("the decoder crashed: {0}")]
    Crashed(String),
}

/// Decoding and analysis of cached media. Cheap to clone.
#[derive(Clone)]
pub struct Media {
    store: Store,
    /// The longest voice accepted, in seconds.
    max_s: u64,
    decoded: Arc<Mutex<DecodedCache>>,
    /// Decodes made (uploads included): a voice is decoded once, whoever asks.
    decodes: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Default)]
struct DecodedCache {
    /// Most recently used last.
    entries: VecDeque<(String, Arc<Decoded>)>,
    bytes: usize,
}

fn size_of(d: &Decoded) -> usize {
    d.samples.len() * std::mem::size_of::<f32>()
}

impl DecodedCache {
    fn get(&mut self, key: &str) -> Option<Arc<Decoded>> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        let entry = self.entries.remove(i)?;
        let d = entry.1.clone();
        self.entries.push_back(entry);
        Some(d)
    }

    fn remove(&mut self, key: &str) {
        if let Some(i) = self.entries.iter().position(|(k, _)| k == key) {
            if let Some((_, old)) = self.entries.remove(i) {
                self.bytes -= size_of(&old);
            }
        }
    }

    fn put(&mut self, key: &str, d: Arc<Decoded>) {
        if self.get(key).is_some() {
            return;
        }
        self.bytes += size_of(&d);
        self.entries.push_back((key.to_string(), d));
        while self.bytes > CACHE_BYTES && self.entries.len() > 1 {
            if let Some((_, old)) = self.entries.pop_front() {
                self.bytes -= size_of(&old);
            }
        }
    }
}

impl Media {
    pub fn new(store: Store, max_s: u64) -> Self {
        Self {
            store,
            max_s,
            decoded: Arc::default(),
            decodes: Arc::default(),
        }
    }

    /// How many decodes this handle made.
    pub fn decodes(&self) -> u64 {
        self.decodes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Decode uploaded bytes (to refuse a bad file at once) and keep the result for `key`'s player.
    pub async fn decode_upload(
        &self,
        bytes: Arc<Vec<u8>>,
        max_s: u64,
    ) -> Result<Arc<Decoded>, MediaError> {
        self.decodes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let decoded =
            tokio::task::spawn_blocking(move || voicewall_audio::decode_limited(&bytes, max_s))
                .await
                .map_err(|e| MediaError::Crashed(e.to_string()))??;
        Ok(Arc::new(decoded))
    }

    /// Keep a decode made elsewhere (a web upload, decoded to check it) for the player.
    pub fn remember(&self, key: &str, decoded: Arc<Decoded>) {
        self.decoded.lock().expect("media cache").put(key, decoded);
    }

    /// Drop the decoded samples of a blob that was deleted (retention, purge).
    pub fn forget(&self, key: &str) {
        self.decoded.lock().expect("media cache").remove(key);
    }

    /// The analysis of a cached blob, computed once and stored.
    pub async fn analysis(&self, key: &str) -> Result<Analysis, MediaError> {
        if let Some(a) = self.store.derived::<Analysis>(key, ANALYSIS)? {
            return Ok(a);
        }
        let decoded = self.decoded(key).await?;
        let analysis = tokio::task::spawn_blocking(move || voicewall_audio::analyse(&decoded))
            .await
            .map_err(|e| MediaError::Crashed(e.to_string()))?;
        self.store.put_derived(key, ANALYSIS, &analysis)?;
        Ok(analysis)
    }

    /// The decoded samples of a cached blob: from memory when decoded lately, else decoded now (never
    /// the network).
    pub async fn decoded(&self, key: &str) -> Result<Arc<Decoded>, MediaError> {
        if let Some(d) = self.decoded.lock().expect("media cache").get(key) {
            return Ok(d);
        }
        let (_, bytes) = self.store.media(key)?.ok_or(MediaError::Missing)?;
        self.decodes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let max_s = self.max_s;
        let decoded =
            tokio::task::spawn_blocking(move || voicewall_audio::decode_limited(&bytes, max_s))
                .await
                .map_err(|e| MediaError::Crashed(e.to_string()))??;
        let decoded = Arc::new(decoded);
        self.remember(key, decoded.clone());
        Ok(decoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixture;

    fn media() -> (tempfile::TempDir, Store, Media) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let media = Media::new(store.clone(), 60);
        (dir, store, media)
    }

    #[tokio::test]
    async fn a_voice_is_decoded_once_for_its_analysis_and_its_playback() {
        let (_dir, store, media) = media();
        let key = store.put_media(&fixture("hello.amr"), "audio/amr").unwrap();
        let a = media.analysis(&key).await.unwrap();
        assert!(a.duration_ms > 500);
        let d = media.decoded(&key).await.unwrap();
        assert_eq!(d.duration_ms(), a.duration_ms);
        assert_eq!(media.decodes(), 1);
        // The analysis is stored: another handle (a restart) does not decode for it.
        let again = Media::new(store.clone(), 60);
        assert_eq!(again.analysis(&key).await.unwrap(), a);
        assert_eq!(again.decodes(), 0);
    }

    #[tokio::test]
    async fn an_upload_hands_its_decode_on() {
        let (_dir, store, media) = media();
        let bytes = Arc::new(fixture("hello.ogg"));
        let decoded = media.decode_upload(bytes.clone(), 60).await.unwrap();
        let key = store.put_media(&bytes, "audio/ogg").unwrap();
        media.remember(&key, decoded);
        media.analysis(&key).await.unwrap();
        media.decoded(&key).await.unwrap();
        assert_eq!(media.decodes(), 1, "decoded on upload only");
    }

    #[tokio::test]
    async fn missing_or_unplayable_media_says_why() {
        let (_dir, store, media) = media();
        assert!(matches!(
            media.decoded("0123").await,
            Err(MediaError::Missing)
        ));
        let key = store.put_media(b"plain text", "audio/ogg").unwrap();
        assert!(matches!(
            media.analysis(&key).await,
            Err(MediaError::Decode(DecodeError::NotAudio(_)))
        ));
    }
}
