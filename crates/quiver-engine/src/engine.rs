use std::panic::{catch_unwind, AssertUnwindSafe};

use quiver_core::{Decision, HistoryRing, InstrumentIdx, InstrumentIndex, InstrumentToken, Tick};
use quiver_features::InstrumentFeatures;
use quiver_strategy::{
    Carry, Prediction, StandardValidator, Step, Strategy, StrategyKind, TickContext,
};

use crate::inference::{ModelBatch, ModelRequest, ModelResults, ModelRunner, ModelStamp};
use crate::stats::{drop_slot, EngineStats, StrategyStats};
use crate::QUARANTINE_AFTER;

/// One strategy as handed to the engine: its code, what it follows, where its
/// signals go, and how they are validated.
pub struct StrategyEntry {
    pub id: String,
    pub strategy: Box<dyn Strategy>,
    pub instruments: Vec<InstrumentToken>,
    pub brokers: Vec<String>,
    pub validator: StandardValidator,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    #[error("strategy {id:?} ({name}) does not support instrument {token}")]
    UnsupportedInstrument {
        id: String,
        name: String,
        token: InstrumentToken,
    },
    #[error("duplicate strategy id {0:?}")]
    DuplicateId(String),
    #[error("more than {} strategies or instruments", u32::MAX)]
    TooMany,
}

/// Lifecycle of a strategy inside the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyState {
    /// No followed instrument has enough history yet.
    Warmup,
    Active,
    /// Stopped after [`QUARANTINE_AFTER`] consecutive panics.
    Quarantined,
}

impl StrategyState {
    pub const fn as_str(self) -> &'static str {
        match self {
            StrategyState::Warmup => "warmup",
            StrategyState::Active => "active",
            StrategyState::Quarantined => "quarantined",
        }
    }
}

/// A validated decision, tagged with where it came from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EngineSignal {
    /// Sequence number of the tick that caused it.
    pub seq: u64,
    pub ts_ns: i64,
    pub strategy: u32,
    pub instrument: InstrumentToken,
    pub decision: Decision,
    /// The model version whose prediction went into the decision.
    pub model: Option<ModelStamp>,
}

/// A contained strategy panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub seq: u64,
    pub strategy: u32,
    pub instrument: InstrumentToken,
    pub message: String,
}

/// A (strategy, instrument) pair: one entry of the routing table.
#[derive(Clone, Copy, Debug)]
struct Route {
    strategy: u32,
    /// Warm-up of this pair is over (the shared history is long enough).
    ready: bool,
    /// `feature_slots[features_start..][..features_len]` map the strategy's
    /// declared features to this instrument's shared feature slots.
    features_start: u32,
    features_len: u32,
}

struct Slot {
    id: String,
    brokers: Vec<String>,
    strategy: Box<dyn Strategy>,
    validator: StandardValidator,
    required: usize,
    instruments: Vec<InstrumentToken>,
    state: StrategyState,
    consecutive_panics: u32,
    stats: StrategyStats,
    /// Engine model index and feature-row width, for strategies with a model.
    model: Option<(u32, u32)>,
    feature_hash: u64,
}

/// Evaluations taken out of the engine ([`Engine::detach`]) while their
/// model requests run, to be handed back to [`Engine::land`].
#[derive(Default)]
pub struct Flight {
    pending: Vec<Pending>,
    requests: Vec<ModelRequest>,
    rows: Vec<f32>,
}

impl Flight {
    /// The model requests to run for this flight; `models` is
    /// [`Engine::models`].
    pub fn batch<'a>(&'a self, models: &'a [String]) -> ModelBatch<'a> {
        ModelBatch {
            models,
            requests: &self.requests,
            rows: &self.rows,
        }
    }

    /// Model requests in the flight (it may have none: signals that only
    /// waited behind an earlier flight).
    pub fn requests(&self) -> usize {
        self.requests.len()
    }
}

/// An evaluation whose output waits for the next [`Engine::flush`], in
/// (tick sequence, strategy order).
enum Pending {
    /// Decided at its tick, queued behind an earlier model request.
    Ready(EngineSignal),
    /// Waiting for the result of request `request`.
    Awaiting {
        seq: u64,
        tick: Tick,
        strategy: u32,
        carry: Carry,
        request: u32,
    },
}

/// The dispatch engine. See the crate docs.
pub struct Engine {
    index: InstrumentIndex,
    rings: Vec<HistoryRing>,
    /// One shared feature set per instrument, indexed like `rings`.
    features: Vec<InstrumentFeatures>,
    feature_slots: Vec<u32>,
    /// `routes[route_starts[i]..route_starts[i + 1]]` follow instrument `i`,
    /// in strategy (config) order.
    route_starts: Vec<u32>,
    routes: Vec<Route>,
    slots: Vec<Slot>,
    stats: EngineStats,
    faults: Vec<Fault>,
    /// Engine model index → registry name, and the versions seen so far.
    model_names: Vec<String>,
    model_versions: Vec<Vec<String>>,
    /// Since the last flush: evaluations in output order, and the model
    /// requests among them.
    pending: Vec<Pending>,
    requests: Vec<ModelRequest>,
    rows: Vec<f32>,
    /// A detached flight has not landed yet.
    in_flight: bool,
    /// The buffers of the last flight that landed, reused by the next.
    spare: Flight,
    results: ModelResults,
    /// Per model, the version index that served the current flush.
    serving: Vec<u32>,
}

impl Engine {
    /// Builds the routing table and one history ring per followed instrument,
    /// sized by the largest requirement among the strategies that follow it.
    pub fn new(entries: Vec<StrategyEntry>) -> Result<Engine, EngineError> {
        if u32::try_from(entries.len()).is_err() {
            return Err(EngineError::TooMany);
        }
        let mut ids = std::collections::HashSet::new();
        for entry in &entries {
            if !ids.insert(entry.id.as_str()) {
                return Err(EngineError::DuplicateId(entry.id.clone()));
            }
            if let Some(&token) = entry
                .instruments
                .iter()
                .find(|&&t| !entry.strategy.supports_instrument(t))
            {
                return Err(EngineError::UnsupportedInstrument {
                    id: entry.id.clone(),
                    name: entry.strategy.name().to_owned(),
                    token,
                });
            }
        }
        let index =
            InstrumentIndex::new(entries.iter().flat_map(|e| e.instruments.iter().copied()));
        let n = index.len();
        let mut followers: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut capacity = vec![1usize; n];
        for (s, entry) in entries.iter().enumerate() {
            let required = entry.strategy.required_history();
            for &token in &entry.instruments {
                if let Some(i) = index.get(token) {
                    let list = &mut followers[i as usize];
                    // A token listed twice by one strategy is still one route.
                    if list.last() != Some(&(s as u32)) {
                        list.push(s as u32);
                    }
                    capacity[i as usize] = capacity[i as usize].max(required);
                }
            }
        }
        let declared: Vec<_> = entries.iter().map(|e| e.strategy.features()).collect();
        let mut features: Vec<InstrumentFeatures> = vec![InstrumentFeatures::default(); n];
        let mut feature_slots = Vec::new();
        let mut route_starts = Vec::with_capacity(n + 1);
        let mut routes = Vec::new();
        let too_many = |_| EngineError::TooMany;
        for (i, list) in followers.iter().enumerate() {
            route_starts.push(u32::try_from(routes.len()).map_err(too_many)?);
            for &strategy in list {
                let specs = &declared[strategy as usize];
                let features_start = u32::try_from(feature_slots.len()).map_err(too_many)?;
                for spec in specs {
                    let slot = features[i].slot_or_insert(*spec);
                    feature_slots.push(u32::try_from(slot).map_err(too_many)?);
                }
                routes.push(Route {
                    strategy,
                    ready: false,
                    features_start,
                    features_len: u32::try_from(specs.len()).map_err(too_many)?,
                });
            }
            features[i].shrink_to_fit();
            capacity[i] = capacity[i].max(features[i].ring_needed());
        }
        route_starts.push(u32::try_from(routes.len()).map_err(too_many)?);
        // Built once and never grown: hold exactly what is used.
        routes.shrink_to_fit();
        feature_slots.shrink_to_fit();
        let rings = capacity.into_iter().map(HistoryRing::new).collect();
        let mut model_names: Vec<String> = Vec::new();
        let slots = entries
            .into_iter()
            .map(|e| {
                let used = e.strategy.model().map(|m| {
                    let name = &m.model.name;
                    let index = model_names
                        .iter()
                        .position(|n| n == name)
                        .unwrap_or_else(|| {
                            model_names.push(name.clone());
                            model_names.len() - 1
                        });
                    (index as u32, m.model.n_features as u32, m.feature_hash)
                });
                Slot {
                    required: e.strategy.required_history().max(1),
                    id: e.id,
                    brokers: e.brokers,
                    strategy: e.strategy,
                    validator: e.validator,
                    instruments: e.instruments,
                    state: StrategyState::Warmup,
                    consecutive_panics: 0,
                    stats: StrategyStats::default(),
                    model: used.map(|(index, width, _)| (index, width)),
                    feature_hash: used.map_or(0, |(_, _, hash)| hash),
                }
            })
            .collect();
        let model_versions = vec![Vec::new(); model_names.len()];
        Ok(Engine {
            index,
            rings,
            features,
            feature_slots,
            route_starts,
            routes,
            slots,
            stats: EngineStats::default(),
            faults: Vec::new(),
            model_names,
            model_versions,
            pending: Vec::new(),
            requests: Vec::new(),
            rows: Vec::new(),
            in_flight: false,
            spare: Flight::default(),
            results: ModelResults::default(),
            serving: Vec::new(),
        })
    }

    /// Dispatches one tick: appends it to its instrument's history once, then
    /// calls every warm, healthy follower in config order. Validated decisions
    /// are appended to `out`; contained panics to [`Engine::take_faults`].
    #[inline]
    pub fn on_tick(&mut self, seq: u64, tick: &Tick, out: &mut Vec<EngineSignal>) {
        self.stats.ticks += 1;
        let Some(i) = self.index.get(tick.instrument) else {
            self.stats.unrouted_ticks += 1;
            return;
        };
        let i = i as usize;
        let ring = &mut self.rings[i];
        ring.push(tick.price, tick.volume);
        let held = ring.len();
        let history = ring.view();
        // Every feature of the instrument once, before any strategy reads it.
        let features = &mut self.features[i];
        features.update(history);
        self.stats.feature_updates += features.len() as u64;
        let features = &self.features[i];
        let (start, end) = (
            self.route_starts[i] as usize,
            self.route_starts[i + 1] as usize,
        );
        for route in &mut self.routes[start..end] {
            let slot = &mut self.slots[route.strategy as usize];
            if !route.ready {
                if held < slot.required {
                    continue;
                }
                route.ready = true;
                if slot.state == StrategyState::Warmup {
                    slot.state = StrategyState::Active;
                }
            }
            if slot.state == StrategyState::Quarantined {
                continue;
            }
            slot.stats.evaluations += 1;
            self.stats.feature_reads += u64::from(route.features_len);
            let start = route.features_start as usize;
            let ctx = TickContext {
                history,
                features: features
                    .view(&self.feature_slots[start..start + route.features_len as usize]),
            };
            let strategy = &mut slot.strategy;
            // The outcome is written in place and only `()` crosses
            // `catch_unwind`: returning the (large) decision through it would
            // copy it on every evaluation, signal or not.
            let mut step = Step::Decided(None);
            IN_STRATEGY_CALL.set(true);
            let result = match slot.model {
                None => catch_unwind(AssertUnwindSafe(|| {
                    step = Step::Decided(strategy.on_tick(tick, ctx));
                })),
                Some((_, width)) => {
                    let at = self.rows.len();
                    self.rows.resize(at + width as usize, 0.0);
                    let row = &mut self.rows[at..];
                    catch_unwind(AssertUnwindSafe(|| {
                        step = strategy.prepare(tick, ctx, row);
                    }))
                }
            };
            IN_STRATEGY_CALL.set(false);
            if let Err(payload) = result {
                contain(slot, &mut self.faults, seq, route.strategy, tick, payload);
                self.rows.truncate(
                    self.requests
                        .last()
                        .map_or(0, |r| (r.start + r.len) as usize),
                );
                continue;
            }
            slot.consecutive_panics = 0;
            let decided = match step {
                Step::Decided(decided) => decided,
                Step::SkippedFeatures(decided) => {
                    slot.stats.skipped_features += 1;
                    self.rows
                        .truncate(self.rows.len() - slot.model.map_or(0, |(_, w)| w as usize));
                    decided
                }
                Step::Predict(carry) => {
                    let (model, width) = slot.model.unwrap_or_default();
                    slot.stats.inferences += 1;
                    let request = self.requests.len() as u32;
                    self.requests.push(ModelRequest {
                        model,
                        start: (self.rows.len() - width as usize) as u32,
                        len: width,
                    });
                    self.pending.push(Pending::Awaiting {
                        seq,
                        tick: *tick,
                        strategy: route.strategy,
                        carry,
                        request,
                    });
                    continue;
                }
            };
            let Some(decision) = decided else { continue };
            let signal = EngineSignal {
                seq,
                ts_ns: tick.ts_ns,
                strategy: route.strategy,
                instrument: tick.instrument,
                decision,
                model: None,
            };
            if validate(slot, &signal) {
                if self.pending.is_empty() && !self.in_flight {
                    out.push(signal);
                } else {
                    self.pending.push(Pending::Ready(signal));
                }
            }
        }
    }

    /// Model requests waiting for [`Engine::flush`].
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// Whether any evaluation waits for [`Engine::flush`] (always false for
    /// an engine without model strategies).
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Runs every model request queued since the last flush through
    /// `runner` in one call, then appends, in (tick sequence, strategy
    /// order), every signal those ticks produced. Nothing reaches `out`
    /// behind a signal that waits for a model, so the output order — and,
    /// with a runner whose results do not depend on grouping, the output
    /// itself — is the same whatever the number of ticks between flushes.
    ///
    /// A flight detached earlier ([`Engine::detach`]) must have landed first.
    pub fn flush(&mut self, runner: &mut dyn ModelRunner, out: &mut Vec<EngineSignal>) {
        let Some(flight) = self.detach() else {
            return;
        };
        let mut results = std::mem::take(&mut self.results);
        results.reset_for(&flight.batch(&self.model_names));
        if !flight.requests.is_empty() {
            runner.run(&flight.batch(&self.model_names), &mut results);
        }
        self.land(flight, &results, out);
        self.results = results;
    }

    /// Takes every evaluation queued since the last flush, with its model
    /// requests, so they can run elsewhere while the engine goes on
    /// dispatching ticks ([`Flight::batch`] is what to run). Until the
    /// flight [lands](Engine::land), new signals queue behind it, keeping
    /// the output order. `None` when nothing is queued or a flight is
    /// already out (one at a time).
    pub fn detach(&mut self) -> Option<Flight> {
        if self.pending.is_empty() || self.in_flight {
            return None;
        }
        self.in_flight = true;
        let mut flight = std::mem::take(&mut self.spare);
        std::mem::swap(&mut flight.pending, &mut self.pending);
        std::mem::swap(&mut flight.requests, &mut self.requests);
        std::mem::swap(&mut flight.rows, &mut self.rows);
        Some(flight)
    }

    /// Completes a detached flight with `results` (indexed like its
    /// requests; see [`ModelResults::reset_for`]) and appends its signals
    /// to `out`, in (tick sequence, strategy order).
    pub fn land(
        &mut self,
        mut flight: Flight,
        results: &ModelResults,
        out: &mut Vec<EngineSignal>,
    ) {
        self.serving.clear();
        for (model, versions) in self.model_versions.iter_mut().enumerate() {
            let version = results.version(model);
            let index = match versions.iter().rposition(|v| v == version) {
                Some(index) => index,
                None if version.is_empty() => usize::MAX,
                None => {
                    versions.push(version.to_owned());
                    versions.len() - 1
                }
            };
            self.serving.push(index as u32);
        }
        for pending in flight.pending.drain(..) {
            let (seq, tick, strategy, carry, request) = match pending {
                Pending::Ready(signal) => {
                    out.push(signal);
                    continue;
                }
                Pending::Awaiting {
                    seq,
                    tick,
                    strategy,
                    carry,
                    request,
                } => (seq, tick, strategy, carry, request),
            };
            let slot = &mut self.slots[strategy as usize];
            let model = slot.model.map_or(0, |(model, _)| model);
            let outputs = results.get(request as usize);
            let prediction = match outputs {
                Ok(values) => Prediction::Outputs(values),
                Err(why) => {
                    slot.stats.unavailable[why.slot()] += 1;
                    Prediction::Unavailable
                }
            };
            let mut completion = Default::default();
            let strategy_ref = &mut slot.strategy;
            IN_STRATEGY_CALL.set(true);
            let result = catch_unwind(AssertUnwindSafe(|| {
                completion = strategy_ref.complete(&tick, carry, prediction);
            }));
            IN_STRATEGY_CALL.set(false);
            if let Err(payload) = result {
                contain(slot, &mut self.faults, seq, strategy, &tick, payload);
                continue;
            }
            slot.consecutive_panics = 0;
            let completion: quiver_strategy::Completion = completion;
            if completion.rejected_output {
                slot.stats.rejected_outputs += 1;
            }
            let Some(decision) = completion.decision else {
                continue;
            };
            let version = self.serving.get(model as usize).copied();
            let signal = EngineSignal {
                seq,
                ts_ns: tick.ts_ns,
                strategy,
                instrument: tick.instrument,
                decision,
                model: match (outputs, version) {
                    (Ok(_), Some(version)) if version != u32::MAX => {
                        Some(ModelStamp { model, version })
                    }
                    _ => None,
                },
            };
            if validate(slot, &signal) {
                out.push(signal);
            }
        }
        flight.requests.clear();
        flight.rows.clear();
        self.spare = flight;
        self.in_flight = false;
    }

    /// Appends a tick to its instrument's history without calling any
    /// strategy: the live service preloads history this way on restart, so
    /// strategies resume warm and decide as an uninterrupted run would.
    /// Returns false for an instrument no strategy follows.
    pub fn warm_up(&mut self, tick: &Tick) -> bool {
        match self.index.get(tick.instrument) {
            Some(i) => {
                let ring = &mut self.rings[i as usize];
                ring.push(tick.price, tick.volume);
                self.features[i as usize].update(ring.view());
                true
            }
            None => false,
        }
    }

    /// Contained panics since the last call, oldest first.
    pub fn take_faults(&mut self) -> Vec<Fault> {
        std::mem::take(&mut self.faults)
    }

    pub fn has_faults(&self) -> bool {
        !self.faults.is_empty()
    }

    /// Engine-wide counters, summed over strategies.
    pub fn stats(&self) -> EngineStats {
        let mut stats = self.stats.clone();
        for slot in &self.slots {
            stats.evaluations += slot.stats.evaluations;
            stats.signals += slot.stats.signals;
            stats.panics += slot.stats.panics;
            for (total, n) in stats.dropped.iter_mut().zip(slot.stats.dropped) {
                *total += n;
            }
            stats.inferences += slot.stats.inferences;
            stats.skipped_features += slot.stats.skipped_features;
            stats.rejected_outputs += slot.stats.rejected_outputs;
            for (total, n) in stats.unavailable.iter_mut().zip(slot.stats.unavailable) {
                *total += n;
            }
        }
        stats
    }

    pub fn strategy_count(&self) -> usize {
        self.slots.len()
    }

    pub fn strategy_id(&self, strategy: u32) -> &str {
        &self.slots[strategy as usize].id
    }

    pub fn strategy_name(&self, strategy: u32) -> &str {
        self.slots[strategy as usize].strategy.name()
    }

    pub fn strategy_kind(&self, strategy: u32) -> StrategyKind {
        self.slots[strategy as usize].strategy.kind()
    }

    pub fn brokers(&self, strategy: u32) -> &[String] {
        &self.slots[strategy as usize].brokers
    }

    pub fn instruments(&self, strategy: u32) -> &[InstrumentToken] {
        &self.slots[strategy as usize].instruments
    }

    pub fn strategy_state(&self, strategy: u32) -> StrategyState {
        self.slots[strategy as usize].state
    }

    /// [`feature_hash`](quiver_strategy::ml::feature_hash) of a strategy's
    /// model inputs (0 without a model).
    pub fn feature_hash(&self, strategy: u32) -> u64 {
        self.slots[strategy as usize].feature_hash
    }

    /// The most model requests one tick can make: the largest number of
    /// strategies with a model following one instrument.
    pub fn max_model_requests_per_tick(&self) -> usize {
        self.route_starts
            .windows(2)
            .map(|w| {
                self.routes[w[0] as usize..w[1] as usize]
                    .iter()
                    .filter(|r| self.slots[r.strategy as usize].model.is_some())
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
        &self.model_names[stamp.model as usize]
    }

    /// The version string behind `stamp`.
    pub fn model_version(&self, stamp: ModelStamp) -> &str {
        &self.model_versions[stamp.model as usize][stamp.version as usize]
    }

    pub fn strategy_stats(&self, strategy: u32) -> &StrategyStats {
        &self.slots[strategy as usize].stats
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
        let ring = &self.rings[instrument as usize];
        (ring.len(), ring.capacity())
    }

    /// Ticks of an instrument's past that must be replayed through
    /// [`Engine::warm_up`] for its strategies to decide as an uninterrupted
    /// run would: its ring's capacity, or every tick since the first
    /// (`usize::MAX`) when a feature has unbounded memory (EMA, Wilder's RSI).
    pub fn preload_depth(&self, instrument: InstrumentIdx) -> usize {
        let i = instrument as usize;
        if self.features[i].has_finite_memory() {
            self.rings[i].capacity()
        } else {
            usize::MAX
        }
    }

    /// The distinct features maintained for an instrument.
    pub fn instrument_features(&self, instrument: InstrumentIdx) -> &InstrumentFeatures {
        &self.features[instrument as usize]
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

impl Slot {
    /// Bytes this strategy costs the engine: its slot, its object and the
    /// heap its description owns (routes and features are counted apart).
    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Slot>()
            + std::mem::size_of_val(&*self.strategy)
            + self.id.capacity()
            + self.instruments.capacity() * std::mem::size_of::<InstrumentToken>()
            + self
                .brokers
                .iter()
                .map(|b| b.capacity() + std::mem::size_of::<String>())
                .sum::<usize>()
    }
}

/// Counts `signal` against the strategy's validator; true when it passes.
fn validate(slot: &mut Slot, signal: &EngineSignal) -> bool {
    match slot.validator.check(&signal.decision) {
        Ok(()) => {
            slot.stats.signals += 1;
            true
        }
        Err(reason) => {
            slot.stats.dropped[drop_slot(reason)] += 1;
            false
        }
    }
}

/// Records a contained panic and quarantines a strategy that keeps panicking.
fn contain(
    slot: &mut Slot,
    faults: &mut Vec<Fault>,
    seq: u64,
    strategy: u32,
    tick: &Tick,
    payload: Box<dyn std::any::Any + Send>,
) {
    slot.stats.panics += 1;
    slot.consecutive_panics += 1;
    if slot.consecutive_panics >= QUARANTINE_AFTER {
        slot.state = StrategyState::Quarantined;
    }
    faults.push(Fault {
        seq,
        strategy,
        instrument: tick.instrument,
        message: panic_message(payload.as_ref()),
    });
}

thread_local! {
    static IN_STRATEGY_CALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True while this thread is inside a strategy call. A process-wide panic hook
/// uses it to tell a contained strategy panic (reported as a [`Fault`]) from a
/// bug in Quiver itself.
pub fn in_strategy_call() -> bool {
    IN_STRATEGY_CALL.get()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
