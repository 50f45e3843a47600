//! Reloading the strategy set while ticks flow: the whole new file is read
//! and validated, diffed against the set serving by strategy id, and an
//! engine is built for it off the hot path; the engine thread then swaps it
//! in between two ticks ([`quiver_driver::Request::Rebuild`]), carrying the
//! unchanged strategies over whole. An invalid file is refused whole: the
//! running set keeps running.
//!
//! Unchanged means the same id with the same row (parameters, instruments,
//! brokers, validator, guards, schedule; where the row sits in the file does
//! not matter). A changed strategy is a new instance: it starts in Warmup
//! and is Active at its next tick when the shared history already covers
//! it, with features it alone needs computed from that history (a feature
//! with unbounded memory, such as an EMA, then differs from one that saw
//! every tick). A reload keeps the model registry and may use only models
//! the serving set already uses.

use std::path::{Path, PathBuf};

use quiver_config::{Config, StrategyRow};
use quiver_engine::Engine;

use crate::models::Models;

/// Strategy ids by what a reload does to them, each in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
}

impl ConfigDiff {
    /// Enabled rows of `old` and `new`, by id.
    pub fn between(old: &Config, new: &Config) -> ConfigDiff {
        // Where a row sits in its file is not part of it.
        let placeless = |row: &StrategyRow| {
            let mut row = row.clone();
            row.line = 0;
            for used in &mut row.models {
                used.line = 0;
                used.path.clear();
            }
            row
        };
        let same = |a: &StrategyRow, b: &StrategyRow| placeless(a) == placeless(b);
        let mut diff = ConfigDiff::default();
        for row in new.enabled() {
            match old.enabled().find(|o| o.id == row.id) {
                None => diff.added.push(row.id.clone()),
                Some(o) if same(o, row) => diff.unchanged.push(row.id.clone()),
                Some(_) => diff.changed.push(row.id.clone()),
            }
        }
        for row in old.enabled() {
            if !new.enabled().any(|n| n.id == row.id) {
                diff.removed.push(row.id.clone());
            }
        }
        diff
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

impl std::fmt::Display for ConfigDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} added, {} removed, {} changed, {} unchanged",
            self.added.len(),
            self.removed.len(),
            self.changed.len(),
            self.unchanged.len()
        )
    }
}

/// The content hash a strategies file is known by (`/config`, logs).
pub fn version_of(text: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

/// A validated reload, ready to be swapped in.
pub struct ReloadPlan {
    pub engine: Engine,
    pub config: Config,
    pub diff: ConfigDiff,
    pub version: String,
    pub path: PathBuf,
}

impl ReloadPlan {
    /// The ids carried over whole.
    pub fn carried(&self) -> Vec<String> {
        self.diff.unchanged.clone()
    }
}

/// A validated set and its strategies, not yet built into an engine.
pub struct Prepared {
    pub config: Config,
    pub entries: Vec<quiver_engine::StrategyEntry>,
    pub diff: ConfigDiff,
    pub version: String,
}

/// What the planner knows of the set serving.
pub struct Reloader {
    models: Models,
    config: Config,
    /// The models the serving engine uses (its model table, kept by every
    /// rebuild).
    serving_models: Vec<String>,
    version: String,
}

impl Reloader {
    pub fn new(
        models: Models,
        config: Config,
        serving_models: Vec<String>,
        version: String,
    ) -> Self {
        Reloader {
            models,
            config,
            serving_models,
            version,
        }
    }

    /// The content hash of the set serving.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Reads, validates and builds the strategies file at `path`; the error
    /// names the file, line and field (or what else refused it).
    pub fn plan(&self, path: &Path) -> Result<ReloadPlan, String> {
        let file = path.display().to_string();
        let text =
            quiver_config::files::read_regular_text(path, quiver_config::files::CONFIG_FILE_LIMIT)
                .map_err(|err| format!("{file}: {err}"))?;
        let prepared = self.prepare(&text, &file, path)?;
        let mut engine = Engine::new(prepared.entries).map_err(|err| format!("{file}: {err}"))?;
        engine.set_lifecycle(crate::models::lifecycle_policy(&prepared.config.lifecycle));
        Ok(ReloadPlan {
            engine,
            config: prepared.config,
            diff: prepared.diff,
            version: prepared.version,
            path: path.to_owned(),
        })
    }

    /// Validates strategies `text` (named `file` in messages; relative model
    /// paths resolved against `config_path`'s directory) against the set
    /// serving, and builds its strategies.
    pub fn prepare(&self, text: &str, file: &str, config_path: &Path) -> Result<Prepared, String> {
        let config = quiver_config::parse_config(text, file).map_err(|err| err.to_string())?;
        if config.models.is_some() != self.config.models.is_some() {
            return Err(format!(
                "{file}: a reload keeps the model registry: the new file must {} a `models:` section, as the serving one does",
                if self.config.models.is_some() { "have" } else { "not have" }
            ));
        }
        self.models
            .check(config_path, &config)
            .map_err(|err| err.to_string())?;
        for row in config.enabled() {
            for used in &row.models {
                if !self.serving_models.contains(&used.name) {
                    return Err(format!(
                        "{file}:{}: {}: model {:?} is not loaded by the serving set, and a reload cannot load models (restart to add it)",
                        used.line, used.path, used.name
                    ));
                }
            }
        }
        let entries = self
            .models
            .engine_entries(&config)
            .map_err(|err| err.to_string())?;
        Ok(Prepared {
            diff: ConfigDiff::between(&self.config, &config),
            entries,
            config,
            version: version_of(text),
        })
    }

    /// The plan's set is serving now.
    pub fn applied(&mut self, config: Config, version: String) {
        self.config = config;
        self.version = version;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rows: &[&str]) -> Config {
        let text = format!("strategies:\n{}", rows.concat());
        quiver_config::parse_config(&text, "test.yaml").unwrap()
    }

    const A: &str =
        "  - id: a\n    strategy_type: momentum\n    brokers: [paper]\n    instruments: [1]\n";
    const B: &str =
        "  - id: b\n    strategy_type: rsi\n    brokers: [paper]\n    instruments: [1]\n";
    const B2: &str =
        "  - id: b\n    strategy_type: rsi\n    brokers: [paper]\n    instruments: [1, 2]\n";
    const C: &str =
        "  - id: c\n    strategy_type: breakout\n    brokers: [paper]\n    instruments: [1]\n";
    const C_OFF: &str =
        "  - id: c\n    strategy_type: breakout\n    enabled: false\n    brokers: [paper]\n    instruments: [1]\n";

    #[test]
    fn rows_are_diffed_by_id_and_content_not_by_place() {
        let diff = ConfigDiff::between(&config(&[A, B, C]), &config(&[B2, A]));
        assert_eq!(diff.unchanged, ["a"]);
        assert_eq!(diff.changed, ["b"]);
        assert_eq!(diff.removed, ["c"]);
        assert!(diff.added.is_empty());
        assert_eq!(
            diff.to_string(),
            "0 added, 1 removed, 1 changed, 1 unchanged"
        );
        // Disabling a row removes it; enabling one adds it.
        let off = ConfigDiff::between(&config(&[A, C]), &config(&[A, C_OFF]));
        assert_eq!(off.removed, ["c"]);
        let on = ConfigDiff::between(&config(&[A, C_OFF]), &config(&[C, A]));
        assert_eq!(on.added, ["c"]);
        assert!(ConfigDiff::between(&config(&[A]), &config(&[A])).is_empty());
    }

    #[test]
    fn the_version_is_the_content_hash() {
        assert_eq!(version_of("x"), version_of("x"));
        assert_ne!(version_of("x"), version_of("y"));
        assert_eq!(version_of("x").len(), 16);
    }
}
