//! The strategy contract and the built-in strategies.
//!
//! Every strategy — rules, ML or hybrid — implements one trait, [`Strategy`]: it
//! names itself, declares the history and the shared features it needs and the
//! instruments it supports, and turns a tick plus a read-only [`TickContext`]
//! (that instrument's history and feature values) into an optional
//! [`Decision`]. Extra capabilities (ML inference, decision policies)
//! are separate types composed in, never a base class.
//!
//! This crate is pure: no I/O, no clock, no globals. Strategies are built from
//! validated parameter values ([`params`]) by [`spec::StrategySpec::build`].

pub mod hybrid;
pub mod ml;
pub mod params;
pub mod rules;
pub mod spec;
pub mod validator;

use quiver_core::{Decision, History, InstrumentToken, Tick};
pub use quiver_features::{FeatureSpec, FeatureView};

pub use hybrid::{HybridStrategy, Policy, PolicyKind};
pub use ml::{
    Carry, Completion, MlFeature, MlStrategy, ModelCatalog, ModelInfo, ModelOutput, ModelUse,
    Prediction, Step,
};
pub use params::{ParamDef, ParamKind, ParamValue, ParamValues};
pub use spec::{BuildError, MlSpec, RulesType, StrategySpec, StrategyType};
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

/// The one contract every strategy implements.
///
/// The engine, not the strategy, owns history, features and warm-up: it
/// updates the shared features once per tick, then calls `on_tick` only once
/// the instrument's history (which already ends with `tick`) holds at least
/// [`Strategy::required_history`] ticks. A strategy must not panic, but if it
/// does the engine contains it; it must not read clocks or do I/O, so replay
/// and live give the same decisions.
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

    /// The model this strategy asks for predictions, if any. Asked once, at
    /// load; a strategy with a model is driven through
    /// [`prepare`](Strategy::prepare) and [`complete`](Strategy::complete)
    /// instead of `on_tick`.
    fn model(&self) -> Option<&ModelUse> {
        None
    }

    /// Stages 1 (and, for a hybrid, its rules part) of a strategy with a
    /// model: write the feature row into `row` (the model's feature count)
    /// and return [`Step::Predict`], or decide now.
    fn prepare(&mut self, tick: &Tick, ctx: TickContext<'_>, row: &mut [f32]) -> Step {
        let _ = row;
        Step::Decided(self.on_tick(tick, ctx))
    }

    /// Stage 3: the decision from the model's result for the row written at
    /// `tick`. Called in (tick, strategy) order but possibly after later
    /// ticks were prepared, so it must depend only on `tick`, `carry` and
    /// `prediction` — never on state a later `prepare` changed.
    fn complete(&mut self, tick: &Tick, carry: Carry, prediction: Prediction<'_>) -> Completion {
        let _ = (tick, prediction);
        Completion {
            decision: carry.decision,
            rejected_output: false,
        }
    }
}
