//! Building the service: the engine of a config (each strategy wrapped for
//! timing, spans and the warm-up floor), every metric registered once, and
//! the inference pool when strategies use models.

use std::collections::HashMap;
use std::sync::Arc;

use quiver_engine::{StrategyEntry, StrategyState};
use quiver_telemetry::{Catalog, StrategyDesc, Telemetry};

use super::stats::{feature_cache_hit_ratio, StatsSync, ML_DROP_REASONS};
use super::{strategy_set, Gate, RuntimeError, Service};
use crate::models::{Models, PoolRunner};
use crate::session::SessionClock;
use crate::settings::Settings;

impl Service {
    /// Builds the engine from the enabled rows of `config`, wrapping each
    /// strategy (timing, spans, warm-up floor), registers every metric and,
    /// when strategies use models, loads them and starts the inference pool.
    pub fn new(
        config: &quiver_config::Config,
        models: &Models,
        settings: Settings,
    ) -> Result<Service, RuntimeError> {
        // Bit-for-bit the results of a replay with as many call rows.
        let pool = quiver_infer::PoolConfig {
            deterministic: Some(models.backend().unwrap_or(quiver_infer::Backend::Tract)),
            ..settings.strategy.pool_config()
        };
        let mut service = Service::from_entries(models.engine_entries(config)?, settings)?;
        service.desk = config.desk.clone();
        service
            .engine
            .set_lifecycle(crate::models::lifecycle_policy(&config.lifecycle));
        let used = service.engine.models();
        if !used.is_empty() {
            // A batch's requests are queued at once: XREADGROUP reads up to
            // batch_size entries from each partition stream.
            let q = &service.settings.quiver;
            let worst = q.batch_size.max(1)
                * q.redis.partitions.max(1) as usize
                * service.engine.max_model_requests_per_tick();
            if worst > pool.queue_size {
                tracing::warn!(
                    worst,
                    queue = pool.queue_size,
                    "a tick batch can make more model requests than STRATEGY__ML_POOL_QUEUE_SIZE holds; the excess will be HOLD (queue_full)"
                );
            }
            service.runner = Some(PoolRunner::new(pool, models.handles(used))?);
            service.models = models.store.clone();
        }
        Ok(service)
    }

    /// As [`Service::new`], from strategies already built (benchmarks, tests).
    pub fn from_entries(
        rows: Vec<StrategyEntry>,
        settings: Settings,
    ) -> Result<Service, RuntimeError> {
        let mut broker_names: Vec<String> = Vec::new();
        for row in &rows {
            for broker in &row.brokers {
                if !broker_names.contains(broker) {
                    broker_names.push(broker.clone());
                }
            }
        }
        // The strategies file refuses broker `dlq`; a renamed dead-letter
        // stream is caught here, where both names are known.
        let redis = &settings.quiver.redis;
        if let Some(broker) = broker_names
            .iter()
            .find(|b| format!("{}{b}", redis.signal_stream_prefix) == redis.dead_letter_stream)
        {
            return Err(RuntimeError::Settings(format!(
                "broker {broker:?} would publish into the dead-letter stream {:?} (quiver.redis.dead_letter_stream)",
                redis.dead_letter_stream
            )));
        }
        let mut instruments: Vec<u64> = rows
            .iter()
            .flat_map(|r| r.instruments.iter().copied())
            .collect();
        instruments.sort_unstable();
        instruments.dedup();
        let catalog = Catalog {
            strategies: rows
                .iter()
                .map(|row| StrategyDesc {
                    id: row.id.clone(),
                    type_name: row.logic.strategy().name().to_owned(),
                    kind: row.logic.strategy().kind(),
                    brokers: row
                        .brokers
                        .iter()
                        .filter_map(|b| broker_names.iter().position(|x| x == b))
                        .collect(),
                })
                .collect(),
            brokers: broker_names.clone(),
            instruments,
            models: model_names(&rows),
            inference_latency_bounds_ns: &quiver_infer::stats::LATENCY_BOUNDS_NS,
            batch_size_bounds: &quiver_infer::stats::BATCH_SIZE_BOUNDS,
            ml_drop_reasons: &ML_DROP_REASONS,
            states: &StrategyState::NAMES,
        };
        let telemetry = Arc::new(Telemetry::new(&catalog)?);
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let followed: Vec<Vec<_>> = rows.iter().map(|r| r.instruments.clone()).collect();
        let (entries, set) = strategy_set::prepare(rows, &settings, &telemetry)?;
        let engine = strategy_set::engine(entries)?;
        let session = SessionClock::from_settings(&settings.quiver.session)
            .map_err(RuntimeError::Settings)?;
        for id in &settings.quiver.session.allow_outside {
            if !ids.contains(id) {
                return Err(RuntimeError::Settings(format!(
                    "quiver.session.allow_outside: no enabled strategy has id {id:?}"
                )));
            }
        }
        let mut outside_instruments = HashMap::new();
        for (tokens, allowed) in followed.iter().zip(&set.allow_outside) {
            for &token in tokens {
                *outside_instruments.entry(token).or_insert(false) |= *allowed;
            }
        }
        telemetry
            .metrics
            .queue_capacity
            .set(settings.quiver.queue_capacity as f64);
        telemetry
            .metrics
            .feature_cache_hit_ratio
            .set(feature_cache_hit_ratio(&engine));
        let service = Service {
            engine,
            telemetry,
            settings,
            gate: Gate {
                session,
                outside_instruments: Arc::new(outside_instruments),
            },
            set,
            runner: None,
            models: None,
            control: quiver_driver::control_channel(),
            reloads: None,
            desk: quiver_paper::DeskSpec::default(),
        };
        let mut sync = StatsSync::new(service.engine.strategy_count());
        sync.sync(&service.engine, &service.telemetry, &service.set);
        service.telemetry.status.set_strategies_loaded(true);
        Ok(service)
    }
}

/// Registry names of the models `rows` use, in first-use order.
fn model_names(rows: &[StrategyEntry]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for row in rows {
        if let Some(used) = row.logic.model() {
            if !names.contains(&used.model.name) {
                names.push(used.model.name.clone());
            }
        }
    }
    names
}
