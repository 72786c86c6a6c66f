//! Configuration: built-in defaults → one TOML file → `VOICEWALL_…` environment overrides.
//!
//! Validation errors name the key (and the line, when the file is at fault) so a technician can fix a
//! venue's config without reading code. Secrets are never printed by `Debug`.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration of one kiosk.
#[derive(Clone, Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub audio: AudioConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub walls: Vec<WallConfig>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// What the join QR encodes. Empty: this machine's LAN IPv4 address and the listen port.
    #[serde(default)]
    pub public_url: Option<String>,
    /// HTTPS on the listener (browsers only allow the microphone in a secure context).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain and key. Both empty: a self-signed pair is generated under data_dir.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            public_url: None,
            tls: None,
        }
    }
}

fn default_listen() -> String {
    "0.0.0.0:8787".into()
}

#[derive(Clone, Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Where sled, the media cache and the logs live. Empty: the OS data dir.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AudioConfig {
    /// `"default"`, `"null"` (consumes samples in real time, no device) or a device name.
    #[serde(default = "default_output")]
    pub output: String,
    #[serde(default = "default_volume")]
    pub volume: f32,
    /// Play each new ready message by itself, in arrival order.
    #[serde(default = "default_true")]
    pub autoplay: bool,
    /// Silence between two queued messages, in milliseconds.
    #[serde(default = "default_gap_ms")]
    pub gap_ms: u64,
    /// Longest accepted voice message, in seconds.
    #[serde(default = "default_max_duration")]
    pub max_duration_s: u64,
}

impl Default for AudioConfig {
    fn default() -> Self {
        Self {
            output: default_output(),
            volume: default_volume(),
            autoplay: true,
            gap_ms: default_gap_ms(),
            max_duration_s: default_max_duration(),
        }
    }
}

fn default_output() -> String {
    "default".into()
}
fn default_volume() -> f32 {
    1.0
}
fn default_true() -> bool {
    true
}
fn default_gap_ms() -> u64 {
    800
}
fn default_max_duration() -> u64 {
    120
}

#[derive(Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token of the operator console. Generated on first run if absent.
    #[serde(default)]
    pub token: Option<String>,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WallConfig {
    pub id: String,
    #[serde(default = "default_title")]
    pub title: String,
    #[serde(default = "default_locale")]
    pub locale: String,
    #[serde(default)]
    pub theme: ThemeConfig,
    #[serde(default)]
    pub web: Option<WebConfig>,
    #[serde(default)]
    pub wechat: Option<WechatConfig>,
    /// Reserved for the Telegram issue; accepted as a table so configs written ahead of it parse.
    #[serde(default)]
    pub telegram: Option<toml::Table>,
}

fn default_title() -> String {
    "Voicewall".into()
}
fn default_locale() -> String {
    "zh-CN".into()
}

/// Look of a wall: readable from 10 m, with a safe margin for projectors that crop edges.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThemeConfig {
    #[serde(default = "default_background")]
    pub background: String,
    /// Optional background image (a URL the wall page can load, e.g. under /media/).
    #[serde(default)]
    pub background_image: Option<String>,
    #[serde(default = "default_accent")]
    pub accent: String,
    /// Safe margin around the whole page, in percent of the screen's shorter side.
    #[serde(default = "default_safe_margin")]
    pub safe_margin_pct: f32,
}

impl Default for ThemeConfig {
    fn default() -> Self {
        Self {
            background: default_background(),
            background_image: None,
            accent: default_accent(),
            safe_margin_pct: default_safe_margin(),
        }
    }
}

fn default_background() -> String {
    "#0b1020".into()
}
fn default_accent() -> String {
    "#ffb703".into()
}
fn default_safe_margin() -> f32 {
    2.0
}

/// The built-in web join page (the default provider).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// How often the join token in the QR rotates, in seconds.
    #[serde(default = "default_token_rotate")]
    pub token_rotate_s: u64,
    /// How long the previous token stays valid after a rotation, in seconds.
    #[serde(default = "default_token_grace")]
    pub token_grace_s: u64,
    #[serde(default = "default_nickname_max")]
    pub nickname_max_chars: usize,
    #[serde(default = "default_avatar_max")]
    pub avatar_max_bytes: usize,
    #[serde(default = "default_audio_max")]
    pub audio_max_bytes: usize,
    #[serde(default = "default_web_duration")]
    pub audio_max_duration_s: u64,
    #[serde(default = "default_per_minute")]
    pub messages_per_minute: u32,
    #[serde(default = "default_per_ip_minute")]
    pub messages_per_ip_per_minute: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            token_rotate_s: default_token_rotate(),
            token_grace_s: default_token_grace(),
            nickname_max_chars: default_nickname_max(),
            avatar_max_bytes: default_avatar_max(),
            audio_max_bytes: default_audio_max(),
            audio_max_duration_s: default_web_duration(),
            messages_per_minute: default_per_minute(),
            messages_per_ip_per_minute: default_per_ip_minute(),
        }
    }
}

fn default_token_rotate() -> u64 {
    600
}
fn default_token_grace() -> u64 {
    300
}
fn default_nickname_max() -> usize {
    24
}
fn default_avatar_max() -> usize {
    2 * 1024 * 1024
}
fn default_audio_max() -> usize {
    4 * 1024 * 1024
}
fn default_web_duration() -> u64 {
    60
}
fn default_per_minute() -> u32 {
    6
}
fn default_per_ip_minute() -> u32 {
    30
}

/// A WeChat Official Account (see the WeChat provider).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WechatConfig {
    pub app_id: String,
    pub app_secret: String,
    pub token: String,
    #[serde(default)]
    pub encoding_aes_key: Option<String>,
    pub original_id: String,
    #[serde(default = "default_wechat_api")]
    pub api_base: String,
    #[serde(default = "default_wechat_oauth")]
    pub oauth_base: String,
    #[serde(default)]
    pub welcome: Option<String>,
}

impl std::fmt::Debug for WechatConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatConfig")
            .field("app_id", &self.app_id)
            .field("original_id", &self.original_id)
            .field("api_base", &self.api_base)
            .field("oauth_base", &self.oauth_base)
            .field("safe_mode", &self.encoding_aes_key.is_some())
            .finish_non_exhaustive()
    }
}

fn default_wechat_api() -> String {
    "https://api.weixin.qq.com".into()
}
fn default_wechat_oauth() -> String {
    "https://open.weixin.qq.com".into()
}

/// A configuration error that names the key at fault, and the line when the file is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{key}: {message}{}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Invalid {
        key: String,
        message: String,
        line: Option<usize>,
    },
}

impl Config {
    /// Parse a TOML text; `path` only labels errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0);
            ConfigError::Syntax {
                path: path.to_owned(),
                line,
                message: e.message().trim().to_string(),
            }
        })?;
        config.apply_defaults();
        config.validate(Some(text))?;
        Ok(config)
    }

    /// Read a file, apply the environment, validate.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::from_toml(&text, path)?;
        config.apply_env(std::env::vars())?;
        config.validate(Some(&text))?;
        Ok(config)
    }

    /// The config used when there is no file: one wall on the built-in web join page.
    pub fn builtin() -> Self {
        let mut c = Config::default();
        c.apply_defaults();
        c
    }

    fn apply_defaults(&mut self) {
        if self.walls.is_empty() {
            self.walls.push(WallConfig {
                id: "main".into(),
                title: "Voicewall".into(),
                locale: default_locale(),
                theme: ThemeConfig::default(),
                web: Some(WebConfig::default()),
                wechat: None,
                telegram: None,
            });
        }
    }

    /// `VOICEWALL_SERVER_LISTEN`, `VOICEWALL_SERVER_PUBLIC_URL`, `VOICEWALL_STORAGE_DATA_DIR`,
    /// `VOICEWALL_AUDIO_OUTPUT`, `VOICEWALL_AUDIO_VOLUME`, `VOICEWALL_AUDIO_AUTOPLAY`, `VOICEWALL_ADMIN_TOKEN`.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        for (k, v) in vars {
            let Some(key) = k.strip_prefix("VOICEWALL_") else {
                continue;
            };
            let bad = |m: &str| ConfigError::Invalid {
                key: k.clone(),
                message: m.into(),
                line: None,
            };
            match key {
                "SERVER_LISTEN" => self.server.listen = v,
                "SERVER_PUBLIC_URL" => self.server.public_url = Some(v),
                "STORAGE_DATA_DIR" => self.storage.data_dir = Some(v.into()),
                "AUDIO_OUTPUT" => self.audio.output = v,
                "AUDIO_VOLUME" => {
                    self.audio.volume = v.parse().map_err(|_| bad("not a number"))?;
                }
                "AUDIO_AUTOPLAY" => {
                    self.audio.autoplay = v.parse().map_err(|_| bad("not true/false"))?;
                }
                "ADMIN_TOKEN" => self.admin.token = Some(v),
                _ => {}
            }
        }
        Ok(())
    }

    /// Check every value; `text` (the file) lets an error point at a line.
    pub fn validate(&self, text: Option<&str>) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String, needle: &str| ConfigError::Invalid {
            key: key.into(),
            message,
            line: text.and_then(|t| find_line(t, needle)),
        };
        self.server.listen.parse::<SocketAddr>().map_err(|_| {
            invalid(
                "server.listen",
                format!(
                    "{:?} is not an address like 0.0.0.0:8787",
                    self.server.listen
                ),
                "listen",
            )
        })?;
        if let Some(url) = &self.server.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "server.public_url",
                    format!("{url:?} must start with http:// or https://"),
                    "public_url",
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.audio.volume) {
            return Err(invalid(
                "audio.volume",
                format!("{} is outside 0.0–1.0", self.audio.volume),
                "volume",
            ));
        }
        if self.audio.output.trim().is_empty() {
            return Err(invalid(
                "audio.output",
                "must be \"default\", \"null\" or a device name".into(),
                "output",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, w) in self.walls.iter().enumerate() {
            let key = |k: &str| format!("walls[{i}].{k}");
            if w.id.is_empty()
                || !w
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    &key("id"),
                    format!("{:?} must be URL-safe (letters, digits, - and _)", w.id),
                    &format!("\"{}\"", w.id),
                ));
            }
            if !seen.insert(w.id.clone()) {
                return Err(invalid(
                    &key("id"),
                    format!("{:?} is used by two walls", w.id),
                    &format!("\"{}\"", w.id),
                ));
            }
            if w.locale != "zh-CN" && w.locale != "en" {
                return Err(invalid(
                    &key("locale"),
                    format!("{:?} must be \"zh-CN\" or \"en\"", w.locale),
                    "locale",
                ));
            }
            let providers =
                w.web.is_some() as u8 + w.wechat.is_some() as u8 + w.telegram.is_some() as u8;
            if providers != 1 {
                return Err(invalid(
                    &key("web"),
                    "each wall needs exactly one provider table: [walls.web], [walls.wechat] or [walls.telegram]".into(),
                    &format!("\"{}\"", w.id),
                ));
            }
            if let Some(wx) = &w.wechat {
                for (name, value) in [
                    ("app_id", &wx.app_id),
                    ("app_secret", &wx.app_secret),
                    ("token", &wx.token),
                    ("original_id", &wx.original_id),
                ] {
                    if value.trim().is_empty() {
                        return Err(invalid(
                            &key(&format!("wechat.{name}")),
                            "must not be empty".into(),
                            name,
                        ));
                    }
                }
                if let Some(k) = &wx.encoding_aes_key {
                    if k.len() != 43 {
                        return Err(invalid(
                            &key("wechat.encoding_aes_key"),
                            format!("must be 43 characters, has {}", k.len()),
                            "encoding_aes_key",
                        ));
                    }
                }
            }
            if let Some(web) = &w.web {
                if web.token_rotate_s < 10 {
                    return Err(invalid(
                        &key("web.token_rotate_s"),
                        "must be at least 10 seconds".into(),
                        "token_rotate_s",
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.server.listen.parse().expect("validated")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.storage
            .data_dir
            .clone()
            .unwrap_or_else(default_data_dir)
    }

    pub fn wall(&self, id: &str) -> Option<&WallConfig> {
        self.walls.iter().find(|w| w.id == id)
    }
}

fn find_line(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.contains(needle) && !l.trim_start().starts_with('#'))
        .map(|i| i + 1)
}

pub fn default_config_path() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("voicewall")
        .join("voicewall.toml")
}

pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("voicewall")
}

/// The commented default config written on first run.
pub const DEFAULT_CONFIG_TOML: &str = r##"# Voicewall configuration. Every key is optional; this file shows the defaults.
# Environment variables VOICEWALL_SERVER_LISTEN, VOICEWALL_SERVER_PUBLIC_URL, VOICEWALL_STORAGE_DATA_DIR,
# VOICEWALL_AUDIO_OUTPUT, VOICEWALL_AUDIO_VOLUME, VOICEWALL_AUDIO_AUTOPLAY and VOICEWALL_ADMIN_TOKEN override single keys.

[server]
listen = "0.0.0.0:8787"
# What the join QR code encodes. Default: this machine's LAN IPv4 address and the listen port.
# public_url = "http://192.168.1.20:8787"
# HTTPS lets phones use their microphone on the join page (see README). Empty cert/key: self-signed.
# [server.tls]
# cert = "/etc/voicewall/cert.pem"
# key = "/etc/voicewall/key.pem"

[storage]
# data_dir = "/var/lib/voicewall"     # default: the OS data dir

[audio]
output = "default"      # "default", "null" (silent, real-time) or a device name
volume = 1.0
autoplay = true         # play each new message by itself, in arrival order
gap_ms = 800            # silence between queued messages
max_duration_s = 120

[admin]
# token = "…"           # generated on first run if absent, and logged once

[[walls]]
id = "main"
title = "Voicewall"
locale = "zh-CN"        # "zh-CN" or "en"
# [walls.theme]
# background = "#0b1020"
# accent = "#ffb703"
# safe_margin_pct = 2.0
[walls.web]             # the built-in web join page: no platform account needed
# token_rotate_s = 600
# token_grace_s = 300

# A WeChat Official Account wall:
# [[walls]]
# id = "wx"
# title = "…"
# [walls.wechat]
# app_id = "wx…"
# app_secret = "…"
# token = "…"
# encoding_aes_key = "…"   # 43 chars: safe/compatible mode
# original_id = "gh_…"
"##;

/// Load `path`, or write the commented default there first when it does not exist.
pub fn load_or_create(path: &Path) -> Result<Config, ConfigError> {
    if !path.exists() {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::write(path, DEFAULT_CONFIG_TOML).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        tracing::info!(path = %path.display(), "wrote a default config");
    }
    Config::load(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_parses_to_one_web_wall() {
        let c = Config::from_toml(DEFAULT_CONFIG_TOML, Path::new("x")).unwrap();
        assert_eq!(c.walls.len(), 1);
        assert_eq!(c.walls[0].id, "main");
        assert!(c.walls[0].web.is_some());
        assert_eq!(c.server.listen, "0.0.0.0:8787");
    }

    #[test]
    fn errors_name_key_and_line() {
        let text = "[server]\nlisten = \"nope\"\n";
        let e = Config::from_toml(text, Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.listen") && e.contains("line 2"), "{e}");

        let text = "[audio]\nvolume = 3.0\n";
        let e = Config::from_toml(text, Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("audio.volume") && e.contains("line 2"), "{e}");

        let text = "[server]\nlisen = \"0.0.0.0:1\"\n";
        let e = Config::from_toml(text, Path::new("f.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.toml:2:") && e.contains("lisen"), "{e}");

        let text = "[[walls]]\nid = \"a b\"\n[walls.web]\n";
        let e = Config::from_toml(text, Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("walls[0].id") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn env_overrides_single_keys() {
        let mut c = Config::builtin();
        c.apply_env([
            (
                "VOICEWALL_SERVER_LISTEN".to_string(),
                "127.0.0.1:0".to_string(),
            ),
            ("VOICEWALL_AUDIO_OUTPUT".to_string(), "null".to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ])
        .unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:0");
        assert_eq!(c.audio.output, "null");
        let e = c
            .apply_env([("VOICEWALL_AUDIO_VOLUME".to_string(), "loud".to_string())])
            .unwrap_err();
        assert!(e.to_string().contains("VOICEWALL_AUDIO_VOLUME"));
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let text = "[admin]\ntoken = \"s3cret\"\n[[walls]]\nid = \"w\"\n[walls.wechat]\napp_id = \"wx1\"\napp_secret = \"topsecret\"\ntoken = \"tok\"\noriginal_id = \"gh_1\"\n";
        let c = Config::from_toml(text, Path::new("x")).unwrap();
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("s3cret") && !dbg.contains("topsecret"),
            "{dbg}"
        );
    }
}
