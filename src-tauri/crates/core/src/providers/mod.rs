//! The platforms this build knows, one module each, and their registry. A platform module turns its
//! pushes into `Inbound`s (its own routes), fetches media and profiles by reference, and says how a
//! person joins — all through `provider::WallProvider` (see its module doc for how to write one).
//!
//! Adding a platform: its module under `providers/<name>/`, then one line in `PLATFORMS`.

pub mod telegram;
pub mod web;
pub mod wechat;

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
            key: section.path(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// What `check-config` says about a file: the first provider section it refuses.
    fn check_text(text: &str) -> String {
        let config =
            Config::from_toml(text, std::path::Path::new("x")).expect("the generic part parses");
        config
            .provider_sections()
            .iter()
            .find_map(|s| check(s).err())
            .expect("a section is refused")
            .to_string()
    }

    #[test]
    fn each_provider_checks_its_own_section_naming_key_and_line() {
        let text = "[[walls]]\nid = \"a\"\n[walls.web]\ntoken_rotate_s = 600\n[[walls]]\nid = \"b\"\n[walls.web]\ntoken_rotate_s = 5\n";
        let e = check_text(text);
        assert!(
            e.contains("walls[1].web.token_rotate_s") && e.contains("line 8"),
            "{e}"
        );

        // A type error inside a provider section names the full key.
        let text = "[[walls]]\nid = \"a\"\n[walls.web]\ntoken_grace_s = \"long\"\n";
        let e = check_text(text);
        assert!(
            e.contains("walls[0].web.token_grace_s") && e.contains("line 4"),
            "{e}"
        );

        // A missing required key names the key and the section's line.
        let text = "[[walls]]\nid = \"w\"\n[walls.wechat]\napp_id = \"wx1\"\napp_secret = \"\"\ntoken = \"t\"\noriginal_id = \"gh\"\n";
        let e = check_text(text);
        assert!(
            e.contains("walls[0].wechat.app_secret") && e.contains("line 5"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_line_in_the_right_wall() {
        let file = "[[walls]]\nid = \"a\"\n[walls.web]\ntoken_rotate_s = 60\n\n[[walls]]\nid = \"b\"\n[walls.web]\ntoken_rotat_s = 60\n";
        let e = check_text(file);
        assert!(
            e.starts_with("walls[1].web.token_rotat_s: unknown field"),
            "{e}"
        );
        assert!(e.ends_with("(line 9)"), "{e}");
        // A section built in code has no file: the key, no line.
        let s = ProviderSection::new(1, "wechat", toml::Table::new());
        assert_eq!(
            s.invalid("app_id", "must not be empty").to_string(),
            "walls[1].wechat.app_id: must not be empty"
        );
        let unknown = ProviderSection::new(0, "matrix", toml::Table::new());
        let e = check(&unknown).unwrap_err().to_string();
        assert!(
            e.starts_with("walls[0].matrix: no provider \"matrix\""),
            "{e}"
        );
    }
}
