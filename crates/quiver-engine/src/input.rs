//! What goes into the engine and what comes out of it.

use quiver_core::{Decision, InstrumentToken, Tick};

use crate::flight::Flight;
use crate::index::StrategyIdx;
use crate::inference::{ModelResults, ModelStamp};
use crate::lifecycle::{Control, ControlError, Transition};

#[cfg(doc)]
use crate::Engine;

/// Everything the engine takes in, through [`Engine::process`].
pub enum Input<'a> {
    /// Dispatch a tick to its instrument's followers.
    Tick { seq: u64, tick: &'a Tick },
    /// Append a tick to its instrument's history and features without
    /// calling any strategy: the live service rebuilds history this way on
    /// restart, so strategies resume warm and decide as an uninterrupted run
    /// would.
    WarmUp(&'a Tick),
    /// A flight taken by [`Engine::detach`], back with its model results
    /// (indexed like its requests; see [`ModelResults::reset_for`]).
    Landed {
        flight: Flight,
        results: &'a ModelResults,
    },
    /// An operator's control, applied now: between two ticks.
    Control(Control),
}

/// What the engine hands out, appended to by every [`Engine::process`]; the
/// caller drains it.
#[derive(Debug, Default)]
pub struct Output {
    /// Validated decisions, in (tick sequence, strategy config order).
    pub signals: Vec<EngineSignal>,
    /// Contained strategy panics, oldest first.
    pub faults: Vec<Fault>,
    /// Lifecycle changes, oldest first.
    pub transitions: Vec<Transition>,
    /// Controls refused, with why; the engine is as it was before each.
    pub refused: Vec<ControlError>,
    /// What each rebuild for a new strategy set did to the shared state.
    pub rebuilds: Vec<RebuildReport>,
}

/// What a rebuild ([`Control::Rebuild`](crate::Control::Rebuild)) did
/// beyond swapping strategies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RebuildReport {
    pub carried: usize,
    pub fresh: usize,
    /// Instruments whose history ring grew (a new strategy needs more).
    pub rings_grown: usize,
    /// The deepest ring after the rebuild, in ticks.
    pub deepest_ring: usize,
    /// Features new to their instrument, computed from the kept history.
    pub features_replayed: usize,
}

impl Output {
    pub fn with_capacity(signals: usize) -> Self {
        Output {
            signals: Vec::with_capacity(signals),
            ..Output::default()
        }
    }

    /// Empties it for reuse, keeping its buffers.
    pub fn clear(&mut self) {
        self.signals.clear();
        if self.has_events() {
            self.faults.clear();
            self.transitions.clear();
            self.refused.clear();
            self.rebuilds.clear();
        }
    }

    /// Whether anything besides signals is waiting to be drained.
    pub fn has_events(&self) -> bool {
        !(self.faults.is_empty()
            && self.transitions.is_empty()
            && self.refused.is_empty()
            && self.rebuilds.is_empty())
    }
}

/// A validated decision, tagged with where it came from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EngineSignal {
    /// Sequence number of the tick that caused it.
    pub seq: u64,
    pub ts_ns: i64,
    pub strategy: StrategyIdx,
    pub instrument: InstrumentToken,
    pub decision: Decision,
    /// The model version whose prediction went into the decision.
    pub model: Option<ModelStamp>,
}

/// A contained strategy panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub seq: u64,
    pub strategy: StrategyIdx,
    pub instrument: InstrumentToken,
    pub message: String,
}
