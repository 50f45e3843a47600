//! Decision policies: how a hybrid turns two optional decisions into one.

use quiver_core::decision::RenderFn;
use quiver_core::{fixed_reason, Decision, History, MetaValue, Metadata, Reasoning};

use crate::params::{ParamDef, ParamKind, ParamValue, ParamValues};

/// The policies a hybrid can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    /// Seed 002 §5: agreement merges; otherwise ML if confident enough, else rules.
    MajorityVote,
    /// Act only when both agree.
    Confirm,
    /// Direction from rules, quantity scaled by an agreeing ML's confidence.
    Sizer,
    /// ML acts only when rules do not oppose it.
    Guardrail,
    /// Require a higher confidence when recent volatility is high.
    ThresholdEscalation,
}

impl PolicyKind {
    pub const NAMES: &'static [&'static str] = &[
        "majority_vote",
        "confirm",
        "sizer",
        "guardrail",
        "threshold_escalation",
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            PolicyKind::MajorityVote => "majority_vote",
            PolicyKind::Confirm => "confirm",
            PolicyKind::Sizer => "sizer",
            PolicyKind::Guardrail => "guardrail",
            PolicyKind::ThresholdEscalation => "threshold_escalation",
        }
    }

    pub fn from_name(name: &str) -> Option<PolicyKind> {
        [
            PolicyKind::MajorityVote,
            PolicyKind::Confirm,
            PolicyKind::Sizer,
            PolicyKind::Guardrail,
            PolicyKind::ThresholdEscalation,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// Parameters of a hybrid row (besides its `rules` and `ml` parts).
pub const POLICY: ParamDef = ParamDef {
    name: "policy",
    kind: ParamKind::Choice(PolicyKind::NAMES),
    default: ParamValue::Choice("majority_vote"),
    doc: "how the two decisions are joined",
};

pub const MIN_CONF: ParamDef = ParamDef {
    name: "min_conf",
    kind: ParamKind::unit_interval(),
    default: ParamValue::Float(0.55),
    doc: "majority_vote: ML confidence needed to override; threshold_escalation: base confidence",
};

pub const HIGH_VOL_CONF: ParamDef = ParamDef {
    name: "high_vol_conf",
    kind: ParamKind::unit_interval(),
    default: ParamValue::Float(0.75),
    doc: "threshold_escalation: confidence needed when volatility is high",
};

pub const VOL_THRESHOLD: ParamDef = ParamDef {
    name: "vol_threshold",
    kind: ParamKind::positive_float(),
    default: ParamValue::Float(0.002),
    doc: "threshold_escalation: volatility (std-dev of one-tick returns) counted as high",
};

pub const VOL_LOOKBACK: ParamDef = ParamDef {
    name: "vol_lookback",
    kind: ParamKind::window(2),
    default: ParamValue::Int(20),
    doc: "threshold_escalation: one-tick returns in the volatility window",
};

pub const PARAMS: &[ParamDef] = &[POLICY, MIN_CONF, HIGH_VOL_CONF, VOL_THRESHOLD, VOL_LOOKBACK];

/// A decision policy with its parameters. Small, `Copy`, and pure.
///
/// Truth tables (`-` = no decision, `B`/`S` = BUY/SELL; `rules` down, `ml` across):
///
/// | policy | both `-` | one side only | agree | disagree |
/// |---|---|---|---|---|
/// | majority_vote | `-` | ml if `conf >= min_conf`, else rules (possibly `-`) | merged | ml if `conf >= min_conf`, else rules |
/// | confirm | `-` | `-` | merged | `-` |
/// | sizer | `-` | rules alone → `-` (scale 0); ml alone → `-` | rules, qty × ml conf | `-` |
/// | guardrail | `-` | ml alone → ml; rules alone → `-` | ml | `-` |
/// | threshold_escalation | `-` | it, if `conf >=` required | merged if both pass, else the one that passes | the one that passes, `-` if both |
///
/// "merged" = the agreed side, mean confidence (≤ 1), larger quantity, ml's
/// price. threshold_escalation's required confidence is `high_vol_conf` when the
/// population std-dev of the last `vol_lookback` one-tick returns exceeds
/// `vol_threshold`, else `min_conf`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    pub kind: PolicyKind,
    pub min_conf: f64,
    pub high_vol_conf: f64,
    pub vol_threshold: f64,
    pub vol_lookback: usize,
}

impl Policy {
    pub fn from_params(p: &ParamValues) -> Self {
        Policy {
            kind: PolicyKind::from_name(p.choice(&POLICY)).unwrap_or(PolicyKind::MajorityVote),
            min_conf: p.float(&MIN_CONF),
            high_vol_conf: p.float(&HIGH_VOL_CONF),
            vol_threshold: p.float(&VOL_THRESHOLD),
            vol_lookback: p.count(&VOL_LOOKBACK),
        }
    }

    /// A policy of `kind` with every parameter at its default.
    pub fn with_defaults(kind: PolicyKind) -> Self {
        let mut policy = Policy::from_params(&ParamValues::defaults(PARAMS));
        policy.kind = kind;
        policy
    }

    pub fn majority_vote(min_conf: f64) -> Self {
        Policy {
            min_conf,
            ..Policy::with_defaults(PolicyKind::MajorityVote)
        }
    }

    /// History the policy itself needs (the volatility window).
    pub fn required_history(&self) -> usize {
        if self.uses_volatility() {
            self.vol_lookback + 1
        } else {
            0
        }
    }

    pub fn uses_volatility(&self) -> bool {
        self.kind == PolicyKind::ThresholdEscalation
    }

    /// Population std-dev of the last `vol_lookback` one-tick simple returns.
    #[inline]
    pub fn volatility(&self, history: History<'_>) -> f64 {
        let window = history.last_prices(self.vol_lookback + 1);
        let n = window.len().saturating_sub(1);
        if n == 0 {
            return 0.0;
        }
        let returns = window.windows(2).map(|w| (w[1] - w[0]) / w[0]);
        let mean = returns.clone().sum::<f64>() / n as f64;
        let var = returns.map(|r| (r - mean) * (r - mean)).sum::<f64>() / n as f64;
        var.sqrt()
    }

    pub fn decide(
        &self,
        rules: Option<Decision>,
        ml: Option<Decision>,
        volatility: f64,
    ) -> Option<Decision> {
        match self.kind {
            PolicyKind::MajorityVote => match (rules, ml) {
                (Some(r), Some(m)) if r.side == m.side => Some(merge(r, m, agree)),
                (_, Some(m)) if m.confidence >= self.min_conf => Some(m),
                (r, _) => r,
            },
            PolicyKind::Confirm => match (rules, ml) {
                (Some(r), Some(m)) if r.side == m.side => Some(merge(r, m, confirmed)),
                _ => None,
            },
            PolicyKind::Sizer => {
                let (r, m) = (rules?, ml?);
                if r.side != m.side {
                    return None;
                }
                let quantity = (r.quantity as f64 * m.confidence.clamp(0.0, 1.0)).floor() as u64;
                (quantity > 0).then(|| Decision {
                    quantity,
                    reasoning: Reasoning::fixed(sized_by_ml),
                    metadata: Metadata::new(
                        &["base_quantity", "ml_confidence"],
                        &[
                            MetaValue::I64(i64::try_from(r.quantity).unwrap_or(i64::MAX)),
                            MetaValue::F64(m.confidence),
                        ],
                    ),
                    ..r
                })
            }
            PolicyKind::Guardrail => {
                let m = ml?;
                match rules {
                    Some(r) if r.side != m.side => None,
                    _ => Some(m),
                }
            }
            PolicyKind::ThresholdEscalation => {
                let required = if volatility > self.vol_threshold {
                    self.high_vol_conf
                } else {
                    self.min_conf
                };
                let pass = |d: Option<Decision>| d.filter(|d| d.confidence >= required);
                match (pass(rules), pass(ml)) {
                    (Some(r), Some(m)) if r.side == m.side => Some(merge(r, m, agree_above_bar)),
                    (Some(_), Some(_)) => None,
                    (one, None) | (None, one) => one,
                }
            }
        }
    }
}

fixed_reason!(sized_by_ml, "rules direction, ml size");
fixed_reason!(agree, "rules+ml agree");
fixed_reason!(confirmed, "rules and ml confirm");
fixed_reason!(
    agree_above_bar,
    "rules+ml agree above the volatility-adjusted bar"
);

fn merge(rules: Decision, ml: Decision, why: RenderFn) -> Decision {
    Decision {
        side: rules.side,
        confidence: ((rules.confidence + ml.confidence) / 2.0).min(1.0),
        quantity: rules.quantity.max(ml.quantity),
        price: ml.price,
        reasoning: Reasoning::fixed(why),
        metadata: Metadata::two(
            &["rules_confidence", "ml_confidence"],
            rules.confidence,
            ml.confidence,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::{Price, Side};

    /// The decision cases of a truth table: none, BUY, SELL.
    #[derive(Clone, Copy, Debug)]
    enum Case {
        No,
        B,
        S,
    }
    use Case::{No, B, S};

    fixed_reason!(part, "part");

    fn decision(case: Case, confidence: f64, quantity: u64) -> Option<Decision> {
        let side = match case {
            No => return None,
            B => Side::Buy,
            S => Side::Sell,
        };
        Some(Decision {
            side,
            confidence,
            quantity,
            price: Price::from_int(100),
            reasoning: Reasoning::fixed(part),
            metadata: Metadata::EMPTY,
        })
    }

    /// What a policy returned, reduced to (side, confidence, quantity).
    type Outcome = Option<(Side, f64, u64)>;

    fn outcome(d: Option<Decision>) -> Outcome {
        d.map(|d| (d.side, d.confidence, d.quantity))
    }

    /// Runs all nine cases; rules has confidence 0.6 / qty 100, ml `ml_conf` / qty 50.
    fn table(policy: Policy, ml_conf: f64, volatility: f64) -> Vec<Outcome> {
        let mut out = Vec::new();
        for r in [No, B, S] {
            for m in [No, B, S] {
                out.push(outcome(policy.decide(
                    decision(r, 0.6, 100),
                    decision(m, ml_conf, 50),
                    volatility,
                )));
            }
        }
        out
    }

    const BUY: Side = Side::Buy;
    const SELL: Side = Side::Sell;

    #[test]
    fn majority_vote_truth_table() {
        let p = Policy::majority_vote(0.55);
        // Confident ML (0.9): ML wins disagreements and lone calls.
        #[rustfmt::skip]
        assert_eq!(table(p, 0.9, 0.0), vec![
            None,                   Some((BUY, 0.9, 50)),   Some((SELL, 0.9, 50)),
            Some((BUY, 0.6, 100)),  Some((BUY, 0.75, 100)), Some((SELL, 0.9, 50)),
            Some((SELL, 0.6, 100)), Some((BUY, 0.9, 50)),   Some((SELL, 0.75, 100)),
        ]);
        // Weak ML (0.5 < min_conf): rules decide, a lone weak ML is ignored.
        #[rustfmt::skip]
        assert_eq!(table(p, 0.5, 0.0), vec![
            None,                   None,                   None,
            Some((BUY, 0.6, 100)),  Some((BUY, 0.55, 100)), Some((BUY, 0.6, 100)),
            Some((SELL, 0.6, 100)), Some((SELL, 0.6, 100)), Some((SELL, 0.55, 100)),
        ]);
        // The bar is inclusive.
        assert_eq!(table(p, 0.55, 0.0)[1], Some((BUY, 0.55, 50)));
    }

    #[test]
    fn confirm_truth_table() {
        let p = Policy::with_defaults(PolicyKind::Confirm);
        #[rustfmt::skip]
        assert_eq!(table(p, 0.8, 0.0), vec![
            None, None,                  None,
            None, Some((BUY, 0.7, 100)), None,
            None, None,                  Some((SELL, 0.7, 100)),
        ]);
    }

    #[test]
    fn sizer_truth_table() {
        let p = Policy::with_defaults(PolicyKind::Sizer);
        #[rustfmt::skip]
        assert_eq!(table(p, 0.25, 0.0), vec![
            None, None,                 None,
            None, Some((BUY, 0.6, 25)), None,
            None, None,                 Some((SELL, 0.6, 25)),
        ]);
        // A scale that rounds the quantity down to zero yields no signal.
        let tiny = p.decide(decision(B, 0.6, 100), decision(B, 0.001, 1), 0.0);
        assert_eq!(tiny, None);
    }

    #[test]
    fn guardrail_truth_table() {
        let p = Policy::with_defaults(PolicyKind::Guardrail);
        #[rustfmt::skip]
        assert_eq!(table(p, 0.8, 0.0), vec![
            None, Some((BUY, 0.8, 50)), Some((SELL, 0.8, 50)),
            None, Some((BUY, 0.8, 50)), None,
            None, None,                 Some((SELL, 0.8, 50)),
        ]);
    }

    #[test]
    fn threshold_escalation_truth_tables() {
        let p = Policy::with_defaults(PolicyKind::ThresholdEscalation);
        assert_eq!(
            (p.min_conf, p.high_vol_conf, p.vol_threshold),
            (0.55, 0.75, 0.002)
        );
        // Calm market: required 0.55, rules (0.6) and ml (0.8) both pass.
        #[rustfmt::skip]
        assert_eq!(table(p, 0.8, 0.001), vec![
            None,                   Some((BUY, 0.8, 50)),   Some((SELL, 0.8, 50)),
            Some((BUY, 0.6, 100)),  Some((BUY, 0.7, 100)),  None,
            Some((SELL, 0.6, 100)), None,                   Some((SELL, 0.7, 100)),
        ]);
        // Volatile market: required 0.75, only ml at 0.8 passes.
        #[rustfmt::skip]
        assert_eq!(table(p, 0.8, 0.01), vec![
            None, Some((BUY, 0.8, 50)), Some((SELL, 0.8, 50)),
            None, Some((BUY, 0.8, 50)), Some((SELL, 0.8, 50)),
            None, Some((BUY, 0.8, 50)), Some((SELL, 0.8, 50)),
        ]);
        // Volatile market and a 0.7 ml: nothing passes.
        assert!(table(p, 0.7, 0.01).iter().all(Option::is_none));
    }

    #[test]
    fn volatility_is_the_std_dev_of_one_tick_returns() {
        let p = Policy {
            vol_lookback: 2,
            ..Policy::with_defaults(PolicyKind::ThresholdEscalation)
        };
        // Returns over [100, 110, 99]: +0.1, -0.1 → population std-dev 0.1.
        let prices = [50.0, 100.0, 110.0, 99.0];
        let vol = p.volatility(History::from_slices(&prices, &[0; 4], &[0.0; 4]));
        assert!((vol - 0.1).abs() < 1e-15, "{vol}");
        assert_eq!(p.required_history(), 3);
    }
}
