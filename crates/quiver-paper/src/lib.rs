//! Paper trading and the judgement of a strategy (seeds 002 and 003): a
//! simulated broker that fills signals against later ticks, per-strategy
//! positions, cash and PnL in exact decimals, the global risk controller
//! (exposure limits with a soft throttle, drawdown breakers), the cost model
//! (spread, fees, edge after cost), and the statistics and report a quant
//! compares strategies by.
//!
//! Pure: no I/O, no clock. Replay's backtest and the live service's paper
//! broker drive the same [`Desk`] with ticks and signals in output order,
//! so the same ticks give the same fills and the same PnL.

pub mod desk;
pub mod money;
pub mod report;
pub mod spec;
pub mod stats;
pub mod verdict;

pub use desk::{Desk, Fill, Scope, Verdict, REASONS, REFUSALS};
pub use money::{Money, Rate};
pub use report::Report;
pub use spec::{CostSpec, DeskSpec, FillModel, InstrumentCosts, PaperSpec, RiskSpec, SignalMode};
