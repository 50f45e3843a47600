//! Counters the engine keeps; the telemetry layer exports them.

use quiver_strategy::DropReason;

/// Per-strategy counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StrategyStats {
    pub evaluations: u64,
    pub signals: u64,
    /// Decisions refused by the validator, indexed like [`DropReason::ALL`].
    pub dropped: [u64; DropReason::ALL.len()],
    pub panics: u64,
}

impl StrategyStats {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// Engine-wide counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub ticks: u64,
    /// Ticks for instruments no strategy follows.
    pub unrouted_ticks: u64,
    pub evaluations: u64,
    pub signals: u64,
    pub dropped: [u64; DropReason::ALL.len()],
    pub panics: u64,
}

pub(crate) fn drop_slot(reason: DropReason) -> usize {
    DropReason::ALL
        .iter()
        .position(|r| *r == reason)
        .unwrap_or_default()
}

impl EngineStats {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}
