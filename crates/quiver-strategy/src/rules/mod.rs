//! Built-in rules strategies. Each documents its formula; each publishes its
//! parameters as `PARAMS` (names and defaults follow seed 002 where it has them).

pub mod breakout;
pub mod mean_reversion;
pub mod momentum;
pub mod rsi;

pub use breakout::Breakout;
pub use mean_reversion::MeanReversion;
pub use momentum::Momentum;
pub use rsi::Rsi;

use crate::params::{ParamDef, ParamKind, ParamValue};

pub(crate) const POSITION_SIZE: ParamDef = ParamDef {
    name: "position_size",
    kind: ParamKind::int_at_least(1),
    default: ParamValue::Int(100),
    doc: "quantity of every signal",
};

pub(crate) const LOOKBACK_PERIODS: ParamDef = ParamDef {
    name: "lookback_periods",
    kind: ParamKind::int_at_least(2),
    default: ParamValue::Int(20),
    doc: "ticks in the window, the current one included",
};

#[cfg(test)]
pub(crate) mod test_support {
    use quiver_core::{Decision, History, Price, Tick};

    use crate::Strategy;

    /// Feeds `prices` through `strategy` as the engine would (append, then call
    /// once the window is warm) and returns the decision on every tick.
    pub fn run(strategy: &mut dyn Strategy, prices: &[&str]) -> Vec<Option<Decision>> {
        let exact: Vec<Price> = prices.iter().map(|p| Price::parse(p).unwrap()).collect();
        let floats: Vec<f64> = exact.iter().map(|p| p.to_f64()).collect();
        let units: Vec<i64> = exact.iter().map(|p| p.units()).collect();
        let volumes = vec![1.0; prices.len()];
        let need = strategy.required_history();
        (0..prices.len())
            .map(|i| {
                if i + 1 < need {
                    return None;
                }
                let tick = Tick::trade(i as i64, 1, Price::parse(prices[i]).unwrap(), 1);
                let history = History::from_slices(&floats[..=i], &units[..=i], &volumes[..=i]);
                strategy.on_tick(&tick, history)
            })
            .collect()
    }
}
