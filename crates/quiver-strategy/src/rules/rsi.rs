use std::fmt;

use quiver_core::decision::RenderFn;
use quiver_core::{Decision, Metadata, Reasoning, Side, Tick};

use super::POSITION_SIZE;
use crate::params::{ParamDef, ParamKind, ParamValue, ParamValues};
use crate::{FeatureSpec, Strategy, StrategyKind, TickContext};

pub const PERIOD: ParamDef = ParamDef {
    name: "period",
    kind: ParamKind::window(2),
    default: ParamValue::Int(14),
    doc: "price changes averaged",
};

pub const OVERSOLD: ParamDef = ParamDef {
    name: "oversold",
    kind: ParamKind::open_percent(),
    default: ParamValue::Float(30.0),
    doc: "RSI below this buys",
};

pub const OVERBOUGHT: ParamDef = ParamDef {
    name: "overbought",
    kind: ParamKind::open_percent(),
    default: ParamValue::Float(70.0),
    doc: "RSI above this sells; must exceed oversold",
};

pub const PARAMS: &[ParamDef] = &[PERIOD, OVERSOLD, OVERBOUGHT, POSITION_SIZE];

/// Relative Strength Index on simple averages (Cutler's RSI, seed 000's
/// `rsi_simple`), so it depends only on the window and never on how long the
/// strategy has been running.
///
/// Over the last `period` one-tick price changes (`period + 1` prices):
/// `G` = sum of the gains, `L` = sum of the losses (as positive numbers), both
/// exact on the decimal prices (the averages' common `1/period` cancels);
/// `RSI = 100 − 100 / (1 + G/L)` in `f64` from the exact sums, with `RSI = 100`
/// when `L = 0 < G` and `RSI = 50` on a flat window. It is the shared feature
/// `rsi_simple(period)`, whose exact rolling sums give the same bits as
/// [`rsi_simple`] on the window.
/// `RSI < oversold` → BUY with confidence `0.5 + 0.5 · (oversold − RSI) / oversold`;
/// `RSI > overbought` → SELL with confidence
/// `0.5 + 0.5 · (RSI − overbought) / (100 − overbought)`.
#[derive(Debug, Clone)]
pub struct Rsi {
    period: usize,
    oversold: f64,
    overbought: f64,
    quantity: u64,
}

impl Rsi {
    pub fn new(period: usize, oversold: f64, overbought: f64, quantity: u64) -> Self {
        Rsi {
            period,
            oversold,
            overbought,
            quantity,
        }
    }

    pub fn from_params(p: &ParamValues) -> Self {
        Rsi::new(
            p.count(&PERIOD),
            p.float(&OVERSOLD),
            p.float(&OVERBOUGHT),
            p.quantity(&POSITION_SIZE),
        )
    }
}

/// Cutler's RSI of a window of exact prices (10⁻⁸ units, at least two).
pub fn rsi_simple(window: &[i64]) -> f64 {
    let mut losses: i128 = 0;
    for (before, after) in window.iter().zip(&window[1..]) {
        // A select, not a branch: the sign of a price change is a coin flip.
        let change = i128::from(after - before);
        losses += if change < 0 { -change } else { 0 };
    }
    // Gains minus losses telescopes to the window's net change.
    let net = match (window.first(), window.last()) {
        (Some(first), Some(last)) => i128::from(last - first),
        _ => 0,
    };
    rsi_from_sums(losses + net, losses)
}

pub use quiver_features::rsi_from_sums;

fn render_oversold(f: &mut fmt::Formatter<'_>, [rsi, level]: [f64; 2]) -> fmt::Result {
    write!(f, "RSI {rsi:.1} below oversold {level}")
}

fn render_overbought(f: &mut fmt::Formatter<'_>, [rsi, level]: [f64; 2]) -> fmt::Result {
    write!(f, "RSI {rsi:.1} above overbought {level}")
}

impl Strategy for Rsi {
    fn name(&self) -> &str {
        "rsi"
    }

    fn kind(&self) -> StrategyKind {
        StrategyKind::Rules
    }

    fn required_history(&self) -> usize {
        self.period + 1
    }

    fn features(&self) -> Vec<FeatureSpec> {
        vec![FeatureSpec::RsiSimple(self.period as u32)]
    }

    #[inline]
    fn on_tick(&mut self, tick: &Tick, ctx: TickContext<'_>) -> Option<Decision> {
        let rsi = ctx.features.get(0)?;
        let (side, confidence, render, level): (Side, f64, RenderFn, f64) = if rsi < self.oversold {
            let conf = 0.5 + 0.5 * (self.oversold - rsi) / self.oversold;
            (Side::Buy, conf, render_oversold, self.oversold)
        } else if rsi > self.overbought {
            let conf = 0.5 + 0.5 * (rsi - self.overbought) / (100.0 - self.overbought);
            (Side::Sell, conf, render_overbought, self.overbought)
        } else {
            return None;
        };
        Some(Decision {
            side,
            confidence,
            quantity: self.quantity,
            price: tick.price,
            reasoning: Reasoning::rendered(render, [rsi, level]),
            metadata: Metadata::one(&["rsi"], rsi),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::run;

    #[test]
    fn rsi_values_by_hand() {
        // Changes +2, -1, +1, -2: gains 3, losses 3 → RSI 50.
        assert_eq!(rsi_simple(&[10, 12, 11, 12, 10]), 50.0);
        // Changes +3, -1: G/L = 3 → RSI = 100 - 100/4 = 75.
        assert_eq!(rsi_simple(&[10, 13, 12]), 75.0);
        assert_eq!(rsi_simple(&[10, 11, 12]), 100.0);
        assert_eq!(rsi_simple(&[10, 10, 10]), 50.0);
        assert_eq!(rsi_simple(&[12, 11, 10]), 0.0);
        // Changes +0.05, -0.10 on exact decimals: G/L = 1/2.
        assert_eq!(
            rsi_simple(&[10_000_000, 15_000_000, 5_000_000]),
            100.0 - 100.0 / 1.5
        );
    }

    #[test]
    fn signals_outside_the_band() {
        let mut s = Rsi::new(2, 30.0, 70.0, 5);
        // Window [10, 13, 12]: RSI 75 > 70 → SELL, conf 0.5 + 0.5·5/30.
        let d = run(&mut s, &["10", "13", "12"])[2].unwrap();
        assert_eq!(d.side, Side::Sell);
        assert_eq!(d.confidence, 0.5 + 0.5 * 5.0 / 30.0);
        assert_eq!(d.reasoning.to_string(), "RSI 75.0 above overbought 70");
        // Window [12, 11, 10]: RSI 0 → BUY with confidence 1.
        let d = run(&mut s, &["12", "11", "10"])[2].unwrap();
        assert_eq!((d.side, d.confidence), (Side::Buy, 1.0));
        // Window [10, 12, 11]: gains 2, losses 1 → RSI 66.7: inside.
        assert_eq!(run(&mut s, &["10", "12", "11"])[2], None);
        assert_eq!(s.required_history(), 3);
    }
}
