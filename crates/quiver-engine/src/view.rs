//! What the engine tells about itself: strategies, models, instruments,
//! counters and memory.

use quiver_core::{HistoryRing, InstrumentIdx, InstrumentToken};
use quiver_features::InstrumentFeatures;
use quiver_strategy::StrategyKind;

use crate::engine::{Engine, Route, Slot};
use crate::index::{ModelIdx, StrategyIdx};
use crate::inference::ModelStamp;
use crate::lifecycle::{StrategyState, Transition};
use crate::stats::{EngineStats, StrategyStats};

#[cfg(doc)]
use crate::Input;

impl Engine {
    pub fn strategy_count(&self) -> usize {
        self.slots.len()
    }

    /// Every strategy, in config order.
    pub fn strategies(&self) -> impl ExactSizeIterator<Item = StrategyIdx> {
        (0..self.slots.len() as u32).map(StrategyIdx::new)
    }

    /// The strategy with config id `id`.
    pub fn strategy_index(&self, id: &str) -> Option<StrategyIdx> {
        self.slots
            .iter()
            .position(|slot| slot.id == id)
            .map(|s| StrategyIdx::new(s as u32))
    }

    pub fn strategy_id(&self, strategy: StrategyIdx) -> &str {
        &self.slots[strategy.index()].id
    }

    pub fn strategy_name(&self, strategy: StrategyIdx) -> &str {
        self.slots[strategy.index()].driven.strategy().name()
    }

    pub fn strategy_kind(&self, strategy: StrategyIdx) -> StrategyKind {
        self.slots[strategy.index()].driven.strategy().kind()
    }

    pub fn brokers(&self, strategy: StrategyIdx) -> &[String] {
        &self.slots[strategy.index()].brokers
    }

    pub fn instruments(&self, strategy: StrategyIdx) -> &[InstrumentToken] {
        &self.slots[strategy.index()].instruments
    }

    pub fn strategy_state(&self, strategy: StrategyIdx) -> StrategyState {
        self.slots[strategy.index()].state
    }

    /// The change into the strategy's current state (`None` while it is
    /// still in its first state, Warmup).
    pub fn last_transition(&self, strategy: StrategyIdx) -> Option<Transition> {
        self.slots[strategy.index()].since
    }

    /// [`feature_hash`](quiver_strategy::ml::feature_hash) of a strategy's
    /// model inputs (0 without a model).
    pub fn feature_hash(&self, strategy: StrategyIdx) -> u64 {
        self.slots[strategy.index()].feature_hash
    }

    pub fn lifecycle(&self) -> &crate::LifecyclePolicy {
        &self.policy
    }

    /// The tick time from which a quarantined strategy is tried again.
    pub fn retry_at(&self, strategy: StrategyIdx) -> Option<i64> {
        self.slots[strategy.index()].retry_at
    }

    pub fn strategy_stats(&self, strategy: StrategyIdx) -> &StrategyStats {
        &self.slots[strategy.index()].stats
    }

    /// Engine-wide counters, summed over strategies.
    pub fn stats(&self) -> EngineStats {
        let mut stats = self.stats.clone();
        for slot in &self.slots {
            stats.add(&slot.stats);
        }
        stats
    }

    /// The most model requests one tick can make: the largest number of
    /// strategies with a model following one instrument.
    pub fn max_model_requests_per_tick(&self) -> usize {
        self.route_starts
            .windows(2)
            .map(|w| {
                self.routes[w[0] as usize..w[1] as usize]
                    .iter()
                    .filter(|r| self.slots[r.strategy.index()].driven.model().is_some())
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// Registry names of the models strategies use, by engine model index.
    pub fn models(&self) -> &[String] {
        &self.model_names
    }

    /// The registry name of the model behind `stamp`.
    pub fn model_name(&self, stamp: ModelStamp) -> &str {
        &self.model_names[stamp.model.index()]
    }

    /// Every version of `model` that has served this engine; a stamp's
    /// `version` indexes it.
    pub fn model_versions(&self, model: ModelIdx) -> &[String] {
        &self.model_versions[model.index()]
    }

    /// The version string behind `stamp`.
    pub fn model_version(&self, stamp: ModelStamp) -> &str {
        &self.model_versions[stamp.model.index()][stamp.version as usize]
    }

    /// Followed instruments, in index order.
    pub fn instrument_tokens(&self) -> &[InstrumentToken] {
        self.index.tokens()
    }

    pub fn instrument_index(&self, token: InstrumentToken) -> Option<InstrumentIdx> {
        self.index.get(token)
    }

    /// (held, capacity) of an instrument's history ring.
    pub fn ring_fill(&self, instrument: InstrumentIdx) -> (usize, usize) {
        let ring = &self.rings[instrument.index()];
        (ring.len(), ring.capacity())
    }

    /// Ticks of an instrument's past that must be replayed through
    /// [`Input::WarmUp`] for its strategies to decide as an uninterrupted
    /// run would: its ring's capacity, or every tick since the first
    /// (`usize::MAX`) when a feature has unbounded memory (EMA, Wilder's RSI).
    pub fn preload_depth(&self, instrument: InstrumentIdx) -> usize {
        let i = instrument.index();
        if self.features[i].has_finite_memory() {
            self.rings[i].capacity()
        } else {
            usize::MAX
        }
    }

    /// The distinct features maintained for an instrument.
    pub fn instrument_features(&self, instrument: InstrumentIdx) -> &InstrumentFeatures {
        &self.features[instrument.index()]
    }

    /// Distinct (instrument, feature) pairs maintained.
    pub fn features_maintained(&self) -> usize {
        self.features.iter().map(InstrumentFeatures::len).sum()
    }

    /// Heap bytes of the routing table, history rings and feature states
    /// (strategy objects aside).
    pub fn heap_bytes(&self) -> usize {
        self.rings
            .iter()
            .map(HistoryRing::heap_bytes)
            .sum::<usize>()
            + self
                .features
                .iter()
                .map(InstrumentFeatures::heap_bytes)
                .sum::<usize>()
            + self.feature_slots.capacity() * std::mem::size_of::<u32>()
            + self.routes.capacity() * std::mem::size_of::<Route>()
            + self.route_starts.capacity() * std::mem::size_of::<u32>()
            + self.slots.iter().map(Slot::heap_bytes).sum::<usize>()
    }

    /// Mean and minimum fill of the history rings (held / capacity).
    pub fn ring_utilization(&self) -> (f64, f64) {
        let fills = self
            .rings
            .iter()
            .map(|r| r.len() as f64 / r.capacity() as f64);
        let (sum, min) = fills.fold((0.0, 1.0f64), |(sum, min), f| (sum + f, min.min(f)));
        let n = self.rings.len().max(1) as f64;
        (sum / n, if self.rings.is_empty() { 0.0 } else { min })
    }
}
