//! Engine-side and model counters copied into the metrics and the
//! `/strategies` snapshot, off the hot path.

use quiver_engine::{Engine, StrategyState, StrategyStats, Unavailable};
use quiver_strategy::{DropReason, GuardDrop};
use quiver_telemetry::{StrategyStatus, Telemetry};

use super::strategy_set::LiveSet;

use crate::models::PoolRunner;

/// Copies engine-side counters (per-strategy signals, refusals, panics,
/// states, history fill) into metrics and the `/strategies` snapshot. Counters
/// only move forward, so it keeps what it already exported.
pub(super) struct StatsSync {
    last: Vec<StrategyStats>,
    last_unrouted: u64,
}

impl StatsSync {
    pub(super) fn new(strategies: usize) -> Self {
        StatsSync {
            last: vec![StrategyStats::default(); strategies],
            last_unrouted: 0,
        }
    }

    /// After a rebuild from `old` to `new`: each strategy's last copied
    /// counters follow its id (a carried strategy keeps counting on, a new
    /// one starts from zero, as its counters in the engine do).
    pub(super) fn reorder(&mut self, old: &LiveSet, new: &LiveSet) {
        let last = std::mem::take(&mut self.last);
        self.last = new
            .ids()
            .map(|id| {
                old.ids()
                    .position(|o| o == id)
                    .and_then(|i| last.get(i).cloned())
                    .unwrap_or_default()
            })
            .collect();
    }

    pub(super) fn sync(&mut self, engine: &Engine, telemetry: &Telemetry, set: &LiveSet) {
        let metrics = &telemetry.metrics;
        let n = engine.strategy_count();
        self.last.resize(n, StrategyStats::default());
        let mut rows = Vec::with_capacity(n);
        let mut quarantined = 0u32;
        for strategy in engine.strategies() {
            let s = strategy.index();
            let stats = engine.strategy_stats(strategy);
            let last = &self.last[s];
            for (i, reason) in DropReason::ALL.iter().enumerate() {
                metrics
                    .dropped_by(*reason)
                    .inc_by(stats.dropped[i].saturating_sub(last.dropped[i]));
            }
            for (i, reason) in GuardDrop::ALL.iter().enumerate() {
                metrics
                    .held_back(*reason)
                    .inc_by(stats.held_back[i].saturating_sub(last.held_back[i]));
            }
            let invalid = |s: &StrategyStats| {
                s.failures
                    .saturating_sub(s.panics)
                    .saturating_sub(s.over_budget)
            };
            if let Some(t) = set.series.get(s).and_then(|series| series.type_index) {
                let by_category = [
                    (&metrics.panics_by_type, stats.panics, last.panics),
                    (&metrics.invalid_by_type, invalid(stats), invalid(last)),
                    (
                        &metrics.over_budget_by_type,
                        stats.over_budget,
                        last.over_budget,
                    ),
                ];
                for (counters, now, then) in by_category {
                    if let Some(c) = counters.get(t) {
                        c.inc_by(now.saturating_sub(then));
                    }
                }
            }
            metrics.shed.inc_by(stats.shed.saturating_sub(last.shed));
            if !metrics.ml_drops.is_empty() {
                let counts = ml_drop_counts(stats);
                let before = ml_drop_counts(last);
                for ((counter, now), then) in metrics.ml_drops.iter().zip(counts).zip(before) {
                    counter.inc_by(now.saturating_sub(then));
                }
            }
            let state = engine.strategy_state(strategy);
            quarantined += u32::from(state == StrategyState::Quarantined);
            let state = state.as_str();
            if let Some(series) = set.series.get(s) {
                series.set_state(metrics.state_names, state);
            }
            rows.push(StrategyStatus {
                id: engine.strategy_id(strategy).to_owned(),
                type_name: engine.strategy_name(strategy).to_owned(),
                kind: engine.strategy_kind(strategy).as_str(),
                state,
                instruments: engine.instruments(strategy).to_vec(),
                brokers: engine.brokers(strategy).to_vec(),
                evaluations: stats.evaluations,
                signals: stats.signals,
                errors: stats.panics,
                dropped: stats.dropped_total(),
                p99_processing_ms: set
                    .series
                    .get(s)
                    .and_then(|series| series.timing.quantile_ms(0.99)),
                last_transition: None,
                paused_brokers: Vec::new(),
            });
            self.last[s] = stats.clone();
        }
        // Gauges are registered in token order; the engine has its own order.
        for (token, gauge) in metrics.rings() {
            if let Some(i) = engine.instrument_index(token) {
                let (held, capacity) = engine.ring_fill(i);
                gauge.set(held as f64 / capacity.max(1) as f64);
            }
        }
        let unrouted = engine.stats().unrouted_ticks;
        metrics
            .ticks_unrouted
            .inc_by(unrouted.saturating_sub(self.last_unrouted));
        self.last_unrouted = unrouted;
        metrics
            .feature_cache_hit_ratio
            .set(feature_cache_hit_ratio(engine));
        metrics.quarantined.set(f64::from(quarantined));
        telemetry.status.set_strategies(rows);
    }
}

/// Why an ML evaluation ended without a prediction (`strategy_drops_total`):
/// features not finite, outputs out of range, then the engine's
/// [`Unavailable`] reasons in their order.
pub(super) const ML_DROP_REASONS: [&str; 6] = [
    "features_not_finite",
    "output_out_of_range",
    Unavailable::ALL[0].as_str(),
    Unavailable::ALL[1].as_str(),
    Unavailable::ALL[2].as_str(),
    Unavailable::ALL[3].as_str(),
];

/// A strategy's ML drops in [`ML_DROP_REASONS`] order.
fn ml_drop_counts(stats: &StrategyStats) -> [u64; ML_DROP_REASONS.len()] {
    let [a, b, c, d] = stats.unavailable;
    [stats.skipped_features, stats.rejected_outputs, a, b, c, d]
}

/// Copies the inference runtime's per-model counters into the metrics: the
/// deltas since the last call, so the series stay monotone.
#[derive(Default)]
pub(super) struct ModelSync {
    last: Vec<quiver_infer::ModelStatsSnapshot>,
}

impl ModelSync {
    pub(super) fn sync(&mut self, runner: &PoolRunner, telemetry: &Telemetry) {
        let metrics = &telemetry.metrics;
        let handles = runner.handles();
        self.last.resize(handles.len(), Default::default());
        for (handle, last) in handles.iter().zip(&mut self.last) {
            let Some(i) = metrics.model_names.iter().position(|n| n == handle.name()) else {
                continue;
            };
            let now = handle.stats().snapshot();
            metrics.model_inferences[i].inc_by(now.inferences.saturating_sub(last.inferences));
            let delta = |now: &quiver_infer::HistogramSnapshot,
                         then: &quiver_infer::HistogramSnapshot| {
                let counts: Vec<u64> = now
                    .counts
                    .iter()
                    .enumerate()
                    .map(|(b, n)| n.saturating_sub(then.counts.get(b).copied().unwrap_or(0)))
                    .collect();
                (counts, now.sum.saturating_sub(then.sum))
            };
            let (counts, sum) = delta(&now.latency_ns, &last.latency_ns);
            metrics.model_latency[i].add_counts(&counts, sum);
            let (counts, sum) = delta(&now.batch_size, &last.batch_size);
            metrics.model_batch_size[i].add_counts(&counts, sum);
            metrics.model_load_seconds[i].set(now.model_load_seconds);
            metrics.model_deadline_exceeded[i]
                .inc_by(now.deadline_exceeded.saturating_sub(last.deadline_exceeded));
            *last = now;
        }
        if let Some(gauge) = &metrics.inference_queue_depth {
            gauge.set(runner.pool().queue_depth() as f64);
        }
    }
}

/// The shared feature store's hit ratio, for `feature_cache_hit_ratio`:
/// the share of feature reads served without computing (each feature is
/// computed once per tick and read by every strategy that declared it).
pub fn feature_cache_hit_ratio(engine: &Engine) -> f64 {
    engine.stats().feature_hit_ratio()
}
