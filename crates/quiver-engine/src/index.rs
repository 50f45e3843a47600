//! Dense indices the engine hands out, each a type of its own so that a
//! strategy index cannot be passed where a model index belongs (instrument
//! indices are [`quiver_core::InstrumentIdx`]).

/// A strategy's position in the engine, in config order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StrategyIdx(u32);

impl StrategyIdx {
    pub const fn new(index: u32) -> Self {
        StrategyIdx(index)
    }

    /// The index as a position in per-strategy vectors.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A model the engine's strategies use, in first-use order
/// ([`Engine::models`](crate::Engine::models)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelIdx(u32);

impl ModelIdx {
    pub const fn new(index: u32) -> Self {
        ModelIdx(index)
    }

    /// The index as a position in per-model vectors.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}
