//! Deterministic synthetic ticks: a seeded random walk per instrument.
//!
//! Only integer arithmetic is used, so the same parameters give the same ticks on
//! every platform and release.

use crate::instrument::InstrumentToken;
use crate::price::Price;
use crate::rng::SplitMix64;
use crate::tick::Tick;

/// Price grid of generated ticks: 0.05.
pub const TICK_SIZE: Price = Price::from_units(5_000_000);
/// 2026-01-05 09:15 IST (03:45 UTC), the open of a trading day.
pub const DEFAULT_START_TS_NS: i64 = 1_767_584_700_000_000_000;
/// First generated instrument token; the others follow consecutively.
pub const FIRST_TOKEN: InstrumentToken = 1001;

/// Parameters of a synthetic tick stream.
#[derive(Debug, Clone)]
pub struct SyntheticSpec {
    pub instruments: u32,
    pub ticks: u64,
    pub seed: u64,
    pub start_ts_ns: i64,
    /// Mean gap between consecutive ticks (over all instruments).
    pub mean_gap_ns: u64,
}

impl SyntheticSpec {
    pub fn new(instruments: u32, ticks: u64, seed: u64) -> Self {
        SyntheticSpec {
            instruments,
            ticks,
            seed,
            start_ts_ns: DEFAULT_START_TS_NS,
            mean_gap_ns: 1_000_000,
        }
    }

    /// Tokens of the generated instruments, in order.
    pub fn tokens(&self) -> impl Iterator<Item = InstrumentToken> {
        (0..u64::from(self.instruments)).map(|i| FIRST_TOKEN + i)
    }

    pub fn iter(&self) -> SyntheticTicks {
        SyntheticTicks::new(self)
    }
}

/// Iterator over the ticks of a [`SyntheticSpec`], interleaved in time order.
#[derive(Debug, Clone)]
pub struct SyntheticTicks {
    rng: SplitMix64,
    /// Current price of each instrument, in grid steps.
    steps: Vec<i64>,
    remaining: u64,
    ts_ns: i64,
    mean_gap_ns: u64,
}

impl SyntheticTicks {
    fn new(spec: &SyntheticSpec) -> Self {
        let mut rng = SplitMix64::new(spec.seed);
        // Start between 50.00 and 1050.00.
        let steps = (0..spec.instruments)
            .map(|_| 1_000 + rng.below(20_000) as i64)
            .collect();
        let remaining = if spec.instruments == 0 { 0 } else { spec.ticks };
        SyntheticTicks {
            rng,
            steps,
            remaining,
            ts_ns: spec.start_ts_ns,
            mean_gap_ns: spec.mean_gap_ns.max(1),
        }
    }
}

impl Iterator for SyntheticTicks {
    type Item = Tick;

    fn next(&mut self) -> Option<Tick> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let rng = &mut self.rng;
        let which = rng.below(self.steps.len() as u64) as usize;
        let current = self.steps[which];
        // About 0.1% of the price per tick, a sum of four uniforms (≈ normal).
        let spread = (current / 1_000).max(1) as u64;
        let step: i64 = (0..4)
            .map(|_| rng.below(2 * spread + 1) as i64)
            .sum::<i64>()
            - 4 * spread as i64;
        let next = (current + step).max(1);
        self.steps[which] = next;
        self.ts_ns += 1 + rng.below(2 * self.mean_gap_ns) as i64;
        let volume = 1 + rng.below(500);
        Some(Tick::trade(
            self.ts_ns,
            FIRST_TOKEN + which as u64,
            Price::from_units(next * TICK_SIZE.units()),
            volume,
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ticks_on_the_grid_in_time_order() {
        let spec = SyntheticSpec::new(7, 5_000, 42);
        let a: Vec<Tick> = spec.iter().collect();
        let b: Vec<Tick> = spec.iter().collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 5_000);
        assert!(a.windows(2).all(|w| w[0].ts_ns < w[1].ts_ns));
        assert!(a.iter().all(|t| t.price.is_positive()));
        assert!(a.iter().all(|t| t.price.units() % TICK_SIZE.units() == 0));
        let seen: std::collections::BTreeSet<_> = a.iter().map(|t| t.instrument).collect();
        assert_eq!(seen.len(), 7);
        let other: Vec<Tick> = SyntheticSpec::new(7, 5_000, 43).iter().collect();
        assert_ne!(a, other);
    }
}
