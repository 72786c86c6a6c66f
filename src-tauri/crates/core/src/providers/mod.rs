//! The platforms this build knows, one module each, and their registry. A platform module turns its
//! pushes into `Inbound`s (its own routes), fetches media and profiles by reference, and says how a
//! person joins — all through `provider::WallProvider` (see its module doc for how to write one).
//!
//! Adding a platform: its module under `providers/<name>/` (with its `PROVIDER`), then one line in
//! `PLATFORMS`. Nothing outside `providers/<name>/` names a platform: the rest of the crate asks this
//! registry (`PLATFORM_NAMES`, `provider_named`) or the wall's `WallProvider`.

pub mod telegram;
pub mod web;
pub mod wechat;

use crate::domain::Provider;
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
    /// The platform's own `PROVIDER`: its name is the config table's and what stored records say.
    pub provider: Provider,
    /// Parse and validate the section (no side effects): `check-config` and `build` both use it.
    pub check: fn(&ProviderSection) -> Result<(), ProviderError>,
    /// What must hold across this platform's walls (e.g. one Telegram bot per wall), given all of its
    /// sections; `None`: each wall stands alone.
    pub check_walls: Option<CheckWallsFn>,
    pub build: BuildFn,
}

impl Platform {
    /// The platform's name: its config table (`[walls.NAME]`), stored records and the wire say it.
    pub const fn name(&self) -> &'static str {
        self.provider.as_str()
    }
}

/// Every platform of this build.
pub const PLATFORMS: &[Platform] = &[
    Platform {
        provider: web::PROVIDER,
        check: web::check,
        check_walls: None,
        build: web::build,
    },
    Platform {
        provider: wechat::PROVIDER,
        check: wechat::check,
        check_walls: None,
        build: wechat::build,
    },
    Platform {
        provider: telegram::PROVIDER,
        check: telegram::check,
        check_walls: Some(telegram::check_walls),
        build: telegram::build,
    },
];

/// The names of `PLATFORMS`, in its order.
pub const PLATFORM_NAMES: [&str; PLATFORMS.len()] = {
    let mut names = [""; PLATFORMS.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = PLATFORMS[i].name();
        i += 1;
    }
    names
};

/// The platform a stored record or a request names, if this build has it (with the registry's own
/// interned name).
pub fn provider_named(name: &str) -> Option<Provider> {
    PLATFORMS
        .iter()
        .map(|p| p.provider)
        .find(|p| p.as_str() == name)
}

/// `Provider` is read through the registry: a name this build does not know is refused with the same
/// error the old enum gave (``unknown variant `x`, expected one of `web`, …``), and a known one comes
/// back as the platform's own `&'static str`. (Here rather than in `domain`: `domain` does not name
/// the platforms, and the platforms name `domain`.)
impl<'de> serde::Deserialize<'de> for Provider {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Provider;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a platform name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Provider, E> {
                provider_named(v).ok_or_else(|| E::unknown_variant(v, &PLATFORM_NAMES))
            }
        }
        d.deserialize_str(Name)
    }
}

/// The platform of a section; an unknown one is an error naming the table, its line and the known ones.
fn platform(section: &ProviderSection) -> Result<&'static Platform, ProviderError> {
    PLATFORMS
        .iter()
        .find(|p| p.name() == section.name)
        .ok_or_else(|| {
            let known = PLATFORM_NAMES;
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
                sections.iter().filter(|s| s.name == p.name()).collect();
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

    /// The wall-state schema's `Provider` (`http::state`'s schema test): a string, one of the
    /// registry's names, as the old enum's was.
    impl schemars::JsonSchema for Provider {
        fn schema_name() -> std::borrow::Cow<'static, str> {
            "Provider".into()
        }
        fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
            schemars::json_schema!({ "type": "string", "enum": PLATFORM_NAMES })
        }
    }

    /// Tests' counters (`Arc::default()` in fixtures): one per platform of the registry, as `serve`'s.
    impl Default for crate::metrics::Metrics {
        fn default() -> Self {
            Self::for_platforms(PLATFORMS.iter().map(|p| p.provider))
        }
    }

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

    /// The crate's `.rs` files under `src/`, as (path relative to `src/` with `/`, text), sorted.
    fn sources() -> Vec<(String, String)> {
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
        files
            .into_iter()
            .map(|f| {
                let rel = f
                    .strip_prefix(&src)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                (rel, std::fs::read_to_string(&f).unwrap())
            })
            .collect()
    }

    /// Product code split into what can name a platform, line by line: (line, is a string literal,
    /// text). Code outside literals comes as is; comments go; a string literal (`"…"`, `r#"…"#`) comes
    /// whole, at the line it starts on. Char literals (`'"'`) are code, lifetimes too.
    fn tokens(product: &str) -> Vec<(usize, bool, String)> {
        let c: Vec<char> = product.chars().collect();
        let (mut out, mut code, mut line, mut i) = (Vec::new(), String::new(), 1, 0);
        let flush = |code: &mut String, line: usize, out: &mut Vec<(usize, bool, String)>| {
            if !code.is_empty() {
                out.push((line, false, std::mem::take(code)));
            }
        };
        let at = |i: usize, k: usize| c.get(i + k).copied();
        while i < c.len() {
            if c[i] == '\n' {
                flush(&mut code, line, &mut out);
                line += 1;
                i += 1;
            } else if c[i] == '/' && at(i, 1) == Some('/') {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            } else if c[i] == '/' && at(i, 1) == Some('*') {
                while i < c.len() && !(c[i] == '*' && at(i, 1) == Some('/')) {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
                i += 2;
            } else if c[i] == '\'' && (at(i, 1) == Some('\\') || at(i, 2) == Some('\'')) {
                // A char literal: `'x'`, `'"'`, `'\n'`, `'\''`.
                let end =
                    (i + 2..c.len()).find(|&k| c[k] == '\'' && (k > i + 2 || c[i + 1] != '\\'));
                code.push(' ');
                i = end.map_or(c.len(), |e| e + 1);
            } else if c[i] == '"' || (c[i] == 'r' && matches!(at(i, 1), Some('"' | '#'))) {
                let start = line;
                let hashes = if c[i] == 'r' {
                    i += 1;
                    let h = c[i..].iter().take_while(|x| **x == '#').count();
                    i += h;
                    Some(h)
                } else {
                    None
                };
                if c.get(i) != Some(&'"') {
                    code.push('r');
                    continue;
                }
                i += 1;
                let mut text = String::new();
                while i < c.len() {
                    if hashes.is_none() && c[i] == '\\' {
                        text.push(c[i]);
                        text.extend(c.get(i + 1));
                        i += 2;
                        continue;
                    }
                    let h = hashes.unwrap_or(0);
                    if c[i] == '"' && (1..=h).all(|k| at(i, k) == Some('#')) {
                        i += 1 + h;
                        break;
                    }
                    line += usize::from(c[i] == '\n');
                    text.push(c[i]);
                    i += 1;
                }
                out.push((start, true, text));
                code.push(' ');
            } else {
                code.push(c[i]);
                i += 1;
            }
        }
        flush(&mut code, line, &mut out);
        out
    }

    /// Where product code outside `providers/{name}/` names the platform `name`, as `file:line: text`.
    ///
    /// The rule. Product code is a file's text before its first `#[cfg(test)]` (test code sits at the
    /// end of a file), without comments; `testing.rs` (the crate's test-only fakes) is left out. It
    /// names the platform when
    /// - `name` is a word of its code, in any case: the code split at every character that is not an
    ///   ASCII letter or digit (`Provider::Web`, `providers::web::PROVIDER`, `WEB`; not `webhook`,
    ///   `WebConfig`), or
    /// - a string literal is the name, or starts with `{name}:` (`"web"`, `"web:{id}"`).
    ///
    /// A platform mentioned in prose inside a longer literal (help texts, error hints, the commented
    /// default config file) is text for people, not a name the code dispatches on: allowed.
    fn places_naming(name: &str) -> Vec<String> {
        let mut places = Vec::new();
        for (rel, text) in sources() {
            if rel.starts_with(&format!("providers/{name}/")) || rel == "testing.rs" {
                continue;
            }
            let product = text.split("#[cfg(test)]").next().unwrap_or_default();
            let lines: Vec<&str> = product.lines().collect();
            for (line, literal, t) in tokens(product) {
                let names = if literal {
                    t == name || t.starts_with(&format!("{name}:"))
                } else {
                    t.split(|c: char| !c.is_ascii_alphanumeric())
                        .any(|w| w.eq_ignore_ascii_case(name))
                };
                if names {
                    let place = format!("{rel}:{line}: {}", lines[line - 1].trim());
                    if !places.contains(&place) {
                        places.push(place);
                    }
                }
            }
        }
        places
    }

    #[test]
    fn the_naming_rule_reads_code_and_literals_not_comments_or_prose() {
        let src = "use crate::providers::web::PROVIDER; // web\nlet a = \"web\"; let b = '\"';\n/* web */ let c = r#\"the web \"page\"\"#; x(\"web:{id}\", WebConfig, webhook);\nlet d = \"a\\\"web\"; fn f<'a>(w: &'a Web) {}\n";
        let named: Vec<usize> = tokens(src)
            .into_iter()
            .filter(|(_, lit, t)| {
                if *lit {
                    t == "web" || t.starts_with("web:")
                } else {
                    t.split(|c: char| !c.is_ascii_alphanumeric())
                        .any(|w| w.eq_ignore_ascii_case("web"))
                }
            })
            .map(|(line, _, _)| line)
            .collect();
        assert_eq!(named, [1, 2, 3, 4], "{:#?}", tokens(src));
        let lits: Vec<String> = tokens(src)
            .into_iter()
            .filter(|t| t.1)
            .map(|t| t.2)
            .collect();
        assert_eq!(lits, ["web", "the web \"page\"", "web:{id}", "a\\\"web"]);
    }

    /// Issue #15, "providers own their platform": outside `providers/<name>/`, product code names a
    /// platform only in its registration here (`pub mod <name>;` and its `PLATFORMS` entry), and in
    /// config's default wall (see `DEFAULT_PLATFORM_IN_CONFIG`). Everything else asks the registry
    /// (`PLATFORM_NAMES`, `provider_named`) or the wall's `WallProvider`.
    #[test]
    fn outside_its_module_a_platform_is_named_by_its_registration_only() {
        let mut stray = Vec::new();
        for name in PLATFORM_NAMES {
            for place in places_naming(name) {
                let code = place.splitn(3, ':').nth(2).unwrap().trim().to_string();
                let registration = place.starts_with("providers/mod.rs:")
                    && (code == format!("pub mod {name};")
                        || code == format!("provider: {name}::PROVIDER,")
                        || code.starts_with(&format!("check: {name}::"))
                        || code.starts_with(&format!("check_walls: Some({name}::"))
                        || code.starts_with(&format!("build: {name}::")));
                let config_default = place.starts_with("config.rs:")
                    && DEFAULT_PLATFORM_IN_CONFIG.iter().any(|d| code == *d);
                if !registration && !config_default {
                    stray.push(place);
                }
            }
        }
        assert!(
            stray.is_empty(),
            "a platform named outside its module: {stray:#?}"
        );
    }

    /// Still open: config's default platform. The built-in config's one wall, and a wall built in code
    /// without a table, are on the web join page. `config` cannot ask the registry (`provider` uses
    /// `config`, the registry uses `provider`: a module cycle); the default would have to be resolved
    /// here instead, where a section without a table is built.
    const DEFAULT_PLATFORM_IN_CONFIG: [&str; 2] = [
        ".push(WallConfig::with_id(\"main\").with_provider(\"web\", toml::Table::new()));",
        ".unwrap_or((\"web\", toml::Table::new()));",
    ];

    /// In product code only a platform's own module makes a `Provider` (`Provider::new`): elsewhere a
    /// platform is one of the registry's. (Tests may make one the registry does not know.)
    #[test]
    fn only_a_platform_module_makes_a_provider() {
        let makers: Vec<String> = sources()
            .into_iter()
            .filter(|(rel, text)| {
                let product = text.split("#[cfg(test)]").next().unwrap_or_default();
                product.lines().any(|l| {
                    l.split("//")
                        .next()
                        .unwrap_or_default()
                        .contains("Provider::new(")
                }) && !PLATFORM_NAMES
                    .iter()
                    .any(|name| rel.starts_with(&format!("providers/{name}/")))
            })
            .map(|(rel, _)| rel)
            .collect();
        assert!(makers.is_empty(), "{makers:?}");
        for name in PLATFORM_NAMES {
            let provider = provider_named(name).expect("a registered name");
            assert_eq!(provider.as_str(), name);
        }
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
