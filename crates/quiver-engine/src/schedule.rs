//! Priorities, load shedding and compute budgets (seed 001).
//!
//! The engine has no clock and never sheds on its own: the live service
//! measures how far behind it is and sets a [`Shed`] level between two
//! batches, and gives the engine a clock ([`Engine::set_clock`]) so
//! evaluations of strategies with a budget are timed. A replay sets
//! neither, so it evaluates everything and stays deterministic.
//!
//! [`Engine::set_clock`]: crate::Engine::set_clock

/// How much a strategy matters when the engine falls behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    /// Never skipped.
    Critical,
    #[default]
    Normal,
    /// Skipped first.
    Background,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::Critical, Priority::Normal, Priority::Background];

    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::Normal => "normal",
            Priority::Background => "background",
        }
    }

    pub fn parse(text: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

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

/// How the engine schedules one strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    pub priority: Priority,
    /// The longest one evaluation may take (`budget_us_per_tick`), when the
    /// engine has a clock; an evaluation over it is a failure.
    pub budget_ns: Option<u64>,
}

/// Nanoseconds on a monotonic clock, given by the caller.
pub type Clock = fn() -> u64;
