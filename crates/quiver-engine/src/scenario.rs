//! The standard benchmark scenario, shared by `quiver bench` and the criterion
//! bench so both measure the same thing.
//!
//! `strategies` strategies over `instruments` instruments, each instrument
//! followed by `followers` strategies (strategy `s` follows instrument `i` when
//! `i ≡ s (mod instruments / (instruments·followers/strategies))`), cycling
//! through every built-in type and every hybrid policy with varied lookbacks.

use quiver_core::synthetic::SyntheticSpec;
use quiver_core::InstrumentToken;
use quiver_strategy::hybrid::{HybridStrategy, Policy, PolicyKind};
use quiver_strategy::rules::{Breakout, MeanReversion, Momentum, Rsi};
use quiver_strategy::{Logic, StandardValidator, Strategy};

use crate::StrategyEntry;

/// Shape of a benchmark run.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub strategies: u32,
    pub instruments: u32,
    pub followers: u32,
    pub ticks: u64,
    pub seed: u64,
}

impl Scenario {
    /// 100 strategies × 400 instruments, ~10 followers each, 1,000,000 ticks.
    pub const STANDARD: Scenario = Scenario {
        strategies: 100,
        instruments: 400,
        followers: 10,
        ticks: 1_000_000,
        seed: 7,
    };

    pub fn ticks(&self) -> SyntheticSpec {
        SyntheticSpec::new(self.instruments, self.ticks, self.seed)
    }

    pub fn entries(&self) -> Vec<StrategyEntry> {
        let tokens: Vec<InstrumentToken> = self.ticks().tokens().collect();
        let groups = (self.strategies / self.followers.max(1)).max(1) as usize;
        (0..self.strategies as usize)
            .map(|s| StrategyEntry {
                id: format!("bench-{s:03}"),
                logic: Logic::Rules(strategy_for(s)),
                instruments: tokens
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % groups == s % groups)
                    .map(|(_, &t)| t)
                    .collect(),
                brokers: vec!["paper".to_owned()],
                validator: StandardValidator::default(),
                guards: quiver_strategy::GuardSpec::default(),
                schedule: crate::Schedule::default(),
            })
            .collect()
    }
}

/// The `s`-th strategy of the mix.
pub fn strategy_for(s: usize) -> Box<dyn Strategy> {
    let lookback = 10 + (s * 7) % 31;
    match s % 5 {
        0 => Box::new(Momentum::new(lookback, 0.004, 100)),
        1 => Box::new(MeanReversion::new(lookback, 1.5, 100)),
        2 => Box::new(Rsi::new(14, 30.0, 70.0, 100)),
        3 => Box::new(Breakout::new(lookback, 0.0, 100)),
        _ => {
            let kinds = [
                PolicyKind::MajorityVote,
                PolicyKind::Confirm,
                PolicyKind::Sizer,
                PolicyKind::Guardrail,
                PolicyKind::ThresholdEscalation,
            ];
            Box::new(HybridStrategy::new(
                Box::new(Momentum::new(lookback, 0.004, 100)),
                Box::new(MeanReversion::new(20, 1.5, 100)) as Box<dyn Strategy>,
                Policy::with_defaults(kinds[(s / 5) % kinds.len()]),
            ))
        }
    }
}
