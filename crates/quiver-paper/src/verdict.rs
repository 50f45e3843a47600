//! What the desk made of a signal, and the bounded labels it is counted by.

/// What became of a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// An order of the signal's size (or its target difference) rests.
    Accepted,
    /// An order rests, smaller than asked: a limit is above its soft level.
    Throttled(Scope),
    /// No order: the entry would take a limit past 100%.
    Blocked(Scope),
    /// No order: a drawdown breaker holds new entries.
    Halted(Scope),
    /// No order: the expected edge after costs is below `min_edge_bps`.
    BelowEdge,
    /// No order: the position is already where a target signal wants it.
    NoChange,
}

/// Which limit or breaker decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Instrument,
    Strategy,
    Tag,
    Total,
}

impl Scope {
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Instrument => "instrument",
            Scope::Strategy => "strategy",
            Scope::Tag => "tag",
            Scope::Total => "total",
        }
    }
}

impl Verdict {
    /// A bounded label: one metric series or report column each.
    pub fn reason(self) -> &'static str {
        REASONS[self.index()]
    }

    /// Position in [`REASONS`].
    pub const fn index(self) -> usize {
        match self {
            Verdict::Accepted => 0,
            Verdict::Throttled(_) => 1,
            Verdict::Blocked(Scope::Instrument) => 2,
            Verdict::Blocked(Scope::Strategy) => 3,
            Verdict::Blocked(Scope::Tag) => 4,
            Verdict::Blocked(Scope::Total) => 5,
            Verdict::Halted(Scope::Total) => 7,
            Verdict::Halted(_) => 6,
            Verdict::BelowEdge => 8,
            Verdict::NoChange => 9,
        }
    }
}

/// Every [`Verdict::reason`], in report order.
pub const REASONS: [&str; 10] = [
    "accepted",
    "throttled",
    "instrument_limit",
    "strategy_limit",
    "tag_limit",
    "total_limit",
    "strategy_drawdown",
    "total_drawdown",
    "below_edge",
    "no_change",
];

/// The [`REASONS`] that refuse a signal: no order (neither accepted,
/// throttled nor a target already held).
pub const REFUSALS: &[&str] = REASONS.as_slice().split_at(2).1.split_at(7).0;
