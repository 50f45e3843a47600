//! The strategy contract and the built-in strategies.
//!
//! Every strategy — rules, ML or hybrid — implements one trait, [`Strategy`]: it
//! names itself, declares the history and the shared features it needs and the
//! instruments it supports, and turns a tick plus a read-only [`TickContext`]
//! (that instrument's history and feature values) into an optional
//! [`Decision`]. A strategy with a model adds the model half,
//! [`ModelStrategy`] (write a feature row, turn the model's outputs into a
//! decision); [`Logic`] says which halves the engine drives. Extra
//! capabilities (ML inference, decision policies) are separate types
//! composed in, never a base class.
//!
//! This crate is pure: no I/O, no clock, no globals. Strategies are built from
//! validated parameter values ([`params`]) by [`spec::StrategySpec::build`].

pub mod hybrid;
pub mod hygiene;
pub mod ml;
pub mod params;
pub mod rules;
pub mod schedule;
pub mod spec;
pub mod validator;

use quiver_core::{Decision, History, InstrumentToken, Tick};
pub use quiver_features::{FeatureSpec, FeatureView};

pub use hybrid::{HybridStrategy, Policy, PolicyKind};
pub use hygiene::{GuardDrop, GuardSpec, RateSpec, SignalGuards};
pub use ml::{
    Carry, Completion, MlFeature, MlStrategy, ModelCatalog, ModelInfo, ModelOutput, ModelUse,
    Prediction, Step,
};
pub use params::{ParamDef, ParamKind, ParamValue, ParamValues};
pub use schedule::{Priority, Schedule};
pub use spec::{BuildError, DepthSource, Footprint, MlSpec, RulesType, StrategySpec, StrategyType};
pub use validator::{DropReason, StandardValidator};

/// What kind of logic drives a strategy; reported in metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StrategyKind {
    Rules,
    Ml,
    Hybrid,
}

impl StrategyKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            StrategyKind::Rules => "rules",
            StrategyKind::Ml => "ml",
            StrategyKind::Hybrid => "hybrid",
        }
    }
}

/// What a strategy sees of its instrument on a tick: the shared history (ending
/// with this tick) and the shared features it declared, both read-only.
#[derive(Clone, Copy, Debug)]
pub struct TickContext<'a> {
    pub history: History<'a>,
    /// Index `i` is the `i`-th spec of [`Strategy::features`].
    pub features: FeatureView<'a>,
}

/// The one contract every strategy implements: the rules half, which every
/// strategy has.
///
/// The engine, not the strategy, owns history, features and warm-up: it
/// updates the shared features once per tick, then calls `on_tick` only once
/// the instrument's history (which already ends with `tick`) holds at least
/// [`Strategy::required_history`] ticks. A strategy must not panic, but if it
/// does the engine contains it; it must not read clocks or do I/O, so replay
/// and live give the same decisions.
///
/// A strategy that asks a model for predictions implements
/// [`ModelStrategy`] as well and is handed to the engine as
/// [`Logic::Model`]; only such a strategy can ask for a prediction.
pub trait Strategy: Send {
    /// The strategy's type name, e.g. `momentum` or `hybrid:momentum+rsi`.
    fn name(&self) -> &str;

    fn kind(&self) -> StrategyKind;

    /// Ticks of history (including the current one) needed before `on_tick`.
    fn required_history(&self) -> usize;

    /// The shared features this strategy reads, in the order it indexes them
    /// in [`TickContext::features`]. Asked once, at load.
    fn features(&self) -> Vec<FeatureSpec> {
        Vec::new()
    }

    /// Whether this strategy can trade `token` at all.
    fn supports_instrument(&self, token: InstrumentToken) -> bool {
        let _ = token;
        true
    }

    /// Decides on one tick without a model: the whole of a rules strategy;
    /// for a strategy with a model, what it decides when no prediction is
    /// available (HOLD for pure ML).
    fn on_tick(&mut self, tick: &Tick, ctx: TickContext<'_>) -> Option<Decision>;

    /// Forgets any state of the strategy's own, as if it had just been
    /// built (an operator's reset). The built-in strategies keep none: they
    /// decide from the shared history and features alone.
    fn reset(&mut self) {}
}

/// The model half of a strategy that asks a model for predictions.
///
/// The engine drives such a strategy through [`prepare`](Self::prepare) and
/// [`complete`](Self::complete) instead of [`Strategy::on_tick`].
pub trait ModelStrategy: Strategy {
    /// The model this strategy asks for predictions. Asked once, at load.
    fn model(&self) -> &ModelUse;

    /// Stages 1 (and, for a hybrid, its rules part) of the evaluation: write
    /// the feature row into `row` (the model's feature count) and return
    /// [`Step::Predict`], or decide now.
    fn prepare(&mut self, tick: &Tick, ctx: TickContext<'_>, row: &mut [f32]) -> Step;

    /// Stage 3: the decision from the model's result for the row written at
    /// `tick`. Called in (tick, strategy) order but possibly after later
    /// ticks were prepared, so it must depend only on `tick`, `carry` and
    /// `prediction` — never on state a later `prepare` changed.
    fn complete(&mut self, tick: &Tick, carry: Carry, prediction: Prediction<'_>) -> Completion;
}

/// A built strategy, as the engine drives it: by its rules half alone, or
/// through its model half.
pub enum Logic {
    Rules(Box<dyn Strategy>),
    Model(Box<dyn ModelStrategy>),
}

impl Logic {
    /// The rules half, which every strategy has.
    pub fn strategy(&self) -> &dyn Strategy {
        match self {
            Logic::Rules(s) => &**s,
            Logic::Model(s) => &**s,
        }
    }

    pub fn strategy_mut(&mut self) -> &mut dyn Strategy {
        match self {
            Logic::Rules(s) => &mut **s,
            Logic::Model(s) => &mut **s,
        }
    }

    /// The model asked for predictions, when there is one.
    pub fn model(&self) -> Option<&ModelUse> {
        match self {
            Logic::Rules(_) => None,
            Logic::Model(s) => Some(s.model()),
        }
    }

    /// The rules half alone, dropping the model half (a hybrid's `rules`
    /// part is always driven this way).
    pub fn into_strategy(self) -> Box<dyn Strategy> {
        match self {
            Logic::Rules(s) => s,
            Logic::Model(s) => s,
        }
    }
}

impl<S: Strategy + 'static> From<Box<S>> for Logic {
    fn from(strategy: Box<S>) -> Logic {
        Logic::Rules(strategy)
    }
}

/// A part of a composite strategy ([`HybridStrategy`], runtime wrappers):
/// gives access to the rules half whatever the part's type.
pub trait AsStrategy: Send {
    fn as_strategy(&self) -> &dyn Strategy;
    fn as_strategy_mut(&mut self) -> &mut dyn Strategy;
}

impl AsStrategy for Box<dyn Strategy> {
    fn as_strategy(&self) -> &dyn Strategy {
        &**self
    }
    fn as_strategy_mut(&mut self) -> &mut dyn Strategy {
        &mut **self
    }
}

impl AsStrategy for Box<dyn ModelStrategy> {
    fn as_strategy(&self) -> &dyn Strategy {
        &**self
    }
    fn as_strategy_mut(&mut self) -> &mut dyn Strategy {
        &mut **self
    }
}
