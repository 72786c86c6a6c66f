//! The board: what a wall shows — its participants and their messages — saved in the store and
//! announced on the wall's event channel in one step, so the two never disagree. Providers, the
//! pipeline and the player change the wall through this handle.
//!
//! The operator's side lives here too: a wall's runtime settings (moderation mode, QR shown, cleared,
//! idle loop), each message's moderation, bans. The wall (its state and its events) only ever sees
//! approved messages of unbanned participants sent after the last clear (`Board::shows`); the
//! operator's console sees everything, on its own channel (`AdminEvent`).

use crate::clock::Clock;
use crate::domain::{
    AdminMessage, FetchedProfile, MediaKey, Message, Moderation, ModerationMode, Override,
    Participant, Provider, WallSettings,
};
use crate::events::{AdminEvent, Hub, WallEvent};
use crate::store::{ParticipantCursor, Profile, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Cheap to clone.
#[derive(Clone)]
pub struct Board {
    store: Store,
    events: Hub,
    clock: Clock,
    /// Each wall's settings until the operator changes them (from the config).
    defaults: Arc<HashMap<String, WallSettings>>,
}

/// If the operator's override of a key was made against another config value than the config has now,
/// drop it: the key takes the config's value. Returns what happened (for the log and the audit).
fn config_wins<T: Copy + PartialEq + std::fmt::Debug>(
    over: &mut Option<Override<T>>,
    value: &mut T,
    config: T,
) -> Option<String> {
    let was = over.filter(|o| o.config != config)?;
    let detail = format!(
        "config {:?} -> {:?} (operator's {:?} dropped)",
        was.config, config, value
    );
    *value = config;
    *over = None;
    Some(detail)
}

/// What the wall shows now: its visible participants and messages (oldest first).
#[derive(Clone, Debug, Default)]
pub struct WallView {
    pub settings: WallSettings,
    pub participants: Vec<Participant>,
    pub messages: Vec<Message>,
}

impl Board {
    pub fn new(store: Store, events: Hub, clock: Clock) -> Self {
        Self {
            store,
            events,
            clock,
            defaults: Arc::default(),
        }
    }

    /// Each wall's settings before the operator changes them (`moderation`, `idle_loop_s` of `[[walls]]`).
    pub fn with_defaults(
        mut self,
        defaults: impl IntoIterator<Item = (String, WallSettings)>,
    ) -> Self {
        self.defaults = Arc::new(defaults.into_iter().collect());
        self
    }

    // ------------------------------------------------------------------ settings

    /// A wall's settings: the stored ones, with the config's `moderation` / `idle_loop_s` where the
    /// operator never changed them.
    pub fn settings(&self, wall: &str) -> Result<WallSettings, StoreError> {
        let config = self.config_settings(wall);
        Ok(match self.store.wall_settings::<WallSettings>(wall)? {
            // an older record (before `follow_config` saw it): as stored
            Some(s) if !s.overrides_recorded => s,
            Some(mut s) => {
                if s.moderation_over.is_none() {
                    s.moderation = config.moderation;
                }
                if s.idle_loop_over.is_none() {
                    s.idle_loop_s = config.idle_loop_s;
                }
                s
            }
            None => config,
        })
    }

    fn config_settings(&self, wall: &str) -> WallSettings {
        self.defaults.get(wall).cloned().unwrap_or_default()
    }

    /// At start: an operator's change of `moderation` or `idle_loop_s` made against a config value the
    /// config no longer has is dropped — the config was edited since, and wins. Returns what was dropped
    /// as (wall, key, detail) for the caller to log and audit.
    pub fn follow_config(&self) -> Result<Vec<(String, &'static str, String)>, StoreError> {
        let mut dropped = Vec::new();
        let mut walls: Vec<&String> = self.defaults.keys().collect();
        walls.sort();
        for wall in walls {
            let Some(mut s) = self.store.wall_settings::<WallSettings>(wall)? else {
                continue;
            };
            let config = self.config_settings(wall);
            let mut changed = false;
            if !s.overrides_recorded {
                // An older record: a value that differs from the config is the operator's, made
                // against the config as it is now.
                if s.moderation != config.moderation {
                    s.moderation_over = Some(Override {
                        config: config.moderation,
                    });
                }
                if s.idle_loop_s != config.idle_loop_s {
                    s.idle_loop_over = Some(Override {
                        config: config.idle_loop_s,
                    });
                }
                s.overrides_recorded = true;
                changed = true;
            }
            for (key, detail) in [
                (
                    "moderation",
                    config_wins(&mut s.moderation_over, &mut s.moderation, config.moderation),
                ),
                (
                    "idle_loop_s",
                    config_wins(
                        &mut s.idle_loop_over,
                        &mut s.idle_loop_s,
                        config.idle_loop_s,
                    ),
                ),
            ] {
                if let Some(detail) = detail {
                    dropped.push((wall.clone(), key, detail));
                    changed = true;
                }
            }
            if changed {
                self.store.put_wall_settings(wall, &s)?;
            }
        }
        Ok(dropped)
    }

    /// Change a wall's settings and keep them.
    pub fn update_settings(
        &self,
        wall: &str,
        f: impl FnOnce(&mut WallSettings),
    ) -> Result<WallSettings, StoreError> {
        let mut s = self.settings(wall)?;
        f(&mut s);
        s.overrides_recorded = true;
        self.store.put_wall_settings(wall, &s)?;
        Ok(s)
    }

    /// How a new message on this wall starts: held (`pre`) or shown (`post`).
    pub fn initial_moderation(&self, wall: &str) -> Result<Moderation, StoreError> {
        Ok(match self.settings(wall)?.moderation {
            ModerationMode::Pre => Moderation::Pending,
            ModerationMode::Post => Moderation::Approved,
        })
    }

    pub fn set_mode(&self, wall: &str, mode: ModerationMode) -> Result<WallSettings, StoreError> {
        let config = self.config_settings(wall).moderation;
        self.update_settings(wall, |s| {
            s.moderation = mode;
            s.moderation_over = Some(Override { config });
        })
    }

    pub fn set_qr_visible(&self, wall: &str, visible: bool) -> Result<WallSettings, StoreError> {
        let s = self.update_settings(wall, |s| s.qr_visible = visible)?;
        self.changed(wall, "qr");
        Ok(s)
    }

    pub fn set_idle_loop(
        &self,
        wall: &str,
        seconds: Option<u64>,
    ) -> Result<WallSettings, StoreError> {
        let config = self.config_settings(wall).idle_loop_s;
        self.update_settings(wall, |s| {
            s.idle_loop_s = seconds;
            s.idle_loop_over = Some(Override { config });
        })
    }

    /// Hide everything the wall shows now (the store keeps it): messages so far, and participants who
    /// joined before and say nothing new.
    pub fn clear(&self, wall: &str) -> Result<WallSettings, StoreError> {
        let through = self.store.sequence_now()?;
        let at = self.clock.now_ms();
        let s = self.update_settings(wall, |s| {
            s.cleared_through = through;
            s.cleared_at = at;
        })?;
        self.changed(wall, "cleared");
        Ok(s)
    }

    fn changed(&self, wall: &str, reason: &str) {
        self.events.publish(
            wall,
            WallEvent::WallChanged {
                reason: reason.into(),
            },
        );
    }

    // ------------------------------------------------------------------ what the wall shows

    /// Whether the wall shows this message, given the wall's settings and bans.
    pub fn shows(settings: &WallSettings, banned: &HashSet<String>, m: &Message) -> bool {
        m.moderation == Moderation::Approved
            && !banned.contains(&m.participant_id)
            && (settings.cleared_through == 0
                || m.id.parse::<u64>().unwrap_or(0) > settings.cleared_through)
    }

    fn shows_now(&self, wall: &str, m: &Message) -> Result<bool, StoreError> {
        let settings = self.settings(wall)?;
        let banned = self.banned_set(wall, &m.participant_id)?;
        Ok(Self::shows(&settings, &banned, m))
    }

    /// The one participant's ban as a set (what `shows` takes).
    fn banned_set(&self, wall: &str, participant: &str) -> Result<HashSet<String>, StoreError> {
        Ok(if self.store.is_banned(wall, participant)? {
            HashSet::from([participant.to_string()])
        } else {
            HashSet::new()
        })
    }

    /// What the wall shows now.
    pub fn view(&self, wall: &str) -> Result<WallView, StoreError> {
        let settings = self.settings(wall)?;
        let banned = self.store.banned(wall)?;
        let messages: Vec<Message> = self
            .store
            .messages(wall)?
            .into_iter()
            .filter(|m| Self::shows(&settings, &banned, m))
            .collect();
        let speaking: HashSet<&str> = messages.iter().map(|m| m.participant_id.as_str()).collect();
        let participants = self
            .store
            .participants(wall)?
            .into_iter()
            .filter(|p| {
                !banned.contains(&p.id)
                    && (p.joined_at > settings.cleared_at
                        || settings.cleared_at == 0
                        || speaking.contains(p.id.as_str()))
            })
            .collect();
        Ok(WallView {
            settings,
            participants,
            messages,
        })
    }

    /// The newest messages the wall shows, newest first, older than message `before` (a sequence), at
    /// most `limit`, with the next older page's cursor: the compact wall state and its paging read the
    /// wall from its end and stop there.
    pub fn recent_messages(
        &self,
        wall: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<Message>, Option<String>), StoreError> {
        let settings = self.settings(wall)?;
        let banned = self.store.banned(wall)?;
        self.store
            .messages_newest(wall, before, limit, |m| Self::shows(&settings, &banned, m))
    }

    /// The participants the wall shows, newest first (by join time), older than `before`, at most
    /// `limit`, with the next older page's cursor. After a clear, someone who joined before it is shown
    /// only with a message the wall shows (their own messages, through the per-participant index).
    pub fn recent_participants(
        &self,
        wall: &str,
        before: Option<&ParticipantCursor>,
        limit: usize,
    ) -> Result<(Vec<Participant>, Option<ParticipantCursor>), StoreError> {
        let settings = self.settings(wall)?;
        let banned = self.store.banned(wall)?;
        let store = &self.store;
        self.store.participants_newest(wall, before, limit, |p| {
            !banned.contains(&p.id)
                && (settings.cleared_at == 0
                    || p.joined_at > settings.cleared_at
                    || store.messages_of(wall, &p.id).is_ok_and(|theirs| {
                        theirs.iter().any(|m| Self::shows(&settings, &banned, m))
                    }))
        })
    }

    /// A message the wall shows, by id (None when it does not, or does not exist).
    pub fn shown_message(&self, wall: &str, id: &str) -> Result<Option<Message>, StoreError> {
        let Some(m) = self.store.message(wall, id)? else {
            return Ok(None);
        };
        Ok(self.shows_now(wall, &m)?.then_some(m))
    }

    /// One participant's messages, oldest first (the per-participant index: no scan of the wall).
    pub fn messages_of(&self, wall: &str, participant: &str) -> Result<Vec<Message>, StoreError> {
        self.store.messages_of(wall, participant)
    }

    // ------------------------------------------------------------------ the operator's view

    pub fn is_banned(&self, wall: &str, participant: &str) -> Result<bool, StoreError> {
        self.store.is_banned(wall, participant)
    }

    /// A message as the console lists it.
    pub fn admin_message(&self, wall: &str, m: &Message) -> Result<AdminMessage, StoreError> {
        let p = self.store.participant(wall, &m.participant_id)?;
        let banned = self.store.is_banned(wall, &m.participant_id)?;
        Ok(to_admin(m, p.as_ref(), banned))
    }

    /// Every message of a wall as the console lists it, oldest first.
    pub fn admin_messages(&self, wall: &str) -> Result<Vec<AdminMessage>, StoreError> {
        let people: HashMap<String, Participant> = self
            .store
            .participants(wall)?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let banned = self.store.banned(wall)?;
        Ok(self
            .store
            .messages(wall)?
            .iter()
            .map(|m| {
                to_admin(
                    m,
                    people.get(&m.participant_id),
                    banned.contains(&m.participant_id),
                )
            })
            .collect())
    }

    fn tell_operator(&self, wall: &str, m: &Message) {
        match self.admin_message(wall, m) {
            Ok(message) => self.events.publish_admin(AdminEvent::Message {
                wall: wall.into(),
                message,
            }),
            Err(e) => tracing::warn!(wall, error = %e, "cannot tell the console about a message"),
        }
    }

    // ------------------------------------------------------------------ moderation and bans

    /// Set a message's moderation. Approving shows it on the wall (`message_added`); taking a shown
    /// message off (reject, remove) tells the wall to rebuild (`wall_changed`). The caller queues or
    /// unqueues it for the speakers. Returns the message before and after; `None` when there is none.
    pub fn moderate(
        &self,
        wall: &str,
        id: &str,
        to: Moderation,
    ) -> Result<Option<(Message, Message)>, StoreError> {
        let Some(before) = self.store.message(wall, id)? else {
            return Ok(None);
        };
        let shown_before = self.shows_now(wall, &before)?;
        let Some(after) = self.store.update_message(wall, id, |m| m.moderation = to)? else {
            return Ok(None);
        };
        let shown_after = self.shows_now(wall, &after)?;
        if shown_after && !shown_before {
            self.announce_speaker(wall, &after)?;
            self.events.publish(
                wall,
                WallEvent::MessageAdded {
                    message: after.clone(),
                },
            );
        } else if shown_before && !shown_after {
            self.changed(wall, "removed");
        }
        self.tell_operator(wall, &after);
        Ok(Some((before, after)))
    }

    /// A participant hidden by a clear whose message now shows comes back on the wall first.
    fn announce_speaker(&self, wall: &str, m: &Message) -> Result<(), StoreError> {
        let settings = self.settings(wall)?;
        if settings.cleared_at == 0 {
            return Ok(());
        }
        if let Some(p) = self.store.participant(wall, &m.participant_id)? {
            if p.joined_at <= settings.cleared_at {
                self.events
                    .publish(wall, WallEvent::ParticipantJoined { participant: p });
            }
        }
        Ok(())
    }

    /// Ban (hide the person and all their messages from the wall; their new messages are refused by
    /// the providers) or unban. Returns the participant's messages (the caller unqueues them).
    pub fn set_banned(
        &self,
        wall: &str,
        participant: &str,
        banned: bool,
    ) -> Result<Vec<Message>, StoreError> {
        self.store.set_banned(wall, participant, banned)?;
        let theirs = self.store.messages_of(wall, participant)?;
        self.changed(wall, if banned { "banned" } else { "unbanned" });
        for m in &theirs {
            self.tell_operator(wall, m);
        }
        Ok(theirs)
    }

    pub fn participant(&self, wall: &str, id: &str) -> Result<Option<Participant>, StoreError> {
        self.store.participant(wall, id)
    }

    /// Save a participant and tell the wall (`participant_joined` when `new`, else
    /// `participant_updated`) unless they are banned.
    pub fn save_participant(
        &self,
        wall: &str,
        p: &Participant,
        new: bool,
    ) -> Result<(), StoreError> {
        self.store.put_participant(wall, p)?;
        if self.store.is_banned(wall, &p.id)? {
            return Ok(());
        }
        let participant = p.clone();
        self.events.publish(
            wall,
            if new {
                WallEvent::ParticipantJoined { participant }
            } else {
                WallEvent::ParticipantUpdated { participant }
            },
        );
        Ok(())
    }

    /// Save a message and tell the console, and the wall when it shows it (`message_added` when `new`,
    /// else `message_updated`).
    pub fn save_message(&self, wall: &str, m: &Message, new: bool) -> Result<(), StoreError> {
        self.store.put_message(wall, m)?;
        if self.shows_now(wall, m)? {
            if new {
                self.announce_speaker(wall, m)?;
            }
            let message = m.clone();
            self.events.publish(
                wall,
                if new {
                    WallEvent::MessageAdded { message }
                } else {
                    WallEvent::MessageUpdated { message }
                },
            );
        }
        self.tell_operator(wall, m);
        Ok(())
    }

    /// Change a stored message in place and tell the console, and the wall when it shows it; `None`
    /// when there is no such message.
    pub fn update_message(
        &self,
        wall: &str,
        id: &str,
        f: impl Fn(&mut Message),
    ) -> Result<Option<Message>, StoreError> {
        let updated = self.store.update_message(wall, id, f)?;
        if let Some(m) = &updated {
            self.announce_updated(wall, m)?;
        }
        Ok(updated)
    }

    /// Tell the console, and the wall when it shows it, that a stored message changed
    /// (`message_updated`). The pipeline calls it after the change is durable: what the wall shows as
    /// ready survives a crash.
    pub fn announce_updated(&self, wall: &str, m: &Message) -> Result<(), StoreError> {
        if self.shows_now(wall, m)? {
            self.events
                .publish(wall, WallEvent::MessageUpdated { message: m.clone() });
        }
        self.tell_operator(wall, m);
        Ok(())
    }

    /// Count one playback of a message and make the count durable before returning (one flush per
    /// playback, seconds apart): a voice played before a crash is not played again as new after it.
    pub fn count_playback(&self, wall: &str, id: &str) -> Result<Option<Message>, StoreError> {
        let updated = self
            .store
            .update_message(wall, id, |m| m.played_count += 1)?;
        self.store.flush()?;
        if let Some(m) = &updated {
            self.announce_updated(wall, m)?;
        }
        Ok(updated)
    }

    /// A participant record for someone whose profile is known at join time (the web join page).
    pub fn new_participant(
        &self,
        provider: Provider,
        sender: &str,
        name: &str,
        avatar: MediaKey,
        thumb: Option<MediaKey>,
    ) -> Participant {
        let id = participant_id(provider, sender);
        Participant {
            person_id: id.clone(),
            id,
            display_name: name.to_string(),
            avatar,
            thumb,
            provider,
            joined_at: self.clock.now_ms(),
            has_profile: true,
        }
    }

    /// Store a fetched profile by sender id (its photo normalised into the media cache at both sizes:
    /// `crate::avatar`; one that does not decode leaves the placeholder), and apply it to the wall's
    /// participant if there is one.
    pub async fn store_profile(
        &self,
        wall: &str,
        provider: Provider,
        sender: &str,
        fetched: FetchedProfile,
    ) -> Result<Profile, StoreError> {
        let keys = match fetched.avatar {
            Some((bytes, _)) => match self.stored_photo(provider, sender, &bytes)? {
                Some(keys) => Some(keys),
                None => crate::avatar::cache_platform_photo(&self.store, bytes).await?,
            },
            None => None,
        };
        let (avatar, thumb) = keys.map_or((None, None), |k| (Some(k.avatar), Some(k.thumb)));
        let profile = Profile {
            nickname: fetched.nickname,
            avatar,
            thumb,
            unionid: fetched.unionid,
            fetched_at: self.clock.now_ms(),
        };
        self.store.put_profile(provider, sender, &profile)?;
        if let Some(mut p) = self
            .store
            .participant(wall, &participant_id(provider, sender))?
        {
            apply_profile(&mut p, &profile);
            self.save_participant(wall, &p, false)?;
        }
        Ok(profile)
    }

    /// The sender's stored avatar and thumbnail when `bytes` are that avatar (WeChat hands back the
    /// photo its OAuth join stored): kept as they are, not decoded and re-encoded under new keys.
    fn stored_photo(
        &self,
        provider: Provider,
        sender: &str,
        bytes: &[u8],
    ) -> Result<Option<crate::avatar::AvatarKeys>, StoreError> {
        let Some(stored) = self.store.profile(provider, sender)? else {
            return Ok(None);
        };
        Ok(match (stored.avatar, stored.thumb) {
            (Some(avatar), Some(thumb)) if avatar == MediaKey::of(bytes) => {
                Some(crate::avatar::AvatarKeys { avatar, thumb })
            }
            _ => None,
        })
    }
}

fn to_admin(m: &Message, p: Option<&Participant>, banned: bool) -> AdminMessage {
    AdminMessage {
        id: m.id.clone(),
        participant_id: m.participant_id.clone(),
        name: p.map(|p| p.display_name.clone()).unwrap_or_default(),
        avatar: p.map(|p| p.avatar.clone()),
        thumb: p.and_then(|p| p.thumb.clone()),
        provider: p.map(|p| p.provider),
        kind: m.kind,
        duration_ms: m.duration_ms,
        transcript: m.transcript.clone(),
        text: m.text.clone(),
        status: m.status,
        failure: m.error.clone(),
        moderation: m.moderation,
        banned,
        created_at: m.received_at,
        media: m.media.clone(),
        played_count: m.played_count,
    }
}

/// `{provider}:{sender}`: one person on one platform account.
pub fn participant_id(provider: Provider, sender: &str) -> String {
    format!("{}:{sender}", provider.as_str())
}

/// Give a participant the name, picture and cross-account identity of a stored profile.
pub fn apply_profile(p: &mut Participant, profile: &Profile) {
    if !profile.nickname.trim().is_empty() {
        p.display_name = profile.nickname.clone();
    }
    if let Some(key) = &profile.avatar {
        p.avatar = key.clone();
        p.thumb = profile.thumb.clone();
    }
    if let Some(u) = &profile.unionid {
        p.person_id = format!("{}:union:{u}", p.provider.as_str());
    }
    p.has_profile = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{drain, ready_voice, FakePlatform, Fixture, WALL};

    /// WeChat hands back the avatar its OAuth join stored: the same keys, not a re-encode under new
    /// ones (which would leave the first pair named by nothing).
    #[tokio::test]
    async fn a_stored_avatar_handed_back_keeps_its_keys() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        // A detailed photo: a JPEG of it does not survive another decode and encode unchanged.
        let img = image::RgbImage::from_fn(400, 300, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (x * y % 251) as u8,
                (y * 13 % 256) as u8,
            ])
        });
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let provider = crate::providers::wechat::PROVIDER;
        let fetched = |bytes: Vec<u8>| FetchedProfile {
            nickname: "Ann".into(),
            avatar: Some((bytes, "image/png".into())),
            unionid: None,
        };
        let first = fx
            .board
            .store_profile(WALL, provider, "o1", fetched(png))
            .await
            .unwrap();
        let avatar = first.avatar.clone().unwrap();
        let (_, stored) = fx.store.media(avatar.as_str()).unwrap().unwrap();
        let again = fx
            .board
            .store_profile(WALL, provider, "o1", fetched(stored.to_vec()))
            .await
            .unwrap();
        assert_eq!((again.avatar, again.thumb), (Some(avatar), first.thumb));
    }

    #[test]
    fn removing_a_shown_message_tells_the_wall_to_rebuild_and_hides_it() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        fx.board
            .save_message(WALL, &ready_voice("5", None), true)
            .unwrap();
        let mut events = fx.events();
        let (before, after) = fx
            .board
            .moderate(WALL, "5", Moderation::Removed)
            .unwrap()
            .unwrap();
        assert_eq!(
            (before.moderation, after.moderation),
            (Moderation::Approved, Moderation::Removed)
        );
        assert!(matches!(
            drain(&mut events).as_slice(),
            [WallEvent::WallChanged { reason }] if reason == "removed"
        ));
        assert!(fx.board.view(WALL).unwrap().messages.is_empty());
        assert_eq!(
            fx.board.admin_messages(WALL).unwrap()[0].moderation,
            Moderation::Removed
        );
        // Removing it again changes nothing on the wall.
        fx.board.moderate(WALL, "5", Moderation::Removed).unwrap();
        assert!(drain(&mut events).is_empty());
        assert_eq!(
            fx.board.moderate(WALL, "6", Moderation::Approved).unwrap(),
            None
        );
    }

    #[test]
    fn settings_start_from_the_config_and_are_kept() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        let board = fx.board.clone().with_defaults([(
            WALL.to_string(),
            WallSettings {
                moderation: ModerationMode::Pre,
                ..Default::default()
            },
        )]);
        assert_eq!(board.initial_moderation(WALL).unwrap(), Moderation::Pending);
        assert!(board.settings(WALL).unwrap().qr_visible);
        board.set_qr_visible(WALL, false).unwrap();
        board.set_mode(WALL, ModerationMode::Post).unwrap();
        let s = board.settings(WALL).unwrap();
        assert_eq!((s.qr_visible, s.moderation), (false, ModerationMode::Post));
        // Old stored messages (no moderation field) were shown: approved.
        let old = r#"{"id":"1","participant_id":"p","kind":"voice","status":"ready","error":null,"duration_ms":null,"received_at":1,"played_count":0,"transcript":null}"#;
        let m: Message = serde_json::from_str(old).unwrap();
        assert_eq!(m.moderation, Moderation::Approved);
    }

    #[test]
    fn a_corrupt_message_record_leaves_the_rest_of_the_wall_showing() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        fx.board
            .save_message(WALL, &ready_voice("5", None), true)
            .unwrap();
        // Message 6's record, as a torn write or an old bug would leave it.
        let mut key = WALL.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(&6u64.to_be_bytes());
        fx.store.insert_raw("messages", &key, b"{\"id\":\"6\",");
        let view = fx.board.view(WALL).expect("the wall still reads");
        assert_eq!(view.messages.len(), 1);
        assert_eq!(fx.board.admin_messages(WALL).unwrap().len(), 1);
    }

    #[test]
    fn an_older_settings_record_keeps_the_operators_values_until_the_config_changes() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        let config = |moderation, idle_loop_s| {
            fx.board.clone().with_defaults([(
                WALL.to_string(),
                WallSettings {
                    moderation,
                    idle_loop_s,
                    ..Default::default()
                },
            )])
        };
        // Stored before overrides were recorded: the operator had switched to pre and a 30 s loop.
        let old = serde_json::json!({"moderation": "pre", "qr_visible": true, "idle_loop_s": 30});
        fx.store.put_wall_settings(WALL, &old).unwrap();
        let board = config(ModerationMode::Post, None);
        assert!(board.follow_config().unwrap().is_empty(), "nothing dropped");
        let s = board.settings(WALL).unwrap();
        assert_eq!(
            (s.moderation, s.idle_loop_s),
            (ModerationMode::Pre, Some(30))
        );
        assert!(s.overrides_recorded);
        // The config then changes the loop: the config wins for that key only.
        let board = config(ModerationMode::Post, Some(60));
        let dropped = board.follow_config().unwrap();
        assert_eq!(dropped.len(), 1, "{dropped:?}");
        assert_eq!(dropped[0].1, "idle_loop_s");
        let s = board.settings(WALL).unwrap();
        assert_eq!(
            (s.moderation, s.idle_loop_s),
            (ModerationMode::Pre, Some(60))
        );
    }
}
