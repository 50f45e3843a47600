//! Counters the engine keeps; the telemetry layer exports them.

use quiver_strategy::DropReason;

use crate::inference::Unavailable;

/// Per-strategy counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StrategyStats {
    pub evaluations: u64,
    pub signals: u64,
    /// Decisions refused by the validator, indexed like [`DropReason::ALL`].
    pub dropped: [u64; DropReason::ALL.len()],
    pub panics: u64,
    /// Panics, decisions out of range and evaluations over budget: what
    /// counts towards quarantine.
    pub failures: u64,
    /// Evaluations that took longer than the strategy's budget (and did
    /// not also panic, which is counted as the panic).
    pub over_budget: u64,
    /// Evaluations skipped because the engine was behind (load shedding).
    pub shed: u64,
    /// Valid signals the signal hygiene held back, indexed like
    /// [`GuardDrop::ALL`](quiver_strategy::GuardDrop::ALL).
    pub held_back: [u64; quiver_strategy::GuardDrop::ALL.len()],
    /// Model requests made (one feature row each).
    pub inferences: u64,
    /// Evaluations with a missing or non-finite feature: no inference.
    pub skipped_features: u64,
    /// Model outputs out of range, ignored.
    pub rejected_outputs: u64,
    /// Requests without a result, indexed like [`Unavailable::ALL`].
    pub unavailable: [u64; Unavailable::ALL.len()],
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
    /// Panics, decisions out of range and evaluations over budget.
    pub failures: u64,
    pub over_budget: u64,
    pub shed: u64,
    pub held_back: [u64; quiver_strategy::GuardDrop::ALL.len()],
    /// Feature computations: one per distinct (instrument, feature) per tick.
    pub feature_updates: u64,
    /// Feature values read by strategies (declared features per evaluation).
    pub feature_reads: u64,
    pub inferences: u64,
    pub skipped_features: u64,
    pub rejected_outputs: u64,
    pub unavailable: [u64; Unavailable::ALL.len()],
}

pub(crate) fn drop_slot(reason: DropReason) -> usize {
    DropReason::ALL
        .iter()
        .position(|r| *r == reason)
        .unwrap_or_default()
}

impl EngineStats {
    /// Adds one strategy's counters.
    pub(crate) fn add(&mut self, s: &StrategyStats) {
        self.evaluations += s.evaluations;
        self.signals += s.signals;
        self.panics += s.panics;
        self.failures += s.failures;
        self.over_budget += s.over_budget;
        self.shed += s.shed;
        for (total, n) in self.held_back.iter_mut().zip(s.held_back) {
            *total += n;
        }
        for (total, n) in self.dropped.iter_mut().zip(s.dropped) {
            *total += n;
        }
        self.inferences += s.inferences;
        self.skipped_features += s.skipped_features;
        self.rejected_outputs += s.rejected_outputs;
        for (total, n) in self.unavailable.iter_mut().zip(s.unavailable) {
            *total += n;
        }
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Adds another engine's counters (the shards of one run).
    pub fn absorb(&mut self, other: &EngineStats) {
        fn add<const N: usize>(total: &mut [u64; N], more: &[u64; N]) {
            for (t, m) in total.iter_mut().zip(more) {
                *t += m;
            }
        }
        self.ticks += other.ticks;
        self.unrouted_ticks += other.unrouted_ticks;
        self.evaluations += other.evaluations;
        self.signals += other.signals;
        add(&mut self.dropped, &other.dropped);
        self.panics += other.panics;
        self.failures += other.failures;
        self.over_budget += other.over_budget;
        self.shed += other.shed;
        add(&mut self.held_back, &other.held_back);
        self.feature_updates += other.feature_updates;
        self.feature_reads += other.feature_reads;
        self.inferences += other.inferences;
        self.skipped_features += other.skipped_features;
        self.rejected_outputs += other.rejected_outputs;
        add(&mut self.unavailable, &other.unavailable);
    }

    /// Share of feature reads served without computing: each update is paid
    /// once and then read by every strategy that declared the feature.
    pub fn feature_hit_ratio(&self) -> f64 {
        if self.feature_reads == 0 {
            return 0.0;
        }
        1.0 - (self.feature_updates.min(self.feature_reads) as f64 / self.feature_reads as f64)
    }

    /// Feature computations per tick.
    pub fn feature_updates_per_tick(&self) -> f64 {
        if self.ticks == 0 {
            0.0
        } else {
            self.feature_updates as f64 / self.ticks as f64
        }
    }
}
