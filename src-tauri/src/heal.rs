//! A kiosk that heals itself: the wall view is reloaded when its page hangs or its WebKit web process
//! dies, while the server and the player (in this process, not in the web process) carry on.
//!
//! - **Heartbeat.** [`HEARTBEAT_SCRIPT`] (injected into the wall page) changes the page title every
//!   [`BEAT_EVERY`] from the page's own main thread; the shell hears each change
//!   (`on_document_title_changed`) and [`Heartbeat::watch`] checks the time of the last one. A page whose
//!   main thread is stuck stops beating: after [`HUNG_AFTER`] the web process is terminated, which
//!   WebKit reports like a crash, and the view reloads.
//! - **Web process gone** (killed, crashed, out of memory): WebKitGTK's `web-process-terminated` signal
//!   reloads the view, which starts a new web process.
//! - **Memory:** the web context uses the document-viewer cache model (the smallest caches: the wall is one
//!   long-lived page) and features a wall never uses are off: page cache, developer extras, HTML media and
//!   Web Audio (voices play natively), media stream, MSE, WebRTC, WebGL (the wall draws with CSS and a 2D
//!   canvas).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tauri::{Runtime, WebviewWindow};

/// How often the page beats.
pub const BEAT_EVERY: Duration = Duration::from_secs(2);
/// Silence after which the page counts as hung (generous: a busy 2,000-person layout may stall a frame
/// for a while, but not for this long). Before the first beat the page gets twice as long to load.
pub const HUNG_AFTER: Duration = Duration::from_secs(30);

/// Injected into the wall page: toggles an invisible mark at the end of the title. The page sets its own
/// title too (the wall's name), which also counts as a beat.
pub const HEARTBEAT_SCRIPT: &str = r#"(function(){
  if (window.__voicewallBeat) return; window.__voicewallBeat = true;
  var n = 0;
  setInterval(function(){
    n++;
    document.title = document.title.replace(/[\u200b\u200c]$/, '') + (n % 2 ? '\u200b' : '\u200c');
  }, 2000);
})();"#;

/// When the wall page last showed a sign of life, and how often the view was healed.
#[derive(Debug)]
pub struct Heartbeat {
    last: Mutex<Option<Instant>>,
    started: Instant,
    reloads: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            last: Mutex::new(None),
            started: Instant::now(),
            reloads: AtomicU64::new(0),
        }
    }
}

impl Heartbeat {
    /// A beat (any title change of the page).
    pub fn beat(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// Is the page hung at `now`? No beat for [`HUNG_AFTER`] (or twice that before the first beat).
    pub fn is_hung(&self, now: Instant) -> bool {
        match *self.last.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(last) => now.saturating_duration_since(last) > HUNG_AFTER,
            None => now.saturating_duration_since(self.started) > 2 * HUNG_AFTER,
        }
    }

    /// One round of the watch at `now`: true when the page is hung and its web process must be restarted.
    /// The restart counts as a beat, so the next one comes only after another [`HUNG_AFTER`] of silence
    /// (not on every round while the new page loads).
    pub fn due_for_restart(&self, now: Instant) -> bool {
        if !self.is_hung(now) {
            return false;
        }
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
        true
    }

    /// Forget the last beat: after a reload the new page gets its loading time again.
    fn restart(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Check the heartbeat every few seconds for as long as the window lives; a hung page gets its web
    /// process terminated (the termination handler reloads it).
    pub fn watch<R: Runtime>(self: Arc<Self>, window: WebviewWindow<R>) {
        tauri::async_runtime::spawn(async move {
            let mut tick = tokio::time::interval(BEAT_EVERY);
            loop {
                tick.tick().await;
                if !self.due_for_restart(Instant::now()) {
                    continue;
                }
                tracing::warn!(
                    silent_s = HUNG_AFTER.as_secs(),
                    "the wall page stopped beating: restarting its web process"
                );
                if restart_web_process(&window).is_err() {
                    tracing::warn!("the wall window is gone; the heartbeat watch ends");
                    return;
                }
            }
        });
    }
}

/// Reload the view whenever its web process ends; set the memory-lean web settings.
pub fn attach<R: Runtime>(window: &WebviewWindow<R>, heartbeat: Arc<Heartbeat>) {
    #[cfg(target_os = "linux")]
    {
        let attached = window.with_webview(move |platform| {
            use webkit2gtk::{SettingsExt, WebContextExt, WebViewExt};
            let view = platform.inner();
            if let Some(context) = view.context() {
                context.set_cache_model(webkit2gtk::CacheModel::DocumentViewer);
            }
            if let Some(settings) = WebViewExt::settings(&view) {
                settings.set_enable_page_cache(false);
                settings.set_enable_developer_extras(false);
                settings.set_enable_webgl(false);
                // The wall plays voices natively (rodio); the page itself never plays media.
                settings.set_enable_media(false);
                settings.set_enable_webaudio(false);
                settings.set_enable_media_stream(false);
                settings.set_enable_mediasource(false);
                settings.set_enable_webrtc(false);
            }
            view.connect_web_process_terminated(move |view, reason| {
                let n = heartbeat.reloads.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    reason = ?reason,
                    reloads = n,
                    "the wall's web process ended: reloading the view (server and player carry on)"
                );
                heartbeat.restart();
                view.reload();
            });
        });
        if let Err(e) = attached {
            tracing::error!(error = %e, "cannot watch the wall's web process");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (window, heartbeat);
}

fn restart_web_process<R: Runtime>(window: &WebviewWindow<R>) -> tauri::Result<()> {
    #[cfg(target_os = "linux")]
    {
        window.with_webview(|platform| {
            use webkit2gtk::WebViewExt;
            platform.inner().terminate_web_process();
        })
    }
    #[cfg(not(target_os = "linux"))]
    window.reload()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hung_only_after_the_silence_and_reset_by_a_beat() {
        let hb = Heartbeat::default();
        let t0 = hb.started;
        assert!(
            !hb.is_hung(t0 + HUNG_AFTER),
            "loading time before the first beat"
        );
        assert!(hb.is_hung(t0 + 2 * HUNG_AFTER + Duration::from_secs(1)));
        hb.beat();
        let beat = hb.last.lock().unwrap().unwrap();
        assert!(!hb.is_hung(beat + HUNG_AFTER));
        assert!(hb.is_hung(beat + HUNG_AFTER + Duration::from_secs(1)));
        hb.restart();
        assert!(hb.last.lock().unwrap().is_none());
    }

    /// The watch loop's decisions over a simulated run, round by round as `watch` makes them: a page
    /// that beats every 2 s for a minute and then freezes is restarted once, within one round after
    /// HUNG_AFTER of silence; while it stays frozen, once per HUNG_AFTER, never on every round.
    #[test]
    fn the_watch_restarts_a_frozen_page_once_per_silence() {
        let hb = Heartbeat::default();
        let t0 = hb.started;
        let froze = t0 + Duration::from_secs(60);
        let mut restarts = Vec::new();
        let mut t = t0;
        while t <= t0 + Duration::from_secs(200) {
            if t <= froze {
                // The page beats between two rounds (its title changes every BEAT_EVERY).
                *hb.last.lock().unwrap() = Some(t);
            }
            if hb.due_for_restart(t) {
                restarts.push(t.duration_since(froze).as_secs());
            }
            t += BEAT_EVERY;
        }
        let first = HUNG_AFTER.as_secs();
        assert!(
            restarts
                .first()
                .is_some_and(|&s| s > first && s <= first + BEAT_EVERY.as_secs()),
            "first restart just after {first} s of silence: {restarts:?}"
        );
        assert!(
            restarts.windows(2).all(|w| w[1] - w[0] > first),
            "at most one restart per silence of {first} s: {restarts:?}"
        );
        assert_eq!(restarts.len(), 4, "{restarts:?}");
        assert!(!hb.due_for_restart(t0), "a beating page is never restarted");
    }
}
