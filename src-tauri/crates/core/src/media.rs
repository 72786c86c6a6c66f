//! Media derived data: decode a cached voice once (off the request path), keep its analysis
//! (duration, waveform, loudness gain) in the store beside the original bytes.

use crate::app::AppState;
use voicewall_audio::{Analysis, Decoded};

const ANALYSIS: &str = "analysis";

/// The analysis of a cached blob, computed once and stored; a readable error when it is not playable audio.
pub async fn analyse_cached(state: &AppState, key: &str, max_s: u64) -> Result<Analysis, String> {
    if let Ok(Some(a)) = state.store.derived::<Analysis>(key, ANALYSIS) {
        return Ok(a);
    }
    let decoded = decode_cached(state, key, max_s).await?;
    let analysis = tokio::task::spawn_blocking(move || voicewall_audio::analyse(&decoded))
        .await
        .map_err(|e| format!("analysis crashed: {e}"))?;
    state
        .store
        .put_derived(key, ANALYSIS, &analysis)
        .map_err(|e| e.to_string())?;
    Ok(analysis)
}

/// Decode a cached blob (never the network).
pub async fn decode_cached(state: &AppState, key: &str, max_s: u64) -> Result<Decoded, String> {
    let (_, bytes) = state
        .store
        .media(key)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "media missing from the cache".to_string())?;
    tokio::task::spawn_blocking(move || voicewall_audio::decode_limited(&bytes, max_s))
        .await
        .map_err(|e| format!("decoder crashed: {e}"))?
        .map_err(|e| e.to_string())
}
