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

pub const POSITION_SIZE: ParamDef = ParamDef {
    name: "position_size",
    kind: ParamKind::int_at_least(1),
    default: ParamValue::Int(100),
    doc: "quantity of every signal",
};

pub const LOOKBACK_PERIODS: ParamDef = ParamDef {
    name: "lookback_periods",
    kind: ParamKind::window(2),
    default: ParamValue::Int(20),
    doc: "ticks in the window, the current one included",
};

#[cfg(test)]
pub(crate) mod test_support {
    use quiver_core::{Decision, HistoryRing, Price, Tick};
    use quiver_features::InstrumentFeatures;

    use crate::{Strategy, TickContext};

    /// Feeds `prices` through `strategy` as the engine would (append, update
    /// the features, then call once the window is warm) and returns the
    /// decision on every tick.
    pub fn run(strategy: &mut dyn Strategy, prices: &[&str]) -> Vec<Option<Decision>> {
        let specs = strategy.features();
        let mut features = InstrumentFeatures::new(specs.iter().copied());
        let slots: Vec<u32> = specs
            .iter()
            .map(|s| features.slot(*s).unwrap() as u32)
            .collect();
        let need = strategy.required_history();
        let mut ring = HistoryRing::new(need.max(features.ring_needed()));
        prices
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let price = Price::parse(text).unwrap();
                ring.push(price, 1);
                features.update(ring.view());
                if i + 1 < need {
                    return None;
                }
                let tick = Tick::trade(i as i64, 1, price, 1);
                let ctx = TickContext {
                    history: ring.view(),
                    features: features.view(&slots),
                };
                strategy.on_tick(&tick, ctx)
            })
            .collect()
    }
}
