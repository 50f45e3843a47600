use std::fmt;

use quiver_core::decision::RenderFn;
use quiver_core::{Decision, Metadata, Reasoning, Side, Tick};

use super::{LOOKBACK_PERIODS, POSITION_SIZE};
use crate::params::{ParamDef, ParamKind, ParamValue, ParamValues};
use crate::{FeatureSpec, Strategy, StrategyKind, TickContext};

pub const THRESHOLD: ParamDef = ParamDef {
    name: "threshold",
    kind: ParamKind::positive_float(),
    default: ParamValue::Float(0.01),
    doc: "relative move that triggers a signal",
};

pub const PARAMS: &[ParamDef] = &[LOOKBACK_PERIODS, THRESHOLD, POSITION_SIZE];

/// Momentum, exactly as seed 002's `RulesMomentumProcessor`.
///
/// With `start = history[-lookback_periods]` (the oldest price of the window,
/// which ends with the current tick) and `now` the current price, in `f64`:
/// `change = (now - start) / start`; `change > threshold` → BUY,
/// `change < -threshold` → SELL, confidence `min(1, |change| · 5)`. Needs
/// `lookback_periods` ticks. `change` is the shared feature
/// `returns(lookback_periods − 1)`, which computes exactly that expression.
#[derive(Debug, Clone)]
pub struct Momentum {
    lookback: usize,
    threshold: f64,
    quantity: u64,
}

impl Momentum {
    pub fn new(lookback: usize, threshold: f64, quantity: u64) -> Self {
        Momentum {
            lookback,
            threshold,
            quantity,
        }
    }

    pub fn from_params(p: &ParamValues) -> Self {
        Momentum::new(
            p.count(&LOOKBACK_PERIODS),
            p.float(&THRESHOLD),
            p.quantity(&POSITION_SIZE),
        )
    }
}

fn render_up(f: &mut fmt::Formatter<'_>, [change, lookback]: [f64; 2]) -> fmt::Result {
    write!(f, "Momentum: +{:.2}% over {lookback}", change * 100.0)
}

fn render_down(f: &mut fmt::Formatter<'_>, [change, lookback]: [f64; 2]) -> fmt::Result {
    write!(f, "Momentum: {:.2}% over {lookback}", change * 100.0)
}

impl Strategy for Momentum {
    fn name(&self) -> &str {
        "momentum"
    }

    fn kind(&self) -> StrategyKind {
        StrategyKind::Rules
    }

    fn required_history(&self) -> usize {
        self.lookback
    }

    fn features(&self) -> Vec<FeatureSpec> {
        vec![FeatureSpec::Returns(self.lookback.saturating_sub(1) as u32)]
    }

    #[inline]
    fn on_tick(&mut self, tick: &Tick, ctx: TickContext<'_>) -> Option<Decision> {
        // Ticks are validated positive, so `change` is finite; NaN would fail
        // both comparisons below anyway.
        let change = ctx.features.get(0)?;
        let (side, render): (Side, RenderFn) = if change > self.threshold {
            (Side::Buy, render_up)
        } else if change < -self.threshold {
            (Side::Sell, render_down)
        } else {
            return None;
        };
        Some(Decision {
            side,
            confidence: (change.abs() * 5.0).min(1.0),
            quantity: self.quantity,
            price: tick.price,
            reasoning: Reasoning::rendered(render, [change, self.lookback as f64]),
            metadata: Metadata::one(&["change"], change),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::run;
    use quiver_core::MetaValue;

    #[test]
    fn fires_strictly_beyond_the_threshold() {
        let mut m = Momentum::new(3, 0.01, 7);
        // 100 → 101 is exactly +1%: not > threshold in f64 either.
        let out = run(&mut m, &["100", "100.5", "101", "102.02", "99", "98.5"]);
        assert!(out[..3].iter().all(Option::is_none));
        // history[-3] for tick 3 is 100.5: (102.02-100.5)/100.5 = 1.512..%
        let d = out[3].unwrap();
        assert_eq!(d.side, Side::Buy);
        let change = (102.02 - 100.5) / 100.5;
        assert_eq!(d.confidence, (change * 5.0_f64).min(1.0));
        assert_eq!(d.quantity, 7);
        assert_eq!(d.price.to_string(), "102.02");
        assert_eq!(d.reasoning.to_string(), "Momentum: +1.51% over 3");
        // tick 4: (99 - 101)/101 = -1.98% → SELL
        let d = out[4].unwrap();
        assert_eq!(d.side, Side::Sell);
        assert_eq!(d.reasoning.to_string(), "Momentum: -1.98% over 3");
        assert_eq!(
            d.metadata.get("change"),
            Some(MetaValue::F64((99.0 - 101.0) / 101.0))
        );
        // tick 5: (98.5 - 102.02)/102.02 = -3.45% → SELL, confidence 0.1725..
        assert_eq!(out[5].unwrap().side, Side::Sell);
    }

    #[test]
    fn exact_threshold_tie_does_not_fire() {
        let mut m = Momentum::new(2, 0.01, 1);
        assert_eq!(run(&mut m, &["100", "101"])[1], None);
        assert_eq!(run(&mut m, &["100", "99"])[1], None);
    }

    #[test]
    fn confidence_saturates_at_one() {
        let mut m = Momentum::new(2, 0.01, 1);
        assert_eq!(run(&mut m, &["100", "130"])[1].unwrap().confidence, 1.0);
    }
}
