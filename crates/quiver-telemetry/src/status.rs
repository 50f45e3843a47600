//! Health, readiness and the strategy list, as the HTTP endpoints show them.

use std::collections::VecDeque;
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
    /// Per strategy (engine order), its latest lifecycle changes, oldest first.
    transitions: RwLock<Vec<VecDeque<TransitionRecord>>>,
    /// Per strategy (engine order), the brokers its emission is paused to.
    paused_brokers: RwLock<Vec<Vec<PausedBroker>>>,
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
        for (i, row) in rows.iter_mut().enumerate() {
            row.last_transition = transitions.get(i).and_then(|kept| kept.back().cloned());
            row.paused_brokers = paused.get(i).cloned().unwrap_or_default();
        }
        rows
    }

    /// Sets the brokers strategy `index` (engine order) is paused to.
    pub fn set_paused_brokers(&self, index: usize, brokers: Vec<PausedBroker>) {
        let mut all = self
            .paused_brokers
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if all.len() <= index {
            all.resize_with(index + 1, Vec::new);
        }
        all[index] = brokers;
    }

    /// Records a lifecycle change of strategy `index` (engine order),
    /// keeping the latest [`TRANSITIONS_KEPT`].
    pub fn record_transition(&self, index: usize, record: TransitionRecord) {
        let mut all = self.transitions.write().unwrap_or_else(|p| p.into_inner());
        if all.len() <= index {
            all.resize_with(index + 1, VecDeque::new);
        }
        let kept = &mut all[index];
        if kept.len() == TRANSITIONS_KEPT {
            kept.pop_front();
        }
        kept.push_back(record);
    }

    /// The `/strategies` row of strategy `id` and its latest lifecycle
    /// changes, oldest first.
    pub fn strategy(&self, id: &str) -> Option<(StrategyStatus, Vec<TransitionRecord>)> {
        let rows = self.strategies();
        let index = rows.iter().position(|row| row.id == id)?;
        let transitions = self
            .transitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(index)
            .map(|kept| kept.iter().cloned().collect())
            .unwrap_or_default();
        Some((rows[index].clone(), transitions))
    }
}
