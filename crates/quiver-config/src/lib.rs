//! Loading and validating the strategies file.
//!
//! A strategies file is either entirely valid or rejected: a runner that
//! silently dropped a bad row would trade a different book than the one
//! written down. Because a rejected file has to be fixed by hand, every problem
//! is reported in one go — each with the file, the line and the path of the
//! offending value — rather than one per attempt.
//!
//! # Format
//!
//! ```yaml
//! models: models/registry.yaml       # optional: the model registry (a file, relative to
//!                                    # this one, or the registry's list written here)
//! history_budget_mib: 1024           # optional, default 1024, 1 to 1048576: the most memory
//!                                    # the history rings and feature states may take
//! strategies:                        # required; [] is allowed
//!   - id: mom-1                      # required, non-empty, unique in the file
//!     strategy_type: momentum        # momentum | mean_reversion | rsi | breakout | hybrid
//!                                    # | ml | ml_momentum | hybrid_momentum
//!     parameters:                    # optional; omitted parameters take their defaults
//!       lookback_periods: 20         # the type's own parameters (see quiver_strategy) ...
//!       threshold: 0.01
//!       min_confidence: 0.2          # ... and the validator's: min_confidence, max_quantity
//!     brokers: [paper, zerodha]      # required, non-empty, no duplicates
//!     instruments: [256265, 738561]  # required, non-empty, integers > 0, no duplicates
//!     enabled: true                  # optional, default true; disabled rows are still validated
//!     validator: standard            # optional, default standard (the only one)
//!
//!   - id: hyb-1
//!     strategy_type: hybrid
//!     parameters:
//!       policy: majority_vote        # the hybrid's own parameters (quiver_strategy::hybrid::PARAMS)
//!       min_conf: 0.6
//!       rules:                       # required: any non-hybrid type and its parameters
//!         strategy_type: momentum    #   (no validator parameters here)
//!         parameters: {lookback_periods: 10}
//!       ml:                          # required, like rules
//!         strategy_type: rsi
//!         parameters: {oversold: 25, overbought: 75}   # overbought must exceed oversold
//!     brokers: [paper]
//!     instruments: [256265]
//!
//!   - id: ml-1
//!     strategy_type: ml
//!     parameters:
//!       model: ml_momentum_mlp       # required: a registry model
//!       features: [sma(5), momentum(5), returns_skew(20), price]   # one per model input
//!       confidence_threshold: 0.6    # plus position_size, temperature
//!     brokers: [paper]
//!     instruments: [256265]
//! ```
//!
//! `ml_momentum` fixes seed 000's nine features (`model` defaults to
//! `ml_momentum_mlp`); `hybrid_momentum` is momentum + ml_momentum joined by
//! `majority_vote`. Model names are checked against the registry when the
//! strategies are built (`quiver validate` does it).
//!
//! # History budget
//!
//! The engine keeps one history ring per instrument, as deep as the deepest
//! strategy that follows it, and one state per distinct feature on it. Their
//! size is computed from the rows (disabled ones included) before anything
//! is allocated; a file whose history would take more than
//! `history_budget_mib` is refused, naming the value that drives the largest
//! share (a lookback, a feature, or the row's instruments when its depth is a
//! default). Lookbacks are at most [`quiver_strategy::FeatureSpec`]'s
//! window limit (100,000 ticks) whatever the budget. The budget is a field of
//! this file, not a service setting, so `quiver validate`, `quiver replay`
//! and `quiver run` decide alike.
//!
//! Numbers must be written as numbers: `threshold: "0.01"` is a string and is
//! rejected, so that a quoting slip cannot change what a value means.
//!
//! # Errors
//!
//! Each issue prints as `{file}:{line}: {path}: {message}`, for example
//!
//! ```text
//! strategies.yaml:41: strategies[3] (id "mom-7").parameters.lookback_periods: must be >= 2, got 0
//! ```
//!
//! in document order. A file that is not YAML at all gets a single
//! `{file}:{line}:{col}: YAML syntax error: ...` instead.

mod check;
mod desk;
pub mod files;
mod hygiene;
pub mod yaml;

use std::collections::BTreeSet;
use std::path::Path;

use quiver_core::InstrumentToken;
use quiver_strategy::{StandardValidator, StrategySpec, StrategyType};

/// Why a strategies file was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The reason is part of the message because callers print this error on
    /// its own, not as a chain.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The text is not YAML, so there is no tree to check and only this one
    /// error can be reported.
    #[error(transparent)]
    Syntax(#[from] yaml::SyntaxError),
    /// Every issue found, in document order, one per line when displayed.
    #[error("{}", yaml::IssueLines(issues))]
    Invalid {
        file: String,
        issues: Vec<ConfigIssue>,
    },
}

/// One problem in a YAML-valid strategies file. Its path includes the row's
/// id, e.g. `strategies[3] (id "mom-7").parameters.threshold`, because people
/// find rows by id, not by index.
pub type ConfigIssue = yaml::Issue;

/// The top-level fields of a strategies file (a registry written in place
/// sits among them).
pub const TOP_FIELDS: [&str; 7] = [
    "strategies",
    "models",
    "history_budget_mib",
    "lifecycle",
    "paper",
    "risk",
    "costs",
];

/// `history_budget_mib` when the file does not set it: 1 GiB.
pub const DEFAULT_HISTORY_BUDGET_MIB: u64 = 1024;
/// The largest `history_budget_mib`: 1 TiB.
pub const MAX_HISTORY_BUDGET_MIB: u64 = 1 << 20;

/// A validated strategies file.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Every row in file order, disabled ones included, so tools can list them.
    pub strategies: Vec<StrategyRow>,
    /// Where the model registry is, when the file has a `models:` section.
    pub models: Option<ModelsSource>,
    /// The most memory the history may take, in MiB (`history_budget_mib`).
    pub history_budget_mib: u64,
    /// `lifecycle:`: how failing strategies are quarantined and retried.
    pub lifecycle: Lifecycle,
    /// `paper:`, `risk:` and `costs:`: the paper broker, the risk controller
    /// and the cost model a backtest applies.
    pub desk: quiver_paper::DeskSpec,
}

/// The `lifecycle:` section; replay and live apply it alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    /// Failures in a row that quarantine a strategy (1 to 1000; 5).
    pub quarantine_after: u32,
    /// Tick time the first quarantine lasts (1 ms to a day; 1 s), doubled
    /// for each quarantine in a row.
    pub backoff_base_ms: u64,
    /// The longest one lasts (at least the base, at most a week; 5 min).
    pub backoff_cap_ms: u64,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            quarantine_after: 5,
            backoff_base_ms: 1_000,
            backoff_cap_ms: 300_000,
        }
    }
}

/// The `models:` section: a registry file, or the registry's list written in
/// the strategies file itself (validated by the registry's own parser).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelsSource {
    /// A path as written, relative to the strategies file's directory.
    File {
        path: String,
        line: usize,
    },
    Inline {
        line: usize,
    },
}

/// A model named by a row, located for messages about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRef {
    pub name: String,
    pub line: usize,
    /// e.g. `strategies[2] (id "ml-1").parameters.model`.
    pub path: String,
}

/// One validated row.
#[derive(Clone, Debug, PartialEq)]
pub struct StrategyRow {
    pub id: String,
    pub spec: StrategySpec,
    pub brokers: Vec<String>,
    pub instruments: Vec<InstrumentToken>,
    /// Disabled rows are validated like the others, so enabling one later
    /// cannot turn a loadable file into a broken one.
    pub enabled: bool,
    pub validator: StandardValidator,
    /// `validators:`: what a signal passes after the standard validator.
    pub guards: quiver_strategy::GuardSpec,
    /// `priority:` and `budget_us_per_tick:`.
    pub schedule: quiver_strategy::Schedule,
    /// Line where the row starts, for messages about the row at run time.
    pub line: usize,
    /// Registry models the row's strategy uses (a hybrid's ML part included).
    pub models: Vec<ModelRef>,
}

impl Config {
    /// Heap bytes of the history rings and feature states of every row
    /// (disabled ones included), each ring at least `floor` ticks deep — the
    /// service's `strategy.warmup_ticks`; 0 for what replay builds.
    pub fn history_bytes(&self, floor: usize) -> u64 {
        let footprints: Vec<_> = self.strategies.iter().map(|r| r.spec.footprint()).collect();
        check::history_bytes(
            footprints
                .iter()
                .zip(&self.strategies)
                .map(|(f, row)| (f, row.instruments.as_slice())),
            floor,
        )
    }

    /// [`Config::history_bytes`] against `history_budget_mib`: `Err` says
    /// how much over it is.
    pub fn check_history_budget(&self, floor: usize) -> Result<(), String> {
        let total = self.history_bytes(floor);
        if total <= self.history_budget_mib.saturating_mul(1 << 20) {
            return Ok(());
        }
        Err(format!(
            "the history would take {}, over the budget of {} MiB (history_budget_mib)",
            check::show_bytes(total),
            self.history_budget_mib
        ))
    }

    /// The rows to run, in file order.
    pub fn enabled(&self) -> impl Iterator<Item = &StrategyRow> {
        self.strategies.iter().filter(|row| row.enabled)
    }

    /// A one-line description for logs and `validate`, e.g. `4 strategies
    /// (3 enabled: 1 momentum, 1 mean_reversion, 1 hybrid; 1 disabled) over 5
    /// instruments and 2 brokers`. Instruments and brokers are counted over all
    /// rows, disabled ones included, since they describe the file.
    pub fn summary(&self) -> String {
        let total = self.strategies.len();
        let mut out = plural(total, "strategy", "strategies");
        if total > 0 {
            let enabled: Vec<&StrategyRow> = self.enabled().collect();
            out.push_str(&format!(" ({} enabled", enabled.len()));
            let by_type: Vec<String> = StrategyType::ALL
                .iter()
                .filter_map(|ty| {
                    let n = enabled
                        .iter()
                        .filter(|row| row.spec.strategy_type() == *ty)
                        .count();
                    (n > 0).then(|| format!("{n} {}", ty.name()))
                })
                .collect();
            if !by_type.is_empty() {
                out.push_str(&format!(": {}", by_type.join(", ")));
            }
            let disabled = total - enabled.len();
            if disabled > 0 {
                out.push_str(&format!("; {disabled} disabled"));
            }
            out.push(')');
        }
        let instruments: BTreeSet<InstrumentToken> = self
            .strategies
            .iter()
            .flat_map(|row| row.instruments.iter().copied())
            .collect();
        let brokers: BTreeSet<&str> = self
            .strategies
            .iter()
            .flat_map(|row| row.brokers.iter().map(String::as_str))
            .collect();
        format!(
            "{out} over {} and {}",
            plural(instruments.len(), "instrument", "instruments"),
            plural(brokers.len(), "broker", "brokers")
        )
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Reads and validates the strategies file at `path`; messages name the file
/// as `path` was given, so they match what the user typed.
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    load_config_with_text(path).map(|(config, _)| config)
}

/// [`load_config`], with the text the set was read from (its version is a
/// hash of it).
pub fn load_config_with_text(path: &Path) -> Result<(Config, String), ConfigError> {
    let file = path.display().to_string();
    match files::read_regular_text(path, files::CONFIG_FILE_LIMIT) {
        Ok(text) => parse_config(&text, &file).map(|config| (config, text)),
        Err(source) => Err(ConfigError::Io { path: file, source }),
    }
}

/// Validates strategies-file `text`; `file` is only used to name it in
/// messages.
pub fn parse_config(text: &str, file: &str) -> Result<Config, ConfigError> {
    let source = yaml::Source::new(text, file)?;
    let docs = source.documents()?;
    let mut checker = check::Checker::new(source.reader());
    let strategies = checker.document(&docs);
    let models = checker.models.take();
    let history_budget_mib = checker.budget_mib;
    let lifecycle = checker.lifecycle;
    let desk = std::mem::take(&mut checker.desk);
    let issues = checker.finish();
    if issues.is_empty() {
        Ok(Config {
            strategies,
            models,
            history_budget_mib,
            lifecycle,
            desk,
        })
    } else {
        Err(ConfigError::Invalid {
            file: file.to_owned(),
            issues,
        })
    }
}
