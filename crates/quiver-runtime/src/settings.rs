//! Service settings: defaults, then a settings file (YAML or TOML), then
//! environment variables, then command-line flags.
//!
//! Environment variables use the seeds' names: `SECTION__KEY` (two
//! underscores between levels) sets `section.key`, e.g.
//! `STRATEGY__WARMUP_TICKS=50`, `QUIVER__REDIS_URL=redis://host:6379`,
//! `QUIVER__REDIS__STREAM=ticks`. Only the `QUIVER__` and `STRATEGY__`
//! prefixes are read, and an unknown key is an error rather than a silent
//! no-op, so a typo cannot leave a setting at its default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

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
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
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
            batch_size: 256,
            queue_capacity: 16,
            drain_timeout_ms: 10_000,
            strategy_timing_every: 1,
            models: String::new(),
            ml_backend: "auto".to_owned(),
            model_load: "lazy".to_owned(),
            redis: RedisSettings::default(),
            synthetic: SyntheticSettings::default(),
            replay: ReplaySettings::default(),
            session: SessionSettings::default(),
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
    /// never times out).
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
        let invalid = |message: String| SettingsError::Invalid {
            origin: "settings".to_owned(),
            message,
        };
        let backend = quiver_infer::BackendChoice::parse(&self.ml_backend).ok_or_else(|| {
            invalid(format!(
                "quiver.ml_backend: unknown backend {:?} (expected {})",
                self.ml_backend,
                quiver_infer::BackendChoice::NAMES.join(", ")
            ))
        })?;
        let load = match self.model_load.as_str() {
            "lazy" => quiver_infer::LoadPolicy::Lazy,
            "eager" => quiver_infer::LoadPolicy::Eager,
            other => {
                return Err(invalid(format!(
                    "quiver.model_load: expected lazy or eager, got {other:?}"
                )))
            }
        };
        Ok(quiver_infer::StoreOptions {
            load,
            backend,
            ..Default::default()
        })
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
            timeout: std::time::Duration::from_secs_f64(
                self.inference_timeout_seconds.clamp(0.0, 3600.0),
            ),
            deterministic: None,
        }
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

impl Settings {
    /// Defaults, overlaid with `file` (if any) and then the environment.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        let mut tree =
            serde_json::to_value(Settings::default()).map_err(|e| SettingsError::Invalid {
                origin: "defaults".to_owned(),
                message: e.to_string(),
            })?;
        if let Some(path) = file {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Io {
                path: shown.clone(),
                source,
            })?;
            let overlay = parse_file(path, &text).map_err(|message| SettingsError::Syntax {
                path: shown.clone(),
                message,
            })?;
            merge(&mut tree, overlay, "").map_err(|message| SettingsError::Invalid {
                origin: shown.clone(),
                message,
            })?;
            // Type errors are reported against the file before env is applied.
            serde_json::from_value::<Settings>(tree.clone()).map_err(|e| {
                SettingsError::Invalid {
                    origin: shown,
                    message: e.to_string(),
                }
            })?;
        }
        let env: BTreeMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("QUIVER__") || k.starts_with("STRATEGY__"))
            .collect();
        for (key, value) in &env {
            apply_env(&mut tree, key, value).map_err(|message| SettingsError::Invalid {
                origin: format!("environment variable {key}"),
                message,
            })?;
        }
        let settings: Settings =
            serde_json::from_value(tree).map_err(|e| SettingsError::Invalid {
                origin: "environment".to_owned(),
                message: e.to_string(),
            })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the values that types alone cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let q = &self.quiver;
        let invalid = |message: String| SettingsError::Invalid {
            origin: "settings".to_owned(),
            message,
        };
        self.source_kind().map_err(invalid)?;
        self.sink_kind().map_err(invalid)?;
        if q.batch_size == 0 {
            return Err(invalid("quiver.batch_size: must be >= 1".to_owned()));
        }
        if q.queue_capacity == 0 {
            return Err(invalid("quiver.queue_capacity: must be >= 1".to_owned()));
        }
        if q.redis.partitions == 0 {
            return Err(invalid("quiver.redis.partitions: must be >= 1".to_owned()));
        }
        if q.redis.response_timeout_ms <= q.redis.block_ms {
            return Err(invalid(format!(
                "quiver.redis.response_timeout_ms ({}) must exceed quiver.redis.block_ms ({}): \
                 a blocking read would otherwise time out while the server legitimately holds it",
                q.redis.response_timeout_ms, q.redis.block_ms
            )));
        }
        self.http_addr().map_err(invalid)?;
        crate::session::SessionClock::from_settings(&q.session).map_err(invalid)?;
        Ok(())
    }

    pub fn source_kind(&self) -> Result<SourceKind, String> {
        let source = self.quiver.source.trim();
        match source {
            "synthetic" => Ok(SourceKind::Synthetic),
            "redis" => Ok(SourceKind::Redis),
            _ => match source.strip_prefix("replay:") {
                Some(path) if !path.is_empty() => Ok(SourceKind::Replay(path.into())),
                _ => Err(format!(
                    "quiver.source: {source:?} is not one of synthetic, replay:PATH, redis"
                )),
            },
        }
    }

    pub fn sink_kind(&self) -> Result<SinkKind, String> {
        let sink = self.quiver.sink.trim();
        match sink {
            "" if self.quiver.source.trim() == "redis" => Ok(SinkKind::Redis),
            "" | "stdout" => Ok(SinkKind::Stdout),
            "redis" => Ok(SinkKind::Redis),
            _ => match sink.strip_prefix("jsonl:") {
                Some(path) if !path.is_empty() => Ok(SinkKind::Jsonl(path.into())),
                _ => Err(format!(
                    "quiver.sink: {sink:?} is not one of stdout, jsonl:PATH, redis"
                )),
            },
        }
    }

    /// The HTTP address, or `None` when disabled.
    pub fn http_addr(&self) -> Result<Option<SocketAddr>, String> {
        let addr = self.quiver.http_addr.trim();
        if addr.is_empty() || addr == "off" {
            return Ok(None);
        }
        addr.parse()
            .map(Some)
            .map_err(|_| format!("quiver.http_addr: {addr:?} is not an ip:port address"))
    }
}

fn parse_file(path: &Path, text: &str) -> Result<Value, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "toml" => {
            let value: toml::Value = toml::from_str(text).map_err(|e| e.to_string())?;
            serde_json::to_value(value).map_err(|e| e.to_string())
        }
        "yaml" | "yml" => {
            use saphyr::LoadableYamlNode;
            let docs = saphyr::Yaml::load_from_str(text).map_err(|e| e.to_string())?;
            match docs.first() {
                None => Ok(Value::Object(Default::default())),
                Some(doc) => yaml_to_json(doc, ""),
            }
        }
        _ => Err("settings files are .yaml, .yml or .toml".to_owned()),
    }
}

fn yaml_to_json(node: &saphyr::Yaml<'_>, path: &str) -> Result<Value, String> {
    use saphyr::{Scalar, Yaml};
    Ok(match node {
        Yaml::Value(scalar) => match scalar {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => Value::Bool(*b),
            Scalar::Integer(i) => Value::from(*i),
            Scalar::FloatingPoint(f) => serde_json::Number::from_f64(f.into_inner())
                .map(Value::Number)
                .ok_or_else(|| format!("{path}: not a finite number"))?,
            Scalar::String(s) => Value::String(s.to_string()),
        },
        Yaml::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| yaml_to_json(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(map) => {
            let mut object = serde_json::Map::new();
            for (key, value) in map {
                let key = match key {
                    Yaml::Value(Scalar::String(s)) => s.to_string(),
                    Yaml::Value(Scalar::Integer(i)) => i.to_string(),
                    _ => return Err(format!("{path}: keys must be strings")),
                };
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                object.insert(key, yaml_to_json(value, &child)?);
            }
            Value::Object(object)
        }
        Yaml::Representation(text, _, _) => Value::String(text.to_string()),
        Yaml::Tagged(_, inner) => yaml_to_json(inner, path)?,
        _ => {
            return Err(format!(
                "{path}: unsupported YAML node (aliases are not allowed)"
            ))
        }
    })
}

/// Overlays `overlay` on `base`; keys absent from `base` are unknown settings.
fn merge(base: &mut Value, overlay: Value, path: &str) -> Result<(), String> {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match base.get_mut(&key) {
                    Some(slot) if slot.is_object() => merge(slot, value, &child)?,
                    Some(slot) => *slot = value,
                    None => return Err(format!("{child}: unknown setting")),
                }
            }
            Ok(())
        }
        (_, _) => Err(format!("{path}: expected a table of settings")),
    }
}

/// Sets the setting named by env var `key`, converting `value` to the type
/// the setting has in the defaults.
fn apply_env(tree: &mut Value, key: &str, value: &str) -> Result<(), String> {
    let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
    let dotted = path.join(".");
    let mut slot = &mut *tree;
    for part in &path {
        slot = slot
            .get_mut(part.as_str())
            .ok_or_else(|| format!("{dotted}: unknown setting"))?;
    }
    *slot = match slot {
        Value::String(_) => Value::String(value.to_owned()),
        Value::Bool(_) => Value::Bool(match value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err(format!("{dotted}: {value:?} is not a boolean")),
        }),
        Value::Number(_) => {
            let number: serde_json::Number = value
                .trim()
                .parse()
                .map_err(|_| format!("{dotted}: {value:?} is not a number"))?;
            Value::Number(number)
        }
        Value::Array(_) => Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        Value::Object(_) => return Err(format!("{dotted}: is a table; set one of its keys")),
        Value::Null => Value::String(value.to_owned()),
    };
    Ok(())
}

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
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn defaults_validate() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.source_kind().unwrap(), SourceKind::Synthetic);
        assert_eq!(s.sink_kind().unwrap(), SinkKind::Stdout);
    }

    #[test]
    fn yaml_then_env_with_seed_names() {
        let (_dir, path) = file(
            "s.yaml",
            "quiver:\n  source: redis\n  redis:\n    stream: ticks\n    partitions: 4\n\
             strategy:\n  warmup_ticks: 10\n",
        );
        let s = Settings::load(
            Some(&path),
            env(&[
                ("STRATEGY__HISTORY_STORE_SIZE", "2000"),
                ("STRATEGY__WARMUP_TICKS", "50"),
                ("QUIVER__REDIS_URL", "redis://10.0.0.1:6380/"),
                ("QUIVER__REDIS__CONSUMER", "123"),
                ("QUIVER__SESSION__HOLIDAYS", "2026-01-26, 2026-03-14"),
                ("QUIVER__SESSION__ENABLED", "true"),
                ("UNRELATED__X", "y"),
            ]),
        )
        .unwrap();
        assert_eq!(s.strategy.history_store_size, 2000);
        assert_eq!(s.strategy.warmup_ticks, 50);
        assert_eq!(s.quiver.redis_url, "redis://10.0.0.1:6380/");
        assert_eq!(s.quiver.redis.consumer, "123");
        assert_eq!(s.quiver.redis.stream, "ticks");
        assert_eq!(s.quiver.redis.partitions, 4);
        assert_eq!(s.quiver.session.holidays, ["2026-01-26", "2026-03-14"]);
        assert!(s.quiver.session.enabled);
        assert_eq!(s.sink_kind().unwrap(), SinkKind::Redis);
    }

    #[test]
    fn toml_files_work_too() {
        let (_dir, path) = file(
            "s.toml",
            "[quiver]\nsource = \"replay:ticks.csv\"\nsink = \"jsonl:out.jsonl\"\n[quiver.replay]\nspeed = 0\n",
        );
        let s = Settings::load(Some(&path), env(&[])).unwrap();
        assert_eq!(
            s.source_kind().unwrap(),
            SourceKind::Replay("ticks.csv".into())
        );
        assert_eq!(s.sink_kind().unwrap(), SinkKind::Jsonl("out.jsonl".into()));
        assert_eq!(s.quiver.replay.speed, 0.0);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let (_dir, path) = file("s.yaml", "quiver:\n  redis:\n    stram: x\n");
        let err = Settings::load(Some(&path), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("s.yaml: quiver.redis.stram: unknown setting"),
            "{err}"
        );
        let err = Settings::load(None, env(&[("QUIVER__REDIS__BATCH", "1")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "environment variable QUIVER__REDIS__BATCH: quiver.redis.batch: unknown setting"
        );
        let err = Settings::load(None, env(&[("QUIVER__BATCH_SIZE", "many")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"many\" is not a number"), "{err}");
        let err = Settings::load(None, env(&[("QUIVER__REDIS__BLOCK_MS", "6000")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("must exceed quiver.redis.block_ms"), "{err}");
        let err = Settings::load(None, env(&[("QUIVER__SOURCE", "kafka")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is not one of synthetic, replay:PATH, redis"),
            "{err}"
        );
    }
}
