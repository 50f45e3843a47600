//! Hybrid strategies: two strategies joined by a decision policy.
//!
//! The first part is called `rules` and the second `ml` after seed 002, but any
//! strategy may fill either role. Both parts see every tick the hybrid sees; the
//! policy, a small `Copy` value, turns their two optional decisions into one.

mod policy;

pub use policy::{Policy, PolicyKind, PARAMS};

use quiver_core::{Decision, History, InstrumentToken, Tick};

use crate::{Strategy, StrategyKind};

/// `rules` + `ml` + a [`Policy`].
pub struct HybridStrategy {
    rules: Box<dyn Strategy>,
    ml: Box<dyn Strategy>,
    policy: Policy,
    name: String,
}

impl HybridStrategy {
    pub fn new(rules: Box<dyn Strategy>, ml: Box<dyn Strategy>, policy: Policy) -> Self {
        let name = format!("hybrid:{}+{}", rules.name(), ml.name());
        HybridStrategy {
            rules,
            ml,
            policy,
            name,
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }
}

impl Strategy for HybridStrategy {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> StrategyKind {
        StrategyKind::Hybrid
    }

    fn required_history(&self) -> usize {
        self.rules
            .required_history()
            .max(self.ml.required_history())
            .max(self.policy.required_history())
    }

    fn supports_instrument(&self, token: InstrumentToken) -> bool {
        self.rules.supports_instrument(token) && self.ml.supports_instrument(token)
    }

    #[inline]
    fn on_tick(&mut self, tick: &Tick, history: History<'_>) -> Option<Decision> {
        let rules = self.rules.on_tick(tick, history);
        let ml = self.ml.on_tick(tick, history);
        let volatility = if self.policy.uses_volatility() {
            self.policy.volatility(history)
        } else {
            0.0
        };
        self.policy.decide(rules, ml, volatility)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Breakout, Momentum};

    #[test]
    fn composes_requirements_and_names() {
        let hybrid = HybridStrategy::new(
            Box::new(Momentum::new(5, 0.01, 1)),
            Box::new(Breakout::new(20, 0.0, 1)),
            Policy::majority_vote(0.55),
        );
        assert_eq!(hybrid.name(), "hybrid:momentum+breakout");
        assert_eq!(hybrid.kind(), StrategyKind::Hybrid);
        assert_eq!(hybrid.required_history(), 21);
    }
}
