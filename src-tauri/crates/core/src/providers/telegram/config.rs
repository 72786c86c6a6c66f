//! `[walls.telegram]`: the provider reads and validates its own table, so `check-config` refuses exactly
//! what `serve` would. Errors name the key inside the table (the caller prefixes `walls[i].telegram.`).
//!
//! ```toml
//! [walls.telegram]
//! bot_token = "123456789:AAH..."        # from @BotFather; never logged
//! bot_username = "VoicewallBot"         # the QR is https://t.me/<bot_username>?start=<wall id>
//! secret_token = "a-long-random-secret" # sent back by Telegram on every webhook delivery
//! api_base = "https://api.telegram.org" # overridable for tests and the simulator
//! welcome = "You're on the wall!"       # optional; the bot's answer to /start
//! ```

use super::secret::valid_secret;
use crate::domain::Provider;

/// This platform as stored records and the wire name it (also its config table, `[walls.telegram]`).
pub const PROVIDER: Provider = Provider::new("telegram");

/// The Bot API's public address.
pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";
/// `sendMessage` refuses longer texts.
pub const MAX_MESSAGE_CHARS: usize = 4096;

#[derive(Clone, PartialEq)]
pub struct TelegramConfig {
    pub bot_token: String,
    pub bot_username: String,
    pub secret_token: String,
    pub api_base: String,
    pub welcome: Option<String>,
}

impl std::fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramConfig")
            .field("bot_username", &self.bot_username)
            .field("api_base", &self.api_base)
            .field("welcome", &self.welcome)
            .finish_non_exhaustive()
    }
}

/// A key of the table that is wrong, and why.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{key}: {message}")]
pub struct TelegramConfigError {
    /// Relative to the table: `bot_token`, `api_base`, ...
    pub key: String,
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> TelegramConfigError {
    TelegramConfigError {
        key: key.to_string(),
        message: message.into(),
    }
}

const KEYS: [&str; 5] = [
    "bot_token",
    "bot_username",
    "secret_token",
    "api_base",
    "welcome",
];

impl TelegramConfig {
    /// Read and check the wall's `[walls.telegram]` table.
    pub fn from_table(table: &toml::Table) -> Result<Self, TelegramConfigError> {
        if let Some(unknown) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(err(
                unknown,
                format!("unknown key; expected one of {}", KEYS.join(", ")),
            ));
        }
        let string = |key: &str| -> Result<Option<String>, TelegramConfigError> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(err(
                    key,
                    format!("must be a string, not a {}", other.type_str()),
                )),
            }
        };
        let required = |key: &str| -> Result<String, TelegramConfigError> {
            string(key)?.ok_or_else(|| err(key, "is required"))
        };
        let config = TelegramConfig {
            bot_token: required("bot_token")?,
            bot_username: required("bot_username")?,
            secret_token: required("secret_token")?,
            api_base: string("api_base")?.unwrap_or_else(|| DEFAULT_API_BASE.into()),
            welcome: string("welcome")?.filter(|w| !w.trim().is_empty()),
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), TelegramConfigError> {
        if !valid_bot_token(&self.bot_token) {
            // Never echo the value: it is a credential.
            return Err(err(
                "bot_token",
                "is not a bot token like 123456789:AAH... (from @BotFather)",
            ));
        }
        if let Some(stripped) = self.bot_username.strip_prefix('@') {
            return Err(err(
                "bot_username",
                format!("write it without the @: {stripped:?}"),
            ));
        }
        if !valid_bot_username(&self.bot_username) {
            return Err(err(
                "bot_username",
                format!(
                    "{:?} is not a bot username (5-32 of A-Z a-z 0-9 _, ending in \"bot\")",
                    self.bot_username
                ),
            ));
        }
        if !valid_secret(&self.secret_token) {
            return Err(err(
                "secret_token",
                "must be 1-256 characters of A-Z a-z 0-9 _ - (Telegram refuses others)",
            ));
        }
        match reqwest::Url::parse(&self.api_base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                return Err(err(
                    "api_base",
                    format!("{:?} is not an http(s) URL", self.api_base),
                ))
            }
        }
        if let Some(w) = &self.welcome {
            let n = w.trim().chars().count();
            if n > MAX_MESSAGE_CHARS {
                return Err(err(
                    "welcome",
                    format!(
                        "has {n} characters; Telegram messages hold at most {MAX_MESSAGE_CHARS}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `api_base` without a trailing slash.
    pub fn api_base(&self) -> &str {
        self.api_base.trim_end_matches('/')
    }
}

/// `<bot id>:<secret>`: digits, a colon, then the URL-safe base64 alphabet (it goes into URL paths).
pub fn valid_bot_token(token: &str) -> bool {
    let Some((id, secret)) = token.split_once(':') else {
        return false;
    };
    !id.is_empty()
        && id.len() <= 20
        && id.bytes().all(|b| b.is_ascii_digit())
        && (20..=128).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Telegram's rule for bot usernames: 5–32 of `A-Z a-z 0-9 _`, ending in `bot`.
pub fn valid_bot_username(name: &str) -> bool {
    (5..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.to_ascii_lowercase().ends_with("bot")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

    fn table(extra: &str) -> toml::Table {
        let text = format!(
            "bot_token = \"{TOKEN}\"\nbot_username = \"VoicewallBot\"\nsecret_token = \"wall_secret-123\"\n{extra}"
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn a_full_table_reads_with_defaults() {
        let c = TelegramConfig::from_table(&table("")).unwrap();
        assert_eq!(c.bot_username, "VoicewallBot");
        assert_eq!(c.api_base, DEFAULT_API_BASE);
        assert_eq!(c.welcome, None);
        let c = TelegramConfig::from_table(&table(
            "api_base = \"http://127.0.0.1:9/\"\nwelcome = \"Hi!\"",
        ))
        .unwrap();
        assert_eq!(c.api_base(), "http://127.0.0.1:9");
        assert_eq!(c.welcome.as_deref(), Some("Hi!"));
    }

    #[test]
    fn debug_never_shows_the_token_or_the_secret() {
        let c = TelegramConfig::from_table(&table("")).unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("AAHdq") && !d.contains("wall_secret"), "{d}");
    }

    fn key_of(_wall: &str, t: toml::Table) -> String {
        TelegramConfig::from_table(&t).unwrap_err().key
    }

    #[test]
    fn each_bad_value_names_its_key() {
        let mut t = table("");
        t.remove("bot_token");
        assert_eq!(key_of("hall", t), "bot_token");
        let mut t = table("");
        t.insert("bot_token".into(), "not-a-token".into());
        let e = TelegramConfig::from_table(&t).unwrap_err();
        assert_eq!(e.key, "bot_token");
        assert!(!e.message.contains("not-a-token"));
        let mut t = table("");
        t.insert("bot_username".into(), "@VoicewallBot".into());
        assert_eq!(key_of("hall", t), "bot_username");
        let mut t = table("");
        t.insert("bot_username".into(), "Voicewall".into());
        assert_eq!(key_of("hall", t), "bot_username");
        let mut t = table("");
        t.insert("secret_token".into(), "has space".into());
        assert_eq!(key_of("hall", t), "secret_token");
        let mut t = table("");
        t.remove("secret_token");
        assert_eq!(key_of("hall", t), "secret_token");
        assert_eq!(key_of("hall", table("api_base = \"ftp://x\"")), "api_base");
        assert_eq!(key_of("hall", table("api_base = 3")), "api_base");
        assert_eq!(key_of("hall", table("bot = \"x\"")), "bot");
        let long = "x".repeat(MAX_MESSAGE_CHARS + 1);
        assert_eq!(
            key_of("hall", table(&format!("welcome = \"{long}\""))),
            "welcome"
        );
    }

    #[test]
    fn bot_tokens_and_usernames() {
        assert!(valid_bot_token(TOKEN));
        assert!(!valid_bot_token(
            "123456789AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
        ));
        assert!(!valid_bot_token(":AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"));
        assert!(!valid_bot_token("12a:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"));
        assert!(!valid_bot_token("123:AAH/../../x/AAAAAAAAAAAAAAAAAAAA"));
        assert!(valid_bot_username("VoicewallBot"));
        assert!(valid_bot_username("wall_bot"));
        assert!(!valid_bot_username("Voicewall"));
        assert!(!valid_bot_username("abot"));
        assert!(!valid_bot_username("wall-bot"));
    }
}
