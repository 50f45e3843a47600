//! The strategy contract and the built-in strategies.
//!
//! Every strategy — rules, ML or hybrid — implements one trait, [`Strategy`]: it
//! names itself, declares the history it needs and the instruments it supports,
//! and turns a tick plus a read-only view of that instrument's history into an
//! optional [`Decision`]. Extra capabilities (ML inference, decision policies)
//! are separate types composed in, never a base class.
//!
//! This crate is pure: no I/O, no clock, no globals. Strategies are built from
//! validated parameter values ([`params`]) by [`spec::StrategySpec::build`].

pub mod exact;
pub mod hybrid;
pub mod params;
pub mod rules;
pub mod spec;
pub mod validator;

use quiver_core::{Decision, History, InstrumentToken, Tick};

pub use hybrid::{HybridStrategy, Policy, PolicyKind};
pub use params::{ParamDef, ParamKind, ParamValue, ParamValues};
pub use spec::{RulesType, StrategySpec, StrategyType};
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

/// The one contract every strategy implements.
///
/// The engine, not the strategy, owns history and warm-up: `on_tick` is called
/// only once the instrument's history (which already ends with `tick`) holds at
/// least [`Strategy::required_history`] ticks. A strategy must not panic, but if
/// it does the engine contains it; it must not read clocks or do I/O, so replay
/// and live give the same decisions.
pub trait Strategy: Send {
    /// The strategy's type name, e.g. `momentum` or `hybrid:momentum+rsi`.
    fn name(&self) -> &str;

    fn kind(&self) -> StrategyKind;

    /// Ticks of history (including the current one) needed before `on_tick`.
    fn required_history(&self) -> usize;

    /// Whether this strategy can trade `token` at all.
    fn supports_instrument(&self, token: InstrumentToken) -> bool {
        let _ = token;
        true
    }

    /// Decides on one tick. `history` ends with this tick's price.
    fn on_tick(&mut self, tick: &Tick, history: History<'_>) -> Option<Decision>;
}
