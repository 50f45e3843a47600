//! The service's metrics: each declared once, in [`METRICS`] (name, help,
//! kind, label names), and every series registered once at start-up with its
//! handle kept, so the tick path never builds a label.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use quiver_strategy::{DropReason, GuardDrop, StrategyKind};

use crate::registry::{
    Counter, Gauge, Histogram, Kind, Registry, RegistryError, EVALUATION_BOUNDS_NS,
    LATENCY_BOUNDS_NS,
};

/// One metric as the exposition declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricDef {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// Label names, in the order every series renders them.
    pub labels: &'static [&'static str],
}

/// Declares each metric from one line — `ID: Handle "name" [labels] "help";`
/// — as its [`names`] constant, its typed declaration in `def` and its row of
/// [`METRICS`], so the three cannot disagree.
macro_rules! metrics {
    ($($id:ident: $handle:ident $name:literal [$($label:literal),*] $help:literal;)*) => {
        /// Metric names (seed 000/001/002 names where they exist).
        pub mod names {
            $(pub const $id: &str = $name;)*
        }

        mod def {
            use super::*;

            $(
                pub(super) const $id: Def<$handle, { <[&str]>::len(&[$($label),*]) }> =
                    Def::new(names::$id, $help, &[$($label),*]);
            )*
        }

        /// Every metric the service exports, in exposition order (a family
        /// with no series, such as the model metrics without models, is left
        /// out).
        pub const METRICS: &[MetricDef] = &[$(def::$id.erase()),*];
    };
}

metrics! {
    TICKS_PROCESSED: Counter "market_tick_processed_total" []
        "Ticks dispatched to the engine.";
    TICK_LATENCY: Histogram "market_tick_process_latency_ms" []
        "Tick arrival at the runner to all of its signals published, in milliseconds.";
    TICKS_OUTSIDE_SESSION: Counter "market_tick_outside_session_total" []
        "Ticks that arrived outside the trading session and were skipped.";
    TICKS_UNROUTED: Counter "market_tick_unrouted_total" []
        "Ticks of instruments no strategy follows.";
    TICKS_REJECTED: Counter "market_tick_rejected_total" ["reason"]
        "Source entries that could not be read as ticks, sent to the dead-letter stream.";
    SOURCE_LAG: Gauge "market_tick_source_lag" []
        "Entries in the tick streams not yet delivered to this consumer group.";
    PENDING_ENTRIES: Gauge "market_tick_pending_entries" []
        "Tick entries delivered to the consumer group but not yet acknowledged.";
    QUEUE_DEPTH: Gauge "runtime_queue_depth" ["stage"]
        "Batches waiting in the bounded queue in front of a stage.";
    QUEUE_CAPACITY: Gauge "runtime_queue_capacity" []
        "Capacity, in batches, of each queue between stages.";
    SIGNALS: Counter "signals_total" ["strategy", "kind", "side"]
        "Validated signals, per strategy, kind and side (before broker fan-out).";
    SIGNALS_PUBLISHED: Counter "signals_published_total" ["broker"]
        "Signal entries added to a broker's stream.";
    SIGNALS_DUPLICATE: Counter "signals_duplicate_total" ["broker"]
        "Signals not added again because they were already published (ticks processed again after a restart).";
    PUBLISH_RETRIES: Counter "signal_publish_retries_total" []
        "Publishes of a batch tried again after the bus failed (nothing is acknowledged until it is published).";
    SIGNALS_DROPPED: Counter "signals_dropped_total" ["reason"]
        "Decisions or signals that were not published, by reason.";
    SIGNALS_THROTTLED: Counter "signals_throttled_total" []
        "Signals the paper desk's risk controller let out smaller: an exposure would pass its soft limit.";
    STRATEGY_ERRORS: Counter "strategy_errors_total" ["type", "error_category"]
        "Strategy failures contained by the engine, per strategy type and category.";
    STRATEGY_PROCESSING: Histogram "strategy_processing_duration_ms" ["type"]
        "One strategy evaluation (one tick, one strategy), per strategy type, in milliseconds.";
    STRATEGY_STATE: Gauge "strategy_state" ["strategy", "state"]
        "1 for the strategy's current lifecycle state, 0 for the others.";
    BROKER_EMISSION_PAUSED: Gauge "broker_emission_paused" ["strategy", "broker"]
        "1 while the strategy's signals to the broker are withheld (dead-lettered untried) after the broker refused them repeatedly; 0 otherwise.";
    CONFIG_RELOADS: Counter "config_reload_total" ["result"]
        "Reloads of the strategy set, by result: applied (swapped in), unchanged (the set serving), refused (invalid; the set serving kept).";
    STRATEGY_QUARANTINED: Gauge "strategy_quarantined" []
        "Strategies quarantined after failing repeatedly (retried after their back-off).";
    FEATURE_CACHE_HIT_RATIO: Gauge "feature_cache_hit_ratio" []
        "Share of feature reads served from the shared feature store.";
    HISTORY_RING_UTILIZATION: Gauge "history_ring_utilization" ["instrument"]
        "Fill of an instrument's shared history ring (held / capacity).";
    STRATEGY_INFERENCES: Counter "strategy_inferences_total" ["model"]
        "Rows a model inferred (one per ML evaluation that reached it).";
    STRATEGY_INFERENCE_LATENCY: Histogram "strategy_inference_latency_ms" ["model"]
        "One batched model call, per model, in milliseconds.";
    STRATEGY_BATCH_SIZE: Histogram "strategy_batch_size" ["model"]
        "Rows per model call, per model.";
    MODEL_LOAD_SECONDS: Gauge "model_load_seconds" ["model"]
        "Time the model's version in service took to load and verify, in seconds.";
    MODEL_DEADLINE_EXCEEDED: Counter "model_deadline_exceeded_total" ["model"]
        "Model versions taken out of service because an inference call (warm-up included) ran past its deadline.";
    STRATEGY_DROPS: Counter "strategy_drops_total" ["reason"]
        "Evaluations skipped while the engine was behind (shed), and ML evaluations that ended without a usable prediction (HOLD), by reason.";
    INFERENCE_QUEUE_DEPTH: Gauge "inference_queue_depth" []
        "Inference requests waiting for a worker.";
}

/// A handle type a metric can be declared with.
trait Handle: Sized {
    const KIND: Kind;
}

/// A handle registered from its labels alone (histograms also need bounds).
trait Plain: Handle {
    fn register(
        registry: &Registry,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Result<Self, RegistryError>;
}

impl Handle for Counter {
    const KIND: Kind = Kind::Counter;
}

impl Handle for Gauge {
    const KIND: Kind = Kind::Gauge;
}

impl Handle for Histogram {
    const KIND: Kind = Kind::Histogram;
}

impl Plain for Counter {
    fn register(
        registry: &Registry,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Result<Self, RegistryError> {
        registry.counter(name, help, labels)
    }
}

impl Plain for Gauge {
    fn register(
        registry: &Registry,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Result<Self, RegistryError> {
        registry.gauge(name, help, labels)
    }
}

/// A metric typed by its handle and label count, so a series can only be
/// registered as the declared kind and with one value per declared label.
struct Def<H, const N: usize> {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str; N],
    handle: PhantomData<fn() -> H>,
}

impl<H: Handle, const N: usize> Def<H, N> {
    const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str; N],
    ) -> Self {
        Def {
            name,
            help,
            labels,
            handle: PhantomData,
        }
    }

    const fn erase(&self) -> MetricDef {
        MetricDef {
            name: self.name,
            help: self.help,
            kind: H::KIND,
            labels: self.labels,
        }
    }

    fn labelled<'v>(&self, values: [&'v str; N]) -> [(&'static str, &'v str); N] {
        std::array::from_fn(|i| (self.labels[i], values[i]))
    }
}

impl<H: Plain, const N: usize> Def<H, N> {
    fn series(&self, registry: &Registry, values: [&str; N]) -> Result<H, RegistryError> {
        H::register(registry, self.name, self.help, &self.labelled(values))
    }

    /// One series per row of label values, in row order.
    fn each<'v>(
        &self,
        registry: &Registry,
        rows: impl IntoIterator<Item = [&'v str; N]>,
    ) -> Result<Vec<H>, RegistryError> {
        rows.into_iter()
            .map(|values| self.series(registry, values))
            .collect()
    }
}

impl<const N: usize> Def<Histogram, N> {
    /// A series of durations: recorded in nanoseconds, exposed in
    /// milliseconds.
    fn durations(
        &self,
        registry: &Registry,
        values: [&str; N],
        bounds_ns: &'static [u64],
    ) -> Result<Histogram, RegistryError> {
        registry.histogram(self.name, self.help, &self.labelled(values), bounds_ns)
    }

    /// A series of plain counts, exposed as they are.
    fn counts(
        &self,
        registry: &Registry,
        values: [&str; N],
        bounds: &'static [u64],
    ) -> Result<Histogram, RegistryError> {
        registry.histogram_of_counts(self.name, self.help, &self.labelled(values), bounds)
    }
}

/// Signal drop reasons beyond the validator's ([`DropReason`]).
pub mod drop_reasons {
    /// The tick arrived outside the trading session and the strategy did not
    /// opt in to such ticks.
    pub const OUTSIDE_SESSION: &str = "outside_session";
    /// The sink refused the signal; it went to the dead-letter stream.
    pub const PUBLISH_FAILED: &str = "publish_failed";
    /// The strategy's emission to the broker was paused: the signal went to
    /// the dead-letter stream without being tried.
    pub const EMISSION_PAUSED: &str = "emission_paused";
    /// The paper desk's risk controller or cost model refused the signal
    /// (`quiver run --paper-report`): dead-lettered with the reason.
    pub const DESK_REFUSALS: &[&str] = quiver_paper::REFUSALS;
}

/// Categories of ticks that could not be processed (dead-lettered).
pub const TICK_REJECT_CATEGORIES: [&str; 4] = [
    "malformed_tick",
    "out_of_order_tick",
    "oversized_entry",
    "deleted_entry",
];

/// One strategy as the metrics see it.
#[derive(Clone, Debug)]
pub struct StrategyDesc {
    pub id: String,
    /// The strategy's type name (`momentum`, `hybrid:momentum+rsi`).
    pub type_name: String,
    pub kind: StrategyKind,
    /// The brokers it publishes to, as indices into [`Catalog::brokers`].
    pub brokers: Vec<usize>,
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
    /// Every lifecycle state a strategy can be in: `strategy_state` has one
    /// series per strategy and state, in this order. Given by the runtime
    /// (the engine's state names) because this crate does not know the
    /// engine.
    pub states: &'static [&'static str],
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
    /// Per strategy of the catalog (start-up order): its own series.
    pub strategies: Vec<Arc<StrategySeries>>,
    /// Every strategy's series by [`StrategySeries::key`], those a reload
    /// added included.
    by_key: Mutex<Vec<Arc<StrategySeries>>>,
    /// [`Catalog::brokers`].
    pub broker_names: Vec<String>,
    /// Per broker.
    pub published: Vec<Counter>,
    pub duplicates: Vec<Counter>,
    pub publish_retries: Counter,
    pub throttled: Counter,
    /// `config_reload_total`: applied, unchanged, refused.
    pub config_reloads: [Counter; 3],
    /// Per [`DropReason::ALL`], then outside_session, publish_failed, the
    /// guards' reasons ([`GuardDrop::ALL`]) and emission_paused.
    pub dropped: Vec<Counter>,
    /// Per strategy type (index in `type_names`): panics.
    pub panics_by_type: Vec<Counter>,
    /// Per strategy type: decisions out of range, evaluations over budget.
    pub invalid_by_type: Vec<Counter>,
    pub over_budget_by_type: Vec<Counter>,
    pub quarantined: Gauge,
    /// `strategy_drops_total{reason="shed"}`.
    pub shed: Counter,
    /// Per strategy type: one evaluation's duration.
    pub processing_by_type: Vec<Histogram>,
    pub type_names: Vec<String>,
    /// [`Catalog::states`].
    pub state_names: &'static [&'static str],
    pub feature_cache_hit_ratio: Gauge,
    /// (instrument, its `history_ring_utilization`): the instruments
    /// followed at start, then those a reload added, in registration order.
    rings: Mutex<Vec<(u64, Gauge)>>,
    /// Per model of [`Catalog::models`] (same order, names in `model_names`).
    pub model_inferences: Vec<Counter>,
    pub model_latency: Vec<Histogram>,
    pub model_batch_size: Vec<Histogram>,
    pub model_load_seconds: Vec<Gauge>,
    pub model_deadline_exceeded: Vec<Counter>,
    pub model_names: Vec<String>,
    /// Per [`Catalog::ml_drop_reasons`] (registered only when models are used).
    pub ml_drops: Vec<Counter>,
    pub inference_queue_depth: Option<Gauge>,
}

impl ServiceMetrics {
    pub fn register(registry: &Registry, catalog: &Catalog) -> Result<Self, RegistryError> {
        for metric in METRICS {
            registry.declare(metric.name, metric.help, metric.kind)?;
        }
        let r = registry;
        let (type_names, type_of) = strategy_types(&catalog.strategies);
        let depth = |stage| def::QUEUE_DEPTH.series(r, [stage]);
        let strategies: Vec<Arc<StrategySeries>> = catalog
            .strategies
            .iter()
            .zip(type_of)
            .enumerate()
            .map(|(key, (desc, t))| {
                StrategySeries::register(r, desc, key as u32, Some(t), catalog).map(Arc::new)
            })
            .collect::<Result<_, _>>()?;
        let brokers = || catalog.brokers.iter().map(|b| [b.as_str()]);
        let dropped = DropReason::ALL
            .iter()
            .map(|reason| reason.as_str())
            .chain([drop_reasons::OUTSIDE_SESSION, drop_reasons::PUBLISH_FAILED])
            .chain(GuardDrop::ALL.iter().map(|reason| reason.as_str()))
            .chain([drop_reasons::EMISSION_PAUSED])
            .chain(drop_reasons::DESK_REFUSALS.iter().copied())
            .map(|reason| [reason]);
        let errors = |category| {
            def::STRATEGY_ERRORS.each(r, type_names.iter().map(move |t| [t.as_str(), category]))
        };
        let panics_by_type = errors("panic")?;
        let invalid_by_type = errors("invalid_decision")?;
        let over_budget_by_type = errors("over_budget")?;
        let processing_by_type = type_names
            .iter()
            .map(|t| def::STRATEGY_PROCESSING.durations(r, [t], EVALUATION_BOUNDS_NS))
            .collect::<Result<_, _>>()?;
        let rings = catalog
            .instruments
            .iter()
            .map(|&token| Ok((token, ring_gauge(r, token)?)))
            .collect::<Result<_, RegistryError>>()?;
        let models = || catalog.models.iter().map(|m| [m.as_str()]);
        let model_latency = models()
            .map(|m| {
                def::STRATEGY_INFERENCE_LATENCY.durations(r, m, catalog.inference_latency_bounds_ns)
            })
            .collect::<Result<_, _>>()?;
        let model_batch_size = models()
            .map(|m| def::STRATEGY_BATCH_SIZE.counts(r, m, catalog.batch_size_bounds))
            .collect::<Result<_, _>>()?;
        // ML drops and the inference queue cannot happen without a model;
        // registered anyway, these series would only ever show zero.
        let uses_models = !catalog.models.is_empty();
        let shed = def::STRATEGY_DROPS.series(r, ["shed"])?;
        let ml_drops = if uses_models {
            def::STRATEGY_DROPS.each(r, catalog.ml_drop_reasons.iter().map(|&reason| [reason]))?
        } else {
            Vec::new()
        };
        Ok(ServiceMetrics {
            ticks_processed: def::TICKS_PROCESSED.series(r, [])?,
            tick_latency: def::TICK_LATENCY.durations(r, [], LATENCY_BOUNDS_NS)?,
            ticks_outside_session: def::TICKS_OUTSIDE_SESSION.series(r, [])?,
            ticks_unrouted: def::TICKS_UNROUTED.series(r, [])?,
            ticks_rejected: def::TICKS_REJECTED.each(r, TICK_REJECT_CATEGORIES.map(|c| [c]))?,
            source_lag: def::SOURCE_LAG.series(r, [])?,
            pending_entries: def::PENDING_ENTRIES.series(r, [])?,
            // Series are exposed in the order they are created: engine first.
            queue_depth_engine: depth("engine")?,
            queue_depth_sink: depth("sink")?,
            queue_capacity: def::QUEUE_CAPACITY.series(r, [])?,
            by_key: Mutex::new(strategies.clone()),
            strategies,
            broker_names: catalog.brokers.clone(),
            published: def::SIGNALS_PUBLISHED.each(r, brokers())?,
            duplicates: def::SIGNALS_DUPLICATE.each(r, brokers())?,
            publish_retries: def::PUBLISH_RETRIES.series(r, [])?,
            throttled: def::SIGNALS_THROTTLED.series(r, [])?,
            config_reloads: [
                def::CONFIG_RELOADS.series(r, ["applied"])?,
                def::CONFIG_RELOADS.series(r, ["unchanged"])?,
                def::CONFIG_RELOADS.series(r, ["refused"])?,
            ],
            dropped: def::SIGNALS_DROPPED.each(r, dropped)?,
            panics_by_type,
            invalid_by_type,
            over_budget_by_type,
            quarantined: def::STRATEGY_QUARANTINED.series(r, [])?,
            shed,
            processing_by_type,
            type_names,
            state_names: catalog.states,
            feature_cache_hit_ratio: def::FEATURE_CACHE_HIT_RATIO.series(r, [])?,
            rings: Mutex::new(rings),
            model_inferences: def::STRATEGY_INFERENCES.each(r, models())?,
            model_latency,
            model_batch_size,
            model_load_seconds: def::MODEL_LOAD_SECONDS.each(r, models())?,
            model_deadline_exceeded: def::MODEL_DEADLINE_EXCEEDED.each(r, models())?,
            model_names: catalog.models.clone(),
            ml_drops,
            inference_queue_depth: uses_models
                .then(|| def::INFERENCE_QUEUE_DEPTH.series(r, []))
                .transpose()?,
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

    /// The `signals_dropped_total` handle of a signal-hygiene reason.
    pub fn held_back(&self, reason: GuardDrop) -> &Counter {
        &self.dropped[DropReason::ALL.len() + 2 + reason.index()]
    }

    pub fn dropped_emission_paused(&self) -> &Counter {
        &self.dropped[DropReason::ALL.len() + 2 + GuardDrop::ALL.len()]
    }

    /// The `signals_dropped_total` handle of a paper desk refusal
    /// ([`drop_reasons::DESK_REFUSALS`]).
    pub fn dropped_by_desk(&self, reason: &str) -> Option<&Counter> {
        let at = drop_reasons::DESK_REFUSALS
            .iter()
            .position(|r| *r == reason)?;
        self.dropped
            .get(DropReason::ALL.len() + 3 + GuardDrop::ALL.len() + at)
    }

    /// The series of the strategy known by `key`.
    pub fn series(&self, key: u32) -> Option<Arc<StrategySeries>> {
        self.by_key
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key as usize)
            .cloned()
    }

    /// The series of `desc`'s strategy: the ones registered when its id was
    /// first seen (at start or by an earlier reload), or new ones now. A
    /// strategy of a type not known at start has no per-type series.
    pub fn series_for(
        &self,
        registry: &Registry,
        desc: &StrategyDesc,
    ) -> Result<Arc<StrategySeries>, RegistryError> {
        let mut all = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = all.iter().find(|s| s.id == desc.id) {
            return Ok(Arc::clone(found));
        }
        let catalog = Catalog {
            brokers: self.broker_names.clone(),
            states: self.state_names,
            ..Catalog::default()
        };
        let type_index = self.type_names.iter().position(|t| *t == desc.type_name);
        let series = Arc::new(StrategySeries::register(
            registry,
            desc,
            all.len() as u32,
            type_index,
            &catalog,
        )?);
        all.push(Arc::clone(&series));
        Ok(series)
    }

    /// Registers the `history_ring_utilization` gauge of each of `tokens`
    /// not seen before (instruments a reload adds).
    pub fn follow_rings(
        &self,
        registry: &Registry,
        tokens: impl IntoIterator<Item = u64>,
    ) -> Result<(), RegistryError> {
        let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        for token in tokens {
            if !rings.iter().any(|(t, _)| *t == token) {
                rings.push((token, ring_gauge(registry, token)?));
            }
        }
        Ok(())
    }

    /// (instrument, gauge) of every ring followed so far.
    pub fn rings(&self) -> Vec<(u64, Gauge)> {
        self.rings.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The `market_tick_rejected_total` handle of a dead-letter category.
    pub fn rejected(&self, category: &str) -> Option<&Counter> {
        TICK_REJECT_CATEGORIES
            .iter()
            .position(|c| *c == category)
            .and_then(|i| self.ticks_rejected.get(i))
    }

    /// Sets `strategy_state` of strategy `s` to `state` (one of
    /// [`Catalog::states`]): 1 for it, 0 for the others.
    pub fn set_state(&self, s: usize, state: &str) {
        if let Some(series) = self.strategies.get(s) {
            series.set_state(self.state_names, state);
        }
    }
}

/// One strategy's own series and what is kept per strategy id for the life
/// of the process, so a strategy removed and added back by reloads carries
/// on where it was.
#[derive(Debug)]
pub struct StrategySeries {
    pub id: String,
    /// The order its id was first seen in: stable across reloads.
    pub key: u32,
    /// `signals_total`, [BUY, SELL].
    pub signals: [Counter; 2],
    /// `strategy_state`, one gauge per state of [`Catalog::states`].
    pub state: Box<[Gauge]>,
    /// `broker_emission_paused`: (broker index in [`Catalog::brokers`], gauge).
    pub emission_paused: Vec<(usize, Gauge)>,
    /// Its type's index among [`ServiceMetrics::type_names`]; `None` for a
    /// type a reload brought in.
    pub type_index: Option<usize>,
    /// Its evaluation times, for `/strategies` p99 (not exported).
    pub timing: Histogram,
}

impl StrategySeries {
    fn register(
        r: &Registry,
        desc: &StrategyDesc,
        key: u32,
        type_index: Option<usize>,
        catalog: &Catalog,
    ) -> Result<StrategySeries, RegistryError> {
        let side = |side| def::SIGNALS.series(r, [&desc.id, desc.kind.as_str(), side]);
        let signals = [side("BUY")?, side("SELL")?];
        let states = catalog
            .states
            .iter()
            .map(|&state| [desc.id.as_str(), state]);
        let state = def::STRATEGY_STATE.each(r, states)?.into_boxed_slice();
        let emission_paused = desc
            .brokers
            .iter()
            .map(|&b| {
                let broker = catalog.brokers.get(b).map_or("", String::as_str);
                Ok((
                    b,
                    def::BROKER_EMISSION_PAUSED.series(r, [&desc.id, broker])?,
                ))
            })
            .collect::<Result<Vec<_>, RegistryError>>()?;
        Ok(StrategySeries {
            id: desc.id.clone(),
            key,
            signals,
            state,
            emission_paused,
            type_index,
            timing: Histogram::new(EVALUATION_BOUNDS_NS),
        })
    }

    /// `strategy_state`: 1 for `state` (one of `names`), 0 for the others;
    /// all 0 for a name not among them (a strategy no longer serving).
    pub fn set_state(&self, names: &[&str], state: &str) {
        for (gauge, &name) in self.state.iter().zip(names) {
            gauge.set(if name == state { 1.0 } else { 0.0 });
        }
    }

    /// `broker_emission_paused` for `broker` (index in [`Catalog::brokers`]).
    pub fn emission_paused_of(&self, broker: usize) -> Option<&Gauge> {
        self.emission_paused
            .iter()
            .find(|(b, _)| *b == broker)
            .map(|(_, gauge)| gauge)
    }
}

/// The distinct strategy types in first-seen order, and the index of each
/// strategy's type among them.
fn ring_gauge(registry: &Registry, token: u64) -> Result<Gauge, RegistryError> {
    def::HISTORY_RING_UTILIZATION.series(registry, [&token.to_string()])
}

fn strategy_types(strategies: &[StrategyDesc]) -> (Vec<String>, Vec<usize>) {
    let mut names: Vec<String> = Vec::new();
    let type_of = strategies
        .iter()
        .map(|s| match names.iter().position(|t| *t == s.type_name) {
            Some(i) => i,
            None => {
                names.push(s.type_name.clone());
                names.len() - 1
            }
        })
        .collect();
    (names, type_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine's states, as the runtime gives them.
    const STATES: [&str; 5] = ["warmup", "active", "paused", "quarantined", "stopped"];

    fn catalog() -> Catalog {
        let strategy = |id: &str, type_name: &str, kind| StrategyDesc {
            id: id.to_owned(),
            type_name: type_name.to_owned(),
            kind,
            brokers: vec![0, 1],
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
            states: &STATES,
        }
    }

    /// Gives every handle its own value, so a series wired to the wrong
    /// handle shows in the exposition.
    fn touch_every_handle(m: &ServiceMetrics) {
        let rings = m.rings();
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
        .chain(m.strategies.iter().flat_map(|s| &s.signals))
        .chain(&m.published)
        .chain(&m.duplicates)
        .chain([&m.publish_retries, &m.throttled])
        .chain(&m.config_reloads)
        .chain(&m.dropped)
        .chain(&m.panics_by_type)
        .chain(&m.invalid_by_type)
        .chain(&m.over_budget_by_type)
        .chain([&m.shed])
        .chain(&m.model_inferences)
        .chain(&m.ml_drops);
        for counter in counters {
            counter.inc_by(value());
        }
        let gauges = [
            &m.source_lag,
            &m.pending_entries,
            &m.quarantined,
            &m.queue_depth_engine,
            &m.queue_depth_sink,
            &m.queue_capacity,
            &m.feature_cache_hit_ratio,
        ]
        .into_iter()
        .chain(
            m.strategies
                .iter()
                .flat_map(|s| s.emission_paused.iter().map(|(_, g)| g)),
        )
        .chain(rings.iter().map(|(_, g)| g))
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
        // Last, so adding it left every earlier value as it was.
        for counter in &m.model_deadline_exceeded {
            counter.inc_by(value());
        }
    }

    /// Compares `actual` with `testdata/<name>`; with `QUIVER_BLESS=1` in the
    /// environment, writes it there instead (after a deliberate change).
    fn golden(name: &str, actual: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(name);
        if std::env::var_os("QUIVER_BLESS").is_some_and(|v| v == "1") {
            std::fs::write(&path, actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap();
        assert_eq!(actual, expected, "{} differs", path.display());
    }

    #[test]
    fn every_metric_is_declared_once_and_only_counters_end_in_total() {
        for (i, metric) in METRICS.iter().enumerate() {
            assert!(
                METRICS[..i].iter().all(|m| m.name != metric.name),
                "{} declared twice",
                metric.name
            );
            assert_eq!(
                metric.name.ends_with("_total"),
                metric.kind == Kind::Counter,
                "{}",
                metric.name
            );
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
        metrics.set_state(3, "stopped");
        golden("full_catalog.prom", &registry.encode());
    }

    #[test]
    fn exposition_without_strategies_or_models_is_unchanged() {
        let registry = Registry::new();
        let metrics = ServiceMetrics::register(&registry, &Catalog::default()).unwrap();
        touch_every_handle(&metrics);
        assert!(metrics.inference_queue_depth.is_none());
        golden("empty_catalog.prom", &registry.encode());
    }

    #[test]
    fn every_state_can_be_set_and_one_series_is_set_at_a_time() {
        let registry = Registry::new();
        let metrics = ServiceMetrics::register(&registry, &catalog()).unwrap();
        for state in STATES {
            metrics.set_state(1, state);
            let text = registry.encode();
            for other in STATES {
                let line = format!(
                    "strategy_state{{strategy=\"rsi-revert\",state=\"{other}\"}} {}\n",
                    u8::from(other == state)
                );
                assert!(text.contains(&line), "missing {line:?} in\n{text}");
            }
        }
        metrics.set_state(1, "no_such_state");
        assert!(metrics.strategies[1]
            .state
            .iter()
            .all(|gauge| gauge.get() == 0.0));
        metrics.set_state(99, "active");
    }

    #[test]
    fn a_strategy_seen_again_keeps_its_series_and_a_new_one_gets_its_own() {
        let registry = Registry::new();
        let metrics = ServiceMetrics::register(&registry, &catalog()).unwrap();
        let again = metrics
            .series_for(&registry, &catalog().strategies[1])
            .unwrap();
        assert!(Arc::ptr_eq(&again, &metrics.strategies[1]));
        let added = StrategyDesc {
            id: "breakout-new".to_owned(),
            type_name: "breakout".to_owned(),
            kind: StrategyKind::Rules,
            brokers: vec![1],
        };
        let series = metrics.series_for(&registry, &added).unwrap();
        assert_eq!(series.key, 4);
        assert_eq!(series.type_index, None);
        assert!(Arc::ptr_eq(&metrics.series(4).unwrap(), &series));
        series.signals[0].inc();
        series.set_state(&STATES, "warmup");
        series.emission_paused_of(1).unwrap().set(1.0);
        let text = registry.encode();
        for line in [
            "signals_total{strategy=\"breakout-new\",kind=\"rules\",side=\"BUY\"} 1\n",
            "strategy_state{strategy=\"breakout-new\",state=\"warmup\"} 1\n",
            "broker_emission_paused{strategy=\"breakout-new\",broker=\"upstox\"} 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(
            metrics.series_for(&registry, &added).is_ok(),
            "registered once"
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
