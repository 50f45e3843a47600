//! Priorities, load shedding and compute budgets (seed 001).
//!
//! The engine has no clock and never sheds on its own: the live service
//! measures how far behind it is and sets a [`Shed`] level between two
//! batches, and gives the engine a clock ([`Engine::set_clock`]) so
//! evaluations of strategies with a budget are timed. A replay sets
//! neither, so it evaluates everything and stays deterministic.
//!
//! [`Engine::set_clock`]: crate::Engine::set_clock

pub use quiver_strategy::schedule::{Priority, Schedule};

/// Which priorities the engine skips while it is behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shed {
    /// Evaluate everything (always, in a replay).
    #[default]
    Nothing,
    Background,
    /// Only critical strategies are evaluated.
    AllButCritical,
}

impl Shed {
    pub const fn skips(self, priority: Priority) -> bool {
        match self {
            Shed::Nothing => false,
            Shed::Background => matches!(priority, Priority::Background),
            Shed::AllButCritical => !matches!(priority, Priority::Critical),
        }
    }
}

/// Nanoseconds on a monotonic clock, given by the caller.
pub type Clock = fn() -> u64;
