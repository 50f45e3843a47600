//! The strategies the service runs, beside the engine: for each (in engine
//! order) its own metric series, whether it trades outside the session and
//! its brokers. Built once at start and again for every reload, by the same
//! function, so a reloaded set is wired exactly as a started one.

use std::sync::Arc;

use quiver_engine::{Engine, StrategyEntry};
use quiver_telemetry::registry::EVALUATION_BOUNDS_NS;
use quiver_telemetry::{Histogram, StrategyDesc, StrategySeries, Telemetry};

use super::RuntimeError;
use crate::instrumented::instrument;
use crate::settings::Settings;

/// Per strategy, in engine order.
pub(crate) struct LiveSet {
    pub(crate) series: Vec<Arc<StrategySeries>>,
    /// Trades ticks outside the session.
    pub(crate) allow_outside: Vec<bool>,
    /// (broker index, broker).
    pub(crate) brokers: Vec<Vec<(u32, Arc<str>)>>,
}

impl LiveSet {
    pub(crate) fn ids(&self) -> impl Iterator<Item = &str> {
        self.series.iter().map(|s| s.id.as_str())
    }
}

/// Checks `rows` against what the service was started with, registers the
/// series of ids not seen before, and wraps each strategy for timing, spans
/// and the warm-up floor.
pub(crate) fn prepare(
    rows: Vec<StrategyEntry>,
    settings: &Settings,
    telemetry: &Telemetry,
) -> Result<(Vec<StrategyEntry>, LiveSet), RuntimeError> {
    let limit = settings.strategy.history_store_size;
    let metrics = &telemetry.metrics;
    let mut set = LiveSet {
        series: Vec::with_capacity(rows.len()),
        allow_outside: Vec::with_capacity(rows.len()),
        brokers: Vec::with_capacity(rows.len()),
    };
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let required = row
            .logic
            .strategy()
            .required_history()
            .max(settings.strategy.warmup_ticks);
        if limit > 0 && required > limit {
            return Err(RuntimeError::HistoryTooLong {
                id: row.id.clone(),
                required,
                limit,
            });
        }
        let mut brokers = Vec::with_capacity(row.brokers.len());
        for broker in &row.brokers {
            let Some(i) = metrics.broker_names.iter().position(|b| b == broker) else {
                return Err(RuntimeError::Settings(format!(
                    "strategy {:?}: broker {broker:?} is not one the service started with (a reload cannot add brokers: their streams and metrics are set at start)",
                    row.id
                )));
            };
            brokers.push((i as u32, Arc::from(broker.as_str())));
        }
        let desc = StrategyDesc {
            id: row.id.clone(),
            type_name: row.logic.strategy().name().to_owned(),
            kind: row.logic.strategy().kind(),
            brokers: brokers.iter().map(|(i, _)| *i as usize).collect(),
        };
        let series = metrics.series_for(&telemetry.registry, &desc)?;
        metrics.follow_rings(&telemetry.registry, row.instruments.iter().copied())?;
        // A type no strategy had at start has no per-type series: its
        // evaluations are timed for `/strategies` only.
        let by_type = series
            .type_index
            .and_then(|t| metrics.processing_by_type.get(t).cloned())
            .unwrap_or_else(|| Histogram::new(EVALUATION_BOUNDS_NS));
        let logic = instrument(
            row.logic,
            &row.id,
            settings.strategy.warmup_ticks,
            Some((
                settings.quiver.strategy_timing_every,
                by_type,
                series.timing.clone(),
            )),
        );
        set.allow_outside
            .push(settings.quiver.session.allow_outside.contains(&row.id));
        set.brokers.push(brokers);
        set.series.push(series);
        entries.push(StrategyEntry { logic, ..row });
    }
    Ok((entries, set))
}

/// The engine of prepared entries: with a monotonic clock when a strategy
/// has a budget (live only: a replay has no clock, so budgets cannot change
/// it).
pub(crate) fn engine(entries: Vec<StrategyEntry>) -> Result<Engine, RuntimeError> {
    let budgeted = entries.iter().any(|e| e.schedule.budget_ns.is_some());
    let mut engine = Engine::new(entries)?;
    if budgeted {
        engine.set_clock(Some(monotonic_ns));
    }
    Ok(engine)
}

/// Nanoseconds since the first call, on the monotonic clock.
fn monotonic_ns() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
