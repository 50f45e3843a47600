//! The dispatch engine: ticks in, validated decisions out.
//!
//! Pure and synchronous — no I/O, no async, no clock — so replay and live run
//! the same code and tests need nothing but data. At build time instrument
//! tokens and strategies are interned to dense indices and the routing table is
//! laid out flat; per tick the engine does one index lookup, one history
//! append, and one call per following strategy, allocating nothing.
//!
//! Strategies with a model leave a feature row per evaluation; the caller
//! runs them all at once with [`Engine::flush`] and a [`ModelRunner`] (see
//! [`inference`]), which applies the results in (tick, strategy) order.

mod engine;
pub mod inference;
pub mod scenario;
mod stats;

pub use engine::{
    in_strategy_call, Engine, EngineError, EngineSignal, Fault, Flight, StrategyEntry,
    StrategyState,
};
pub use inference::{ModelBatch, ModelRequest, ModelResults, ModelRunner, ModelStamp, Unavailable};
pub use stats::{EngineStats, StrategyStats};

/// Consecutive panics after which a strategy is quarantined (seed 000/001).
pub const QUARANTINE_AFTER: u32 = 5;
