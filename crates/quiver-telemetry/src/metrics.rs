//! The service's metrics: names (the seeds'), and every series registered
//! once at start-up with its handle kept, so the tick path never builds a
//! label.

use quiver_strategy::{DropReason, StrategyKind};

use crate::registry::{
    Counter, Gauge, Histogram, Registry, RegistryError, EVALUATION_BOUNDS_NS, LATENCY_BOUNDS_NS,
};

/// Metric names, in one place (seed 000/001/002 names where they exist).
pub mod names {
    pub const TICKS_PROCESSED: &str = "market_tick_processed_total";
    pub const TICK_LATENCY: &str = "market_tick_process_latency_ms";
    pub const TICKS_OUTSIDE_SESSION: &str = "market_tick_outside_session_total";
    pub const TICKS_UNROUTED: &str = "market_tick_unrouted_total";
    pub const TICKS_REJECTED: &str = "market_tick_rejected_total";
    pub const SOURCE_LAG: &str = "market_tick_source_lag";
    pub const PENDING_ENTRIES: &str = "market_tick_pending_entries";
    pub const QUEUE_DEPTH: &str = "runtime_queue_depth";
    pub const QUEUE_CAPACITY: &str = "runtime_queue_capacity";
    pub const SIGNALS: &str = "signals_total";
    pub const SIGNALS_PUBLISHED: &str = "signals_published_total";
    pub const SIGNALS_DUPLICATE: &str = "signals_duplicate_total";
    pub const SIGNALS_DROPPED: &str = "signals_dropped_total";
    pub const STRATEGY_ERRORS: &str = "strategy_errors_total";
    pub const STRATEGY_PROCESSING: &str = "strategy_processing_duration_ms";
    pub const STRATEGY_STATE: &str = "strategy_state";
    pub const FEATURE_CACHE_HIT_RATIO: &str = "feature_cache_hit_ratio";
    pub const HISTORY_RING_UTILIZATION: &str = "history_ring_utilization";
    pub const STRATEGY_INFERENCES: &str = "strategy_inferences_total";
    pub const STRATEGY_INFERENCE_LATENCY: &str = "strategy_inference_latency_ms";
    pub const STRATEGY_BATCH_SIZE: &str = "strategy_batch_size";
    pub const STRATEGY_DROPS: &str = "strategy_drops_total";
    pub const MODEL_LOAD_SECONDS: &str = "model_load_seconds";
    pub const INFERENCE_QUEUE_DEPTH: &str = "inference_queue_depth";
}

/// Signal drop reasons beyond the validator's ([`DropReason`]).
pub mod drop_reasons {
    /// The tick arrived outside the trading session and the strategy did not
    /// opt in to such ticks.
    pub const OUTSIDE_SESSION: &str = "outside_session";
    /// The sink refused the signal; it went to the dead-letter stream.
    pub const PUBLISH_FAILED: &str = "publish_failed";
}

/// Categories of ticks that could not be processed (dead-lettered).
pub const TICK_REJECT_CATEGORIES: [&str; 2] = ["malformed_tick", "deleted_entry"];

/// Lifecycle states exported by `strategy_state` (one series per state, 1 for
/// the current one).
pub const STATES: [&str; 3] = ["warmup", "active", "quarantined"];

/// One strategy as the metrics see it.
#[derive(Clone, Debug)]
pub struct StrategyDesc {
    pub id: String,
    /// The strategy's type name (`momentum`, `hybrid:momentum+rsi`).
    pub type_name: String,
    pub kind: StrategyKind,
}

/// What there is to label: fixed for the life of the process.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub strategies: Vec<StrategyDesc>,
    pub brokers: Vec<String>,
    /// Followed instruments.
    pub instruments: Vec<u64>,
    /// Registry names of the models strategies use.
    pub models: Vec<String>,
    /// Bucket bounds of the inference runtime's own histograms, which the
    /// model series mirror: one call's latency (ns) and its row count.
    pub inference_latency_bounds_ns: &'static [u64],
    pub batch_size_bounds: &'static [u64],
    /// Why an ML evaluation can end without a prediction: the `reason`
    /// labels of `strategy_drops_total` (registered when models are used).
    pub ml_drop_reasons: &'static [&'static str],
}

/// Handles of every series.
#[derive(Debug)]
pub struct ServiceMetrics {
    pub ticks_processed: Counter,
    /// Tick arrival → all its signals published.
    pub tick_latency: Histogram,
    pub ticks_outside_session: Counter,
    pub ticks_unrouted: Counter,
    /// Per [`TICK_REJECT_CATEGORIES`].
    pub ticks_rejected: Vec<Counter>,
    pub source_lag: Gauge,
    pub pending_entries: Gauge,
    pub queue_depth_engine: Gauge,
    pub queue_depth_sink: Gauge,
    pub queue_capacity: Gauge,
    /// Per strategy: [BUY, SELL].
    pub signals: Vec<[Counter; 2]>,
    /// Per broker.
    pub published: Vec<Counter>,
    pub duplicates: Vec<Counter>,
    /// Per [`DropReason::ALL`], then outside_session, then publish_failed.
    pub dropped: Vec<Counter>,
    /// Per strategy type (index in `type_names`): panics.
    pub panics_by_type: Vec<Counter>,
    /// Per strategy type: one evaluation's duration.
    pub processing_by_type: Vec<Histogram>,
    /// Per strategy: index of its type.
    pub type_of: Vec<usize>,
    pub type_names: Vec<String>,
    /// Per strategy: one gauge per [`STATES`].
    pub state: Vec<[Gauge; 3]>,
    pub feature_cache_hit_ratio: Gauge,
    /// Per followed instrument, in `ring_tokens` order.
    pub ring_utilization: Vec<Gauge>,
    pub ring_tokens: Vec<u64>,
    /// Per model of [`Catalog::models`] (same order, names in `model_names`).
    pub model_inferences: Vec<Counter>,
    pub model_latency: Vec<Histogram>,
    pub model_batch_size: Vec<Histogram>,
    pub model_load_seconds: Vec<Gauge>,
    pub model_names: Vec<String>,
    /// Per [`Catalog::ml_drop_reasons`] (registered only when models are used).
    pub ml_drops: Vec<Counter>,
    pub inference_queue_depth: Option<Gauge>,
}

impl ServiceMetrics {
    pub fn register(registry: &Registry, catalog: &Catalog) -> Result<Self, RegistryError> {
        use names::*;
        let mut type_names: Vec<String> = Vec::new();
        let type_of = catalog
            .strategies
            .iter()
            .map(
                |s| match type_names.iter().position(|t| *t == s.type_name) {
                    Some(i) => i,
                    None => {
                        type_names.push(s.type_name.clone());
                        type_names.len() - 1
                    }
                },
            )
            .collect();
        let ticks_processed =
            registry.counter(TICKS_PROCESSED, "Ticks dispatched to the engine.", &[])?;
        let tick_latency = registry.histogram(
            TICK_LATENCY,
            "Tick arrival at the runner to all of its signals published, in milliseconds.",
            &[],
            LATENCY_BOUNDS_NS,
        )?;
        let ticks_outside_session = registry.counter(
            TICKS_OUTSIDE_SESSION,
            "Ticks that arrived outside the trading session and were skipped.",
            &[],
        )?;
        let ticks_unrouted = registry.counter(
            TICKS_UNROUTED,
            "Ticks of instruments no strategy follows.",
            &[],
        )?;
        let ticks_rejected = TICK_REJECT_CATEGORIES
            .iter()
            .map(|reason| {
                registry.counter(
                    TICKS_REJECTED,
                    "Source entries that could not be read as ticks, sent to the dead-letter stream.",
                    &[("reason", reason)],
                )
            })
            .collect::<Result<_, _>>()?;
        let source_lag = registry.gauge(
            SOURCE_LAG,
            "Entries in the tick streams not yet delivered to this consumer group.",
            &[],
        )?;
        let pending_entries = registry.gauge(
            PENDING_ENTRIES,
            "Tick entries delivered to the consumer group but not yet acknowledged.",
            &[],
        )?;
        let depth = |stage| {
            registry.gauge(
                QUEUE_DEPTH,
                "Batches waiting in the bounded queue in front of a stage.",
                &[("stage", stage)],
            )
        };
        let queue_depth_engine = depth("engine")?;
        let queue_depth_sink = depth("sink")?;
        let queue_capacity = registry.gauge(
            QUEUE_CAPACITY,
            "Capacity, in batches, of each queue between stages.",
            &[],
        )?;
        let signals = catalog
            .strategies
            .iter()
            .map(|s| -> Result<[Counter; 2], RegistryError> {
                let side =
                    |side| {
                        registry.counter(
                        SIGNALS,
                        "Validated signals, per strategy, kind and side (before broker fan-out).",
                        &[("strategy", &s.id), ("kind", s.kind.as_str()), ("side", side)],
                    )
                    };
                Ok([side("BUY")?, side("SELL")?])
            })
            .collect::<Result<_, _>>()?;
        let per_broker = |name, help| {
            catalog
                .brokers
                .iter()
                .map(|b| registry.counter(name, help, &[("broker", b)]))
                .collect::<Result<Vec<_>, _>>()
        };
        let published = per_broker(
            SIGNALS_PUBLISHED,
            "Signal entries added to a broker's stream.",
        )?;
        let duplicates = per_broker(
            SIGNALS_DUPLICATE,
            "Signals not added again because they were already published (ticks processed again after a restart).",
        )?;
        let dropped = DropReason::ALL
            .iter()
            .map(|r| r.as_str())
            .chain([drop_reasons::OUTSIDE_SESSION, drop_reasons::PUBLISH_FAILED])
            .map(|reason| {
                registry.counter(
                    SIGNALS_DROPPED,
                    "Decisions or signals that were not published, by reason.",
                    &[("reason", reason)],
                )
            })
            .collect::<Result<_, _>>()?;
        let panics_by_type = type_names
            .iter()
            .map(|t| {
                registry.counter(
                    STRATEGY_ERRORS,
                    "Strategy failures contained by the engine, per strategy type and category.",
                    &[("type", t), ("error_category", "panic")],
                )
            })
            .collect::<Result<_, _>>()?;
        let processing_by_type = type_names
            .iter()
            .map(|t| {
                registry.histogram(
                    STRATEGY_PROCESSING,
                    "One strategy evaluation (one tick, one strategy), per strategy type, in milliseconds.",
                    &[("type", t)],
                    EVALUATION_BOUNDS_NS,
                )
            })
            .collect::<Result<_, _>>()?;
        let state = catalog
            .strategies
            .iter()
            .map(|s| -> Result<[Gauge; 3], RegistryError> {
                let g = |state| {
                    registry.gauge(
                        STRATEGY_STATE,
                        "1 for the strategy's current lifecycle state, 0 for the others.",
                        &[("strategy", &s.id), ("state", state)],
                    )
                };
                Ok([g(STATES[0])?, g(STATES[1])?, g(STATES[2])?])
            })
            .collect::<Result<_, _>>()?;
        let feature_cache_hit_ratio = registry.gauge(
            FEATURE_CACHE_HIT_RATIO,
            "Share of feature reads served from the shared feature store.",
            &[],
        )?;
        let ring_utilization = catalog
            .instruments
            .iter()
            .map(|token| {
                registry.gauge(
                    HISTORY_RING_UTILIZATION,
                    "Fill of an instrument's shared history ring (held / capacity).",
                    &[("instrument", &token.to_string())],
                )
            })
            .collect::<Result<_, _>>()?;
        let n = catalog.models.len();
        let mut model_inferences = Vec::with_capacity(n);
        let mut model_latency = Vec::with_capacity(n);
        let mut model_batch_size = Vec::with_capacity(n);
        let mut model_load = Vec::with_capacity(n);
        for model in &catalog.models {
            let labels = [("model", model.as_str())];
            model_inferences.push(registry.counter(
                STRATEGY_INFERENCES,
                "Rows a model inferred (one per ML evaluation that reached it).",
                &labels,
            )?);
            model_latency.push(registry.histogram(
                STRATEGY_INFERENCE_LATENCY,
                "One batched model call, per model, in milliseconds.",
                &labels,
                catalog.inference_latency_bounds_ns,
            )?);
            model_batch_size.push(registry.histogram_of_counts(
                STRATEGY_BATCH_SIZE,
                "Rows per model call, per model.",
                &labels,
                catalog.batch_size_bounds,
            )?);
            model_load.push(registry.gauge(
                MODEL_LOAD_SECONDS,
                "Time the model's version in service took to load and verify, in seconds.",
                &labels,
            )?);
        }
        let uses_models = !catalog.models.is_empty();
        let ml_drops = if uses_models {
            catalog
                .ml_drop_reasons
                .iter()
                .map(|reason| {
                    registry.counter(
                        STRATEGY_DROPS,
                        "ML evaluations that ended without a usable prediction (HOLD), by reason.",
                        &[("reason", reason)],
                    )
                })
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let inference_queue_depth = if uses_models {
            Some(registry.gauge(
                INFERENCE_QUEUE_DEPTH,
                "Inference requests waiting for a worker.",
                &[],
            )?)
        } else {
            None
        };
        Ok(ServiceMetrics {
            ticks_processed,
            tick_latency,
            ticks_outside_session,
            ticks_unrouted,
            ticks_rejected,
            source_lag,
            pending_entries,
            queue_depth_engine,
            queue_depth_sink,
            queue_capacity,
            signals,
            published,
            duplicates,
            dropped,
            panics_by_type,
            processing_by_type,
            type_of,
            type_names,
            state,
            feature_cache_hit_ratio,
            ring_utilization,
            ring_tokens: catalog.instruments.clone(),
            model_inferences,
            model_latency,
            model_batch_size,
            model_load_seconds: model_load,
            model_names: catalog.models.clone(),
            ml_drops,
            inference_queue_depth,
        })
    }

    /// The `signals_dropped_total` handle of a validator reason.
    pub fn dropped_by(&self, reason: DropReason) -> &Counter {
        let i = DropReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or_default();
        &self.dropped[i]
    }

    pub fn dropped_outside_session(&self) -> &Counter {
        &self.dropped[DropReason::ALL.len()]
    }

    pub fn dropped_publish_failed(&self) -> &Counter {
        &self.dropped[DropReason::ALL.len() + 1]
    }

    /// The `market_tick_rejected_total` handle of a dead-letter category.
    pub fn rejected(&self, category: &str) -> Option<&Counter> {
        TICK_REJECT_CATEGORIES
            .iter()
            .position(|c| *c == category)
            .map(|i| &self.ticks_rejected[i])
    }

    /// Sets `strategy_state` of strategy `s` to `state` (one of [`STATES`]).
    pub fn set_state(&self, s: usize, state: &str) {
        if let Some(gauges) = self.state.get(s) {
            for (gauge, name) in gauges.iter().zip(STATES) {
                gauge.set(if name == state { 1.0 } else { 0.0 });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let strategy = |id: &str, type_name: &str, kind| StrategyDesc {
            id: id.to_owned(),
            type_name: type_name.to_owned(),
            kind,
        };
        Catalog {
            strategies: vec![
                strategy("momentum-fast", "momentum", StrategyKind::Rules),
                strategy("rsi-revert", "rsi", StrategyKind::Rules),
                strategy("momentum-slow", "momentum", StrategyKind::Rules),
                strategy("lgbm-edge", "ml:lgbm", StrategyKind::Ml),
            ],
            brokers: vec!["zerodha".to_owned(), "upstox".to_owned()],
            instruments: vec![256_265, 738_561],
            models: vec!["lgbm-v1".to_owned(), "edge-net".to_owned()],
            inference_latency_bounds_ns: &[100_000, 1_000_000],
            batch_size_bounds: &[1, 8, 64],
            ml_drop_reasons: &["features_not_finite", "timeout"],
        }
    }

    /// Gives every handle its own value, so a series wired to the wrong
    /// handle shows in the exposition.
    fn touch_every_handle(m: &ServiceMetrics) {
        let mut next = 0u64;
        let mut value = || {
            next += 1;
            next
        };
        let counters = [
            &m.ticks_processed,
            &m.ticks_outside_session,
            &m.ticks_unrouted,
        ]
        .into_iter()
        .chain(&m.ticks_rejected)
        .chain(m.signals.iter().flatten())
        .chain(&m.published)
        .chain(&m.duplicates)
        .chain(&m.dropped)
        .chain(&m.panics_by_type)
        .chain(&m.model_inferences)
        .chain(&m.ml_drops);
        for counter in counters {
            counter.inc_by(value());
        }
        let gauges = [
            &m.source_lag,
            &m.pending_entries,
            &m.queue_depth_engine,
            &m.queue_depth_sink,
            &m.queue_capacity,
            &m.feature_cache_hit_ratio,
        ]
        .into_iter()
        .chain(&m.ring_utilization)
        .chain(&m.model_load_seconds)
        .chain(&m.inference_queue_depth);
        for gauge in gauges {
            gauge.set(value() as f64);
        }
        let histograms = [&m.tick_latency]
            .into_iter()
            .chain(&m.processing_by_type)
            .chain(&m.model_latency)
            .chain(&m.model_batch_size);
        for histogram in histograms {
            histogram.observe_ns_n(value() * 500_000, value());
        }
    }

    #[test]
    fn exposition_of_a_full_catalog_is_unchanged() {
        let registry = Registry::new();
        let metrics = ServiceMetrics::register(&registry, &catalog()).unwrap();
        touch_every_handle(&metrics);
        metrics.set_state(0, "active");
        metrics.set_state(1, "quarantined");
        metrics.set_state(2, "warmup");
        assert_eq!(
            registry.encode(),
            include_str!("../testdata/full_catalog.prom")
        );
    }

    #[test]
    fn exposition_without_strategies_or_models_is_unchanged() {
        let registry = Registry::new();
        let metrics = ServiceMetrics::register(&registry, &Catalog::default()).unwrap();
        touch_every_handle(&metrics);
        assert!(metrics.inference_queue_depth.is_none());
        assert_eq!(
            registry.encode(),
            include_str!("../testdata/empty_catalog.prom")
        );
    }

    #[test]
    fn handles_named_by_reason_are_the_reasons_series() {
        let registry = Registry::new();
        let metrics = ServiceMetrics::register(&registry, &catalog()).unwrap();
        metrics.dropped_by(DropReason::NonPositivePrice).inc();
        metrics.dropped_outside_session().inc_by(2);
        metrics.dropped_publish_failed().inc_by(3);
        let rejected = metrics.rejected("deleted_entry");
        assert!(rejected.is_some());
        rejected.into_iter().for_each(|c| c.inc_by(4));
        assert!(metrics.rejected("no_such_category").is_none());
        let text = registry.encode();
        for line in [
            "signals_dropped_total{reason=\"non_positive_price\"} 1\n",
            "signals_dropped_total{reason=\"outside_session\"} 2\n",
            "signals_dropped_total{reason=\"publish_failed\"} 3\n",
            "market_tick_rejected_total{reason=\"deleted_entry\"} 4\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
