//! Health, readiness and the strategy list, as the HTTP endpoints show them.

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
}

/// What `/ready` checks, and the snapshot `/strategies` serves.
#[derive(Debug, Default)]
pub struct Status {
    source_connected: AtomicBool,
    strategies_loaded: AtomicBool,
    draining: AtomicBool,
    strategies: RwLock<Vec<StrategyStatus>>,
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

    pub fn strategies(&self) -> Vec<StrategyStatus> {
        self.strategies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
