//! Decoded media: a cached voice is decoded once and its analysis (duration, waveform, loudness gain)
//! kept in the store beside the original bytes. The decoded samples are kept in a small in-memory cache
//! (bounded by bytes), so the pipeline's analysis and the player's playback share one decode — and a
//! web upload, decoded on arrival to refuse bad files at once, hands its decode here too.

use crate::store::{Store, StoreError};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use voicewall_audio::{Analysis, DecodeError, Decoded};

const ANALYSIS: &str = "analysis";
/// Decoded samples kept in memory by default (`[audio] decoded_cache_bytes`): the voice playing and the
/// next few (a voice decodes at its own rate and channels: 10 s of Opus, 48 kHz mono, is 1.9 MB; 60 s
/// of WeChat's AMR, 8 kHz, is 1.9 MB). The newest decode is always kept, whatever its size. It was
/// 96 MiB: the soak's uploads filled it in a minute and it was the biggest part of the kiosk's memory.
pub const CACHE_BYTES: usize = 16 * 1024 * 1024;

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

struct DecodedCache {
    /// Most recently used last.
    entries: VecDeque<(String, Arc<Decoded>)>,
    bytes: usize,
    /// The bound on `bytes` (past it the least recently used go, all but the newest).
    max: usize,
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
        while self.bytes > self.max && self.entries.len() > 1 {
            if let Some((_, old)) = self.entries.pop_front() {
                self.bytes -= size_of(&old);
            }
        }
    }
}

impl Media {
    pub fn new(store: Store, max_s: u64) -> Self {
        Self::with_cache_bytes(store, max_s, CACHE_BYTES)
    }

    /// [`Media::new`] keeping at most `cache_bytes` of decoded samples (`[audio] decoded_cache_bytes`).
    pub fn with_cache_bytes(store: Store, max_s: u64, cache_bytes: usize) -> Self {
        Self {
            store,
            max_s,
            decoded: Arc::new(Mutex::new(DecodedCache {
                entries: VecDeque::new(),
                bytes: 0,
                max: cache_bytes,
            })),
            decodes: Arc::default(),
        }
    }

    /// Bytes of decoded samples held in memory now.
    pub fn cached_bytes(&self) -> usize {
        self.decoded.lock().expect("media cache").bytes
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

    fn voice(seconds: usize) -> Arc<Decoded> {
        Arc::new(Decoded {
            format: voicewall_audio::Format::OggOpus,
            sample_rate: 48_000,
            channels: 1,
            samples: vec![0.0; 48_000 * seconds],
        })
    }

    #[tokio::test]
    async fn decoded_samples_held_stay_under_the_cap_and_the_newest_is_always_kept() {
        let (_dir, store, _) = media();
        let one = size_of(&voice(1));
        assert_eq!(one, 192_000, "a second of 48 kHz mono");
        // Room for two seconds of audio, not three.
        let media = Media::with_cache_bytes(store.clone(), 60, one * 2 + one / 2);
        for n in 0..5 {
            media.remember(&format!("k{n}"), voice(1));
            assert!(
                media.cached_bytes() <= one * 2 + one / 2,
                "{}",
                media.cached_bytes()
            );
        }
        assert_eq!(media.cached_bytes(), one * 2, "the two newest are held");
        // Held ones come from memory (no blob is stored for these keys); the others are gone.
        assert!(media.decoded("k4").await.is_ok());
        assert!(media.decoded("k3").await.is_ok());
        assert!(matches!(
            media.decoded("k2").await,
            Err(MediaError::Missing)
        ));
        // Used lately is kept: k3 was read after k4, so a new one lets k4 go.
        media.remember("k5", voice(1));
        assert!(media.decoded("k3").await.is_ok());
        assert!(matches!(
            media.decoded("k4").await,
            Err(MediaError::Missing)
        ));

        // A cap smaller than one voice still keeps the newest (the player is about to use it).
        let tiny = Media::with_cache_bytes(store.clone(), 60, 0);
        tiny.remember("a", voice(3));
        tiny.remember("b", voice(2));
        assert_eq!(tiny.cached_bytes(), one * 2);
        assert!(tiny.decoded("b").await.is_ok());
        assert!(matches!(tiny.decoded("a").await, Err(MediaError::Missing)));
        assert_eq!(tiny.decodes(), 0);
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
