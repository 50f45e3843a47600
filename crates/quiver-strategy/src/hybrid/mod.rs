//! Hybrid strategies: two strategies joined by a decision policy.
//!
//! The first part is called `rules` and the second `ml` after seed 002, but any
//! strategy may fill either role. Both parts see every tick the hybrid sees; the
//! policy, a small `Copy` value, turns their two optional decisions into one.
//!
//! When the `ml` part has a model, the hybrid takes the model path: at the
//! tick it decides its rules part, computes the policy's volatility and
//! carries both to [`ModelStrategy::complete`], where the model's decision joins
//! them. Unlike the seed's reference hybrid, whose inner model is never
//! loaded, the model really runs; without a result (model out of service,
//! timeout) the policy decides on the rules part alone.

mod policy;

pub use policy::{Policy, PolicyKind, MIN_CONF, PARAMS, VOL_LOOKBACK};

use quiver_core::{Decision, InstrumentToken, Tick};

use crate::ml::{Carry, Completion, ModelUse, Prediction, Step};
use crate::{AsStrategy, FeatureSpec, ModelStrategy, Strategy, StrategyKind, TickContext};

/// `rules` + `ml` + a [`Policy`]. `M` is the `ml` part: a plain strategy
/// (`Box<dyn Strategy>`), or one with a model (`Box<dyn ModelStrategy>`),
/// which makes the hybrid a [`ModelStrategy`] too.
pub struct HybridStrategy<M = Box<dyn Strategy>> {
    rules: Box<dyn Strategy>,
    ml: M,
    policy: Policy,
    name: String,
    /// How many of the hybrid's declared features belong to `rules` (the
    /// rest are `ml`'s).
    rules_features: usize,
    ml_features: usize,
}

impl<M: AsStrategy> HybridStrategy<M> {
    pub fn new(rules: Box<dyn Strategy>, ml: M, policy: Policy) -> Self {
        let name = format!("hybrid:{}+{}", rules.name(), ml.as_strategy().name());
        let rules_features = rules.features().len();
        let ml_features = ml.as_strategy().features().len();
        HybridStrategy {
            rules,
            ml,
            policy,
            name,
            rules_features,
            ml_features,
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }
}

impl<M: AsStrategy> Strategy for HybridStrategy<M> {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> StrategyKind {
        StrategyKind::Hybrid
    }

    fn required_history(&self) -> usize {
        self.rules
            .required_history()
            .max(self.ml.as_strategy().required_history())
            .max(self.policy.required_history())
    }

    fn features(&self) -> Vec<FeatureSpec> {
        let mut specs = self.rules.features();
        specs.extend(self.ml.as_strategy().features());
        specs
    }

    fn supports_instrument(&self, token: InstrumentToken) -> bool {
        self.rules.supports_instrument(token) && self.ml.as_strategy().supports_instrument(token)
    }

    #[inline]
    fn on_tick(&mut self, tick: &Tick, ctx: TickContext<'_>) -> Option<Decision> {
        let rules = self.rules.on_tick(tick, self.rules_context(ctx));
        let ml_ctx = self.ml_context(ctx);
        let ml = self.ml.as_strategy_mut().on_tick(tick, ml_ctx);
        self.policy.decide(rules, ml, self.volatility(ctx))
    }

    fn reset(&mut self) {
        self.rules.reset();
        self.ml.as_strategy_mut().reset();
    }
}

impl ModelStrategy for HybridStrategy<Box<dyn ModelStrategy>> {
    fn model(&self) -> &ModelUse {
        self.ml.model()
    }

    fn prepare(&mut self, tick: &Tick, ctx: TickContext<'_>, row: &mut [f32]) -> Step {
        let rules = self.rules.on_tick(tick, self.rules_context(ctx));
        let volatility = self.volatility(ctx);
        let ml_ctx = self.ml_context(ctx);
        match self.ml.prepare(tick, ml_ctx, row) {
            Step::Predict(_) => Step::Predict(Carry {
                rules_decision: rules,
                volatility,
            }),
            Step::Decided(ml) => Step::Decided(self.policy.decide(rules, ml, volatility)),
            Step::SkippedFeatures(ml) => {
                Step::SkippedFeatures(self.policy.decide(rules, ml, volatility))
            }
        }
    }

    fn complete(&mut self, tick: &Tick, carry: Carry, prediction: Prediction<'_>) -> Completion {
        let ml = self.ml.complete(tick, Carry::default(), prediction);
        Completion {
            decision: self
                .policy
                .decide(carry.rules_decision, ml.decision, carry.volatility),
            rejected_output: ml.rejected_output,
        }
    }
}

impl<M> HybridStrategy<M> {
    fn rules_context<'a>(&self, ctx: TickContext<'a>) -> TickContext<'a> {
        TickContext {
            history: ctx.history,
            features: ctx.features.sub(0, self.rules_features),
        }
    }

    fn ml_context<'a>(&self, ctx: TickContext<'a>) -> TickContext<'a> {
        TickContext {
            history: ctx.history,
            features: ctx.features.sub(self.rules_features, self.ml_features),
        }
    }

    fn volatility(&self, ctx: TickContext<'_>) -> f64 {
        if self.policy.uses_volatility() {
            self.policy.volatility(ctx.history)
        } else {
            0.0
        }
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
            Box::new(Breakout::new(20, 0.0, 1)) as Box<dyn Strategy>,
            Policy::majority_vote(0.55),
        );
        assert_eq!(hybrid.name(), "hybrid:momentum+breakout");
        assert_eq!(hybrid.kind(), StrategyKind::Hybrid);
        assert_eq!(hybrid.required_history(), 21);
    }
}
