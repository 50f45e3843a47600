//! The dispatch engine: ticks in, validated decisions out.
//!
//! Pure and synchronous — no I/O, no async, no clock — so replay and live run
//! the same code and tests need nothing but data. At build time instrument
//! tokens and strategies are interned to dense indices and the routing table is
//! laid out flat; per tick the engine does one index lookup, one history
//! append, and one call per following strategy, allocating nothing.
//!
//! Everything goes in through one door, [`Engine::process`], as an
//! [`Input`]: a tick, a warm-up tick, a landed flight of model results, or
//! an operator's [`Control`], applied between two ticks. What comes out —
//! signals, contained faults, lifecycle [`Transition`]s, refused controls —
//! is appended to an [`Output`] the caller drains.
//!
//! Strategies with a model leave a feature row per evaluation; the caller
//! runs them all at once with [`Engine::flush`] and a [`ModelRunner`] (see
//! [`inference`]), or takes them out with [`Engine::detach`] and hands them
//! back as [`Input::Landed`]; results apply in (tick, strategy) order.

mod control;
mod engine;
mod flight;
mod index;
pub mod inference;
mod input;
pub mod lifecycle;
mod rebuild;
pub mod scenario;
mod schedule;
mod stats;
mod view;

pub use engine::{in_strategy_call, Engine, EngineError, StrategyEntry};
pub use flight::Flight;
pub use index::{ModelIdx, StrategyIdx};
pub use inference::{ModelBatch, ModelRequest, ModelResults, ModelRunner, ModelStamp, Unavailable};
pub use input::{EngineSignal, Fault, Input, Output, RebuildReport};
pub use lifecycle::{
    Cause, Control, ControlError, Failure, LifecyclePolicy, StrategyState, Transition,
};
pub use schedule::{Priority, Schedule, Shed};
pub use stats::{EngineStats, StrategyStats};

/// Failures in a row after which a strategy is quarantined by default
/// (seeds 000 and 001; see [`LifecyclePolicy`]).
pub const QUARANTINE_AFTER: u32 = 5;
