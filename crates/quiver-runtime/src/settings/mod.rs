//! Service settings: defaults, then a settings file (YAML or TOML), then
//! environment variables, then command-line flags.
//!
//! Environment variables use the seeds' names: `SECTION__KEY` (two
//! underscores between levels) sets `section.key`, e.g.
//! `STRATEGY__WARMUP_TICKS=50`, `QUIVER__REDIS_URL=redis://host:6379`,
//! `QUIVER__REDIS__STREAM=ticks`. Only the `QUIVER__` and `STRATEGY__`
//! prefixes are read, and an unknown key is an error rather than a silent
//! no-op, so a typo cannot leave a setting at its default.
//!
//! Like the strategies file, settings are either entirely valid or refused:
//! every problem is reported at once, each naming where its value came from
//! (`file:line`, the environment variable or the flag) and the setting, e.g.
//!
//! ```text
//! quiver.yaml:4: quiver.redis.partitions: expected an integer, got "four"
//! environment variable QUIVER__SOURCE: quiver.source: "kafka" is not one of synthetic, replay:PATH, redis
//! ```

mod layers;
mod toml_tree;

use layers::{Layers, Origins};

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use quiver_config::yaml::{self, child, line, value, Node, Reader};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: settings files are .yaml, .yml or .toml")]
    Format { path: String },
    /// The file is not YAML: there is nothing to check, so this is the only error.
    #[error(transparent)]
    Syntax(#[from] yaml::SyntaxError),
    #[error("{file}:{line}:{col}: TOML syntax error: {message}")]
    TomlSyntax {
        file: String,
        line: usize,
        /// 1-based, in characters.
        col: usize,
        message: String,
    },
    /// Every problem found, one per line when displayed.
    #[error("{}", yaml::IssueLines(issues))]
    Invalid { issues: Vec<SettingsIssue> },
}

/// Where the value of a setting came from. Ordered as messages list them:
/// the file (by line), then the environment, then flags, then values no
/// layer set.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// The settings file, at this line.
    File { file: String, line: usize },
    /// An environment variable, e.g. `QUIVER__REDIS__STREAM`.
    Env { var: String },
    /// A command-line flag, e.g. `--source`.
    Flag { flag: String },
    /// The default, or a value set in code.
    Default,
}

impl Origin {
    /// Which layer the value is from; a later layer overrides an earlier one.
    fn layer(&self) -> u8 {
        match self {
            Origin::Default => 0,
            Origin::File { .. } => 1,
            Origin::Env { .. } => 2,
            Origin::Flag { .. } => 3,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { file, line } => write!(f, "{file}:{line}"),
            Origin::Env { var } => write!(f, "environment variable {var}"),
            Origin::Flag { flag } => write!(f, "flag {flag}"),
            Origin::Default => f.write_str("settings"),
        }
    }
}

/// One problem with the settings: where the value came from, which setting
/// it is (e.g. `quiver.redis.block_ms`, `quiver.session.weekdays[2]`) and what
/// is wrong with it. A file's problems read like the strategies file's:
/// `{file}:{line}: {key}: {message}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {key}: {message}")]
pub struct SettingsIssue {
    pub origin: Origin,
    pub key: String,
    pub message: String,
}

/// A problem with one setting's value, before it is known where the value
/// came from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SettingProblem {
    pub key: String,
    pub message: String,
}

impl SettingProblem {
    fn new(key: &str, message: impl Into<String>) -> SettingProblem {
        SettingProblem {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// A command-line flag's value for one setting, applied after the
/// environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flag {
    /// As typed, e.g. `--speed`.
    pub flag: &'static str,
    /// The setting, e.g. `quiver.replay.speed`.
    pub key: &'static str,
    /// Read like an environment variable's value.
    pub value: String,
}

/// Every setting. See the README's "Running the service" for the table.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub quiver: ServiceSettings,
    pub strategy: StrategySettings,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceSettings {
    /// `synthetic`, `replay:PATH` or `redis`.
    pub source: String,
    /// `stdout`, `jsonl:PATH` or `redis`; empty: `redis` for the redis
    /// source, `stdout` otherwise.
    pub sink: String,
    pub redis_url: String,
    /// Address of the HTTP endpoints; empty disables them.
    pub http_addr: String,
    /// What a client may hold of the HTTP server.
    pub http: HttpSettings,
    /// Skip background (then all but critical) strategies while batches pile
    /// up in front of the engine. Off by default: a source that fills the
    /// queue as fast as the engine drains it (a replay at full speed, the
    /// backlog after a restart) would shed too, and live would no longer
    /// equal replay.
    pub load_shedding: bool,
    /// Bearer token the admin routes require; empty refuses every mutation
    /// (403). Best given through `QUIVER__ADMIN_TOKEN`, not a file.
    pub admin_token: String,
    /// Ticks per batch read from the source.
    pub batch_size: usize,
    /// Batches each queue between stages holds before the stage in front of
    /// it waits (backpressure).
    pub queue_capacity: usize,
    /// How long shutdown may take to publish and acknowledge what is in flight.
    pub drain_timeout_ms: u64,
    /// Time each strategy evaluation (for `strategy_processing_duration_ms`
    /// and `/strategies` p99): 1 = every evaluation, N = one in N, 0 = off.
    pub strategy_timing_every: u32,
    /// Model registry file; empty: the strategies file's `models:` section.
    pub models: String,
    /// `auto` (ONNX Runtime when its library loads, else tract),
    /// `onnxruntime` or `tract`.
    pub ml_backend: String,
    /// `lazy` (a model loads when a strategy first needs it) or `eager`
    /// (every active model at start).
    pub model_load: String,
    pub redis: RedisSettings,
    /// What the sink does when a broker keeps refusing a strategy's signals.
    pub publish: PublishSettings,
    /// How often the strategies file is checked for changes (a change is
    /// reloaded); 0 = never (SIGHUP and `POST /reload` still reload).
    pub config_watch_ms: u64,
    /// A directory: run the strategies file's paper desk (`paper:`, `risk:`,
    /// `costs:`) beside the brokers, streaming its fills to `trades.csv`
    /// there and writing the rest of the backtest report on shutdown, so a
    /// live session can be judged as `quiver backtest` judges a replay.
    /// Empty: no paper desk.
    pub paper_report: String,
    /// A directory to record every inbound tick into as Parquet
    /// partitions (`<instrument>/YYYYMMDD.parquet`, dates in
    /// `session.timezone`), readable at least every second and finished
    /// on shutdown; `quiver replay --ticks DIR` replays the session.
    /// Empty: no recording.
    pub record: String,
    pub synthetic: SyntheticSettings,
    pub replay: ReplaySettings,
    pub session: SessionSettings,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            source: "synthetic".to_owned(),
            sink: String::new(),
            redis_url: "redis://127.0.0.1:6379/".to_owned(),
            http_addr: "127.0.0.1:9464".to_owned(),
            http: HttpSettings::default(),
            admin_token: String::new(),
            load_shedding: false,
            batch_size: 256,
            queue_capacity: 16,
            drain_timeout_ms: 10_000,
            strategy_timing_every: 1,
            models: String::new(),
            ml_backend: "auto".to_owned(),
            model_load: "lazy".to_owned(),
            redis: RedisSettings::default(),
            publish: PublishSettings::default(),
            config_watch_ms: 1_000,
            paper_report: String::new(),
            record: String::new(),
            synthetic: SyntheticSettings::default(),
            replay: ReplaySettings::default(),
            session: SessionSettings::default(),
        }
    }
}

/// The HTTP server's limits ([`crate::http::HttpLimits`], which documents
/// each); the defaults are its defaults.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub header_read_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub max_connections: usize,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        let limits = crate::http::HttpLimits::default();
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        HttpSettings {
            header_read_timeout_ms: ms(limits.header_read_timeout),
            idle_timeout_ms: ms(limits.idle_timeout),
            request_timeout_ms: ms(limits.request_timeout),
            max_connections: limits.max_connections,
            max_body_bytes: limits.max_body_bytes,
            max_header_bytes: limits.max_header_bytes,
        }
    }
}

impl HttpSettings {
    /// The limits these settings describe.
    pub fn limits(&self) -> crate::http::HttpLimits {
        use std::time::Duration;
        crate::http::HttpLimits {
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            max_connections: self.max_connections,
            max_body_bytes: self.max_body_bytes,
            max_header_bytes: self.max_header_bytes,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// Tick stream (with partitions > 1, `<stream>.<p>`).
    pub stream: String,
    pub partitions: u32,
    pub group: String,
    pub consumer: String,
    /// Where a newly created group starts: `0` (the whole stream) or `$`.
    pub start_id: String,
    pub block_ms: u64,
    /// redis-rs response timeout; must exceed `block_ms`.
    pub response_timeout_ms: u64,
    /// Entries pending this long for another consumer are taken over on start.
    pub claim_min_idle_ms: u64,
    pub signal_stream_prefix: String,
    pub dead_letter_stream: String,
    pub dedup_key_prefix: String,
    /// How long a published signal id is remembered for duplicate checks.
    pub dedup_ttl_s: u64,
    /// Upper bound on tick entries read back to preload history on start.
    pub preload_max_ticks: u64,
    /// Upper bound on the bytes of those entries, so junk in the stream
    /// cannot make a restart read gigabytes back.
    pub preload_max_bytes: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            stream: "market.ticks".to_owned(),
            partitions: 1,
            group: "quiver".to_owned(),
            consumer: "quiver-1".to_owned(),
            start_id: "0".to_owned(),
            block_ms: 200,
            response_timeout_ms: 5_000,
            claim_min_idle_ms: 30_000,
            signal_stream_prefix: "signals.".to_owned(),
            dead_letter_stream: "signals.dlq".to_owned(),
            dedup_key_prefix: "quiver:published:".to_owned(),
            dedup_ttl_s: 86_400,
            preload_max_ticks: 2_000_000,
            preload_max_bytes: 256 << 20,
        }
    }
}

/// Pausing a strategy's emission to a broker that refuses its signals
/// ([`crate::service::EmissionPolicy`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PublishSettings {
    /// Refusals in a row, per (strategy, broker), that pause the emission.
    pub pause_after: u32,
    /// The first pause; each failed retry doubles it, up to the cap.
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
}

impl Default for PublishSettings {
    fn default() -> Self {
        PublishSettings {
            pause_after: 3,
            backoff_base_ms: 1_000,
            backoff_cap_ms: 60_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticSettings {
    /// Ticks per second; 0 = as fast as the engine goes.
    pub rate: f64,
    /// Instruments 1001, 1002, ... (the tokens `quiver demo` uses).
    pub instruments: u32,
    pub seed: u64,
}

impl Default for SyntheticSettings {
    fn default() -> Self {
        SyntheticSettings {
            rate: 1_000.0,
            instruments: 50,
            seed: 1,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReplaySettings {
    /// Multiple of the file's own pace; 0 = as fast as the engine goes.
    pub speed: f64,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        ReplaySettings { speed: 1.0 }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// Off: every tick is in session.
    pub enabled: bool,
    /// IANA time zone of the exchange.
    pub timezone: String,
    /// Local `HH:MM` (or `HH:MM:SS`); the session is [open, close).
    pub open: String,
    pub close: String,
    /// Trading weekdays (`mon` .. `sun`).
    pub weekdays: Vec<String>,
    /// Local dates (`YYYY-MM-DD`) with no session.
    pub holidays: Vec<String>,
    /// Ids of strategies that also trade ticks outside the session.
    pub allow_outside: Vec<String>,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            enabled: false,
            timezone: "Asia/Kolkata".to_owned(),
            open: "09:15".to_owned(),
            close: "15:30".to_owned(),
            weekdays: ["mon", "tue", "wed", "thu", "fri"]
                .map(str::to_owned)
                .to_vec(),
            holidays: Vec::new(),
            allow_outside: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StrategySettings {
    /// Ceiling on the history a strategy may declare (ticks per instrument);
    /// 0 = no ceiling. A strategy needing more is refused at start.
    pub history_store_size: usize,
    /// Minimum ticks of history before any strategy sees an instrument; 0 =
    /// each strategy's own declared history (what `quiver replay` does).
    pub warmup_ticks: usize,
    /// How long an inference worker holding a partial batch waits for more
    /// requests; an idle engine never waits for it.
    pub batch_window_ms: u64,
    /// Rows per model call (each call padded to it, so live results have
    /// the bits of a replay with `--call-rows` equal to it).
    pub max_batch_size: usize,
    /// Inference worker threads.
    pub max_ml_workers: usize,
    /// Inference requests queued at most; beyond it a request is HOLD. One
    /// batch's requests are queued at a time, so it should hold a batch's
    /// worth (the service warns at start when it cannot).
    pub ml_pool_queue_size: usize,
    /// From request to result; a late result is HOLD (live only: replay
    /// never times out). Also the deadline of one model call in live
    /// ([`StrategySettings::inference_deadline`]).
    pub inference_timeout_seconds: f64,
}

impl Default for StrategySettings {
    fn default() -> Self {
        StrategySettings {
            history_store_size: 0,
            warmup_ticks: 0,
            batch_window_ms: 2,
            max_batch_size: 64,
            max_ml_workers: 1,
            ml_pool_queue_size: 8192,
            inference_timeout_seconds: 0.1,
        }
    }
}

impl ServiceSettings {
    /// How the model store loads models, from `ml_backend` and `model_load`.
    pub fn store_options(&self) -> Result<quiver_infer::StoreOptions, SettingsError> {
        match (self.backend(), self.load_policy()) {
            (Ok(backend), Ok(load)) => Ok(quiver_infer::StoreOptions {
                load,
                backend,
                ..Default::default()
            }),
            (backend, load) => Err(SettingsError::Invalid {
                issues: [backend.err(), load.err()]
                    .into_iter()
                    .flatten()
                    .map(|problem| problem.located(Origin::Default))
                    .collect(),
            }),
        }
    }

    fn backend(&self) -> Result<quiver_infer::BackendChoice, SettingProblem> {
        quiver_infer::BackendChoice::parse(&self.ml_backend).ok_or_else(|| {
            SettingProblem::new(
                "quiver.ml_backend",
                format!(
                    "unknown backend {:?} (expected {})",
                    self.ml_backend,
                    quiver_infer::BackendChoice::NAMES.join(", ")
                ),
            )
        })
    }

    fn load_policy(&self) -> Result<quiver_infer::LoadPolicy, SettingProblem> {
        match self.model_load.as_str() {
            "lazy" => Ok(quiver_infer::LoadPolicy::Lazy),
            "eager" => Ok(quiver_infer::LoadPolicy::Eager),
            other => Err(SettingProblem::new(
                "quiver.model_load",
                format!("expected lazy or eager, got {other:?}"),
            )),
        }
    }
}

impl StrategySettings {
    /// The inference pool these settings describe.
    pub fn pool_config(&self) -> quiver_infer::PoolConfig {
        quiver_infer::PoolConfig {
            workers: self.max_ml_workers.max(1),
            queue_size: self.ml_pool_queue_size.max(1),
            max_batch_size: self.max_batch_size.max(1),
            batch_window: std::time::Duration::from_millis(self.batch_window_ms),
            timeout: self.inference_timeout(),
            deterministic: None,
        }
    }

    fn inference_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.inference_timeout_seconds.clamp(0.0, 3600.0))
    }

    /// Deadline of one model call in live, for models whose registry entry
    /// sets no `deadline_ms`: the inference timeout, since a call that takes
    /// longer can only produce results that are dropped as late.
    pub fn inference_deadline(&self) -> std::time::Duration {
        self.inference_timeout()
    }
}

/// Where signals and ticks come from and go, parsed.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceKind {
    Synthetic,
    Replay(std::path::PathBuf),
    Redis,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SinkKind {
    Stdout,
    Jsonl(std::path::PathBuf),
    Redis,
}

impl SettingProblem {
    /// This problem, located.
    fn located(self, origin: Origin) -> SettingsIssue {
        SettingsIssue {
            origin,
            key: self.key,
            message: self.message,
        }
    }
}

/// Why a blocking read needs a response timeout longer than its block time.
const BLOCK_REASON: &str =
    "a blocking read would otherwise time out while the server legitimately holds it";

impl Settings {
    /// Defaults, overlaid with `file` (if any) and then the environment, and
    /// checked: [`Settings::load_with_flags`] without flags.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        Settings::load_with_flags(file, env, &[])
    }

    /// Defaults, overlaid with `file` (if any), then the environment, then
    /// `flags`, and checked. Every problem is reported, and any one of them
    /// refuses the settings whole.
    pub fn load_with_flags(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &[Flag],
    ) -> Result<Settings, SettingsError> {
        let mut layers = Layers::new()?;
        if let Some(path) = file {
            layers.file(path)?;
        }
        let env: BTreeMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("QUIVER__") || k.starts_with("STRATEGY__"))
            .collect();
        for (var, text) in env {
            let path = var.split("__").map(str::to_ascii_lowercase).collect();
            layers.text(path, &text, Origin::Env { var });
        }
        for flag in flags {
            let path = flag.key.split('.').map(str::to_owned).collect();
            let origin = Origin::Flag {
                flag: flag.flag.to_owned(),
            };
            layers.text(path, &flag.value, origin);
        }
        layers.finish()
    }

    /// Checks the values that types alone cannot, reporting every problem.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let issues = self.check(&Origins::default());
        if issues.is_empty() {
            Ok(())
        } else {
            Err(SettingsError::Invalid { issues })
        }
    }

    /// The problems [`Settings::validate`] reports, located by `origins`.
    fn check(&self, origins: &Origins) -> Vec<SettingsIssue> {
        let q = &self.quiver;
        let mut problems = Vec::new();
        problems.extend(self.source().err());
        problems.extend(self.sink().err());
        problems.extend(self.http().err());
        problems.extend(q.backend().err());
        problems.extend(q.load_policy().err());
        let counts = [
            ("quiver.batch_size", q.batch_size as u64),
            ("quiver.queue_capacity", q.queue_capacity as u64),
            ("quiver.redis.partitions", u64::from(q.redis.partitions)),
            (
                "quiver.http.header_read_timeout_ms",
                q.http.header_read_timeout_ms,
            ),
            ("quiver.http.idle_timeout_ms", q.http.idle_timeout_ms),
            ("quiver.http.request_timeout_ms", q.http.request_timeout_ms),
            ("quiver.http.max_connections", q.http.max_connections as u64),
            (
                "quiver.publish.pause_after",
                u64::from(q.publish.pause_after),
            ),
            ("quiver.publish.backoff_base_ms", q.publish.backoff_base_ms),
        ];
        for (key, count) in counts {
            if count == 0 {
                problems.push(SettingProblem::new(key, "must be >= 1, got 0"));
            }
        }
        // Sizes that become allocations: bounded so a typo cannot ask for
        // terabytes before anything runs.
        let ceilings = [
            ("quiver.batch_size", q.batch_size as u64, 1 << 16),
            ("quiver.queue_capacity", q.queue_capacity as u64, 1 << 12),
            (
                "quiver.redis.partitions",
                u64::from(q.redis.partitions),
                1 << 10,
            ),
            (
                "quiver.http.max_connections",
                q.http.max_connections as u64,
                1 << 16,
            ),
            (
                "strategy.max_batch_size",
                self.strategy.max_batch_size as u64,
                1 << 16,
            ),
            (
                "strategy.max_ml_workers",
                self.strategy.max_ml_workers as u64,
                256,
            ),
            (
                "strategy.ml_pool_queue_size",
                self.strategy.ml_pool_queue_size as u64,
                1 << 20,
            ),
        ];
        for (key, value, max) in ceilings {
            if value > max {
                problems.push(SettingProblem::new(
                    key,
                    format!("must be <= {max}, got {value}"),
                ));
            }
        }
        let (base, cap) = (q.publish.backoff_base_ms, q.publish.backoff_cap_ms);
        if cap < base {
            problems.push(SettingProblem::new(
                "quiver.publish.backoff_cap_ms",
                format!("must be >= quiver.publish.backoff_base_ms ({base}), got {cap}"),
            ));
        }
        // A day: beyond it a paused broker is as good as never retried.
        const DAY_MS: u64 = 86_400_000;
        if cap > DAY_MS {
            problems.push(SettingProblem::new(
                "quiver.publish.backoff_cap_ms",
                format!("must be <= {DAY_MS} (a day), got {cap}"),
            ));
        }
        let min_header = crate::http::HttpLimits::MIN_HEADER_BYTES;
        if q.http.max_header_bytes < min_header {
            problems.push(SettingProblem::new(
                "quiver.http.max_header_bytes",
                format!(
                    "must be >= {min_header} (the HTTP parser's smallest buffer), got {}",
                    q.http.max_header_bytes
                ),
            ));
        }
        let (timeout, block) = (q.redis.response_timeout_ms, q.redis.block_ms);
        if timeout <= block {
            // Named by whichever of the two was set last: that is the value
            // that broke the pair.
            const BLOCK: &str = "quiver.redis.block_ms";
            const TIMEOUT: &str = "quiver.redis.response_timeout_ms";
            problems.push(if origins.of(BLOCK).layer() > origins.of(TIMEOUT).layer() {
                SettingProblem::new(
                    BLOCK,
                    format!("must be less than {TIMEOUT} ({timeout}), got {block}: {BLOCK_REASON}"),
                )
            } else {
                SettingProblem::new(
                    TIMEOUT,
                    format!("must exceed {BLOCK} ({block}), got {timeout}: {BLOCK_REASON}"),
                )
            });
        }
        // Every instrument's history ring is at least this deep.
        let warmup = self.strategy.warmup_ticks;
        if warmup > quiver_core::history::MAX_CAPACITY {
            problems.push(SettingProblem::new(
                "strategy.warmup_ticks",
                format!(
                    "must be <= {}, got {warmup}",
                    quiver_core::history::MAX_CAPACITY
                ),
            ));
        }
        if let Err(session) = crate::session::SessionClock::check(&q.session) {
            problems.extend(session);
        }
        problems
            .into_iter()
            .map(|problem| {
                let origin = origins.of(&problem.key);
                problem.located(origin)
            })
            .collect()
    }

    pub fn source_kind(&self) -> Result<SourceKind, String> {
        self.source().map_err(|problem| problem.to_string())
    }

    fn source(&self) -> Result<SourceKind, SettingProblem> {
        let source = self.quiver.source.trim();
        match source {
            "synthetic" => Ok(SourceKind::Synthetic),
            "redis" => Ok(SourceKind::Redis),
            _ => match source.strip_prefix("replay:") {
                Some(path) if !path.is_empty() => Ok(SourceKind::Replay(path.into())),
                _ => Err(SettingProblem::new(
                    "quiver.source",
                    format!("{source:?} is not one of synthetic, replay:PATH, redis"),
                )),
            },
        }
    }

    pub fn sink_kind(&self) -> Result<SinkKind, String> {
        self.sink().map_err(|problem| problem.to_string())
    }

    fn sink(&self) -> Result<SinkKind, SettingProblem> {
        let sink = self.quiver.sink.trim();
        match sink {
            "" if self.quiver.source.trim() == "redis" => Ok(SinkKind::Redis),
            "" | "stdout" => Ok(SinkKind::Stdout),
            "redis" => Ok(SinkKind::Redis),
            _ => match sink.strip_prefix("jsonl:") {
                Some(path) if !path.is_empty() => Ok(SinkKind::Jsonl(path.into())),
                _ => Err(SettingProblem::new(
                    "quiver.sink",
                    format!("{sink:?} is not one of stdout, jsonl:PATH, redis"),
                )),
            },
        }
    }

    /// The HTTP address, or `None` when disabled.
    pub fn http_addr(&self) -> Result<Option<SocketAddr>, String> {
        self.http().map_err(|problem| problem.to_string())
    }

    fn http(&self) -> Result<Option<SocketAddr>, SettingProblem> {
        let addr = self.quiver.http_addr.trim();
        if addr.is_empty() || addr == "off" {
            return Ok(None);
        }
        addr.parse().map(Some).map_err(|_| {
            SettingProblem::new(
                "quiver.http_addr",
                format!("{addr:?} is not an ip:port address"),
            )
        })
    }
}

/// Where each setting's value came from, by key (`quiver.redis.stream`; a
/// list's items from a file also as `quiver.session.holidays[1]`).
impl Settings {
    /// The tick streams, one per partition.
    pub fn tick_streams(&self) -> Vec<String> {
        let r = &self.quiver.redis;
        (0..r.partitions)
            .map(|p| quiver_io::live::partition_stream(&r.stream, p, r.partitions))
            .collect()
    }

    pub fn redis_source_config(&self) -> quiver_io::redis::RedisSourceConfig {
        let r = &self.quiver.redis;
        quiver_io::redis::RedisSourceConfig {
            url: self.quiver.redis_url.clone(),
            streams: self.tick_streams(),
            group: r.group.clone(),
            consumer: r.consumer.clone(),
            block: std::time::Duration::from_millis(r.block_ms),
            response_timeout: std::time::Duration::from_millis(r.response_timeout_ms),
            claim_min_idle: std::time::Duration::from_millis(r.claim_min_idle_ms),
            start_id: r.start_id.clone(),
        }
    }

    pub fn redis_sink_config(&self) -> quiver_io::redis::RedisSinkConfig {
        let r = &self.quiver.redis;
        quiver_io::redis::RedisSinkConfig {
            url: self.quiver.redis_url.clone(),
            response_timeout: std::time::Duration::from_millis(r.response_timeout_ms),
            signal_stream_prefix: r.signal_stream_prefix.clone(),
            dead_letter_stream: r.dead_letter_stream.clone(),
            dedup_key_prefix: r.dedup_key_prefix.clone(),
            dedup_ttl: std::time::Duration::from_secs(r.dedup_ttl_s),
        }
    }
}

#[cfg(test)]
mod tests;
