use std::fmt;

use quiver_core::decision::RenderFn;
use quiver_core::{Decision, Metadata, Reasoning, Side, Tick};

use super::{LOOKBACK_PERIODS, POSITION_SIZE};
use crate::params::{ParamDef, ParamKind, ParamValue, ParamValues};
use crate::{FeatureSpec, Strategy, StrategyKind, TickContext};

pub const Z_ENTRY: ParamDef = ParamDef {
    name: "z_entry",
    kind: ParamKind::positive_float(),
    default: ParamValue::Float(1.0),
    doc: "|z-score| at which to enter",
};

pub const PARAMS: &[ParamDef] = &[LOOKBACK_PERIODS, Z_ENTRY, POSITION_SIZE];

/// Mean reversion on a z-score, exactly as seed 002's
/// `RulesMeanReversionProcessor`.
///
/// Over the last `lookback_periods` prices (the current one included):
/// `mu = mean`, `sigma = population std-dev` (or `1e-9` when it is zero), both
/// correctly rounded like Python's `statistics`; `z = (price - mu) / sigma`.
/// `z <= -z_entry` → BUY, `z >= z_entry` → SELL, confidence `min(1, |z| / 3)`.
///
/// `z` is the shared feature `zscore(lookback_periods)`, computed once per
/// instrument per tick from exact rolling sums.
#[derive(Debug, Clone)]
pub struct MeanReversion {
    lookback: usize,
    z_entry: f64,
    quantity: u64,
}

impl MeanReversion {
    pub fn new(lookback: usize, z_entry: f64, quantity: u64) -> Self {
        MeanReversion {
            lookback,
            z_entry,
            quantity,
        }
    }

    pub fn from_params(p: &ParamValues) -> Self {
        MeanReversion::new(
            p.count(&LOOKBACK_PERIODS),
            p.float(&Z_ENTRY),
            p.quantity(&POSITION_SIZE),
        )
    }
}

fn render_below(f: &mut fmt::Formatter<'_>, [z, _]: [f64; 2]) -> fmt::Result {
    write!(f, "Mean reversion: z={z:.2} below band")
}

fn render_above(f: &mut fmt::Formatter<'_>, [z, _]: [f64; 2]) -> fmt::Result {
    write!(f, "Mean reversion: z={z:.2} above band")
}

impl Strategy for MeanReversion {
    fn name(&self) -> &str {
        "mean_reversion"
    }

    fn kind(&self) -> StrategyKind {
        StrategyKind::Rules
    }

    fn required_history(&self) -> usize {
        self.lookback
    }

    fn features(&self) -> Vec<FeatureSpec> {
        vec![FeatureSpec::ZScore(self.lookback as u32)]
    }

    #[inline]
    fn on_tick(&mut self, tick: &Tick, ctx: TickContext<'_>) -> Option<Decision> {
        let z = ctx.features.get(0)?;
        let (side, render): (Side, RenderFn) = if z <= -self.z_entry {
            (Side::Buy, render_below)
        } else if z >= self.z_entry {
            (Side::Sell, render_above)
        } else {
            return None;
        };
        Some(Decision {
            side,
            confidence: (z.abs() / 3.0).min(1.0),
            quantity: self.quantity,
            price: tick.price,
            reasoning: Reasoning::rendered(render, [z, 0.0]),
            metadata: Metadata::one(&["z"], z),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::run;
    use quiver_core::MetaValue;

    #[test]
    fn hand_computed_z_scores() {
        let mut m = MeanReversion::new(4, 1.0, 10);
        // Window [100, 100, 100, 104]: mu = 101, sigma = sqrt(3) → z = 3/√3 = 1.732 → SELL
        let out = run(&mut m, &["100", "100", "100", "104"]);
        let d = out[3].unwrap();
        assert_eq!(d.side, Side::Sell);
        let z = 3.0 / 3.0_f64.sqrt();
        assert!((d.confidence - z / 3.0).abs() < 1e-15);
        assert_eq!(d.reasoning.to_string(), "Mean reversion: z=1.73 above band");
        // Window [100, 100, 100, 96] → z = -1.732 → BUY
        let d = run(&mut m, &["100", "100", "100", "96"])[3].unwrap();
        assert_eq!(d.side, Side::Buy);
        assert_eq!(
            d.reasoning.to_string(),
            "Mean reversion: z=-1.73 below band"
        );
        // Inside the band.
        assert_eq!(run(&mut m, &["100", "101", "100", "100.5"])[3], None);
    }

    #[test]
    fn flat_window_uses_the_tiny_sigma_and_does_not_fire() {
        let mut m = MeanReversion::new(3, 1.0, 10);
        assert_eq!(run(&mut m, &["101.05", "101.05", "101.05"])[2], None);
    }

    #[test]
    fn ties_resolve_like_python() {
        // Lookback 2 makes |z| exactly 1 in exact arithmetic; Python's rounding
        // of mean and pstdev decides whether the float z reaches z_entry = 1.
        // Values from CPython 3.11 running the seed's code:
        //   [100.0, 102.0]   → z = 1.0                 → SELL
        //   [100.05, 100.1]  → z = 1.0000000000002842  → SELL
        //   [100.1, 100.05]  → z = -0.9999999999997158 → no signal
        //   [99.95, 100.05]  → z = 1.0                 → SELL
        //   [100.0, 100.05]  → z = 0.9999999999997158  → no signal
        let mut m = MeanReversion::new(2, 1.0, 1);
        let z_of = |d: Option<Decision>| match d.map(|d| (d.side, d.metadata.get("z"))) {
            Some((side, Some(MetaValue::F64(z)))) => Some((side, z)),
            _ => None,
        };
        assert_eq!(
            z_of(run(&mut m, &["100", "102"])[1]),
            Some((Side::Sell, 1.0))
        );
        assert_eq!(
            z_of(run(&mut m, &["100.05", "100.1"])[1]),
            Some((Side::Sell, 1.0000000000002842))
        );
        assert_eq!(run(&mut m, &["100.1", "100.05"])[1], None);
        assert_eq!(
            z_of(run(&mut m, &["99.95", "100.05"])[1]),
            Some((Side::Sell, 1.0))
        );
        assert_eq!(run(&mut m, &["100", "100.05"])[1], None);
    }
}
