//! How a strategy row asks to be scheduled (seed 001): its priority when
//! the engine falls behind and its compute budget. The engine enforces both
//! (`quiver_engine::schedule`); the config reads them.

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

/// How the engine schedules one strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    pub priority: Priority,
    /// The longest one evaluation may take (`budget_us_per_tick`), when the
    /// engine has a clock; an evaluation over it is a failure.
    pub budget_ns: Option<u64>,
}
