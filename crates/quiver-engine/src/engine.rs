use std::panic::{catch_unwind, AssertUnwindSafe};

use quiver_core::{HistoryRing, InstrumentIndex, InstrumentToken, Price, Tick};
use quiver_features::InstrumentFeatures;
use quiver_strategy::{
    FeatureSpec, GuardSpec, Logic, ModelStrategy, SignalGuards, StandardValidator, Step, Strategy,
    TickContext,
};

use crate::flight::{Flight, Pending};
use crate::index::{ModelIdx, StrategyIdx};
use crate::inference::{ModelRequest, ModelResults};
use crate::input::{EngineSignal, Fault, Input, Output};
use crate::lifecycle::{Cause, Failure, LifecyclePolicy, StrategyState, Transition};
use crate::schedule::{Clock, Schedule, Shed};
use crate::stats::{drop_slot, EngineStats, StrategyStats};

/// One strategy as handed to the engine: its code, what it follows, where its
/// signals go, and how they are validated.
pub struct StrategyEntry {
    pub id: String,
    pub logic: Logic,
    pub instruments: Vec<InstrumentToken>,
    pub brokers: Vec<String>,
    pub validator: StandardValidator,
    /// The signal hygiene a signal passes after the validator.
    pub guards: GuardSpec,
    pub schedule: Schedule,
}

impl StrategyEntry {
    /// This entry with only the instruments of shard `shard` of `shards`
    /// ([`quiver_core::partition_of`]): what the strategy follows in one
    /// engine of a sharded run.
    pub fn for_shard(mut self, shard: usize, shards: usize) -> StrategyEntry {
        let shards = u32::try_from(shards).unwrap_or(u32::MAX);
        self.instruments
            .retain(|&token| quiver_core::partition_of(token, shards) as usize == shard);
        self
    }
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
    /// The history of an instrument cannot be built (deeper than any ring may
    /// be, or refused by the allocator): the config's history budget is what
    /// normally refuses such a file first.
    #[error("the history of instrument {token}: {problem}")]
    History {
        token: InstrumentToken,
        problem: quiver_core::RingError,
    },
}

/// A (strategy, instrument) pair: one entry of the routing table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Route {
    pub(crate) strategy: StrategyIdx,
    /// Warm-up of this pair is over (the shared history is long enough).
    pub(crate) ready: bool,
    /// `feature_slots[features_start..][..features_len]` map the strategy's
    /// declared features to this instrument's shared feature slots.
    pub(crate) features_start: u32,
    pub(crate) features_len: u32,
}

/// How the engine drives a strategy: the model variant always knows its
/// model, so only a strategy with one can ask for a prediction.
pub(crate) enum Driven {
    Rules(Box<dyn Strategy>),
    Model {
        strategy: Box<dyn ModelStrategy>,
        model: ModelIdx,
        /// Features per row.
        width: u32,
    },
}

impl Driven {
    pub(crate) fn strategy(&self) -> &dyn Strategy {
        match self {
            Driven::Rules(s) => &**s,
            Driven::Model { strategy, .. } => &**strategy,
        }
    }

    pub(crate) fn model(&self) -> Option<(ModelIdx, u32)> {
        match self {
            Driven::Rules(_) => None,
            Driven::Model { model, width, .. } => Some((*model, *width)),
        }
    }
}

pub(crate) struct Slot {
    pub(crate) id: String,
    pub(crate) brokers: Vec<String>,
    pub(crate) driven: Driven,
    pub(crate) validator: StandardValidator,
    /// `None` when the row configures none (the common case): the slot
    /// stays small and the check is one test.
    pub(crate) guards: Option<Box<SignalGuards>>,
    pub(crate) schedule: Schedule,
    pub(crate) required: usize,
    /// What the routing was built for; a replacement must match it.
    pub(crate) features: Vec<FeatureSpec>,
    pub(crate) instruments: Vec<InstrumentToken>,
    pub(crate) state: StrategyState,
    /// The change into `state`.
    pub(crate) since: Option<Transition>,
    /// Some followed instrument's history has been long enough.
    pub(crate) warm: bool,
    /// Failures since the last evaluation that did not fail.
    pub(crate) failures_in_a_row: u32,
    /// Quarantines since the last evaluation that did not fail: the
    /// exponent of the next back-off.
    pub(crate) quarantines_in_a_row: u32,
    /// Tick time from which a quarantined strategy is tried again.
    pub(crate) retry_at: Option<i64>,
    pub(crate) stats: StrategyStats,
    pub(crate) feature_hash: u64,
}

/// The dispatch engine. See the crate docs.
pub struct Engine {
    pub(crate) index: InstrumentIndex,
    pub(crate) rings: Vec<HistoryRing>,
    /// One shared feature set per instrument, indexed like `rings`.
    pub(crate) features: Vec<InstrumentFeatures>,
    pub(crate) feature_slots: Vec<u32>,
    /// `routes[route_starts[i]..route_starts[i + 1]]` follow instrument `i`,
    /// in strategy (config) order.
    pub(crate) route_starts: Vec<u32>,
    pub(crate) routes: Vec<Route>,
    pub(crate) slots: Vec<Slot>,
    pub(crate) stats: EngineStats,
    /// The last tick dispatched: the time stamped on controls.
    pub(crate) last_tick: Option<(u64, i64)>,
    /// Engine model index → registry name, and the versions seen so far.
    pub(crate) model_names: Vec<String>,
    pub(crate) model_versions: Vec<Vec<String>>,
    /// Since the last flush: evaluations in output order, and the model
    /// requests among them.
    pub(crate) pending: Vec<Pending>,
    pub(crate) requests: Vec<ModelRequest>,
    pub(crate) rows: Vec<f32>,
    /// A detached flight has not landed yet.
    pub(crate) in_flight: bool,
    /// The buffers of the last flight that landed, reused by the next.
    pub(crate) spare: Flight,
    pub(crate) results: ModelResults,
    /// Per model, the version index that served the current flush.
    pub(crate) serving: Vec<u32>,
    pub(crate) policy: LifecyclePolicy,
    pub(crate) shed: Shed,
    /// Times evaluations of strategies with a budget (live only).
    pub(crate) clock: Option<Clock>,
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
            check_instruments(entry)?;
        }
        let index =
            InstrumentIndex::new(entries.iter().flat_map(|e| e.instruments.iter().copied()));
        let n = index.len();
        let mut followers: Vec<Vec<StrategyIdx>> = vec![Vec::new(); n];
        let mut capacity = vec![1usize; n];
        for (s, entry) in entries.iter().enumerate() {
            let s = StrategyIdx::new(s as u32);
            let required = entry.logic.strategy().required_history();
            for &token in &entry.instruments {
                if let Some(i) = index.get(token) {
                    let list = &mut followers[i.index()];
                    // A token listed twice by one strategy is still one route.
                    if list.last() != Some(&s) {
                        list.push(s);
                    }
                    capacity[i.index()] = capacity[i.index()].max(required);
                }
            }
        }
        let declared: Vec<_> = entries
            .iter()
            .map(|e| e.logic.strategy().features())
            .collect();
        let mut features: Vec<InstrumentFeatures> = vec![InstrumentFeatures::default(); n];
        let mut feature_slots = Vec::new();
        let mut route_starts = Vec::with_capacity(n + 1);
        let mut routes = Vec::new();
        let too_many = |_| EngineError::TooMany;
        for (i, list) in followers.iter().enumerate() {
            route_starts.push(u32::try_from(routes.len()).map_err(too_many)?);
            for &strategy in list {
                let specs = &declared[strategy.index()];
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
        let rings = capacity
            .into_iter()
            .enumerate()
            .map(|(i, depth)| {
                HistoryRing::try_new(depth).map_err(|problem| EngineError::History {
                    token: index.tokens()[i],
                    problem,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut model_names: Vec<String> = Vec::new();
        let slots = entries
            .into_iter()
            .zip(declared)
            .map(|(e, features)| {
                let (driven, feature_hash) = drive(e.logic, &mut model_names);
                Slot {
                    required: driven.strategy().required_history().max(1),
                    id: e.id,
                    brokers: e.brokers,
                    driven,
                    validator: e.validator,
                    guards: guards_of(e.guards),
                    schedule: e.schedule,
                    features,
                    instruments: e.instruments,
                    state: StrategyState::Warmup,
                    since: None,
                    warm: false,
                    failures_in_a_row: 0,
                    quarantines_in_a_row: 0,
                    retry_at: None,
                    stats: StrategyStats::default(),
                    feature_hash,
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
            last_tick: None,
            model_names,
            model_versions,
            pending: Vec::new(),
            requests: Vec::new(),
            rows: Vec::new(),
            in_flight: false,
            spare: Flight::default(),
            results: ModelResults::default(),
            serving: Vec::new(),
            policy: LifecyclePolicy::default(),
            shed: Shed::Nothing,
            clock: None,
        })
    }

    /// The one way in: dispatches a tick, warms history up, completes a
    /// landed flight or applies a control. Everything that comes out is
    /// appended to `out`.
    #[inline]
    pub fn process(&mut self, input: Input<'_>, out: &mut Output) {
        match input {
            Input::Tick { seq, tick } => self.on_tick(seq, tick, out),
            Input::WarmUp(tick) => self.warm_up(tick),
            Input::Landed { flight, results } => self.land(flight, results, out),
            Input::Control(control) => {
                if let Err(err) = self.control(control, out) {
                    out.refused.push(err);
                }
            }
        }
    }

    /// Appends the tick to its instrument's history once, then calls every
    /// warm, active follower in config order.
    #[inline]
    fn on_tick(&mut self, seq: u64, tick: &Tick, out: &mut Output) {
        self.stats.ticks += 1;
        self.last_tick = Some((seq, tick.ts_ns));
        let Some(i) = self.index.get(tick.instrument) else {
            self.stats.unrouted_ticks += 1;
            return;
        };
        let i = i.index();
        let ring = &mut self.rings[i];
        ring.push(tick.price, tick.volume);
        let held = ring.len();
        let history = ring.view();
        // Every feature of the instrument once, before any strategy reads it.
        let features = &mut self.features[i];
        features.update(history);
        self.stats.feature_updates += features.len() as u64;
        let features = &self.features[i];
        let clock = self.clock;
        let (start, end) = (
            self.route_starts[i] as usize,
            self.route_starts[i + 1] as usize,
        );
        for route in &mut self.routes[start..end] {
            let slot = &mut self.slots[route.strategy.index()];
            if !route.ready {
                if held < slot.required {
                    continue;
                }
                route.ready = true;
                slot.warm = true;
                if slot.state == StrategyState::Warmup {
                    let at = Some((seq, tick.ts_ns));
                    shift(
                        slot,
                        route.strategy,
                        StrategyState::Active,
                        Cause::HistoryReady,
                        at,
                        out,
                    );
                }
            }
            if slot.state != StrategyState::Active {
                let due = slot.state == StrategyState::Quarantined
                    && slot.retry_at.is_some_and(|at| tick.ts_ns >= at);
                if !due {
                    continue;
                }
                retry(slot, route.strategy, &self.policy, (seq, tick.ts_ns), out);
            }
            if self.shed.skips(slot.schedule.priority) {
                slot.stats.shed += 1;
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
            // The outcome is written in place and only `()` crosses
            // `catch_unwind`: returning the (large) decision through it would
            // copy it on every evaluation, signal or not. A rules strategy
            // writes its decision straight into `decided`; only a model
            // strategy's step goes through `step`.
            let mut decided = None;
            let mut step = Step::Decided(None);
            let mut model = None;
            let timed = match (slot.schedule.budget_ns, clock) {
                (Some(budget), Some(clock)) => Some((budget, clock, clock())),
                _ => None,
            };
            IN_STRATEGY_CALL.set(true);
            let result = match &mut slot.driven {
                Driven::Rules(strategy) => catch_unwind(AssertUnwindSafe(|| {
                    decided = strategy.on_tick(tick, ctx);
                })),
                Driven::Model {
                    strategy,
                    model: index,
                    width,
                } => {
                    model = Some((*index, *width));
                    let at = self.rows.len();
                    self.rows.resize(at + *width as usize, 0.0);
                    let row = &mut self.rows[at..];
                    catch_unwind(AssertUnwindSafe(|| {
                        step = strategy.prepare(tick, ctx, row);
                    }))
                }
            };
            IN_STRATEGY_CALL.set(false);
            let over_budget = timed
                .is_some_and(|(budget, clock, started)| clock().saturating_sub(started) > budget);
            if let Err(payload) = result {
                contain(slot, route.strategy, seq, tick, payload, &self.policy, out);
                self.rows.truncate(
                    self.requests
                        .last()
                        .map_or(0, |r| (r.start + r.len) as usize),
                );
                continue;
            }
            if let Some((model, width)) = model {
                match step {
                    Step::Decided(early) => decided = early,
                    Step::SkippedFeatures(early) => {
                        slot.stats.skipped_features += 1;
                        self.rows.truncate(self.rows.len() - width as usize);
                        decided = early;
                    }
                    Step::Predict(carry) => {
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
                }
            }
            let at = (seq, tick.ts_ns);
            let Some(decision) = decided else {
                settle(slot, route.strategy, over_budget, at, &self.policy, out);
                continue;
            };
            let signal = EngineSignal {
                seq,
                ts_ns: tick.ts_ns,
                strategy: route.strategy,
                instrument: tick.instrument,
                decision,
                model: None,
            };
            let passed = match validate(slot, &signal, tick.price) {
                Verdict::OutOfRange => {
                    fail(
                        slot,
                        route.strategy,
                        Failure::InvalidDecision,
                        at,
                        &self.policy,
                        out,
                    );
                    false
                }
                Verdict::Held => {
                    settle(slot, route.strategy, over_budget, at, &self.policy, out);
                    false
                }
                Verdict::Passed => {
                    settle(slot, route.strategy, over_budget, at, &self.policy, out);
                    true
                }
            };
            if passed {
                if self.pending.is_empty() && !self.in_flight {
                    out.signals.push(signal);
                } else {
                    self.pending.push(Pending::Ready(signal));
                }
            }
        }
    }

    /// Sets how failing strategies are quarantined and retried.
    pub fn set_lifecycle(&mut self, policy: LifecyclePolicy) {
        self.policy = policy;
    }

    /// Which priorities to skip from the next tick on (the live service
    /// sets it from its lag; a replay never does).
    pub fn set_shed(&mut self, shed: Shed) {
        self.shed = shed;
    }

    /// Times the evaluations of strategies with a budget; without a clock
    /// (a replay) budgets are not enforced, so the outcome stays
    /// deterministic.
    pub fn set_clock(&mut self, clock: Option<Clock>) {
        self.clock = clock;
    }

    fn warm_up(&mut self, tick: &Tick) {
        if let Some(i) = self.index.get(tick.instrument) {
            let ring = &mut self.rings[i.index()];
            ring.push(tick.price, tick.volume);
            self.features[i.index()].update(ring.view());
        }
    }

    /// Model requests waiting for a flush.
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// Whether any evaluation waits for a flush (always false for an engine
    /// without model strategies).
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether a detached flight has not landed yet.
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }
}

impl Slot {
    /// Bytes this strategy costs the engine: its slot, its object and the
    /// heap its description owns (routes and features are counted apart).
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Slot>()
            + std::mem::size_of_val(self.driven.strategy())
            + self.id.capacity()
            + self.instruments.capacity() * std::mem::size_of::<InstrumentToken>()
            + self.features.capacity() * std::mem::size_of::<FeatureSpec>()
            + self
                .brokers
                .iter()
                .map(|b| b.capacity() + std::mem::size_of::<String>())
                .sum::<usize>()
    }

    pub(crate) fn driven_mut(&mut self) -> &mut dyn Strategy {
        match &mut self.driven {
            Driven::Rules(s) => &mut **s,
            Driven::Model { strategy, .. } => &mut **strategy,
        }
    }
}

pub(crate) fn check_instruments(entry: &StrategyEntry) -> Result<(), EngineError> {
    let strategy = entry.logic.strategy();
    match entry
        .instruments
        .iter()
        .find(|&&t| !strategy.supports_instrument(t))
    {
        Some(&token) => Err(EngineError::UnsupportedInstrument {
            id: entry.id.clone(),
            name: strategy.name().to_owned(),
            token,
        }),
        None => Ok(()),
    }
}

/// How the engine will drive `logic`, interning its model's name into
/// `model_names`; with the hash of its model inputs (0 without a model).
pub(crate) fn drive(logic: Logic, model_names: &mut Vec<String>) -> (Driven, u64) {
    match logic {
        Logic::Rules(strategy) => (Driven::Rules(strategy), 0),
        Logic::Model(strategy) => {
            let used = strategy.model();
            let name = &used.model.name;
            let index = model_names
                .iter()
                .position(|n| n == name)
                .unwrap_or_else(|| {
                    model_names.push(name.clone());
                    model_names.len() - 1
                });
            let (width, hash) = (used.model.n_features as u32, used.feature_hash);
            let driven = Driven::Model {
                strategy,
                model: ModelIdx::new(index as u32),
                width,
            };
            (driven, hash)
        }
    }
}

/// Moves a strategy to `to`, recording why and when.
pub(crate) fn shift(
    slot: &mut Slot,
    strategy: StrategyIdx,
    to: StrategyState,
    cause: Cause,
    at: Option<(u64, i64)>,
    out: &mut Output,
) {
    let transition = Transition {
        strategy,
        from: slot.state,
        to,
        cause,
        seq: at.map(|(seq, _)| seq),
        ts_ns: at.map(|(_, ts)| ts),
    };
    slot.state = to;
    slot.since = Some(transition);
    out.transitions.push(transition);
}

/// The signal guards `spec` asks for, if any.
pub(crate) fn guards_of(spec: GuardSpec) -> Option<Box<SignalGuards>> {
    (!spec.is_off()).then(|| Box::new(SignalGuards::new(spec)))
}

/// What became of a decision.
pub(crate) enum Verdict {
    Passed,
    /// Refused by a threshold (`min_confidence`) or held back by the signal
    /// hygiene: a valid decision, so no failure.
    Held,
    /// Out of range: a failure of the strategy.
    OutOfRange,
}

/// Checks `signal` against the strategy's validator, then its signal
/// hygiene (the tick's price being `last_price`), counting the outcome.
#[inline]
pub(crate) fn validate(slot: &mut Slot, signal: &EngineSignal, last_price: Price) -> Verdict {
    if let Err(reason) = slot.validator.check(&signal.decision) {
        slot.stats.dropped[drop_slot(reason)] += 1;
        return if reason.is_out_of_range() {
            Verdict::OutOfRange
        } else {
            Verdict::Held
        };
    }
    let guarded = match slot.guards.as_deref_mut() {
        Some(guards) => guards.admit(
            signal.ts_ns,
            signal.instrument,
            &signal.decision,
            last_price,
        ),
        None => Ok(()),
    };
    match guarded {
        Ok(()) => {
            slot.stats.signals += 1;
            Verdict::Passed
        }
        Err(reason) => {
            slot.stats.held_back[reason.index()] += 1;
            Verdict::Held
        }
    }
}

/// An evaluation that did not fail in its outcome: a success, unless it
/// ran over its budget.
#[inline]
pub(crate) fn settle(
    slot: &mut Slot,
    strategy: StrategyIdx,
    over_budget: bool,
    at: (u64, i64),
    policy: &LifecyclePolicy,
    out: &mut Output,
) {
    if over_budget {
        slot.stats.over_budget += 1;
        fail(slot, strategy, Failure::OverBudget, at, policy, out);
    } else {
        succeed(slot);
    }
}

/// An evaluation that did not fail: the count and the back-off start over.
#[inline]
pub(crate) fn succeed(slot: &mut Slot) {
    // Read before written: the counters are nearly always zero already, and
    // a store on every evaluation dirties a line that is otherwise read.
    if slot.failures_in_a_row != 0 || slot.quarantines_in_a_row != 0 {
        slot.failures_in_a_row = 0;
        slot.quarantines_in_a_row = 0;
    }
}

/// Counts a failure and quarantines a strategy that keeps failing, until
/// its back-off has passed in tick time.
pub(crate) fn fail(
    slot: &mut Slot,
    strategy: StrategyIdx,
    failure: Failure,
    at: (u64, i64),
    policy: &LifecyclePolicy,
    out: &mut Output,
) {
    slot.stats.failures += 1;
    slot.failures_in_a_row = slot.failures_in_a_row.saturating_add(1);
    if slot.failures_in_a_row >= policy.quarantine_after && slot.state == StrategyState::Active {
        let backoff = policy.backoff_ns(slot.quarantines_in_a_row);
        slot.retry_at = Some(at.1.saturating_add(backoff));
        slot.quarantines_in_a_row = slot.quarantines_in_a_row.saturating_add(1);
        shift(
            slot,
            strategy,
            StrategyState::Quarantined,
            failure.cause(),
            Some(at),
            out,
        );
    }
}

/// Brings a quarantined strategy back once its back-off is over, on
/// probation: the next failure quarantines it again.
fn retry(
    slot: &mut Slot,
    strategy: StrategyIdx,
    policy: &LifecyclePolicy,
    at: (u64, i64),
    out: &mut Output,
) {
    slot.retry_at = None;
    slot.failures_in_a_row = policy.quarantine_after.saturating_sub(1);
    shift(
        slot,
        strategy,
        StrategyState::Active,
        Cause::Retried,
        Some(at),
        out,
    );
}

/// Records a contained panic as a fault and a failure.
pub(crate) fn contain(
    slot: &mut Slot,
    strategy: StrategyIdx,
    seq: u64,
    tick: &Tick,
    payload: Box<dyn std::any::Any + Send>,
    policy: &LifecyclePolicy,
    out: &mut Output,
) {
    slot.stats.panics += 1;
    fail(
        slot,
        strategy,
        Failure::Panic,
        (seq, tick.ts_ns),
        policy,
        out,
    );
    out.faults.push(Fault {
        seq,
        strategy,
        instrument: tick.instrument,
        message: panic_message(payload.as_ref()),
    });
}

thread_local! {
    pub(crate) static IN_STRATEGY_CALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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
