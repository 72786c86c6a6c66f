//! The wall state, `GET /api/walls/{id}`, as types: what a wall page rebuilds itself from on (re)connect.
//! Its JSON Schema is generated from these types by a unit test and committed at
//! `tests/browser/wall-state.schema.json`; the browser tests' fake server checks its own answers against
//! that file, so the fake and the server cannot drift apart.

use crate::config::ThemeConfig;
use crate::domain::NowPlaying;
use crate::domain::{Message, Participant, Provider};
use crate::http::error::ApiError;
use crate::walls::{Wall, Walls};
use serde::Serialize;

/// A configured wall, or 404 `not_found` (every route with a wall id in its path starts here).
pub fn known_wall<'a>(walls: &'a Walls, id: &str) -> Result<&'a Wall, ApiError> {
    walls
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no wall {id:?}")))
}

/// The answer of `GET /api/walls/{id}`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WallState {
    pub id: String,
    pub title: String,
    /// `zh-CN` or `en`.
    pub locale: String,
    /// The wall's platform.
    pub provider: Provider,
    pub theme: WallTheme,
    /// True when the wall runs the labelled demo (`voicewall demo`).
    pub demo: bool,
    pub join: JoinState,
    pub participants: Vec<Participant>,
    /// Oldest first.
    pub messages: Vec<Message>,
    /// What is playing on this wall now, if anything.
    pub playback: Option<NowPlaying>,
    /// Whether the wall shows its join QR (the operator hides it, e.g. during a speech).
    pub qr_visible: bool,
}

/// How a wall looks (from the wall's `[walls.theme]` config).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WallTheme {
    pub background: String,
    pub background_image: Option<String>,
    pub accent: String,
    /// Safe margin around the whole page, in percent of the screen's shorter side.
    pub safe_margin_pct: f32,
}

impl From<&ThemeConfig> for WallTheme {
    fn from(t: &ThemeConfig) -> Self {
        Self {
            background: t.background.clone(),
            background_image: t.background_image.clone(),
            accent: t.accent.clone(),
            safe_margin_pct: t.safe_margin_pct,
        }
    }
}

/// How a phone joins the wall.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct JoinState {
    /// What the QR encodes.
    pub url: String,
    /// Instructions in the wall's locale.
    pub instructions: String,
    /// The QR image; its `v` changes with the URL, so a page reloads it only then.
    pub qr_svg_url: String,
}

impl WallState {
    /// The JSON on the wire: keys sorted at every level, as the server has always sent them.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("the wall state serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../tests/browser/wall-state.schema.json"
    );

    /// The server always sends every field (none is skipped when empty), so every field is required;
    /// and every object of the contract lists all its fields: an unknown one is drift too.
    fn closed(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                    let all: Vec<serde_json::Value> =
                        props.keys().map(|k| k.as_str().into()).collect();
                    map.insert("required".into(), all.into());
                    map.insert("additionalProperties".into(), false.into());
                }
                map.values_mut().for_each(closed);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(closed),
            _ => {}
        }
    }

    fn schema() -> String {
        let mut v = serde_json::to_value(schemars::schema_for!(WallState)).unwrap();
        closed(&mut v);
        serde_json::to_string_pretty(&v).unwrap() + "\n"
    }

    #[test]
    fn the_committed_wall_state_schema_is_current() {
        let fresh = schema();
        if std::env::var_os("VOICEWALL_WRITE_SCHEMA").is_some() {
            std::fs::write(SCHEMA, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(SCHEMA).unwrap_or_default();
        assert!(
            committed == fresh,
            "tests/browser/wall-state.schema.json is stale: regenerate it with\n  \
             VOICEWALL_WRITE_SCHEMA=1 cargo test -p voicewall-core --lib the_committed_wall_state_schema_is_current\n\
             and commit it (the browser tests' fake server checks its answers against it)"
        );
    }

    #[test]
    fn the_schema_requires_every_field_of_the_state() {
        let v: serde_json::Value = serde_json::from_str(&schema()).unwrap();
        let required: Vec<&str> = v["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        for field in [
            "id",
            "title",
            "locale",
            "provider",
            "theme",
            "demo",
            "join",
            "participants",
            "messages",
            "playback",
            "qr_visible",
        ] {
            assert!(required.contains(&field), "{field} not required");
        }
    }
}
