//! What the `paper:`, `risk:` and `costs:` sections of a strategies file
//! say, validated (by `quiver-config`) into plain values.

use std::collections::BTreeMap;

use quiver_core::InstrumentToken;

use crate::money::{Money, Rate};

/// How a paper order is filled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FillModel {
    /// At the next tick of the instrument, at its price (a market order;
    /// half the configured spread and the slippage are paid on top).
    #[default]
    NextPrice,
    /// At the next tick of the instrument, at its ask (buy) or bid (sell)
    /// when it has them, else as [`FillModel::NextPrice`]; slippage on top.
    NextQuote,
    /// At the signal's price once a later tick trades at or through it
    /// (a resting limit order, maker fee), cancelled after `limit_ttl_ms`
    /// of tick time.
    Limit,
}

impl FillModel {
    pub const NAMES: [&'static str; 3] = ["next_price", "next_quote", "limit"];

    pub fn parse(name: &str) -> Option<FillModel> {
        match name {
            "next_price" => Some(FillModel::NextPrice),
            "next_quote" => Some(FillModel::NextQuote),
            "limit" => Some(FillModel::Limit),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            FillModel::NextPrice => "next_price",
            FillModel::NextQuote => "next_quote",
            FillModel::Limit => "limit",
        }
    }
}

/// What a signal asks of the position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignalMode {
    /// An order: BUY `q` buys `q` more, SELL `q` sells `q` (the position the
    /// signal guards and the exposure cap assume).
    #[default]
    Order,
    /// A target: BUY `q` means "be long `q`", SELL `q` "be short `q`"; the
    /// order is the difference to the position held (nothing when there).
    Target,
}

impl SignalMode {
    pub const NAMES: [&'static str; 2] = ["order", "target"];

    pub fn parse(name: &str) -> Option<SignalMode> {
        match name {
            "order" => Some(SignalMode::Order),
            "target" => Some(SignalMode::Target),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            SignalMode::Order => "order",
            SignalMode::Target => "target",
        }
    }
}

/// `paper:`: the simulated broker.
#[derive(Clone, Debug, PartialEq)]
pub struct PaperSpec {
    /// Cash each strategy starts with.
    pub capital: Money,
    pub fill: FillModel,
    /// Paid on every fill, against the trader.
    pub slippage: Rate,
    /// How long a limit order rests (tick time).
    pub limit_ttl_ns: i64,
    /// The default for every strategy.
    pub signals: SignalMode,
    /// Per strategy id: its own signal mode.
    pub signal_modes: BTreeMap<String, SignalMode>,
    /// The equity curve is sampled every this much tick time.
    pub sample_ns: i64,
    /// Samples in a year, to annualise Sharpe and Sortino; `None`: 252
    /// sessions of 6 h 15 min.
    pub periods_per_year: Option<f64>,
}

/// Seconds in one 09:15–15:30 session.
pub const SESSION_SECONDS: f64 = 22_500.0;
pub const TRADING_DAYS: f64 = 252.0;

impl Default for PaperSpec {
    fn default() -> Self {
        PaperSpec {
            capital: Money::from_int(1_000_000),
            fill: FillModel::NextPrice,
            slippage: Rate::ZERO,
            limit_ttl_ns: 60_000_000_000,
            signals: SignalMode::Order,
            signal_modes: BTreeMap::new(),
            sample_ns: 60_000_000_000,
            periods_per_year: None,
        }
    }
}

impl PaperSpec {
    pub fn mode_of(&self, id: &str) -> SignalMode {
        self.signal_modes.get(id).copied().unwrap_or(self.signals)
    }

    /// Samples in a year.
    pub fn periods_per_year(&self) -> f64 {
        self.periods_per_year.unwrap_or_else(|| {
            TRADING_DAYS * SESSION_SECONDS / (self.sample_ns as f64 / 1e9).max(1e-9)
        })
    }
}

/// `risk:`: the global risk controller. Every limit is off unless set.
#[derive(Clone, Debug, PartialEq)]
pub struct RiskSpec {
    /// Σ over strategies of |position| × price, per instrument.
    pub max_instrument_exposure: Option<Money>,
    /// Σ over a strategy's instruments of |position| × price.
    pub max_strategy_exposure: Option<Money>,
    /// Everything.
    pub max_total_exposure: Option<Money>,
    /// Tag (an exchange, a sector) → the instruments it covers.
    pub tags: BTreeMap<String, Vec<InstrumentToken>>,
    /// Tag → its limit.
    pub max_tag_exposure: BTreeMap<String, Money>,
    /// Above this fraction of a limit an entry is throttled.
    pub soft_limit: f64,
    /// A throttled entry keeps this fraction of its quantity (at least 1).
    pub throttle_factor: f64,
    /// A strategy whose equity is this fraction below its peak takes no new
    /// entries.
    pub max_strategy_drawdown: Option<f64>,
    /// All strategies' equity this fraction below its peak: no strategy
    /// takes new entries.
    pub max_total_drawdown: Option<f64>,
    /// Tick time after which a halted strategy (or the desk) may enter
    /// again, its peak reset to its equity then; `None`: halted for the rest
    /// of the run.
    pub resume_after_ns: Option<i64>,
}

impl Default for RiskSpec {
    fn default() -> Self {
        RiskSpec {
            max_instrument_exposure: None,
            max_strategy_exposure: None,
            max_total_exposure: None,
            tags: BTreeMap::new(),
            max_tag_exposure: BTreeMap::new(),
            soft_limit: 0.8,
            throttle_factor: 0.5,
            max_strategy_drawdown: None,
            max_total_drawdown: None,
            resume_after_ns: None,
        }
    }
}

/// An instrument's costs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstrumentCosts {
    /// Used when a tick has no bid/ask.
    pub spread: Rate,
    pub taker_fee: Rate,
    pub maker_fee: Rate,
}

/// `costs:`: the cost model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CostSpec {
    pub default: InstrumentCosts,
    pub instruments: BTreeMap<InstrumentToken, InstrumentCosts>,
    /// The edge, in bps, of a signal of confidence 1; a signal's expected
    /// edge is its confidence times it.
    pub edge_bps: Option<f64>,
    /// An entry whose expected edge minus its expected cost (half the
    /// spread, the fee and the slippage, in bps) is below this is skipped.
    pub min_edge_bps: Option<f64>,
}

impl CostSpec {
    pub fn of(&self, instrument: InstrumentToken) -> InstrumentCosts {
        self.instruments
            .get(&instrument)
            .copied()
            .unwrap_or(self.default)
    }
}

/// The three sections together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeskSpec {
    pub paper: PaperSpec,
    pub risk: RiskSpec,
    pub costs: CostSpec,
}
