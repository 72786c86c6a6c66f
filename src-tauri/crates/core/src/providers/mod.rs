//! The platforms this build knows, one module each, and their registry. A platform module turns its
//! pushes into `Inbound`s (its own routes), fetches media and profiles by reference, and says how a
//! person joins — all through `provider::WallProvider` (see its module doc for how to write one).
//!
//! Adding a platform: its module under `providers/<name>/`, then one line in `PLATFORMS`.

pub mod telegram;
pub mod web;
pub mod wechat;

use crate::config::WallConfig;
use crate::provider::{ProviderContext, ProviderError, ProviderSection, WallProvider};
use std::sync::Arc;

/// Builds one wall's provider from its context and config section.
pub type BuildFn =
    fn(ProviderContext, &ProviderSection) -> Result<Arc<dyn WallProvider>, ProviderError>;

/// One platform: the name of its config table (`[walls.NAME]`), how to validate that table, and how
/// to build a wall's provider from it.
pub struct Platform {
    pub name: &'static str,
    /// Parse and validate the section (no side effects): `check-config` and `build` both use it.
    pub check: fn(&ProviderSection) -> Result<(), ProviderError>,
    pub build: BuildFn,
}

/// Every platform of this build.
pub const PLATFORMS: &[Platform] = &[
    Platform {
        name: "web",
        check: web::check,
        build: web::build,
    },
    Platform {
        name: "wechat",
        check: wechat::check,
        build: wechat::build,
    },
    Platform {
        name: "telegram",
        check: telegram::check,
        build: telegram::build,
    },
];

fn platform(section: &ProviderSection) -> Result<&'static Platform, ProviderError> {
    PLATFORMS
        .iter()
        .find(|p| p.name == section.name)
        .ok_or_else(|| ProviderError::Unknown {
            key: section.key.clone(),
            name: section.name.clone(),
            known: PLATFORMS
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Validate a wall's provider section (what `check-config` runs for each wall).
pub fn check(section: &ProviderSection) -> Result<(), ProviderError> {
    (platform(section)?.check)(section)
}

/// Build a wall's provider from its section (what `serve` runs for each wall).
pub fn build(
    ctx: ProviderContext,
    section: &ProviderSection,
) -> Result<Arc<dyn WallProvider>, ProviderError> {
    (platform(section)?.build)(ctx, section)
}

/// The provider section of the `index`-th wall, from today's typed config. The config keeps one
/// optional table per platform; this hands the one that is set on as a raw table, so that each
/// platform parses its own (the config↔providers seam: the config will hand raw tables directly).
pub fn section_of(index: usize, wall: &WallConfig, source: Option<Arc<str>>) -> ProviderSection {
    let raw = |v: Result<toml::Table, toml::ser::Error>| v.unwrap_or_default();
    let (name, table) = if let Some(web) = &wall.web {
        ("web", raw(toml::Table::try_from(web)))
    } else if let Some(wx) = &wall.wechat {
        ("wechat", raw(toml::Table::try_from(wx)))
    } else if let Some(t) = &wall.telegram {
        ("telegram", t.clone())
    } else {
        // Config validation guarantees one table; an empty web section is the default provider.
        ("web", toml::Table::new())
    };
    ProviderSection {
        name: name.to_string(),
        key: format!("walls[{index}].{name}"),
        table,
        source,
    }
}
