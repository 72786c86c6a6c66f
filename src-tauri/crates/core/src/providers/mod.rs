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

/// Checks what must hold across one platform's walls, given all of its sections.
pub type CheckWallsFn = fn(&[&ProviderSection]) -> Result<(), ProviderError>;

/// One platform: the name of its config table (`[walls.NAME]`), how to validate that table, and how
/// to build a wall's provider from it.
pub struct Platform {
    pub name: &'static str,
    /// Parse and validate the section (no side effects): `check-config` and `build` both use it.
    pub check: fn(&ProviderSection) -> Result<(), ProviderError>,
    /// What must hold across this platform's walls (e.g. one Telegram bot per wall), given all of its
    /// sections; `None`: each wall stands alone.
    pub check_walls: Option<CheckWallsFn>,
    pub build: BuildFn,
}

/// Every platform of this build.
pub const PLATFORMS: &[Platform] = &[
    Platform {
        name: "web",
        check: web::check,
        check_walls: None,
        build: web::build,
    },
    Platform {
        name: "wechat",
        check: wechat::check,
        check_walls: None,
        build: wechat::build,
    },
    Platform {
        name: "telegram",
        check: telegram::check,
        check_walls: Some(telegram::check_walls),
        build: telegram::build,
    },
];

/// The platform of a section; an unknown one is an error naming the table, its line and the known ones.
fn platform(section: &ProviderSection) -> Result<&'static Platform, ProviderError> {
    PLATFORMS
        .iter()
        .find(|p| p.name == section.name)
        .ok_or_else(|| {
            let known = PLATFORMS.iter().map(|p| p.name).collect::<Vec<_>>();
            section
                .invalid_section(format!(
                    "no provider {:?} in this build (known: {})",
                    section.name,
                    known.join(", ")
                ))
                .into()
        })
}

/// Validate a wall's provider section (what `check-config` runs for each wall).
pub fn check(section: &ProviderSection) -> Result<(), ProviderError> {
    (platform(section)?.check)(section)
}

/// Validate every wall's section, then what must hold across each platform's walls: what
/// `check-config` and `serve` run.
pub fn check_all(sections: &[ProviderSection]) -> Result<(), ProviderError> {
    sections.iter().try_for_each(check)?;
    for p in PLATFORMS {
        if let Some(check_walls) = p.check_walls {
            let mine: Vec<&ProviderSection> =
                sections.iter().filter(|s| s.name == p.name).collect();
            check_walls(&mine)?;
        }
    }
    Ok(())
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

    #[test]
    fn an_unknown_table_names_itself_its_line_and_the_known_platforms() {
        let text = "[[walls]]\nid = \"a\"\n[walls.web]\n\n[[walls]]\nid = \"b\"\n[walls.wechta]\napp_id = \"wx1\"\n";
        let e = check_text(text);
        assert_eq!(
            e,
            "walls[1].wechta: no provider \"wechta\" in this build (known: web, wechat, telegram) (line 7)"
        );
    }

    /// Product code (comments and `#[cfg(test)]` code left out) that names `telegram`, outside
    /// `providers/telegram/`: `file:line: text`.
    fn places_naming(word: &str) -> Vec<String> {
        fn collect(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    collect(&p, out)
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p)
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        collect(&src, &mut files);
        files.sort();
        let mut places = Vec::new();
        for f in files {
            let rel = f
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            // The platform's own module, and the crate's test-only modules.
            if rel.starts_with(&format!("providers/{word}/")) || rel == "testing.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            // Test code sits at the end of a file, from its first `#[cfg(test)]` on.
            let product = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (i, line) in product.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                if code.to_ascii_lowercase().contains(word) {
                    places.push(format!("{rel}:{}: {}", i + 1, line.trim()));
                }
            }
        }
        places
    }

    #[test]
    fn outside_its_module_telegram_is_named_by_its_registration_and_the_shared_enum_only() {
        let places = places_naming("telegram");
        println!("{}", places.join("\n"));
        let files: std::collections::BTreeSet<&str> = places
            .iter()
            .map(|p| p.split(':').next().unwrap())
            .collect();
        // providers/mod.rs: `pub mod telegram;` and its one `PLATFORMS` entry. domain.rs: the shared
        // `Provider` enum (stored records and the wire JSON say "telegram") — still open: a
        // platform-blind `Provider` would change the stored format.
        assert_eq!(
            files.into_iter().collect::<Vec<_>>(),
            ["domain.rs", "providers/mod.rs"],
            "{places:#?}"
        );
        let registry: Vec<&String> = places
            .iter()
            .filter(|p| p.starts_with("providers/mod.rs"))
            .collect();
        assert!(
            registry.iter().all(|p| {
                let code = p.splitn(3, ':').nth(2).unwrap().trim();
                code == "pub mod telegram;"
                    || code.starts_with("name: \"telegram\"")
                    || code.starts_with("check: telegram::check")
                    || code.starts_with("check_walls: Some(telegram::check_walls)")
                    || code.starts_with("build: telegram::build")
            }),
            "{registry:#?}"
        );
    }

    #[test]
    fn two_walls_on_one_bot_token_are_refused_naming_the_second() {
        // Moved from config.rs: the check belongs to the Telegram platform (`Platform::check_walls`).
        let tg = |id: &str, token: &str| {
            format!("[[walls]]\nid = \"{id}\"\n[walls.telegram]\nbot_token = \"{token}\"\nbot_username = \"VwBot\"\nsecret_token = \"s3cret-s3cret-s3cret\"\n")
        };
        let (one, two) = (
            "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1",
            "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw2",
        );
        let all = |text: &str| {
            let config = Config::from_toml(text, std::path::Path::new("x")).unwrap();
            check_all(&config.provider_sections())
        };
        let e = all(&format!("{}{}", tg("a", one), tg("b", one)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("walls[1].telegram.bot_token")
                && e.contains("line 10")
                && e.contains("same bot as wall \"a\""),
            "{e}"
        );
        assert!(!e.contains("AAHdq"), "the token is never echoed: {e}");
        all(&format!("{}{}", tg("a", one), tg("b", two))).unwrap();
    }
}
