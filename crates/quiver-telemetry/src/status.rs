//! Health, readiness and the strategy list, as the HTTP endpoints show them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use serde::Serialize;

/// One row of `/strategies`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StrategyStatus {
    pub id: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub kind: &'static str,
    pub state: &'static str,
    pub instruments: Vec<u64>,
    pub brokers: Vec<String>,
    pub evaluations: u64,
    pub signals: u64,
    /// Contained panics.
    pub errors: u64,
    /// Validator refusals.
    pub dropped: u64,
    /// Upper bound of the bucket holding the 99th percentile of one
    /// evaluation, in ms; `null` before the first evaluation.
    pub p99_processing_ms: Option<f64>,
    /// Its latest lifecycle change (all kept ones: `/strategies/{id}`).
    pub last_transition: Option<TransitionRecord>,
    /// Brokers its signals are withheld from for now.
    pub paused_brokers: Vec<PausedBroker>,
}

/// A broker a strategy's emission is paused to, after the broker refused its
/// signals repeatedly: until `retry_at_unix_ms` every signal to it goes to the
/// dead-letter stream untried; the first after it is tried again.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PausedBroker {
    pub broker: String,
    /// The broker's latest refusal.
    pub reason: String,
    /// Refusals in a row so far.
    pub refusals: u32,
    /// When the pause began and when the next signal is tried, in ms since
    /// the Unix epoch.
    pub since_unix_ms: u64,
    pub retry_at_unix_ms: u64,
}

/// One lifecycle change as `/strategies/{id}` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TransitionRecord {
    pub from: &'static str,
    pub to: &'static str,
    pub cause: &'static str,
    /// The tick that caused it, or the last one before a control.
    pub seq: Option<u64>,
    pub ts_ns: Option<i64>,
}

/// How many lifecycle changes `/strategies/{id}` keeps per strategy.
pub const TRANSITIONS_KEPT: usize = 64;

/// What `/ready` checks, and the snapshot `/strategies` serves.
#[derive(Debug, Default)]
pub struct Status {
    source_connected: AtomicBool,
    strategies_loaded: AtomicBool,
    draining: AtomicBool,
    strategies: RwLock<Vec<StrategyStatus>>,
    /// Per strategy id, its latest lifecycle changes, oldest first (kept
    /// across reloads: ids, not positions, name strategies here).
    transitions: RwLock<HashMap<String, VecDeque<TransitionRecord>>>,
    /// Per strategy id, the brokers its emission is paused to.
    paused_brokers: RwLock<HashMap<String, Vec<PausedBroker>>>,
    config: RwLock<ConfigStatus>,
}

/// What `/config` shows: the strategy set serving and its reloads.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ConfigStatus {
    /// Where the set is read from (a file, or the store's URL).
    pub source: String,
    /// The content hash of the set serving.
    pub version: String,
    pub reloads_applied: u64,
    /// Reloads that found the set serving already (nothing swapped).
    pub reloads_unchanged: u64,
    pub reloads_refused: u64,
    pub last_reload: Option<ReloadRecord>,
    /// For the store: whether its changes are followed as they happen —
    /// the LISTEN connection is up and has caught up on what changed
    /// before it was. Absent for a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listening: Option<bool>,
}

/// One reload as `/config` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReloadRecord {
    /// `applied`, `unchanged` or `refused`.
    pub result: &'static str,
    /// What changed (`1 added, 0 removed, ...`), or why it was refused.
    pub detail: String,
    pub at_unix_ms: u64,
}

impl Status {
    pub fn set_source_connected(&self, connected: bool) {
        self.source_connected.store(connected, Ordering::Relaxed);
    }

    pub fn set_strategies_loaded(&self, loaded: bool) {
        self.strategies_loaded.store(loaded, Ordering::Relaxed);
    }

    /// Shutting down: no longer ready for new work.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Why the service is not ready, or empty when it is.
    pub fn not_ready_reasons(&self) -> Vec<&'static str> {
        let mut reasons = Vec::new();
        if !self.source_connected.load(Ordering::Relaxed) {
            reasons.push("source not connected");
        }
        if !self.strategies_loaded.load(Ordering::Relaxed) {
            reasons.push("strategies not loaded");
        }
        if self.draining.load(Ordering::Relaxed) {
            reasons.push("draining for shutdown");
        }
        reasons
    }

    pub fn set_strategies(&self, rows: Vec<StrategyStatus>) {
        *self.strategies.write().unwrap_or_else(|p| p.into_inner()) = rows;
    }

    /// The rows, each with its latest transition and paused brokers.
    pub fn strategies(&self) -> Vec<StrategyStatus> {
        let mut rows = self
            .strategies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let transitions = self.transitions.read().unwrap_or_else(|p| p.into_inner());
        let paused = self
            .paused_brokers
            .read()
            .unwrap_or_else(|p| p.into_inner());
        for row in &mut rows {
            row.last_transition = transitions
                .get(&row.id)
                .and_then(|kept| kept.back().cloned());
            row.paused_brokers = paused.get(&row.id).cloned().unwrap_or_default();
        }
        rows
    }

    /// Sets the brokers strategy `id` is paused to.
    pub fn set_paused_brokers(&self, id: &str, brokers: Vec<PausedBroker>) {
        let mut all = self
            .paused_brokers
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if brokers.is_empty() {
            all.remove(id);
        } else {
            all.insert(id.to_owned(), brokers);
        }
    }

    pub fn config(&self) -> ConfigStatus {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes what `/config` shows.
    pub fn update_config(&self, update: impl FnOnce(&mut ConfigStatus)) {
        update(&mut self.config.write().unwrap_or_else(|p| p.into_inner()));
    }

    /// Records a lifecycle change of strategy `id`, keeping the latest
    /// [`TRANSITIONS_KEPT`].
    pub fn record_transition(&self, id: &str, record: TransitionRecord) {
        let mut all = self.transitions.write().unwrap_or_else(|p| p.into_inner());
        let kept = all.entry(id.to_owned()).or_default();
        if kept.len() == TRANSITIONS_KEPT {
            kept.pop_front();
        }
        kept.push_back(record);
    }

    /// The `/strategies` row of strategy `id` and its latest lifecycle
    /// changes, oldest first.
    pub fn strategy(&self, id: &str) -> Option<(StrategyStatus, Vec<TransitionRecord>)> {
        let row = self.strategies().into_iter().find(|row| row.id == id)?;
        let transitions = self
            .transitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|kept| kept.iter().cloned().collect())
            .unwrap_or_default();
        Some((row, transitions))
    }
}
