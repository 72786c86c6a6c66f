//! The retention sweeper: started with the app, it sweeps every wall at start and then every
//! `EVERY`, deleting what is older than the wall's `retention_days` (see `erase::Eraser::sweep`). The
//! cutoff comes from the injected `Clock`, so a test moves a manual clock and calls `sweep`.

use super::erase::{Erased, Eraser};
use crate::clock::Clock;
use crate::config::WallConfig;
use crate::store::StoreError;
use std::time::Duration;

/// How often the sweeper runs.
pub const EVERY: Duration = Duration::from_secs(60 * 60);

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Each wall's retention, and the eraser. Cheap to clone.
#[derive(Clone)]
pub struct Retention {
    eraser: Eraser,
    /// (wall id, retention in days), in config order.
    walls: Vec<(String, u32)>,
    clock: Clock,
}

impl Retention {
    pub fn new<'a>(
        eraser: Eraser,
        walls: impl IntoIterator<Item = &'a WallConfig>,
        clock: Clock,
    ) -> Self {
        Self {
            eraser,
            walls: walls
                .into_iter()
                .map(|w| (w.id.clone(), w.retention_days))
                .collect(),
            clock,
        }
    }

    /// Sweep every wall once, now (by the clock); returns what each wall lost.
    pub fn sweep(&self) -> Result<Vec<(String, Erased)>, StoreError> {
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        for (wall, days) in &self.walls {
            let cutoff = now.saturating_sub(u64::from(*days) * DAY_MS);
            let erased = self.eraser.sweep(wall, cutoff)?;
            if !erased.is_empty() {
                tracing::info!(
                    wall = %wall,
                    retention_days = days,
                    messages = erased.messages,
                    participants = erased.participants,
                    profiles = erased.profiles,
                    media = erased.media,
                    "retention: deleted what was older than the wall keeps"
                );
            }
            out.push((wall.clone(), erased));
        }
        Ok(out)
    }

    /// Sweep at start and then every `EVERY`, until the app stops (the task is aborted).
    pub async fn run(self) {
        loop {
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.sweep()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "retention sweep failed; retrying later"),
                Err(e) => tracing::error!(error = %e, "retention sweep crashed; retrying later"),
            }
            tokio::time::sleep(EVERY).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Inbound, InboundKind, MediaKey, Message, Participant};
    use crate::events::{Hub, WallEvent};
    use crate::media::Media;
    use crate::store::{Profile, Store};

    fn wall(id: &str, retention_days: u32) -> WallConfig {
        let mut w = crate::config::Config::builtin().walls.remove(0);
        w.id = id.into();
        w.retention_days = retention_days;
        w
    }

    fn message_ids(store: &Store, wall: &str) -> Vec<String> {
        store
            .messages(wall)
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect()
    }

    fn key(k: &str) -> MediaKey {
        MediaKey::parse(k).unwrap()
    }

    fn person(id: &str, joined_day: u64, avatar: &str) -> Participant {
        Participant {
            id: id.into(),
            person_id: id.into(),
            display_name: id.into(),
            avatar: key(avatar),
            thumb: None,
            provider: crate::providers::web::PROVIDER,
            joined_at: joined_day * DAY_MS,
            has_profile: true,
        }
    }

    fn voice(id: u64, who: &str, day: u64, blob: &str) -> Message {
        let mut m = crate::testing::ready_voice(&id.to_string(), Some(key(blob)));
        m.participant_id = who.into();
        m.received_at = day * DAY_MS;
        m
    }

    fn push(wall: &str, key: &str) -> Inbound {
        Inbound {
            wall: wall.into(),
            provider: crate::providers::web::PROVIDER,
            sender: "s".into(),
            kind: InboundKind::Join,
            pushed_at: 0,
            received_at: 0,
            dedup_key: key.into(),
        }
    }

    /// Main keeps 30 days, other 60; the clock stands at day 100. What is older goes, with its media and
    /// derived data, and the people left with nothing; what another wall (or a newer message) still
    /// names stays.
    #[test]
    fn the_sweeper_deletes_what_is_older_than_each_walls_retention_on_the_manual_clock() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let hub = Hub::new(["main", "other"]);
        let mut events = hub.subscribe("main").unwrap();
        let media = Media::new(store.clone(), 60);
        let walls = [wall("main", 30), wall("other", 60)];
        let clock = Clock::manual(100 * DAY_MS);
        let retention = Retention::new(
            Eraser::new(store.clone(), media, hub, &walls),
            &walls,
            clock.clone(),
        );
        let put = |bytes: &[u8]| store.put_media(bytes, "audio/ogg").unwrap().to_string();
        let (old, shared, fresh, avatar_a, avatar_b) = (
            put(b"old voice"),
            put(b"shared voice"),
            put(b"fresh voice"),
            put(b"a's picture"),
            put(b"b's picture"),
        );
        store.put_derived(&old, "analysis", &42u32).unwrap();
        store.put_derived(&shared, "analysis", &43u32).unwrap();
        // Dedup records: main's push is older than its expired messages, other's is not main's.
        // Two pushes, processed (a waiting push keeps its dedup record: it is the push).
        for (wall, key) in [("main", "k-main"), ("other", "k-other")] {
            let seq = store.accept(&push(wall, key)).unwrap().seq();
            store.finish_inbox(seq, &push(wall, key)).unwrap();
        }

        store
            .put_participant("main", &person("web:a", 1, &avatar_a))
            .unwrap();
        store
            .put_participant("main", &person("web:b", 1, &avatar_b))
            .unwrap();
        store
            .put_participant("main", &person("web:d", 90, &avatar_b))
            .unwrap();
        store
            .put_participant("other", &person("web:c", 75, &avatar_b))
            .unwrap();
        store
            .put_profile(
                crate::providers::web::PROVIDER,
                "a",
                &Profile {
                    nickname: "A".into(),
                    avatar: Some(key(&avatar_a)),
                    ..Profile::default()
                },
            )
            .unwrap();
        store
            .put_message("main", &voice(1000, "web:a", 1, &old))
            .unwrap();
        store
            .put_message("main", &voice(1001, "web:b", 1, &shared))
            .unwrap();
        store
            .put_message("main", &voice(1002, "web:b", 80, &fresh))
            .unwrap();
        store
            .put_message("other", &voice(1003, "web:c", 75, &shared))
            .unwrap();

        let swept = retention.sweep().unwrap();
        assert_eq!(swept[0].0, "main");
        assert_eq!(
            (
                swept[0].1.messages,
                swept[0].1.participants,
                swept[0].1.profiles,
                swept[0].1.media
            ),
            (2, 1, 1, 2),
            "{swept:?}"
        );
        assert!(swept[1].1.is_empty(), "other keeps 60 days: {swept:?}");

        let ids = |wall: &str| message_ids(&store, wall);
        assert_eq!(ids("main"), ["1002"]);
        assert_eq!(ids("other"), ["1003"]);
        let people: Vec<String> = store
            .participants("main")
            .unwrap()
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(
            people,
            ["web:b", "web:d"],
            "a had nothing left; d joined 10 days ago"
        );
        assert!(store
            .profile(crate::providers::web::PROVIDER, "a")
            .unwrap()
            .is_none());
        assert!(store.media(&old).unwrap().is_none(), "the expired voice");
        assert!(store.derived::<u32>(&old, "analysis").unwrap().is_none());
        assert!(store.media(&avatar_a).unwrap().is_none(), "a's picture");
        assert!(
            store.media(&shared).unwrap().is_some(),
            "other wall still names it"
        );
        assert_eq!(store.derived::<u32>(&shared, "analysis").unwrap(), Some(43));
        assert!(store.media(&fresh).unwrap().is_some());
        assert!(store.media(&avatar_b).unwrap().is_some());
        let dedup: Vec<String> = store
            .dump_keys()
            .unwrap()
            .into_iter()
            .filter(|(tree, _)| tree == "dedup")
            .map(|(_, k)| String::from_utf8_lossy(&k).into_owned())
            .collect();
        assert_eq!(dedup, ["web\0other\0k-other"]);
        let left: Vec<WallEvent> = std::iter::from_fn(|| events.try_recv().ok()).collect();
        assert_eq!(
            left,
            [
                WallEvent::ParticipantLeft {
                    participant_id: "web:a".into()
                },
                WallEvent::WallChanged {
                    reason: "expired".into()
                }
            ]
        );

        // Nothing more is old enough; then the clock moves on 20 days and main's last voice goes.
        assert!(retention.sweep().unwrap().iter().all(|(_, e)| e.is_empty()));
        clock.advance(20 * DAY_MS);
        let swept = retention.sweep().unwrap();
        assert_eq!((swept[0].1.messages, swept[0].1.participants), (1, 1));
        assert!(store.messages("main").unwrap().is_empty());
        let people: Vec<String> = store
            .participants("main")
            .unwrap()
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(people, ["web:d"], "d joined exactly at the cutoff");
        assert!(store.media(&fresh).unwrap().is_none());
        assert!(
            store.media(&shared).unwrap().is_some(),
            "other (day 75) keeps 60 days"
        );
        assert!(
            store.media(&avatar_b).unwrap().is_some(),
            "d and c still show it"
        );
    }

    /// The sweep reads a wall's messages oldest first and stops at the first one it keeps: an hourly
    /// sweep does not read a whole evening's messages. A message after it stamped earlier (the clock
    /// stepped back) goes once the one before it expires; a person keeps their place while any
    /// message of theirs is left.
    #[test]
    fn the_sweep_stops_at_the_first_message_it_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let hub = Hub::new(["main"]);
        let media = Media::new(store.clone(), 60);
        let walls = [wall("main", 30)];
        let clock = Clock::manual(100 * DAY_MS);
        let retention = Retention::new(
            Eraser::new(store.clone(), media, hub, &walls),
            &walls,
            clock.clone(),
        );
        let blob = store
            .put_media(b"a voice", "audio/ogg")
            .unwrap()
            .to_string();
        let avatar = store
            .put_media(b"a picture", "image/png")
            .unwrap()
            .to_string();
        for who in ["web:a", "web:b"] {
            store
                .put_participant("main", &person(who, 1, &avatar))
                .unwrap();
        }
        // Day 1 (expired), day 80 (kept), then day 2: stamped after a clock step back.
        for (id, day) in [(1u64, 1u64), (2, 80), (3, 2)] {
            let who = if id == 2 { "web:b" } else { "web:a" };
            store
                .put_message("main", &voice(id, who, day, &blob))
                .unwrap();
        }
        let swept = retention.sweep().unwrap();
        assert_eq!(
            (swept[0].1.messages, swept[0].1.participants),
            (1, 0),
            "{swept:?}"
        );
        assert_eq!(
            message_ids(&store, "main"),
            ["2", "3"],
            "read no further than message 2"
        );
        assert!(store.has_messages("main", "web:a").unwrap());
        // Day 111: message 2 expires, and message 3 with it; both people are left with nothing.
        clock.advance(11 * DAY_MS);
        let swept = retention.sweep().unwrap();
        assert_eq!((swept[0].1.messages, swept[0].1.participants), (2, 2));
        assert!(store.messages("main").unwrap().is_empty());
        assert!(!store.has_messages("main", "web:a").unwrap());
    }
}
