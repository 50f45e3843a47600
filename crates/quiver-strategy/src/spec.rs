//! The registry of strategy types and the validated description of one
//! strategy, from which it is built.

use crate::hybrid::{self, HybridStrategy, Policy};
use crate::ml::{self, MlFeature, MlStrategy, ModelCatalog, PostProcessor};
use crate::params::{ParamDef, ParamValues};
use crate::rules::{self, Breakout, MeanReversion, Momentum, Rsi};
use crate::{FeatureSpec, Logic, Strategy, StrategyKind};

/// Every `strategy_type` a config row may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StrategyType {
    Momentum,
    MeanReversion,
    Rsi,
    Breakout,
    Hybrid,
    /// An ONNX model from the registry over a chosen feature list.
    Ml,
    /// `ml` with seed 000's feature set, on `ml_momentum_mlp` by default.
    MlMomentum,
    /// `momentum` + `ml_momentum` joined by `majority_vote`.
    HybridMomentum,
}

impl StrategyType {
    pub const ALL: [StrategyType; 8] = [
        StrategyType::Momentum,
        StrategyType::MeanReversion,
        StrategyType::Rsi,
        StrategyType::Breakout,
        StrategyType::Hybrid,
        StrategyType::Ml,
        StrategyType::MlMomentum,
        StrategyType::HybridMomentum,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            StrategyType::Momentum => "momentum",
            StrategyType::MeanReversion => "mean_reversion",
            StrategyType::Rsi => "rsi",
            StrategyType::Breakout => "breakout",
            StrategyType::Hybrid => "hybrid",
            StrategyType::Ml => "ml",
            StrategyType::MlMomentum => "ml_momentum",
            StrategyType::HybridMomentum => "hybrid_momentum",
        }
    }

    pub fn from_name(name: &str) -> Option<StrategyType> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Comma-separated names, for error messages.
    pub fn known_names() -> String {
        Self::ALL.map(StrategyType::name).join(", ")
    }

    pub const fn kind(self) -> StrategyKind {
        match self {
            StrategyType::Hybrid | StrategyType::HybridMomentum => StrategyKind::Hybrid,
            StrategyType::Ml | StrategyType::MlMomentum => StrategyKind::Ml,
            _ => StrategyKind::Rules,
        }
    }

    /// The declared parameters (a hybrid's `rules` and `ml` parts, and an ML
    /// strategy's `model` and `features`, aside).
    pub const fn params(self) -> &'static [ParamDef] {
        match self {
            StrategyType::Momentum => rules::momentum::PARAMS,
            StrategyType::MeanReversion => rules::mean_reversion::PARAMS,
            StrategyType::Rsi => rules::rsi::PARAMS,
            StrategyType::Breakout => rules::breakout::PARAMS,
            StrategyType::Hybrid => hybrid::PARAMS,
            StrategyType::Ml | StrategyType::MlMomentum => ml::PARAMS,
            StrategyType::HybridMomentum => HYBRID_MOMENTUM_PARAMS,
        }
    }

    /// Whether `parameters` names a registry model (`model`), and whether
    /// that is required (`ml`) or defaults to [`ml::ML_MOMENTUM_DEFAULT_MODEL`].
    pub const fn model_param(self) -> Option<bool> {
        match self {
            StrategyType::Ml => Some(true),
            StrategyType::MlMomentum | StrategyType::HybridMomentum => Some(false),
            _ => None,
        }
    }

    /// Whether `parameters` lists the model's input columns (`features`).
    pub const fn takes_feature_list(self) -> bool {
        matches!(self, StrategyType::Ml)
    }
}

/// `hybrid_momentum`: the momentum part's parameters, the ML part's, and the
/// vote's `min_conf`. `position_size` sizes both parts.
pub const HYBRID_MOMENTUM_PARAMS: &[ParamDef] = &[
    rules::momentum::PARAMS[0],
    rules::momentum::PARAMS[1],
    rules::momentum::PARAMS[2],
    ml::CONFIDENCE_THRESHOLD,
    ml::TEMPERATURE,
    hybrid::PARAMS[1],
];

/// The non-hybrid strategy types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RulesType {
    Momentum,
    MeanReversion,
    Rsi,
    Breakout,
}

impl StrategyType {
    /// The rules type behind this name, `None` for ML and hybrids.
    pub const fn rules(self) -> Option<RulesType> {
        match self {
            StrategyType::Momentum => Some(RulesType::Momentum),
            StrategyType::MeanReversion => Some(RulesType::MeanReversion),
            StrategyType::Rsi => Some(RulesType::Rsi),
            StrategyType::Breakout => Some(RulesType::Breakout),
            _ => None,
        }
    }
}

impl RulesType {
    pub const fn strategy_type(self) -> StrategyType {
        match self {
            RulesType::Momentum => StrategyType::Momentum,
            RulesType::MeanReversion => StrategyType::MeanReversion,
            RulesType::Rsi => StrategyType::Rsi,
            RulesType::Breakout => StrategyType::Breakout,
        }
    }
}

/// An ML strategy's validated description; its model is resolved at build.
#[derive(Clone, Debug, PartialEq)]
pub struct MlSpec {
    /// `ml` or `ml_momentum`.
    pub name: &'static str,
    /// Registry name of the model.
    pub model: String,
    /// Input columns, in the model's order.
    pub features: Vec<MlFeature>,
    /// [`ml::PARAMS`].
    pub params: ParamValues,
}

impl MlSpec {
    /// `ml_momentum` on `model` with `params` (see [`ml::PARAMS`]).
    pub fn ml_momentum(model: &str, params: ParamValues) -> MlSpec {
        MlSpec {
            name: "ml_momentum",
            model: model.to_owned(),
            features: ml::ML_MOMENTUM_FEATURES.to_vec(),
            params,
        }
    }
}

/// Why a validated description cannot be built against a model catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("unknown model {name:?} ({})", known_models(.known))]
    UnknownModel { name: String, known: Vec<String> },
    #[error("model {model:?} takes {expected} features, the strategy lists {got}")]
    FeatureCount {
        model: String,
        expected: usize,
        got: usize,
    },
}

fn known_models(known: &[String]) -> String {
    if known.is_empty() {
        "no model registry is configured: add `models: <registry file>` to the config".to_owned()
    } else {
        format!("the registry has {}", known.join(", "))
    }
}

/// What a strategy keeps per instrument it follows, known from its
/// description alone: for sizing a configuration's history before anything
/// is built or allocated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// Ticks of history before it decides ([`Strategy::required_history`]).
    pub history: usize,
    /// The shared features it declares ([`Strategy::features`]).
    pub features: Vec<FeatureSpec>,
}

impl Footprint {
    /// Ticks the instrument's history ring must hold for it: its history, and
    /// every feature's window plus the value leaving it (at least one).
    pub fn ring_depth(&self) -> usize {
        self.features
            .iter()
            .map(|f| f.ring_needed())
            .fold(self.history, usize::max)
            .max(1)
    }
}

/// A value in a strategy's description that sets how deep its history goes,
/// so a message about memory can point at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepthSource {
    /// A parameter (`lookback_periods`, `period`, `vol_lookback`), of the
    /// hybrid part named (`rules` or `ml`), if any.
    Param {
        part: Option<&'static str>,
        name: &'static str,
    },
    /// Input column `index` of an ML strategy's feature list (part as above).
    Feature {
        part: Option<&'static str>,
        index: usize,
    },
}

impl DepthSource {
    fn in_part(self, part: &'static str) -> DepthSource {
        match self {
            DepthSource::Param { name, .. } => DepthSource::Param {
                part: Some(part),
                name,
            },
            DepthSource::Feature { index, .. } => DepthSource::Feature {
                part: Some(part),
                index,
            },
        }
    }
}

/// The rules strategy of `ty` with parameters `p`.
fn rules_strategy(ty: RulesType, p: &ParamValues) -> Box<dyn Strategy> {
    match ty {
        RulesType::Momentum => Box::new(Momentum::from_params(p)),
        RulesType::MeanReversion => Box::new(MeanReversion::from_params(p)),
        RulesType::Rsi => Box::new(Rsi::from_params(p)),
        RulesType::Breakout => Box::new(Breakout::from_params(p)),
    }
}

/// A fully validated strategy description. Building it fails only when it
/// names a model the catalog does not have, or does not fit it.
#[derive(Clone, Debug, PartialEq)]
pub enum StrategySpec {
    /// A rules strategy and its checked parameters.
    Rules(RulesType, ParamValues),
    Ml(MlSpec),
    Hybrid {
        rules: Box<StrategySpec>,
        ml: Box<StrategySpec>,
        policy: Policy,
    },
}

impl StrategySpec {
    pub fn strategy_type(&self) -> StrategyType {
        match self {
            StrategySpec::Rules(ty, _) => ty.strategy_type(),
            StrategySpec::Ml(spec) if spec.name == "ml_momentum" => StrategyType::MlMomentum,
            StrategySpec::Ml(_) => StrategyType::Ml,
            StrategySpec::Hybrid { .. } => StrategyType::Hybrid,
        }
    }

    /// The registry models this description names (a hybrid's included).
    pub fn models(&self) -> Vec<&str> {
        match self {
            StrategySpec::Rules(..) => Vec::new(),
            StrategySpec::Ml(spec) => vec![spec.model.as_str()],
            StrategySpec::Hybrid { rules, ml, .. } => {
                let mut names = rules.models();
                names.extend(ml.models());
                names
            }
        }
    }

    /// What the built strategy will declare, without building it (no model
    /// catalog needed): equal to its `required_history()` and `features()`.
    pub fn footprint(&self) -> Footprint {
        match self {
            StrategySpec::Rules(ty, p) => {
                let strategy = rules_strategy(*ty, p);
                Footprint {
                    history: strategy.required_history(),
                    features: strategy.features(),
                }
            }
            StrategySpec::Ml(spec) => Footprint {
                history: ml::required_history(&spec.features),
                features: ml::shared_features(&spec.features),
            },
            StrategySpec::Hybrid { rules, ml, policy } => {
                let (rules, ml) = (rules.footprint(), ml.footprint());
                let mut features = rules.features;
                features.extend(ml.features);
                Footprint {
                    history: rules.history.max(ml.history).max(policy.required_history()),
                    features,
                }
            }
        }
    }

    /// Each value that sets a depth of history, with the ring depth it alone
    /// asks for ([`Footprint::ring_depth`]); the footprint's depth is the
    /// largest of them.
    pub fn depth_sources(&self) -> Vec<(DepthSource, usize)> {
        match self {
            StrategySpec::Rules(ty, _) => {
                let name = match ty {
                    RulesType::Rsi => rules::rsi::PERIOD.name,
                    _ => rules::LOOKBACK_PERIODS.name,
                };
                vec![(
                    DepthSource::Param { part: None, name },
                    self.footprint().ring_depth(),
                )]
            }
            StrategySpec::Ml(spec) => spec
                .features
                .iter()
                .enumerate()
                .map(|(index, feature)| {
                    let alone = std::slice::from_ref(feature);
                    let depth = Footprint {
                        history: ml::required_history(alone),
                        features: ml::shared_features(alone),
                    }
                    .ring_depth();
                    (DepthSource::Feature { part: None, index }, depth)
                })
                .collect(),
            StrategySpec::Hybrid { rules, ml, policy } => {
                let part = |spec: &StrategySpec, name| {
                    spec.depth_sources()
                        .into_iter()
                        .map(move |(source, depth)| (source.in_part(name), depth))
                };
                let mut sources: Vec<_> = part(rules, "rules").chain(part(ml, "ml")).collect();
                if policy.uses_volatility() {
                    sources.push((
                        DepthSource::Param {
                            part: None,
                            name: hybrid::VOL_LOOKBACK.name,
                        },
                        policy.required_history().max(1),
                    ));
                }
                sources
            }
        }
    }

    /// Builds the strategy: [`Logic::Model`] when it asks a model for
    /// predictions (`ml`, `ml_momentum`, a hybrid whose `ml` part does),
    /// [`Logic::Rules`] otherwise.
    pub fn build(&self, models: &dyn ModelCatalog) -> Result<Logic, BuildError> {
        Ok(match self {
            StrategySpec::Rules(ty, p) => Logic::Rules(rules_strategy(*ty, p)),
            StrategySpec::Ml(spec) => {
                let Some(model) = models.model(&spec.model) else {
                    return Err(BuildError::UnknownModel {
                        name: spec.model.clone(),
                        known: models.names().into_iter().map(str::to_owned).collect(),
                    });
                };
                if model.n_features != spec.features.len() {
                    return Err(BuildError::FeatureCount {
                        model: spec.model.clone(),
                        expected: model.n_features,
                        got: spec.features.len(),
                    });
                }
                Logic::Model(Box::new(MlStrategy::new(
                    spec.name,
                    &spec.features,
                    model.clone(),
                    PostProcessor::from_params(&spec.params),
                )))
            }
            StrategySpec::Hybrid { rules, ml, policy } => {
                let rules = rules.build(models)?.into_strategy();
                match ml.build(models)? {
                    Logic::Rules(ml) => {
                        Logic::Rules(Box::new(HybridStrategy::new(rules, ml, *policy)))
                    }
                    Logic::Model(ml) => {
                        Logic::Model(Box::new(HybridStrategy::new(rules, ml, *policy)))
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::{ModelInfo, ModelOutput};

    /// Every parameter a strategy reads is one it declares: each type is
    /// built from its declared defaults, and an undeclared lookup fails a
    /// debug assertion.
    #[test]
    fn every_type_builds_from_its_declared_defaults() {
        let catalog = vec![ModelInfo {
            name: "m".to_owned(),
            n_features: ml::ML_MOMENTUM_FEATURES.len(),
            output: ModelOutput::Classifier {
                classes: vec![-1, 0, 1],
            },
        }];
        let rules = |ty: RulesType| {
            StrategySpec::Rules(ty, ParamValues::defaults(ty.strategy_type().params()))
        };
        for ty in [
            RulesType::Momentum,
            RulesType::MeanReversion,
            RulesType::Rsi,
            RulesType::Breakout,
        ] {
            let built = rules(ty).build(&catalog).unwrap();
            assert_eq!(built.strategy().name(), ty.strategy_type().name());
        }
        let ml = StrategySpec::Ml(MlSpec::ml_momentum(
            "m",
            ParamValues::defaults(StrategyType::MlMomentum.params()),
        ));
        assert!(ml.build(&catalog).unwrap().model().is_some());
        let policy = Policy::from_params(&ParamValues::defaults(hybrid::PARAMS));
        let hybrid = StrategySpec::Hybrid {
            rules: Box::new(rules(RulesType::Momentum)),
            ml: Box::new(ml),
            policy,
        };
        assert!(matches!(hybrid.build(&catalog).unwrap(), Logic::Model(_)));
    }

    /// The footprint read off a description is what the built strategy
    /// declares, for every kind of strategy and parameters far from their
    /// defaults.
    #[test]
    fn footprints_match_the_built_strategies() {
        use crate::params::ParamValue;
        let features: Vec<MlFeature> = ["sma(7)", "returns_skew(40)", "price", "max(90)", "sma(7)"]
            .iter()
            .map(|f| MlFeature::parse(f).unwrap())
            .collect();
        let catalog = vec![ModelInfo {
            name: "m".to_owned(),
            n_features: features.len(),
            output: ModelOutput::Classifier {
                classes: vec![-1, 0, 1],
            },
        }];
        let rules = |ty: RulesType, name: &str, n: i64| {
            let mut p = ParamValues::defaults(ty.strategy_type().params());
            assert!(p.set(name, ParamValue::Int(n)));
            StrategySpec::Rules(ty, p)
        };
        let ml = StrategySpec::Ml(MlSpec {
            name: "ml",
            model: "m".to_owned(),
            features,
            params: ParamValues::defaults(ml::PARAMS),
        });
        let mut escalation = ParamValues::defaults(hybrid::PARAMS);
        escalation.set("policy", ParamValue::Choice("threshold_escalation"));
        escalation.set("vol_lookback", ParamValue::Int(150));
        let specs = [
            rules(RulesType::Momentum, "lookback_periods", 2),
            rules(RulesType::Momentum, "lookback_periods", 100_000),
            rules(RulesType::MeanReversion, "lookback_periods", 33),
            rules(RulesType::Rsi, "period", 100_000),
            rules(RulesType::Breakout, "lookback_periods", 100_000),
            ml.clone(),
            StrategySpec::Hybrid {
                rules: Box::new(rules(RulesType::Breakout, "lookback_periods", 12)),
                ml: Box::new(ml.clone()),
                policy: Policy::from_params(&escalation),
            },
            StrategySpec::Hybrid {
                rules: Box::new(rules(RulesType::Rsi, "period", 5)),
                ml: Box::new(rules(RulesType::Momentum, "lookback_periods", 300)),
                policy: Policy::from_params(&ParamValues::defaults(hybrid::PARAMS)),
            },
        ];
        for spec in specs {
            let built = spec.build(&catalog).unwrap();
            let strategy = built.strategy();
            let footprint = spec.footprint();
            assert_eq!(footprint.history, strategy.required_history(), "{spec:?}");
            assert_eq!(footprint.features, strategy.features(), "{spec:?}");
            let deepest = spec.depth_sources().iter().map(|(_, d)| *d).max();
            assert_eq!(deepest, Some(footprint.ring_depth()), "{spec:?}");
        }
    }

    #[test]
    fn depth_sources_name_the_value_that_sets_the_depth() {
        let mut p = ParamValues::defaults(hybrid::PARAMS);
        p.set(
            "policy",
            crate::params::ParamValue::Choice("threshold_escalation"),
        );
        let momentum = StrategySpec::Rules(
            RulesType::Momentum,
            ParamValues::defaults(StrategyType::Momentum.params()),
        );
        let rsi = StrategySpec::Rules(RulesType::Rsi, ParamValues::defaults(rules::rsi::PARAMS));
        let hybrid = StrategySpec::Hybrid {
            rules: Box::new(momentum),
            ml: Box::new(rsi),
            policy: Policy::from_params(&p),
        };
        assert_eq!(
            hybrid.depth_sources(),
            [
                (
                    DepthSource::Param {
                        part: Some("rules"),
                        name: "lookback_periods"
                    },
                    21
                ),
                (
                    DepthSource::Param {
                        part: Some("ml"),
                        name: "period"
                    },
                    16
                ),
                (
                    DepthSource::Param {
                        part: None,
                        name: "vol_lookback"
                    },
                    21
                ),
            ]
        );
    }

    #[test]
    #[should_panic(expected = "not declared")]
    #[cfg(debug_assertions)]
    fn reading_an_undeclared_parameter_is_loud() {
        let momentum = ParamValues::defaults(StrategyType::Momentum.params());
        momentum.float(&crate::rules::rsi::OVERSOLD);
    }
}
