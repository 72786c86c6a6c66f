//! Test doubles for the unit tests next to the code: a fake platform behind `WallProvider`, a store in
//! a temporary directory (real sled files), the audio fixtures, and the handles wired around them.

use crate::board::Board;
use crate::clock::Clock;
use crate::config::WallConfig;
use crate::domain::{FetchedProfile, Message, MessageKind, MessageStatus, Provider};
use crate::events::{Hub, WallEvent};
use crate::media::Media;
use crate::provider::{FetchError, Fetched, JoinInfo, WallProvider};
use crate::store::Store;
use crate::walls::{Wall, Walls};
use async_trait::async_trait;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast;

/// The wall every fake is on.
pub const WALL: &str = "main";

/// An audio fixture from the repo's `tests/fixtures/audio`.
pub fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/fixtures/audio")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A platform that serves one media file, failing (retryably) the first `fail_first` fetches, or for
/// ever when `permanent`; counts its fetches.
pub struct FakePlatform {
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub fail_first: u32,
    pub permanent: bool,
    pub fetches: AtomicU32,
    /// When set, each fetch signals `.0` when it starts and then waits for `.1` before it answers.
    pub hold: Option<(Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>)>,
}

impl FakePlatform {
    pub fn serving(bytes: Vec<u8>, content_type: &str) -> Self {
        Self {
            bytes,
            content_type: content_type.into(),
            fail_first: 0,
            permanent: false,
            fetches: AtomicU32::new(0),
            hold: None,
        }
    }
}

#[async_trait]
impl WallProvider for FakePlatform {
    fn kind(&self) -> Provider {
        crate::providers::telegram::PROVIDER
    }

    async fn fetch_media(&self, media: &str, _kind: MessageKind) -> Result<Fetched, FetchError> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some((started, release)) = &self.hold {
            started.notify_one();
            release.notified().await;
        }
        if self.permanent {
            return Err(FetchError::permanent(format!("no media {media}")));
        }
        if n <= self.fail_first {
            return Err(FetchError::retryable("platform busy"));
        }
        Ok(Fetched::Bytes {
            bytes: self.bytes.clone(),
            content_type: self.content_type.clone(),
        })
    }

    async fn fetch_profile(&self, _sender: &str) -> Result<Option<FetchedProfile>, FetchError> {
        Ok(None)
    }

    fn join_info(&self) -> JoinInfo {
        JoinInfo {
            url: "https://fake.example/join/main".into(),
            instructions: "scan".into(),
        }
    }

    async fn join(&self, _request: Request) -> Response {
        (
            StatusCode::FOUND,
            [(header::LOCATION, "https://fake.example/consent")],
        )
            .into_response()
    }

    fn routes(self: Arc<Self>) -> Router {
        Router::new().route(
            &format!("/webhook/fake/{WALL}"),
            get(|| async { "fake ok" }),
        )
    }
}

/// Handles over a store in a temporary directory, with one wall on `platform`.
pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub store: Store,
    pub hub: Hub,
    pub board: Board,
    pub media: Media,
    pub walls: Walls,
    pub platform: Arc<FakePlatform>,
}

impl Fixture {
    pub fn new(platform: FakePlatform) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let hub = Hub::new([WALL]);
        let board = Board::new(store.clone(), hub.clone(), Clock::manual(1_000_000));
        let media = Media::new(store.clone(), 60);
        let platform = Arc::new(platform);
        let walls = Walls::new(vec![Wall {
            config: WallConfig {
                title: "Test".into(),
                locale: "en".into(),
                ..WallConfig::with_id(WALL)
            },
            provider: platform.clone(),
        }]);
        Self {
            _dir: dir,
            store,
            hub,
            board,
            media,
            walls,
            platform,
        }
    }

    pub fn events(&self) -> broadcast::Receiver<WallEvent> {
        self.hub.subscribe(WALL).expect("wall channel")
    }
}

/// Every event already published, in order.
pub fn drain(rx: &mut broadcast::Receiver<WallEvent>) -> Vec<WallEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// A ready voice message of `telegram:u1`, never played.
pub fn ready_voice(id: &str, media: Option<crate::domain::MediaKey>) -> Message {
    Message {
        id: id.into(),
        participant_id: "telegram:u1".into(),
        kind: MessageKind::Voice,
        status: MessageStatus::Ready,
        error: None,
        duration_ms: None,
        received_at: 1,
        played_count: 0,
        transcript: None,
        media,
        waveform: Vec::new(),
        text: None,
        attempts: 0,
        moderation: crate::domain::Moderation::Approved,
    }
}
