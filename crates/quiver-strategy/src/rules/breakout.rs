use std::fmt;

use quiver_core::decision::RenderFn;
use quiver_core::{Decision, Metadata, Reasoning, Side, Tick};

use super::{LOOKBACK_PERIODS, POSITION_SIZE};
use crate::params::{ParamDef, ParamKind, ParamValue, ParamValues};
use crate::{FeatureSpec, Strategy, StrategyKind, TickContext};

pub const MIN_BREAKOUT: ParamDef = ParamDef {
    name: "min_breakout",
    kind: ParamKind::non_negative_float(),
    default: ParamValue::Float(0.0),
    doc: "relative margin beyond the channel required to fire",
};

pub const PARAMS: &[ParamDef] = &[LOOKBACK_PERIODS, MIN_BREAKOUT, POSITION_SIZE];

/// Channel breakout (Donchian).
///
/// The channel is the highest (`H`) and lowest (`L`) price of the
/// `lookback_periods` ticks *before* the current one (`lookback_periods + 1`
/// ticks of history). `price > H · (1 + min_breakout)` → BUY,
/// `price < L · (1 − min_breakout)` → SELL. Confidence grows with the distance
/// beyond the channel in units of its width `W = H − L`:
/// `min(1, 0.5 + 0.5 · distance / W)`, and is 1 for a flat channel.
///
/// `H` and `L` are the shared features `max(lookback_periods)` and
/// `min(lookback_periods)` as they stood before this tick.
#[derive(Debug, Clone)]
pub struct Breakout {
    lookback: usize,
    min_breakout: f64,
    quantity: u64,
}

impl Breakout {
    pub fn new(lookback: usize, min_breakout: f64, quantity: u64) -> Self {
        Breakout {
            lookback,
            min_breakout,
            quantity,
        }
    }

    pub fn from_params(p: &ParamValues) -> Self {
        Breakout::new(
            p.count(&LOOKBACK_PERIODS),
            p.float(&MIN_BREAKOUT),
            p.quantity(&POSITION_SIZE),
        )
    }
}

fn render_up(f: &mut fmt::Formatter<'_>, [high, lookback]: [f64; 2]) -> fmt::Result {
    write!(f, "Breakout above the {lookback}-tick high {high}")
}

fn render_down(f: &mut fmt::Formatter<'_>, [low, lookback]: [f64; 2]) -> fmt::Result {
    write!(f, "Breakout below the {lookback}-tick low {low}")
}

impl Strategy for Breakout {
    fn name(&self) -> &str {
        "breakout"
    }

    fn kind(&self) -> StrategyKind {
        StrategyKind::Rules
    }

    fn required_history(&self) -> usize {
        self.lookback + 1
    }

    fn features(&self) -> Vec<FeatureSpec> {
        let n = self.lookback as u32;
        vec![FeatureSpec::Max(n), FeatureSpec::Min(n)]
    }

    #[inline]
    fn on_tick(&mut self, tick: &Tick, ctx: TickContext<'_>) -> Option<Decision> {
        let now = ctx.history.current()?;
        let high = ctx.features.previous(0)?;
        let low = ctx.features.previous(1)?;
        let width = high - low;
        let (side, distance, edge, render): (Side, f64, f64, RenderFn) =
            if now > high * (1.0 + self.min_breakout) {
                (Side::Buy, now - high, high, render_up)
            } else if now < low * (1.0 - self.min_breakout) {
                (Side::Sell, low - now, low, render_down)
            } else {
                return None;
            };
        let confidence = if width > 0.0 {
            (0.5 + 0.5 * distance / width).min(1.0)
        } else {
            1.0
        };
        Some(Decision {
            side,
            confidence,
            quantity: self.quantity,
            price: tick.price,
            reasoning: Reasoning::rendered(render, [edge, self.lookback as f64]),
            metadata: Metadata::two(&["channel_high", "channel_low"], high, low),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::run;

    #[test]
    fn breaks_out_of_the_previous_channel() {
        let mut b = Breakout::new(3, 0.0, 2);
        // Channel of [100, 102, 101] is 100..102; 103 breaks up by 1 = W/2.
        let d = run(&mut b, &["100", "102", "101", "103"])[3].unwrap();
        assert_eq!(d.side, Side::Buy);
        assert_eq!(d.confidence, 0.75);
        assert_eq!(
            d.reasoning.to_string(),
            "Breakout above the 3-tick high 102"
        );
        // Touching the high is not a breakout.
        assert_eq!(run(&mut b, &["100", "102", "101", "102"])[3], None);
        // 96 is 4 below the low of 100..102: confidence capped at 1.
        let d = run(&mut b, &["100", "102", "101", "96"])[3].unwrap();
        assert_eq!((d.side, d.confidence), (Side::Sell, 1.0));
        assert_eq!(b.required_history(), 4);
    }

    #[test]
    fn margin_and_flat_channel() {
        let mut b = Breakout::new(2, 0.01, 1);
        assert_eq!(run(&mut b, &["100", "100", "100.5"])[2], None);
        let d = run(&mut b, &["100", "100", "101.5"])[2].unwrap();
        assert_eq!((d.side, d.confidence), (Side::Buy, 1.0));
    }
}
