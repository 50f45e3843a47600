//! A strategy's lifecycle inside the engine, and the controls an operator
//! applies to it between two ticks.
//!
//! ```text
//!            history long enough          pause
//!   Warmup ───────────────────────► Active ◄──────► Paused
//!                                    │  ▲    resume     │
//!      quarantine_after failures     │  │ back-off over │
//!      in a row                      ▼  │ (or reset)    │
//!                                 Quarantined           │
//!   any ─────────────────────── stop ──────────────────┴──► Stopped (final)
//! ```
//!
//! A strategy is registered in Warmup (the seed's INIT → WARMUP is its
//! construction). A failure is a panic in either stage or a decision the
//! validator finds out of range (confidence NaN, infinite or outside
//! [0, 1]; quantity 0 or over the maximum; price not > 0). After
//! [`LifecyclePolicy::quarantine_after`] failures in a row the strategy is
//! quarantined (the seed's ERROR) and retried once its back-off has passed
//! in tick time: `backoff_base_ns`, doubled for each quarantine in a row, at
//! most `backoff_cap_ns`. A retried strategy is on probation: one more
//! failure quarantines it again; an evaluation that does not fail resets
//! both the count and the back-off.
//!
//! Every change is recorded as a [`Transition`] with the tick time of the
//! tick that caused it — or, for a control, of the last tick dispatched
//! before it — so replay records the same transitions at the same times.

use crate::index::StrategyIdx;
use crate::StrategyEntry;

/// Lifecycle of a strategy inside the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StrategyState {
    /// No followed instrument has enough history yet.
    Warmup,
    Active,
    /// Held by an operator: not evaluated, history and features still kept.
    Paused,
    /// Taken out after [`LifecyclePolicy::quarantine_after`] failures in a
    /// row; retried after its back-off, or brought back by a reset.
    Quarantined,
    /// Stopped for good; only a replacement brings the id back.
    Stopped,
}

impl StrategyState {
    pub const ALL: [StrategyState; 5] = [
        StrategyState::Warmup,
        StrategyState::Active,
        StrategyState::Paused,
        StrategyState::Quarantined,
        StrategyState::Stopped,
    ];

    /// [`as_str`](Self::as_str) of each of [`ALL`](Self::ALL), in order:
    /// for code that must list the states' names without depending on this
    /// crate (the `strategy_state` metric).
    pub const NAMES: [&str; StrategyState::ALL.len()] = [
        StrategyState::ALL[0].as_str(),
        StrategyState::ALL[1].as_str(),
        StrategyState::ALL[2].as_str(),
        StrategyState::ALL[3].as_str(),
        StrategyState::ALL[4].as_str(),
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            StrategyState::Warmup => "warmup",
            StrategyState::Active => "active",
            StrategyState::Paused => "paused",
            StrategyState::Quarantined => "quarantined",
            StrategyState::Stopped => "stopped",
        }
    }

    /// Position in [`StrategyState::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Why a strategy changed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A followed instrument's history reached the strategy's requirement.
    HistoryReady,
    /// Failures in a row, the last a panic.
    Panicked,
    /// Failures in a row, the last a decision out of range.
    InvalidDecision,
    /// Failures in a row, the last an evaluation over its budget.
    OverBudget,
    /// The back-off of a quarantine passed: tried again, on probation.
    Retried,
    Paused,
    Resumed,
    Stopped,
    /// Failure count and the strategy's own state cleared.
    Reset,
    /// A new instance took the strategy's place.
    Replaced,
}

impl Cause {
    pub const fn as_str(self) -> &'static str {
        match self {
            Cause::HistoryReady => "history_ready",
            Cause::Panicked => "panicked",
            Cause::InvalidDecision => "invalid_decision",
            Cause::OverBudget => "over_budget",
            Cause::Retried => "retried",
            Cause::Paused => "paused",
            Cause::Resumed => "resumed",
            Cause::Stopped => "stopped",
            Cause::Reset => "reset",
            Cause::Replaced => "replaced",
        }
    }
}

/// What counts against a strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Failure {
    Panic,
    /// A decision the validator refuses as out of range.
    InvalidDecision,
    /// An evaluation that took longer than the strategy's budget.
    OverBudget,
}

impl Failure {
    pub const fn cause(self) -> Cause {
        match self {
            Failure::Panic => Cause::Panicked,
            Failure::InvalidDecision => Cause::InvalidDecision,
            Failure::OverBudget => Cause::OverBudget,
        }
    }
}

/// How a strategy that keeps failing is taken out and brought back; all
/// times are tick time, so a replay quarantines and retries at the same
/// ticks as a live run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LifecyclePolicy {
    /// Failures in a row after which a strategy is quarantined.
    pub quarantine_after: u32,
    /// Tick time a first quarantine lasts; each one in a row doubles it.
    pub backoff_base_ns: i64,
    /// The longest a quarantine lasts.
    pub backoff_cap_ns: i64,
}

impl Default for LifecyclePolicy {
    /// 5 failures (seeds 000 and 001); back-off from 1 s up to 5 min.
    fn default() -> Self {
        LifecyclePolicy {
            quarantine_after: crate::QUARANTINE_AFTER,
            backoff_base_ns: 1_000_000_000,
            backoff_cap_ns: 300_000_000_000,
        }
    }
}

impl LifecyclePolicy {
    /// How long quarantine number `n` in a row (from 0) lasts.
    pub fn backoff_ns(&self, n: u32) -> i64 {
        let doubled = self
            .backoff_base_ns
            .max(0)
            .checked_mul(1i64 << n.min(62))
            .unwrap_or(i64::MAX);
        doubled.min(self.backoff_cap_ns.max(0))
    }
}

/// One lifecycle change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub strategy: StrategyIdx,
    pub from: StrategyState,
    pub to: StrategyState,
    pub cause: Cause,
    /// The tick that caused it, or the last tick dispatched before a
    /// control; `None` before the first tick.
    pub seq: Option<u64>,
    pub ts_ns: Option<i64>,
}

/// What an operator can do to the running strategies, applied between two
/// ticks ([`Input::Control`](crate::Input::Control)).
pub enum Control {
    /// Active or warming up → Paused: no evaluations until resumed.
    Pause(StrategyIdx),
    /// Paused → Active (Warmup while no followed instrument has enough
    /// history).
    Resume(StrategyIdx),
    /// Any state → Stopped, for good.
    Stop(StrategyIdx),
    /// Clears the failure count and the strategy's own state
    /// ([`Strategy::reset`](quiver_strategy::Strategy::reset)); a
    /// quarantined strategy goes back to work.
    Reset(StrategyIdx),
    /// New instances for existing ids, all or none. Each starts fresh
    /// (Warmup, then Active from the shared history, usually at its next
    /// tick) and keeps its counters; the others are untouched. A
    /// replacement must follow the same instruments, declare the same
    /// features and model and fit the history already kept; anything else
    /// needs the routing rebuilt and is refused.
    Replace(Vec<StrategyEntry>),
    /// Becomes `engine`, an engine built (off the hot path) for a new
    /// strategy set, taking over the instruments' histories and features and
    /// the strategies in `carried` (ids in both sets whose config did not
    /// change) whole: their state, lifecycle and counters. The others start
    /// fresh from the shared history. See [`Engine::rebuild`](crate::Engine).
    Rebuild {
        engine: Box<crate::Engine>,
        carried: Vec<String>,
    },
}

impl Control {
    pub const fn name(&self) -> &'static str {
        match self {
            Control::Pause(_) => "pause",
            Control::Resume(_) => "resume",
            Control::Stop(_) => "stop",
            Control::Reset(_) => "reset",
            Control::Replace(_) => "replace",
            Control::Rebuild { .. } => "rebuild",
        }
    }
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Control::Pause(s) | Control::Resume(s) | Control::Stop(s) | Control::Reset(s) => {
                write!(f, "{}({})", self.name(), s.index())
            }
            Control::Replace(entries) => {
                let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
                write!(f, "replace({ids:?})")
            }
            Control::Rebuild { engine, carried } => write!(
                f,
                "rebuild({} strategies, carrying {carried:?})",
                engine.strategy_count()
            ),
        }
    }
}

/// Why a control was refused; the engine is left as it was.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no strategy with index {0}")]
    NoSuchIndex(usize),
    #[error("no strategy with id {0:?}")]
    UnknownId(String),
    #[error("cannot {control} strategy {id:?}: it is {}", state.as_str())]
    NotAllowed {
        control: &'static str,
        id: String,
        state: StrategyState,
    },
    #[error("cannot replace strategies while evaluations wait for a model; land them first")]
    Busy,
    #[error("cannot replace strategy {id:?} in place: {why}")]
    NeedsRebuild { id: String, why: String },
    #[error("the new strategy set uses model {0:?}, which the running one does not load; a reload cannot add models")]
    NewModel(String),
    #[error("cannot carry strategy {0:?} over: it is not in both strategy sets")]
    NotCarried(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_states_in_order() {
        for (i, state) in StrategyState::ALL.iter().enumerate() {
            assert_eq!(StrategyState::NAMES[i], state.as_str());
            assert_eq!(state.index(), i);
        }
    }
}
