//! The registry of strategy types and the validated description of one
//! strategy, from which it is built.

use crate::hybrid::{self, HybridStrategy, Policy};
use crate::params::{ParamDef, ParamValues};
use crate::rules::{self, Breakout, MeanReversion, Momentum, Rsi};
use crate::{Strategy, StrategyKind};

/// Every `strategy_type` a config row may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StrategyType {
    Momentum,
    MeanReversion,
    Rsi,
    Breakout,
    Hybrid,
}

impl StrategyType {
    pub const ALL: [StrategyType; 5] = [
        StrategyType::Momentum,
        StrategyType::MeanReversion,
        StrategyType::Rsi,
        StrategyType::Breakout,
        StrategyType::Hybrid,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            StrategyType::Momentum => "momentum",
            StrategyType::MeanReversion => "mean_reversion",
            StrategyType::Rsi => "rsi",
            StrategyType::Breakout => "breakout",
            StrategyType::Hybrid => "hybrid",
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
            StrategyType::Hybrid => StrategyKind::Hybrid,
            _ => StrategyKind::Rules,
        }
    }

    /// The declared parameters (a hybrid's `rules` and `ml` parts aside).
    pub const fn params(self) -> &'static [ParamDef] {
        match self {
            StrategyType::Momentum => rules::momentum::PARAMS,
            StrategyType::MeanReversion => rules::mean_reversion::PARAMS,
            StrategyType::Rsi => rules::rsi::PARAMS,
            StrategyType::Breakout => rules::breakout::PARAMS,
            StrategyType::Hybrid => hybrid::PARAMS,
        }
    }
}

/// The non-hybrid strategy types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RulesType {
    Momentum,
    MeanReversion,
    Rsi,
    Breakout,
}

impl StrategyType {
    /// The rules type behind this name, `None` for a hybrid.
    pub const fn rules(self) -> Option<RulesType> {
        match self {
            StrategyType::Momentum => Some(RulesType::Momentum),
            StrategyType::MeanReversion => Some(RulesType::MeanReversion),
            StrategyType::Rsi => Some(RulesType::Rsi),
            StrategyType::Breakout => Some(RulesType::Breakout),
            StrategyType::Hybrid => None,
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

/// A fully validated strategy description. Building it cannot fail.
#[derive(Clone, Debug, PartialEq)]
pub enum StrategySpec {
    /// A rules strategy and its checked parameters.
    Rules(RulesType, ParamValues),
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
            StrategySpec::Hybrid { .. } => StrategyType::Hybrid,
        }
    }

    pub fn build(&self) -> Box<dyn Strategy> {
        match self {
            StrategySpec::Rules(ty, p) => match ty {
                RulesType::Momentum => Box::new(Momentum::from_params(p)),
                RulesType::MeanReversion => Box::new(MeanReversion::from_params(p)),
                RulesType::Rsi => Box::new(Rsi::from_params(p)),
                RulesType::Breakout => Box::new(Breakout::from_params(p)),
            },
            StrategySpec::Hybrid { rules, ml, policy } => {
                Box::new(HybridStrategy::new(rules.build(), ml.build(), *policy))
            }
        }
    }
}
