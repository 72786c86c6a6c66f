//! Configuration: built-in defaults → one TOML file → `VOICEWALL_…` environment overrides.
//!
//! Validation errors name the key, and the line when the file is at fault or the variable when the
//! environment is, so a technician can fix a venue's config without reading code. The line of every key is
//! recorded when the file is parsed (toml_edit spans; serde_path_to_error gives the key of a type error).
//! Each wall's provider section is kept as written (name + raw table, [`ProviderSection`]) for the provider
//! to parse and check itself. Secrets are never printed by `Debug`.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// Lines, environment variables and raw provider sections behind the values (not configuration).
    #[serde(skip)]
    pub origins: Arc<Origins>,
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
    /// Reverse proxies (or tunnels) in front of the kiosk: only a request from one of these networks has
    /// its `X-Forwarded-For` believed (for rate limits and logs). It never grants access.
    #[serde(default)]
    pub trusted_proxies: Vec<Cidr>,
    /// Seconds a client has to send a request's headers; also how long an idle keep-alive connection
    /// stays open (a slowloris socket is closed after this).
    #[serde(default = "default_header_timeout_s")]
    pub header_timeout_s: u64,
    /// A request body that sends nothing for this many seconds, or less than `body_min_bytes_per_s` on
    /// average after them, is cut off (a lying `Content-Length` gets an answer, not a hang).
    #[serde(default = "default_body_timeout_s")]
    pub body_timeout_s: u64,
    #[serde(default = "default_body_min_bytes_per_s")]
    pub body_min_bytes_per_s: u64,
    /// Open connections at most (TLS and plain); more are closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Event streams (`/api/walls/{id}/events`) one client address may hold open at once.
    #[serde(default = "default_sse_per_client")]
    pub sse_per_client: usize,
    /// The largest body of a route without its own limit (uploads and webhooks have theirs).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

/// A network, `10.0.0.0/8` or `::1/128` (a bare address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a network like \"10.0.0.0/8\" or \"::1/128\"");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let net: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { net, prefix })
    }

    /// Is `ip` in this network? (An IPv4-mapped IPv6 address counts as its IPv4 address.)
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (net, ip, bits) = match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (u32::from(n) as u128, u32::from(i) as u128, 32),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        shift >= bits || (net >> shift) == (ip >> shift)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain and key. Both empty (`""` or absent): a self-signed pair is generated under
    /// data_dir.
    #[serde(default, deserialize_with = "empty_path_is_none")]
    pub cert: Option<PathBuf>,
    #[serde(default, deserialize_with = "empty_path_is_none")]
    pub key: Option<PathBuf>,
}

/// `cert = ""` means "none" (the README's "both empty"), not a file named "".
fn empty_path_is_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let v: Option<PathBuf> = Option::deserialize(d)?;
    Ok(v.filter(|p| !p.as_os_str().is_empty()))
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            public_url: None,
            tls: None,
            trusted_proxies: Vec::new(),
            header_timeout_s: default_header_timeout_s(),
            body_timeout_s: default_body_timeout_s(),
            body_min_bytes_per_s: default_body_min_bytes_per_s(),
            max_connections: default_max_connections(),
            sse_per_client: default_sse_per_client(),
            max_body_bytes: default_max_body_bytes(),
        }
    }
}

fn default_listen() -> String {
    "0.0.0.0:8787".into()
}

fn default_header_timeout_s() -> u64 {
    10
}

fn default_body_timeout_s() -> u64 {
    10
}

fn default_body_min_bytes_per_s() -> u64 {
    1024
}

fn default_max_connections() -> usize {
    512
}

fn default_sse_per_client() -> usize {
    8
}

fn default_max_body_bytes() -> usize {
    1024 * 1024
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Where sled, the media cache and the logs live. Empty: the OS data dir.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Below this much free space on the data dir's disk, new pushes and uploads get 503 (the
    /// platforms retry later); the wall keeps running and `/healthz` says why.
    #[serde(default = "default_min_free_bytes")]
    pub min_free_bytes: u64,
    /// The stored media (voices, pictures, avatars) kept at most, in bytes: past it the oldest media no
    /// longer shown is evicted (never a shown, queued or held message's, never an avatar); `/healthz`
    /// `media` has the figures.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// The database's page cache (sled's `cache_capacity`), in bytes. The process holds several times
    /// this figure once the database is bigger than it (sled's own accounting undercounts), so it is
    /// the knob for the kiosk's memory; smaller means more reads from the disk (the OS caches those).
    #[serde(default = "default_cache_bytes")]
    pub cache_bytes: u64,
}

fn default_min_free_bytes() -> u64 {
    256 * 1024 * 1024
}

fn default_max_bytes() -> u64 {
    2 * 1024 * 1024 * 1024
}

fn default_cache_bytes() -> u64 {
    crate::store::CACHE_CAPACITY
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: None,
            min_free_bytes: default_min_free_bytes(),
            max_bytes: default_max_bytes(),
            cache_bytes: default_cache_bytes(),
        }
    }
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
    /// Most voices waiting for the speakers; past it the newest of whoever has the most queued is
    /// dropped from the queue (it stays on the wall). See `queue`.
    #[serde(default = "default_queue_max")]
    pub queue_max: usize,
    /// Decoded samples kept in memory, in bytes, so that a voice's analysis and its playback share one
    /// decode; the newest decode is always kept. Part of the kiosk's memory (see `media`).
    #[serde(default = "default_decoded_cache_bytes")]
    pub decoded_cache_bytes: u64,
}

impl Default for AudioConfig {
    fn default() -> Self {
        Self {
            output: default_output(),
            volume: default_volume(),
            autoplay: true,
            gap_ms: default_gap_ms(),
            max_duration_s: default_max_duration(),
            queue_max: default_queue_max(),
            decoded_cache_bytes: default_decoded_cache_bytes(),
        }
    }
}

fn default_decoded_cache_bytes() -> u64 {
    crate::media::CACHE_BYTES as u64
}

fn default_queue_max() -> usize {
    200
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

/// One wall: the keys every wall has, and its provider table. The provider table is not a field: every
/// other key of the wall is collected as written (`providers`), so a platform needs no field here — only
/// its module and its line in `providers::PLATFORMS`. Validation then wants exactly one table among them
/// (`[walls.NAME]`) and refuses any other key as a misspelled common key, naming it and its line.
#[derive(Clone, Deserialize, Serialize)]
pub struct WallConfig {
    pub id: String,
    #[serde(default = "default_title")]
    pub title: String,
    #[serde(default = "default_locale")]
    pub locale: String,
    /// How long a guest's name, picture and voices are kept, in days (the retention sweeper deletes
    /// older messages, their media and derived data, and people with nothing left). The join page says it.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    #[serde(default)]
    pub theme: ThemeConfig,
    /// `"post"` (default): messages show at once, the operator may remove them; `"pre"`: held until
    /// approved. The operator can switch it live (the live value is kept in the store until this key
    /// is edited: then the config wins at the next start, `Board::follow_config`).
    #[serde(default)]
    pub moderation: crate::domain::ModerationMode,
    /// Replay approved voices when nothing new arrived for this many seconds (default: off).
    #[serde(default)]
    pub idle_loop_s: Option<u64>,
    /// Every other key of the wall, as written: its provider table (`[walls.web]`, `[walls.wechat]`, …;
    /// validation wants exactly one), which the provider parses and checks itself ([`ProviderSection`],
    /// `providers::check`). A key here that is not a table is a misspelled common key (an error).
    #[serde(flatten)]
    pub providers: std::collections::BTreeMap<String, toml::Value>,
}

impl WallConfig {
    /// A wall with this id, every common key at its default and no provider table (for code and tests:
    /// keys added later with serde defaults are filled in here too).
    pub fn with_id(id: &str) -> Self {
        let mut table = toml::Table::new();
        table.insert("id".into(), id.into());
        toml::Value::Table(table)
            .try_into()
            .expect("every common key but the id has a default")
    }

    /// This wall with `[walls.NAME]` as its only provider table.
    pub fn with_provider(mut self, name: &str, table: toml::Table) -> Self {
        self.providers = [(name.to_string(), toml::Value::Table(table))].into();
        self
    }

    /// The provider table: its name and contents (the first one; validation wants exactly one).
    pub fn provider_table(&self) -> Option<(&str, &toml::Table)> {
        self.provider_tables().next()
    }

    /// The wall's tables besides the common ones (`[walls.theme]`): its provider table(s).
    fn provider_tables(&self) -> impl Iterator<Item = (&str, &toml::Table)> {
        self.providers
            .iter()
            .filter_map(|(name, v)| v.as_table().map(|t| (name.as_str(), t)))
    }

    /// The keys every wall has (`id`, `title`, …), read from the type itself.
    fn common_keys() -> Vec<String> {
        match serde_json::to_value(Self::with_id("x")) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

impl std::fmt::Debug for WallConfig {
    // Provider tables hold secrets (app_secret, bot tokens): name the provider only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WallConfig")
            .field("id", &self.id)
            .field("title", &self.title)
            .field("locale", &self.locale)
            .field("theme", &self.theme)
            .field("provider", &self.provider_table().map(|(name, _)| name))
            .finish()
    }
}

fn default_title() -> String {
    "Voicewall".into()
}
fn default_locale() -> String {
    "zh-CN".into()
}
pub fn default_retention_days() -> u32 {
    30
}
/// Ten years: longer is a typo, not a policy.
const MAX_RETENTION_DAYS: u32 = 3650;

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

/// A configuration error that names the key at fault, and the line when the file is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not TOML at all.
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A key holds a value that is not allowed (or a key that does not exist).
    #[error("{key}: {message}{}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Invalid {
        key: String,
        message: String,
        line: Option<usize>,
    },
    /// An environment variable: unknown, or its value does not fit its key.
    #[error("{var}: {message}")]
    Env { var: String, message: String },
}

/// Where each value came from: the file's line of every key (`walls[0].web.token_rotate_s` → 12) and the
/// keys set by environment variables.
#[derive(Clone, Default)]
pub struct Origins {
    lines: HashMap<String, usize>,
    env: HashMap<String, String>,
}

impl std::fmt::Debug for Origins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origins")
            .field("keys", &self.lines.len())
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

impl Origins {
    /// The line of `key`, else of the nearest enclosing key or table that has one.
    fn line(&self, key: &str) -> Option<usize> {
        let mut k = key;
        loop {
            if let Some(l) = self.lines.get(k) {
                return Some(*l);
            }
            let cut = k.rfind(['.', '['])?;
            k = &k[..cut];
        }
    }

    fn invalid(&self, key: &str, message: String) -> ConfigError {
        match self.env.get(key) {
            Some(var) => ConfigError::Invalid {
                key: key.into(),
                message: format!("{message} (set by {var})"),
                line: None,
            },
            None => ConfigError::Invalid {
                key: key.into(),
                message,
                line: self.line(key),
            },
        }
    }
}

/// One wall's provider section: the provider's name (`web`, `wechat`, `telegram`, …) and its table as
/// written, with the lines of its keys. The provider module parses and checks its own typed config from
/// it ([`ProviderSection::parse`], `providers::check`); its errors name the full key
/// (`walls[0].wechat.app_id`) and its line, or the variable that set it.
#[derive(Clone)]
pub struct ProviderSection {
    /// The index of the wall in the config.
    pub wall: usize,
    /// The wall's id (empty for a section built in code).
    pub wall_id: String,
    /// The platform, e.g. `"wechat"` (the table's name in `[walls.wechat]`).
    pub name: String,
    pub table: toml::Table,
    origins: Arc<Origins>,
}

impl std::fmt::Debug for ProviderSection {
    // The table holds secrets: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSection")
            .field("wall", &self.wall)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ProviderSection {
    /// A section known only by its table (a wall built in code, a test): errors name keys, not lines.
    pub fn new(wall: usize, name: &str, table: toml::Table) -> Self {
        Self {
            wall,
            wall_id: String::new(),
            name: name.into(),
            table,
            origins: Arc::default(),
        }
    }

    /// The key path of the whole section, e.g. `walls[0].wechat`.
    pub fn path(&self) -> String {
        format!("walls[{}].{}", self.wall, self.name)
    }

    /// The full key of one of this section's keys, e.g. `walls[0].wechat.app_id`.
    pub fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.path())
    }

    /// An error about the whole section (e.g. an unknown platform), with the line of its table.
    pub fn invalid_section(&self, message: impl Into<String>) -> ConfigError {
        self.origins.invalid(&self.path(), message.into())
    }

    /// An error about one of this section's keys, with its line.
    pub fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        self.origins.invalid(&self.key(key), message.into())
    }

    /// Deserialise the section into the provider's typed config; errors name the key and line.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let value = toml::Value::Table(self.table.clone());
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = path_key(e.path());
            let key = if path.is_empty() {
                self.path()
            } else {
                self.key(&path)
            };
            self.origins
                .invalid(&key, e.inner().message().trim().to_string())
        })
    }
}

/// `walls[0].web.token_rotate_s` from a serde path.
fn path_key(path: &serde_path_to_error::Path) -> String {
    let mut key = String::new();
    for segment in path {
        match segment {
            serde_path_to_error::Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key: k } => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(k);
            }
            serde_path_to_error::Segment::Enum { variant } => {
                key.push('.');
                key.push_str(variant);
            }
            serde_path_to_error::Segment::Unknown => key.push_str(".?"),
        }
    }
    key
}

/// 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Record the line of every key and table of a parsed document.
fn index_lines(
    text: &str,
    table: &dyn toml_edit::TableLike,
    prefix: &str,
    out: &mut HashMap<String, usize>,
) {
    for (k, item) in table.iter() {
        let path = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        };
        let span = table
            .key(k)
            .and_then(|key| key.span())
            .or_else(|| item.span());
        if let Some(s) = span {
            out.insert(path.clone(), line_at(text, s.start));
        }
        match item {
            toml_edit::Item::Table(t) => {
                if let Some(s) = t.span() {
                    out.insert(path.clone(), line_at(text, s.start));
                }
                index_lines(text, t, &path, out);
            }
            toml_edit::Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    if let Some(s) = t.span() {
                        out.insert(p.clone(), line_at(text, s.start));
                    }
                    index_lines(text, t, &p, out);
                }
            }
            toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => {
                index_lines(text, t, &path, out)
            }
            _ => {}
        }
    }
}

/// An environment value that does not fit its key's type.
#[derive(Debug, thiserror::Error)]
enum BadValue {
    #[error("{0:?} is not a number")]
    NotANumber(String),
    #[error("{0:?} is not true/false")]
    NotABool(String),
}

/// Variables that start with `VOICEWALL_` but are not configuration: the test tools' path to the binary.
const NOT_CONFIG: &[&str] = &["VOICEWALL_BIN"];

/// The keys an environment variable may set: `VOICEWALL_` + the key in capitals, dots as `_`.
pub const ENV_KEYS: &[&str] = &[
    "server.listen",
    "server.public_url",
    "server.tls.cert",
    "server.tls.key",
    "storage.data_dir",
    "storage.min_free_bytes",
    "storage.max_bytes",
    "storage.cache_bytes",
    "audio.output",
    "audio.volume",
    "audio.autoplay",
    "audio.gap_ms",
    "audio.max_duration_s",
    "audio.queue_max",
    "audio.decoded_cache_bytes",
    "admin.token",
];

/// `server.public_url` → `VOICEWALL_SERVER_PUBLIC_URL`.
pub fn env_var(key: &str) -> String {
    format!("VOICEWALL_{}", key.replace('.', "_").to_ascii_uppercase())
}

impl Config {
    /// Built-in defaults → this TOML text (`path` only labels errors), validated. No environment.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config = Self::parse_file(text, path)?;
        config.validate(Some(text))?;
        Ok(config)
    }

    /// Defaults and the file, not yet validated.
    fn parse_file(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let doc = toml_edit::ImDocument::parse(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            line: e.span().map(|s| line_at(text, s.start)).unwrap_or(1),
            message: e.message().trim().to_string(),
        })?;
        let mut origins = Origins::default();
        index_lines(text, doc.as_table(), "", &mut origins.lines);
        let mut config: Config = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| {
                let key = path_key(e.path());
                let line = origins
                    .line(&key)
                    .or_else(|| e.inner().span().map(|s| line_at(text, s.start)));
                ConfigError::Invalid {
                    key: if key.is_empty() {
                        "(top level)".into()
                    } else {
                        key
                    },
                    message: e.inner().message().trim().to_string(),
                    line,
                }
            })?;
        config.origins = Arc::new(origins);
        config.apply_defaults();
        Ok(config)
    }

    /// Read a file, then the environment on top, validate.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse_file(&text, path)?;
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
            // An empty table: the join page with its defaults.
            self.walls
                .push(WallConfig::with_id("main").with_provider("web", toml::Table::new()));
        }
    }

    /// The environment layer: `VOICEWALL_` + a key of [`ENV_KEYS`] in capitals (e.g.
    /// `VOICEWALL_SERVER_LISTEN`, `VOICEWALL_AUDIO_VOLUME`). Any other `VOICEWALL_…` variable is an error
    /// that names it (a typo must not be silently ignored).
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("VOICEWALL_") && !NOT_CONFIG.contains(&k.as_str()))
            .collect();
        vars.sort();
        for (var, value) in vars {
            let Some(key) = ENV_KEYS.iter().find(|k| env_var(k) == var) else {
                let suffix = var.trim_start_matches("VOICEWALL_");
                let hint = ENV_KEYS
                    .iter()
                    .map(|k| env_var(k))
                    .find(|known| known.ends_with(&format!("_{suffix}")))
                    .map(|known| format!(" (did you mean {known}?)"))
                    .unwrap_or_default();
                return Err(ConfigError::Env {
                    message: format!(
                        "unknown variable{hint}; Voicewall reads {}",
                        ENV_KEYS
                            .iter()
                            .map(|k| env_var(k))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    var,
                });
            };
            self.set_from_env(key, &value)
                .map_err(|message| ConfigError::Env {
                    var: var.clone(),
                    message: format!("{message} (sets {key})"),
                })?;
            Arc::make_mut(&mut self.origins)
                .env
                .insert(key.to_string(), var);
        }
        Ok(())
    }

    fn set_from_env(&mut self, key: &str, v: &str) -> Result<(), BadValue> {
        fn num<T: std::str::FromStr>(v: &str) -> Result<T, BadValue> {
            v.trim().parse().map_err(|_| BadValue::NotANumber(v.into()))
        }
        let path = |v: &str| (!v.is_empty()).then(|| PathBuf::from(v));
        match key {
            "server.listen" => self.server.listen = v.into(),
            "server.public_url" => self.server.public_url = (!v.is_empty()).then(|| v.into()),
            "server.tls.cert" => {
                self.server.tls.get_or_insert_with(Default::default).cert = path(v)
            }
            "server.tls.key" => self.server.tls.get_or_insert_with(Default::default).key = path(v),
            "storage.data_dir" => self.storage.data_dir = path(v),
            "storage.min_free_bytes" => self.storage.min_free_bytes = num(v)?,
            "storage.max_bytes" => self.storage.max_bytes = num(v)?,
            "storage.cache_bytes" => self.storage.cache_bytes = num(v)?,
            "audio.output" => self.audio.output = v.into(),
            "audio.volume" => self.audio.volume = num(v)?,
            "audio.autoplay" => {
                self.audio.autoplay = v.trim().parse().map_err(|_| BadValue::NotABool(v.into()))?
            }
            "audio.gap_ms" => self.audio.gap_ms = num(v)?,
            "audio.max_duration_s" => self.audio.max_duration_s = num(v)?,
            "audio.queue_max" => self.audio.queue_max = num(v)?,
            "audio.decoded_cache_bytes" => self.audio.decoded_cache_bytes = num(v)?,
            "admin.token" => self.admin.token = Some(v.into()),
            other => unreachable!("ENV_KEYS lists {other} without a setter"),
        }
        Ok(())
    }

    /// Each wall's provider section (name and raw table, with the lines of its keys), in wall order: what
    /// `providers::check` (check-config) and `providers::build` (serve) read.
    pub fn provider_sections(&self) -> Vec<ProviderSection> {
        self.walls
            .iter()
            .enumerate()
            .map(|(i, w)| {
                // Validation guarantees one table; a wall built in code without one gets the join page.
                let (name, table) = w
                    .provider_table()
                    .map(|(name, t)| (name, t.clone()))
                    .unwrap_or(("web", toml::Table::new()));
                ProviderSection {
                    wall: i,
                    wall_id: w.id.clone(),
                    name: name.into(),
                    table,
                    origins: self.origins.clone(),
                }
            })
            .collect()
    }

    /// Check every value; errors name the key, and the line (from the file) or the variable (from the
    /// environment) that set it. (`_text` is kept for callers; the lines are recorded at parse time.)
    pub fn validate(&self, _text: Option<&str>) -> Result<(), ConfigError> {
        let o = &self.origins;
        self.server.listen.parse::<SocketAddr>().map_err(|_| {
            o.invalid(
                "server.listen",
                format!(
                    "{:?} is not an address like 0.0.0.0:8787",
                    self.server.listen
                ),
            )
        })?;
        if let Some(url) = &self.server.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(o.invalid(
                    "server.public_url",
                    format!("{url:?} must start with http:// or https://"),
                ));
            }
        }
        if let Some(tls) = &self.server.tls {
            tls.check(o)?;
        }
        if self
            .admin
            .token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(o.invalid(
                "admin.token",
                "[admin] token is empty: set it to a long secret, or remove the line to have one generated"
                    .into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.audio.volume) {
            return Err(o.invalid(
                "audio.volume",
                format!("{} is outside 0.0–1.0", self.audio.volume),
            ));
        }
        if self.storage.cache_bytes < 1024 * 1024 {
            return Err(o.invalid(
                "storage.cache_bytes",
                format!(
                    "{} is below 1 MiB (the database's page cache, in bytes)",
                    self.storage.cache_bytes
                ),
            ));
        }
        if self.storage.max_bytes == 0 {
            return Err(o.invalid(
                "storage.max_bytes",
                "must be more than 0 (the stored media kept at most, in bytes)".into(),
            ));
        }
        if self.audio.output.trim().is_empty() {
            return Err(o.invalid(
                "audio.output",
                "must be \"default\", \"null\" or a device name".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, w) in self.walls.iter().enumerate() {
            let key = |k: &str| format!("walls[{i}].{k}");
            if !valid_wall_id(&w.id) {
                return Err(o.invalid(
                    &key("id"),
                    format!(
                        "{:?} must be 1 to {MAX_WALL_ID} characters of A-Z a-z 0-9 _ - (it is in every URL of the wall and in platforms' deep links)",
                        w.id
                    ),
                ));
            }
            if !seen.insert(w.id.clone()) {
                return Err(o.invalid(&key("id"), format!("{:?} is used by two walls", w.id)));
            }
            if w.locale != "zh-CN" && w.locale != "en" {
                return Err(o.invalid(
                    &key("locale"),
                    format!("{:?} must be \"zh-CN\" or \"en\"", w.locale),
                ));
            }
            if !(1..=MAX_RETENTION_DAYS).contains(&w.retention_days) {
                return Err(o.invalid(
                    &key("retention_days"),
                    format!(
                        "{} must be a number of days from 1 to {MAX_RETENTION_DAYS}",
                        w.retention_days
                    ),
                ));
            }
            if let Some((name, _)) = w.providers.iter().find(|(_, v)| !v.is_table()) {
                return Err(o.invalid(
                    &key(name),
                    format!(
                        "unknown key `{name}`: a wall has {} and one provider table [walls.NAME]",
                        WallConfig::common_keys().join(", ")
                    ),
                ));
            }
            let tables: Vec<&str> = w.provider_tables().map(|(name, _)| name).collect();
            if tables.len() != 1 {
                let named = tables
                    .iter()
                    .map(|t| {
                        let line = o.line(&key(t)).map(|l| format!(" (line {l})"));
                        format!("[walls.{t}]{}", line.unwrap_or_default())
                    })
                    .collect::<Vec<_>>();
                return Err(o.invalid(
                    &format!("walls[{i}]"),
                    format!(
                        "wall {:?} needs exactly one provider table [walls.NAME], e.g. [walls.web]; it has {}{}",
                        w.id,
                        tables.len(),
                        if named.is_empty() { String::new() } else { format!(": {}", named.join(", ")) }
                    ),
                ));
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

impl TlsConfig {
    /// Both paths or neither (neither: a self-signed pair is generated); given files must be readable —
    /// exactly what the server needs, so `check-config` refuses what `serve` would.
    fn check(&self, o: &Origins) -> Result<(), ConfigError> {
        match (&self.cert, &self.key) {
            (None, None) => Ok(()),
            (Some(_), None) | (None, Some(_)) => {
                let missing = if self.cert.is_none() { "cert" } else { "key" };
                Err(o.invalid(
                    &format!("server.tls.{missing}"),
                    "give both cert and key, or leave both empty for a self-signed pair".into(),
                ))
            }
            (Some(cert), Some(key)) => {
                for (name, path) in [("cert", cert), ("key", key)] {
                    if let Err(e) = std::fs::File::open(path) {
                        return Err(o.invalid(
                            &format!("server.tls.{name}"),
                            format!("cannot read {}: {e}", path.display()),
                        ));
                    }
                }
                Ok(())
            }
        }
    }
}

/// The longest wall id: a Telegram deep-link payload (`?start=<wall>`) holds at most 64 characters.
pub const MAX_WALL_ID: usize = 64;

/// A wall id is 1 to [`MAX_WALL_ID`] of `A-Z a-z 0-9 _ -`: URL-safe, and a valid Telegram `start` payload.
pub fn valid_wall_id(id: &str) -> bool {
    (1..=MAX_WALL_ID).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
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
# Environment variables override single keys: VOICEWALL_ + the key in capitals, e.g. VOICEWALL_SERVER_LISTEN,
# VOICEWALL_AUDIO_VOLUME, VOICEWALL_ADMIN_TOKEN (an unknown VOICEWALL_ variable is an error).

[server]
listen = "0.0.0.0:8787"
# What the join QR code encodes. Default: this machine's LAN IPv4 address and the listen port.
# public_url = "http://192.168.1.20:8787"
# Reverse proxies or tunnels in front of the kiosk whose X-Forwarded-For is believed (rate limits, logs):
# trusted_proxies = ["127.0.0.1/32"]
# Hostile clients: seconds to send headers (and keep-alive idle), body stall and its minimum rate,
# connections at most, event streams per client address, the body limit of routes without their own.
# header_timeout_s = 10
# body_timeout_s = 10
# body_min_bytes_per_s = 1024
# max_connections = 512
# sse_per_client = 8
# max_body_bytes = 1048576
# HTTPS lets phones use their microphone on the join page (see README). cert = "" and key = "": self-signed.
# [server.tls]
# cert = "/etc/voicewall/cert.pem"
# key = "/etc/voicewall/key.pem"

[storage]
# data_dir = "/var/lib/voicewall"     # default: the OS data dir
min_free_bytes = 268435456            # below this free disk space new pushes get 503 and /healthz says why
max_bytes = 2147483648                # stored media at most: past it the oldest media no longer shown is evicted
cache_bytes = 8388608                 # the database's page cache; the process holds several times this

[audio]
output = "default"      # "default", "null" (silent, real-time) or a device name
volume = 1.0
autoplay = true         # play each new message by itself, in arrival order
gap_ms = 800            # silence between queued messages
max_duration_s = 120
queue_max = 200         # voices waiting at most; past it the newest of whoever has the most queued is dropped
                        # from the queue (it stays on the wall); speakers go round-robin between people
decoded_cache_bytes = 16777216  # decoded voices kept in memory (the one playing and the next few)

[admin]
# token = "…"           # generated on first run if absent, and printed once to the terminal

[[walls]]
id = "main"
title = "Voicewall"
locale = "zh-CN"        # "zh-CN" or "en"
retention_days = 30     # guests' names, pictures and voices are deleted after this many days
# [walls.theme]
# background = "#0b1020"
# accent = "#ffb703"
# safe_margin_pct = 2.0
[walls.web]             # the built-in web join page: no platform account needed
# token_rotate_s = 600
# token_grace_s = 300
# new_devices_per_ip_per_minute = 20   # new phones (device cookies) per client address per minute
# max_participants = 5000              # guests per wall; the next is refused (409 wall_full_of_guests)
# max_messages = 20000                 # messages per wall; a voice beyond is refused (409 wall_full_of_messages)

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
        assert_eq!(c.walls[0].provider_table().map(|(n, _)| n), Some("web"));
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
        assert!(e.contains("server.lisen") && e.contains("line 2"), "{e}");

        let text = "[server]\nlisten = [\n";
        let e = Config::from_toml(text, Path::new("f.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("f.toml:"),
            "a syntax error names the file: {e}"
        );

        let text = "[[walls]]\nid = \"a b\"\n[walls.web]\n";
        let e = Config::from_toml(text, Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("walls[0].id") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn errors_point_at_the_line_of_the_wall_at_fault() {
        // The second wall's locale is wrong; the first wall's `locale` line must not be blamed.
        let text = "[[walls]]\nid = \"a\"\nlocale = \"en\"\n[walls.web]\n\n[[walls]]\nid = \"b\"\nlocale = \"fr\"\n[walls.web]\n";
        let e = Config::from_toml(text, Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("walls[1].locale") && e.contains("line 8"), "{e}");

        // Errors inside a provider section: see `providers::tests` (each provider checks its own).
    }

    #[test]
    fn retention_defaults_to_30_days_and_bad_values_name_key_and_line() {
        let c = Config::from_toml("[[walls]]\nid = \"a\"\n[walls.web]\n", Path::new("x")).unwrap();
        assert_eq!(c.walls[0].retention_days, 30);
        assert_eq!(Config::builtin().walls[0].retention_days, 30);
        let c = Config::from_toml(
            "[[walls]]\nid = \"a\"\nretention_days = 7\n[walls.web]\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.walls[0].retention_days, 7);
        for bad in ["0", "-1", "\"thirty\"", "99999"] {
            let text = format!(
                "[[walls]]\nid = \"a\"\n[walls.web]\n[[walls]]\nid = \"b\"\nretention_days = {bad}\n[walls.web]\n"
            );
            let e = Config::from_toml(&text, Path::new("x"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("walls[1].retention_days") && e.contains("line 6"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn wall_ids_are_telegram_payloads_and_errors_name_key_and_line() {
        assert!(valid_wall_id("a") && valid_wall_id("Hall_2-b") && valid_wall_id(&"x".repeat(64)));
        for bad in ["", "a b", "a/b", "é", "a.b", &"x".repeat(65)] {
            assert!(!valid_wall_id(bad), "{bad:?}");
        }
        let long = "x".repeat(65);
        let text = format!(
            "[[walls]]\nid = \"ok\"\n[walls.web]\n\n[[walls]]\nid = \"{long}\"\n[walls.web]\n"
        );
        let e = Config::from_toml(&text, Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("walls[1].id") && e.contains("line 6") && e.contains("1 to 64"),
            "{e}"
        );
    }

    #[test]
    fn a_misspelled_common_key_is_refused_naming_key_and_line() {
        let text = "[[walls]]\nid = \"a\"\n[walls.web]\n[[walls]]\nid = \"b\"\ntitel = \"Gala\"\n[walls.web]\n";
        let e = Config::from_toml(text, Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("walls[1].titel: unknown key `titel`")
                && e.contains("line 6")
                && e.contains("title")
                && e.contains("retention_days"),
            "{e}"
        );
        // A type error in a common key still names it (the flattened provider map does not hide it).
        let text = "[[walls]]\nid = \"a\"\n[walls.web]\n[[walls]]\nid = \"b\"\nidle_loop_s = \"x\"\n[walls.web]\n";
        let e = Config::from_toml(text, Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("walls[1].idle_loop_s") && e.contains("line 6"),
            "{e}"
        );
    }

    #[test]
    fn a_wall_needs_exactly_one_provider_table_named_with_its_lines() {
        let e = Config::from_toml("[[walls]]\nid = \"a\"\n", Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("walls[0]: wall \"a\" needs exactly one provider table")
                && e.contains("it has 0")
                && e.contains("line 1"),
            "{e}"
        );
        let text = "[[walls]]\nid = \"a\"\n[walls.web]\n[walls.thme]\naccent = \"#fff\"\n";
        let e = Config::from_toml(text, Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("it has 2: [walls.thme] (line 4), [walls.web] (line 3)"),
            "{e}"
        );
        // Any table name parses here: which platforms exist is the registry's business
        // (`providers::check` refuses an unknown one, naming it, its line and the known ones).
        let c = Config::from_toml(
            "[[walls]]\nid = \"a\"\n[walls.matrix]\nx = 1\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.provider_sections()[0].name, "matrix");
    }

    #[test]
    fn a_wall_built_in_code_has_every_default() {
        let w = WallConfig::with_id("w");
        assert_eq!(
            (w.title.as_str(), w.locale.as_str()),
            ("Voicewall", "zh-CN")
        );
        assert_eq!(w.retention_days, 30);
        assert!(w.provider_table().is_none());
        let w = w.with_provider("web", toml::Table::new());
        assert_eq!(w.provider_table().map(|(n, _)| n), Some("web"));
    }

    #[test]
    fn provider_sections_keep_name_and_raw_table() {
        let text = "[[walls]]\nid = \"a\"\n[walls.theme]\naccent = \"#fff\"\n[walls.web]\ntoken_rotate_s = 60\n[[walls]]\nid = \"t\"\n[walls.telegram]\nbot_token = \"x\"\n";
        let c = Config::from_toml(text, Path::new("x")).unwrap();
        let s = c.provider_sections();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].name.as_str(), s[0].wall), ("web", 0));
        assert_eq!(
            s[0].table.get("token_rotate_s").unwrap().as_integer(),
            Some(60)
        );
        assert_eq!(
            (s[1].name.as_str(), s[1].wall_id.as_str()),
            ("telegram", "t")
        );
        let e = s[1].invalid("bot_token", "is not a bot token").to_string();
        assert!(
            e.contains("walls[1].telegram.bot_token") && e.contains("line 10"),
            "{e}"
        );
        // The default wall (built in code) has its section too.
        let b = Config::builtin();
        assert_eq!(b.provider_sections()[0].name, "web");
    }

    #[test]
    fn empty_tls_paths_mean_self_signed_and_half_pairs_name_the_key() {
        let c =
            Config::from_toml("[server.tls]\ncert = \"\"\nkey = \"\"\n", Path::new("x")).unwrap();
        let tls = c.server.tls.unwrap();
        assert!(tls.cert.is_none() && tls.key.is_none());

        let e = Config::from_toml("[server.tls]\ncert = \"/x.pem\"\n", Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.tls.key") && e.contains("line 1"), "{e}");

        let e = Config::from_toml(
            "[server]\n[server.tls]\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n",
            Path::new("x"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("server.tls.cert")
                && e.contains("line 3")
                && e.contains("/nonexistent/c.pem"),
            "{e}"
        );
    }

    #[test]
    fn unknown_voicewall_variables_are_errors_that_name_them() {
        let mut c = Config::builtin();
        let e = c
            .apply_env([("VOICEWALL_LISTEN".to_string(), "0.0.0.0:1".to_string())])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("VOICEWALL_LISTEN: unknown variable")
                && e.contains("did you mean VOICEWALL_SERVER_LISTEN"),
            "{e}"
        );
        // The tools' binary path is not configuration.
        c.apply_env([("VOICEWALL_BIN".to_string(), "/x".to_string())])
            .unwrap();
    }

    #[test]
    fn env_values_are_validated_naming_the_variable() {
        let mut c = Config::from_toml("[audio]\nvolume = 0.5\n", Path::new("x")).unwrap();
        c.apply_env([("VOICEWALL_AUDIO_VOLUME".to_string(), "3".to_string())])
            .unwrap();
        let e = c.validate(None).unwrap_err().to_string();
        assert!(
            e.contains("audio.volume")
                && e.contains("VOICEWALL_AUDIO_VOLUME")
                && !e.contains("line"),
            "{e}"
        );
        let mut c = Config::builtin();
        c.apply_env([
            ("VOICEWALL_SERVER_TLS_CERT".to_string(), "".to_string()),
            ("VOICEWALL_AUDIO_GAP_MS".to_string(), "250".to_string()),
        ])
        .unwrap();
        assert_eq!(c.audio.gap_ms, 250);
        assert!(c.server.tls.as_ref().unwrap().cert.is_none());
        c.validate(None).unwrap();
    }

    #[test]
    fn storage_max_bytes_defaults_to_2_gib_and_is_set_by_its_variable() {
        let mut c = Config::builtin();
        assert_eq!(c.storage.max_bytes, 2 * 1024 * 1024 * 1024);
        c.apply_env([(
            "VOICEWALL_STORAGE_MAX_BYTES".to_string(),
            "1048576".to_string(),
        )])
        .unwrap();
        assert_eq!(c.storage.max_bytes, 1024 * 1024);
        c.storage.max_bytes = 0;
        let e = c.validate(None).unwrap_err().to_string();
        assert!(e.contains("storage.max_bytes"), "{e}");
    }

    #[test]
    fn storage_cache_bytes_is_sled_s_cache_by_default_set_by_its_variable_and_at_least_1_mib() {
        let mut c = Config::builtin();
        assert_eq!(c.storage.cache_bytes, crate::store::CACHE_CAPACITY);
        c.apply_env([(
            "VOICEWALL_STORAGE_CACHE_BYTES".to_string(),
            "8388608".to_string(),
        )])
        .unwrap();
        assert_eq!(c.storage.cache_bytes, 8 * 1024 * 1024);
        c.validate(None).unwrap();
        c.storage.cache_bytes = 4096;
        let e = c.validate(None).unwrap_err().to_string();
        assert!(e.contains("storage.cache_bytes"), "{e}");
    }

    #[test]
    fn audio_decoded_cache_bytes_is_the_media_default_and_set_by_its_variable() {
        let mut c = Config::builtin();
        assert_eq!(
            c.audio.decoded_cache_bytes,
            crate::media::CACHE_BYTES as u64
        );
        c.apply_env([(
            "VOICEWALL_AUDIO_DECODED_CACHE_BYTES".to_string(),
            "0".to_string(),
        )])
        .unwrap();
        assert_eq!(
            c.audio.decoded_cache_bytes, 0,
            "0: only the newest decode is kept"
        );
        c.validate(None).unwrap();
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
        let e = c
            .apply_env([("VOICEWALL_AUDIO_VOLUMEE".to_string(), "1".to_string())])
            .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("VOICEWALL_AUDIO_VOLUMEE: unknown variable"));
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

    #[test]
    fn trusted_proxies_are_networks_and_a_bad_one_names_its_key_and_line() {
        let c = Config::from_toml(
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let [ten, one] = c.server.trusted_proxies[..] else {
            panic!("two networks")
        };
        assert!(ten.contains("10.9.8.7".parse().unwrap()));
        assert!(ten.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!ten.contains("11.0.0.1".parse().unwrap()));
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("127.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        let e = Config::from_toml(
            "[server]\nlisten = \"127.0.0.1:0\"\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
            Path::new("t.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("server.trusted_proxies")
                && e.contains("line 3")
                && e.contains("10.0.0.0/33"),
            "{e}"
        );
    }

    #[test]
    fn an_empty_admin_token_is_refused_by_name() {
        let e = Config::from_toml("[admin]\ntoken = \"\"\n", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[admin] token") && e.contains("line 2"), "{e}");
    }
}
