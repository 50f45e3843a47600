use std::fmt;

use quiver_core::decision::RenderFn;
use quiver_core::{Decision, History, Metadata, Reasoning, Side, Tick};

use super::{LOOKBACK_PERIODS, POSITION_SIZE};
use crate::params::{ParamDef, ParamKind, ParamValue, ParamValues};
use crate::{Strategy, StrategyKind};

pub const PARAMS: &[ParamDef] = &[
    LOOKBACK_PERIODS,
    ParamDef {
        name: "min_breakout",
        kind: ParamKind::non_negative_float(),
        default: ParamValue::Float(0.0),
        doc: "relative margin beyond the channel required to fire",
    },
    POSITION_SIZE,
];

/// Channel breakout (Donchian).
///
/// The channel is the highest (`H`) and lowest (`L`) price of the
/// `lookback_periods` ticks *before* the current one (`lookback_periods + 1`
/// ticks of history). `price > H · (1 + min_breakout)` → BUY,
/// `price < L · (1 − min_breakout)` → SELL. Confidence grows with the distance
/// beyond the channel in units of its width `W = H − L`:
/// `min(1, 0.5 + 0.5 · distance / W)`, and is 1 for a flat channel.
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
            p.count("lookback_periods"),
            p.float("min_breakout"),
            p.quantity("position_size"),
        )
    }
}

/// Highest and lowest price of `channel` (prices are never NaN).
///
/// Four lanes of plain comparisons compile to packed max/min; the NaN-aware
/// `f64::max` chain would serialise on its latency.
fn channel_bounds(channel: &[f64]) -> (f64, f64) {
    let mut high = [f64::NEG_INFINITY; 4];
    let mut low = [f64::INFINITY; 4];
    let mut chunks = channel.chunks_exact(4);
    for chunk in &mut chunks {
        for lane in 0..4 {
            let p = chunk[lane];
            high[lane] = if p > high[lane] { p } else { high[lane] };
            low[lane] = if p < low[lane] { p } else { low[lane] };
        }
    }
    for &p in chunks.remainder() {
        high[0] = if p > high[0] { p } else { high[0] };
        low[0] = if p < low[0] { p } else { low[0] };
    }
    let pick_high = |a: f64, b: f64| if a > b { a } else { b };
    let pick_low = |a: f64, b: f64| if a < b { a } else { b };
    (
        pick_high(pick_high(high[0], high[1]), pick_high(high[2], high[3])),
        pick_low(pick_low(low[0], low[1]), pick_low(low[2], low[3])),
    )
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

    #[inline]
    fn on_tick(&mut self, tick: &Tick, history: History<'_>) -> Option<Decision> {
        let window = history.last_prices(self.lookback + 1);
        let (&now, channel) = window.split_last()?;
        if channel.len() < self.lookback {
            return None;
        }
        let (high, low) = channel_bounds(channel);
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
    fn channel_bounds_cover_every_lane_and_the_remainder() {
        for n in 1..=11 {
            let prices: Vec<f64> = (0..n).map(|i| f64::from((i * 7) % 11)).collect();
            let high = prices.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let low = prices.iter().copied().fold(f64::INFINITY, f64::min);
            assert_eq!(channel_bounds(&prices), (high, low), "n = {n}");
        }
    }

    #[test]
    fn margin_and_flat_channel() {
        let mut b = Breakout::new(2, 0.01, 1);
        assert_eq!(run(&mut b, &["100", "100", "100.5"])[2], None);
        let d = run(&mut b, &["100", "100", "101.5"])[2].unwrap();
        assert_eq!((d.side, d.confidence), (Side::Buy, 1.0));
    }
}
