//! The board: what a wall shows — its participants and their messages — saved in the store and
//! announced on the wall's event channel in one step, so the two never disagree. Providers, the
//! pipeline and the player change the wall through this handle.

use crate::clock::Clock;
use crate::domain::{FetchedProfile, MediaKey, Message, Participant, Provider};
use crate::events::{Hub, WallEvent};
use crate::store::{Profile, Store, StoreError};

/// Cheap to clone.
#[derive(Clone)]
pub struct Board {
    store: Store,
    events: Hub,
    clock: Clock,
}

impl Board {
    pub fn new(store: Store, events: Hub, clock: Clock) -> Self {
        Self {
            store,
            events,
            clock,
        }
    }

    pub fn participant(&self, wall: &str, id: &str) -> Result<Option<Participant>, StoreError> {
        self.store.participant(wall, id)
    }

    /// Save a participant and tell the wall (`participant_joined` when `new`, else `participant_updated`).
    pub fn save_participant(
        &self,
        wall: &str,
        p: &Participant,
        new: bool,
    ) -> Result<(), StoreError> {
        self.store.put_participant(wall, p)?;
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

    /// Save a message and tell the wall (`message_added` when `new`, else `message_updated`).
    pub fn save_message(&self, wall: &str, m: &Message, new: bool) -> Result<(), StoreError> {
        self.store.put_message(wall, m)?;
        let message = m.clone();
        self.events.publish(
            wall,
            if new {
                WallEvent::MessageAdded { message }
            } else {
                WallEvent::MessageUpdated { message }
            },
        );
        Ok(())
    }

    /// Change a stored message in place and tell the wall; `None` when there is no such message.
    pub fn update_message(
        &self,
        wall: &str,
        id: &str,
        f: impl Fn(&mut Message),
    ) -> Result<Option<Message>, StoreError> {
        let updated = self.store.update_message(wall, id, f)?;
        if let Some(m) = &updated {
            self.events
                .publish(wall, WallEvent::MessageUpdated { message: m.clone() });
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
    ) -> Participant {
        let id = participant_id(provider, sender);
        Participant {
            person_id: id.clone(),
            id,
            display_name: name.to_string(),
            avatar,
            provider,
            joined_at: self.clock.now_ms(),
            has_profile: true,
        }
    }

    /// Store a fetched profile (avatar into the media cache) by sender id, and apply it to the wall's
    /// participant if there is one.
    pub fn store_profile(
        &self,
        wall: &str,
        provider: Provider,
        sender: &str,
        fetched: FetchedProfile,
    ) -> Result<Profile, StoreError> {
        let avatar = match fetched.avatar {
            Some((bytes, ct)) => Some(self.store.put_media(&bytes, &ct)?),
            None => None,
        };
        let profile = Profile {
            nickname: fetched.nickname,
            avatar,
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
    }
    if let Some(u) = &profile.unionid {
        p.person_id = format!("{}:union:{u}", p.provider.as_str());
    }
    p.has_profile = true;
}
