//! The registry of strategy types and the validated description of one
//! strategy, from which it is built.

use crate::hybrid::{self, HybridStrategy, Policy};
use crate::ml::{self, MlFeature, MlStrategy, ModelCatalog, PostProcessor};
use crate::params::{ParamDef, ParamValues};
use crate::rules::{self, Breakout, MeanReversion, Momentum, Rsi};
use crate::{Logic, StrategyKind};

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

    /// Builds the strategy: [`Logic::Model`] when it asks a model for
    /// predictions (`ml`, `ml_momentum`, a hybrid whose `ml` part does),
    /// [`Logic::Rules`] otherwise.
    pub fn build(&self, models: &dyn ModelCatalog) -> Result<Logic, BuildError> {
        Ok(match self {
            StrategySpec::Rules(ty, p) => match ty {
                RulesType::Momentum => Logic::Rules(Box::new(Momentum::from_params(p))),
                RulesType::MeanReversion => Logic::Rules(Box::new(MeanReversion::from_params(p))),
                RulesType::Rsi => Logic::Rules(Box::new(Rsi::from_params(p))),
                RulesType::Breakout => Logic::Rules(Box::new(Breakout::from_params(p))),
            },
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

    #[test]
    #[should_panic(expected = "not declared")]
    #[cfg(debug_assertions)]
    fn reading_an_undeclared_parameter_is_loud() {
        let momentum = ParamValues::defaults(StrategyType::Momentum.params());
        momentum.float(&crate::rules::rsi::OVERSOLD);
    }
}
