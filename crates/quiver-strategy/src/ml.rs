//! ML strategies: feature extractor → model → post-processor (seed 001).
//!
//! An ML strategy never runs a model itself. On a tick it writes one row of
//! `f32` features ([`ModelStrategy::prepare`]) and asks the engine for a
//! prediction; the engine batches the rows of many strategies and ticks, runs
//! each model once per batch through an adapter, and hands every result back
//! through [`ModelStrategy::complete`], which turns the model's outputs into a
//! decision. The decision on a tick depends only on that tick's features and
//! the model's outputs for them, so results may come back many ticks later
//! without changing a single decision.
//!
//! Models are named, not owned: a strategy is built against a
//! [`ModelCatalog`] (the registry's view: feature count and output meaning)
//! and records the model's name; the adapter that runs models maps names to
//! loaded model versions, so a hot swap needs no strategy rebuild.

use std::fmt;

use quiver_core::{Decision, MetaValue, Metadata, Reasoning, Side, Tick};

use crate::params::{ParamDef, ParamKind, ParamValue, ParamValues};
use crate::rules::POSITION_SIZE;
use crate::{FeatureSpec, ModelStrategy, Strategy, StrategyKind, TickContext};
use quiver_features::{SpecError, MAX_WINDOW};

/// What a model's outputs mean, as the post-processor needs it.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelOutput {
    /// One probability per class, in this class order (e.g. `[-1, 0, 1]`):
    /// a positive class buys, a negative one sells, 0 holds.
    Classifier { classes: Vec<i64> },
    /// One value per row: above `threshold` buys, below `-threshold` sells.
    Regressor { threshold: f64 },
}

impl ModelOutput {
    /// Whether `outputs` (one row) can be read as this output: the right
    /// width, finite, and for a classifier probabilities in `[0, 1]` summing
    /// to 1 (within float rounding). The engine ignores rows that fail it;
    /// `quiver models verify` refuses a model whose outputs fail it.
    pub fn check(&self, outputs: &[f32]) -> Result<(), OutputOutOfRange> {
        if outputs.len() != self.width() || outputs.is_empty() {
            return Err(OutputOutOfRange);
        }
        match self {
            ModelOutput::Regressor { .. } if outputs[0].is_finite() => Ok(()),
            ModelOutput::Regressor { .. } => Err(OutputOutOfRange),
            ModelOutput::Classifier { .. } => {
                let in_range = |p: &f32| (-PROBABILITY_SLACK..=1.0 + PROBABILITY_SLACK).contains(p);
                let sum: f32 = outputs.iter().sum();
                if outputs.iter().all(in_range) && (sum - 1.0).abs() <= PROBABILITY_SLACK {
                    Ok(())
                } else {
                    Err(OutputOutOfRange)
                }
            }
        }
    }

    /// Values per row the model writes.
    pub fn width(&self) -> usize {
        match self {
            ModelOutput::Classifier { classes } => classes.len(),
            ModelOutput::Regressor { .. } => 1,
        }
    }
}

/// A model as strategies see it: the registry entry minus its file.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub n_features: usize,
    pub output: ModelOutput,
}

/// Where strategies look models up by name when they are built.
pub trait ModelCatalog {
    fn model(&self, name: &str) -> Option<&ModelInfo>;

    /// Every model name, for "expected one of" messages.
    fn names(&self) -> Vec<&str>;
}

impl ModelCatalog for Vec<ModelInfo> {
    fn model(&self, name: &str) -> Option<&ModelInfo> {
        self.iter().find(|m| m.name == name)
    }

    fn names(&self) -> Vec<&str> {
        self.iter().map(|m| m.name.as_str()).collect()
    }
}

/// One input column of an ML strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MlFeature {
    /// A feature of the shared store (`momentum(n)` and `returns_std(n)` are
    /// the seed's names for `returns(n)` and `volatility(n)`).
    Shared(FeatureSpec),
    /// The tick's price.
    Price,
    /// Population skewness of the last `n` one-tick returns (scipy's
    /// `skew(returns)`), derived from the history at each evaluation: the
    /// store's `skew(n)` is of prices.
    ReturnsSkew(u32),
}

impl MlFeature {
    pub const DERIVED: &'static [&'static str] =
        &["price", "momentum(n)", "returns_std(n)", "returns_skew(n)"];

    /// Parses a store spec (`sma(20)`) or a derived feature name.
    pub fn parse(text: &str) -> Result<MlFeature, String> {
        let trimmed = text.trim();
        if trimmed == "price" {
            return Ok(MlFeature::Price);
        }
        let (name, rest) = trimmed.split_once('(').unwrap_or((trimmed, ""));
        let alias = match name.trim() {
            "momentum" => Some("returns"),
            "returns_std" => Some("volatility"),
            "returns_skew" => Some("skew"),
            _ => None,
        };
        let canonical = match alias {
            Some(base) => format!("{base}({rest}"),
            None => trimmed.to_owned(),
        };
        let spec: FeatureSpec = canonical.parse().map_err(|e| match (alias, e) {
            // Name the spelling the user wrote, not the store spec behind it.
            (Some(_), SpecError::BadWindow { min, .. }) => {
                format!("{text:?}: window must be an integer between {min} and {MAX_WINDOW}")
            }
            (Some(_), _) => format!("{text:?} is not a feature (expected name(n), e.g. sma(20))"),
            (None, e @ SpecError::UnknownName { .. }) => {
                format!("{e}, or derived {}", MlFeature::DERIVED.join(", "))
            }
            (None, e) => e.to_string(),
        })?;
        Ok(match (name.trim(), spec) {
            ("returns_skew", FeatureSpec::Skew(n)) => MlFeature::ReturnsSkew(n),
            _ => MlFeature::Shared(spec),
        })
    }

    /// Ticks of history (current included) before the column has a value.
    pub fn warmup(self) -> usize {
        match self {
            MlFeature::Shared(spec) => spec.warmup(),
            MlFeature::Price => 1,
            MlFeature::ReturnsSkew(n) => n as usize + 1,
        }
    }
}

impl fmt::Display for MlFeature {
    /// The canonical spelling: aliases print as the store spec they read, so
    /// `momentum(5)` and `returns(5)` hash alike.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MlFeature::Shared(spec) => write!(f, "{spec}"),
            MlFeature::Price => f.write_str("price"),
            MlFeature::ReturnsSkew(n) => write!(f, "returns_skew({n})"),
        }
    }
}

/// FNV-1a 64 of the canonical feature list (`sma(5),sma(20),…`): recorded on
/// every ML signal so a result can be traced to the exact inputs it used.
pub fn feature_hash(features: &[MlFeature]) -> u64 {
    let text = features
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The model stage of a strategy, declared once at load.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelUse {
    pub model: ModelInfo,
    /// [`feature_hash`] of the input columns.
    pub feature_hash: u64,
}

/// What a strategy hands back to the engine between
/// [`ModelStrategy::prepare`] and [`ModelStrategy::complete`]: what was
/// decided at the tick that the final decision still needs, so no per-tick
/// state lives in the strategy. Pure ML carries nothing; a hybrid carries its
/// rules part's decision and the volatility its policy read at the tick.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Carry {
    /// The decision of a hybrid's rules part at the tick.
    pub rules_decision: Option<Decision>,
    /// The volatility a hybrid's policy measured at the tick (0 when the
    /// policy reads none).
    pub volatility: f64,
}

/// The outcome of [`ModelStrategy::prepare`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// Decided without a model.
    Decided(Option<Decision>),
    /// A feature was missing or not finite: no inference. The decision is
    /// what the strategy decides without a prediction (HOLD for pure ML).
    SkippedFeatures(Option<Decision>),
    /// The row is written; complete once the model has run on it.
    Predict(Carry),
}

/// A model's result for one row, as handed to [`ModelStrategy::complete`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Prediction<'a> {
    /// Class probabilities or the regression value.
    Outputs(&'a [f32]),
    /// No result: the model is out of service, the inference pool was full
    /// or timed out. The strategy decides as without a model.
    Unavailable,
}

/// The outcome of [`ModelStrategy::complete`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Completion {
    pub decision: Option<Decision>,
    /// The model's outputs were out of range (not finite, probabilities
    /// outside `[0, 1]` or not summing to 1) and were ignored.
    pub rejected_output: bool,
}

pub const CONFIDENCE_THRESHOLD: ParamDef = ParamDef {
    name: "confidence_threshold",
    kind: ParamKind::unit_interval(),
    default: ParamValue::Float(0.6),
    doc: "a class signals only when its probability is strictly above this",
};

pub const TEMPERATURE: ParamDef = ParamDef {
    name: "temperature",
    kind: ParamKind::positive_float(),
    default: ParamValue::Float(1.0),
    doc: "calibration: probabilities p are replaced by p^(1/T), renormalised (1 = as the model gives them)",
};

/// Parameters of `ml` and `ml_momentum` (besides `model` and `features`).
pub const PARAMS: &[ParamDef] = &[CONFIDENCE_THRESHOLD, POSITION_SIZE, TEMPERATURE];

/// Stage 3: model outputs → side, confidence and quantity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PostProcessor {
    pub confidence_threshold: f64,
    pub quantity: u64,
    /// Calibration hook: temperature scaling of the class probabilities.
    pub temperature: f64,
}

/// Model outputs that cannot be read as the model's declared output: not
/// finite, probabilities outside `[0, 1]` or not summing to 1, wrong width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputOutOfRange;

/// How far probabilities may stray from `[0, 1]` and from summing to 1 before
/// the output counts as out of range (float rounding in the runtimes).
const PROBABILITY_SLACK: f32 = 1e-3;

impl PostProcessor {
    pub fn from_params(p: &ParamValues) -> Self {
        PostProcessor {
            confidence_threshold: p.float(&CONFIDENCE_THRESHOLD),
            quantity: p.quantity(&POSITION_SIZE),
            temperature: p.float(&TEMPERATURE),
        }
    }

    /// The decision for `outputs`, or why they cannot be used.
    pub fn decide(
        &self,
        output: &ModelOutput,
        outputs: &[f32],
        tick: &Tick,
    ) -> Result<Option<Decision>, OutputOutOfRange> {
        output.check(outputs)?;
        match output {
            ModelOutput::Classifier { classes } => self.classify(classes, outputs, tick),
            ModelOutput::Regressor { threshold } => {
                let value = f64::from(outputs[0]);
                let side = if value > *threshold {
                    Side::Buy
                } else if value < -threshold {
                    Side::Sell
                } else {
                    return Ok(None);
                };
                // In (0.5, 1) beyond the threshold, rising with the margin.
                let confidence = value.abs() / (value.abs() + threshold);
                Ok(self.signal(
                    side,
                    confidence,
                    tick,
                    Reasoning::rendered(render_regression, [value, *threshold]),
                    Metadata::one(&["model_prediction"], value),
                ))
            }
        }
    }

    fn classify(
        &self,
        classes: &[i64],
        probabilities: &[f32],
        tick: &Tick,
    ) -> Result<Option<Decision>, OutputOutOfRange> {
        // Range and width were checked by `ModelOutput::check`.
        // Ties go to the earliest class, whatever the runtime.
        let mut best = 0;
        for (i, p) in probabilities.iter().enumerate() {
            if *p > probabilities[best] {
                best = i;
            }
        }
        let confidence = self.calibrated(probabilities, best);
        let class = classes[best];
        let side = match class.signum() {
            1 => Side::Buy,
            -1 => Side::Sell,
            _ => return Ok(None),
        };
        Ok(self.signal(
            side,
            confidence,
            tick,
            Reasoning::rendered(render_class, [confidence, side_code(side)]),
            Metadata::new(
                &["model_prediction", "model_confidence"],
                &[MetaValue::I64(class), MetaValue::F64(confidence)],
            ),
        ))
    }

    /// The decision, when `confidence` is strictly above the threshold.
    fn signal(
        &self,
        side: Side,
        confidence: f64,
        tick: &Tick,
        reasoning: Reasoning,
        metadata: Metadata,
    ) -> Option<Decision> {
        (confidence > self.confidence_threshold).then_some(Decision {
            side,
            confidence,
            quantity: self.quantity,
            price: tick.price,
            reasoning,
            metadata,
        })
    }

    /// Probability of class `best` after temperature scaling (monotone, so
    /// the argmax is unchanged).
    fn calibrated(&self, probabilities: &[f32], best: usize) -> f64 {
        let p = |i: usize| f64::from(probabilities[i]).clamp(0.0, 1.0);
        if self.temperature == 1.0 {
            return p(best);
        }
        let inv = 1.0 / self.temperature;
        let total: f64 = (0..probabilities.len()).map(|i| p(i).powf(inv)).sum();
        if total > 0.0 {
            p(best).powf(inv) / total
        } else {
            p(best)
        }
    }
}

fn side_code(side: Side) -> f64 {
    match side {
        Side::Buy => 1.0,
        Side::Sell => -1.0,
    }
}

fn render_class(f: &mut fmt::Formatter<'_>, [confidence, side]: [f64; 2]) -> fmt::Result {
    let side = if side > 0.0 { "BUY" } else { "SELL" };
    write!(f, "ML prediction: {side} (confidence: {confidence:.2})")
}

fn render_regression(f: &mut fmt::Formatter<'_>, [value, threshold]: [f64; 2]) -> fmt::Result {
    write!(f, "ML prediction: {value:.3} beyond ±{threshold}")
}

/// How a column's value is found at a tick.
#[derive(Clone, Copy, Debug)]
enum Column {
    /// Index into the strategy's declared shared features.
    Shared(usize),
    Price,
    ReturnsSkew(usize),
}

/// The generic ML strategy (`ml`) and its presets (`ml_momentum`).
#[derive(Debug, Clone)]
pub struct MlStrategy {
    name: &'static str,
    shared: Vec<FeatureSpec>,
    columns: Vec<Column>,
    model: ModelUse,
    post: PostProcessor,
    required: usize,
}

impl MlStrategy {
    /// `features` are the model's input columns in order; the caller checked
    /// their number against the model's.
    pub fn new(
        name: &'static str,
        features: &[MlFeature],
        model: ModelInfo,
        post: PostProcessor,
    ) -> Self {
        let shared = shared_features(features);
        let columns = features
            .iter()
            .map(|f| match f {
                MlFeature::Shared(spec) => {
                    Column::Shared(shared.iter().position(|s| s == spec).unwrap_or(0))
                }
                MlFeature::Price => Column::Price,
                MlFeature::ReturnsSkew(n) => Column::ReturnsSkew(*n as usize),
            })
            .collect();
        let required = required_history(features);
        MlStrategy {
            name,
            shared,
            columns,
            model: ModelUse {
                model,
                feature_hash: feature_hash(features),
            },
            post,
            required,
        }
    }

    pub fn post_processor(&self) -> PostProcessor {
        self.post
    }

    /// Writes the feature row; false when a value is missing or not finite.
    fn extract(&self, tick: &Tick, ctx: &TickContext<'_>, row: &mut [f32]) -> bool {
        for (out, column) in row.iter_mut().zip(&self.columns) {
            let value = match *column {
                Column::Shared(i) => ctx.features.get(i),
                Column::Price => Some(tick.price.to_f64()),
                Column::ReturnsSkew(n) => returns_skew(ctx.history.last_prices(n + 1)),
            };
            match value.map(|v| v as f32) {
                Some(v) if v.is_finite() => *out = v,
                _ => return false,
            }
        }
        row.len() == self.columns.len()
    }
}

/// The distinct store features of an ML strategy's input columns, in
/// first-seen order: what it declares to the store.
pub fn shared_features(features: &[MlFeature]) -> Vec<FeatureSpec> {
    let mut shared: Vec<FeatureSpec> = Vec::new();
    for feature in features {
        if let MlFeature::Shared(spec) = feature {
            if !shared.contains(spec) {
                shared.push(*spec);
            }
        }
    }
    shared
}

/// Ticks of history before every input column has a value.
pub fn required_history(features: &[MlFeature]) -> usize {
    features.iter().map(|f| f.warmup()).max().unwrap_or(1)
}

/// Population skewness of the one-tick returns of `prices` (scipy's biased
/// `skew`); 0 for flat returns, `None` without enough prices.
fn returns_skew(prices: &[f64]) -> Option<f64> {
    let n = prices.len().checked_sub(1).filter(|&n| n >= 2)?;
    let returns = prices.windows(2).map(|w| (w[1] - w[0]) / w[0]);
    let mean = returns.clone().sum::<f64>() / n as f64;
    let (m2, m3) = returns.fold((0.0, 0.0), |(m2, m3), r| {
        let d = r - mean;
        (m2 + d * d, m3 + d * d * d)
    });
    let (m2, m3) = (m2 / n as f64, m3 / n as f64);
    Some(if m2 > 0.0 { m3 / m2.powf(1.5) } else { 0.0 })
}

impl Strategy for MlStrategy {
    fn name(&self) -> &str {
        self.name
    }

    fn kind(&self) -> StrategyKind {
        StrategyKind::Ml
    }

    fn required_history(&self) -> usize {
        self.required
    }

    fn features(&self) -> Vec<FeatureSpec> {
        self.shared.clone()
    }

    /// Without a model there is no decision: HOLD.
    fn on_tick(&mut self, _tick: &Tick, _ctx: TickContext<'_>) -> Option<Decision> {
        None
    }
}

impl ModelStrategy for MlStrategy {
    fn model(&self) -> &ModelUse {
        &self.model
    }

    #[inline]
    fn prepare(&mut self, tick: &Tick, ctx: TickContext<'_>, row: &mut [f32]) -> Step {
        if self.extract(tick, &ctx, row) {
            Step::Predict(Carry::default())
        } else {
            Step::SkippedFeatures(None)
        }
    }

    #[inline]
    fn complete(&mut self, tick: &Tick, _carry: Carry, prediction: Prediction<'_>) -> Completion {
        match prediction {
            Prediction::Outputs(outputs) => {
                match self.post.decide(&self.model.model.output, outputs, tick) {
                    Ok(decision) => Completion {
                        decision,
                        rejected_output: false,
                    },
                    Err(OutputOutOfRange) => Completion {
                        decision: None,
                        rejected_output: true,
                    },
                }
            }
            Prediction::Unavailable => Completion::default(),
        }
    }
}

/// The input columns of `ml_momentum`, in the order its models were trained
/// on (see `models/README.md`): seed 000's `MLMomentumProcessor` features.
pub const ML_MOMENTUM_FEATURES: [MlFeature; 9] = [
    MlFeature::Shared(FeatureSpec::Sma(5)),
    MlFeature::Shared(FeatureSpec::Sma(20)),
    MlFeature::Shared(FeatureSpec::Rsi(14)),
    MlFeature::Shared(FeatureSpec::Volatility(10)),
    MlFeature::Shared(FeatureSpec::Returns(5)),
    MlFeature::Shared(FeatureSpec::Returns(20)),
    MlFeature::Shared(FeatureSpec::Volatility(20)),
    MlFeature::Shared(FeatureSpec::Skew(20)),
    MlFeature::Price,
];

/// The registry model `ml_momentum` uses unless `model` says otherwise: the
/// MLP, which both backends run.
pub const ML_MOMENTUM_DEFAULT_MODEL: &str = "ml_momentum_mlp";

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::{HistoryRing, Price};
    use quiver_features::InstrumentFeatures;

    fn classifier() -> ModelInfo {
        ModelInfo {
            name: "m".into(),
            n_features: 2,
            output: ModelOutput::Classifier {
                classes: vec![-1, 0, 1],
            },
        }
    }

    fn post(threshold: f64) -> PostProcessor {
        PostProcessor {
            confidence_threshold: threshold,
            quantity: 10,
            temperature: 1.0,
        }
    }

    fn tick() -> Tick {
        Tick::trade(1, 7, Price::parse("100.5").unwrap(), 1)
    }

    #[test]
    fn classes_map_to_sides_above_the_threshold() {
        let out = ModelOutput::Classifier {
            classes: vec![-1, 0, 1],
        };
        let p = post(0.6);
        let buy = p.decide(&out, &[0.1, 0.2, 0.7], &tick()).unwrap().unwrap();
        assert_eq!(buy.side, Side::Buy);
        assert_eq!(buy.confidence, f64::from(0.7f32));
        assert_eq!(buy.quantity, 10);
        assert_eq!(buy.price, tick().price);
        assert_eq!(
            buy.reasoning.to_string(),
            "ML prediction: BUY (confidence: 0.70)"
        );
        assert_eq!(
            buy.metadata.get("model_prediction"),
            Some(MetaValue::I64(1))
        );
        let sell = p.decide(&out, &[0.8, 0.1, 0.1], &tick()).unwrap().unwrap();
        assert_eq!(sell.side, Side::Sell);
        // HOLD wins, or the winner is not strictly above the threshold.
        assert_eq!(p.decide(&out, &[0.1, 0.8, 0.1], &tick()), Ok(None));
        // f32 0.6 is 0.6000000238 > 0.6, as numpy compares it; 0.5 is exact.
        assert_eq!(
            post(0.5).decide(&out, &[0.25, 0.25, 0.5], &tick()),
            Ok(None)
        );
        // Ties go to the earliest class.
        assert_eq!(
            post(0.4)
                .decide(&out, &[0.5, 0.0, 0.5], &tick())
                .unwrap()
                .unwrap()
                .side,
            Side::Sell
        );
    }

    #[test]
    fn out_of_range_outputs_are_rejected() {
        let out = ModelOutput::Classifier {
            classes: vec![-1, 0, 1],
        };
        let p = post(0.5);
        for bad in [
            vec![f32::NAN, 0.5, 0.5],
            vec![0.0, -0.5, 1.5],
            vec![0.5, 0.5, 0.5],
            vec![0.5, 0.5],
            vec![f32::INFINITY, 0.0, 0.0],
        ] {
            assert_eq!(
                p.decide(&out, &bad, &tick()),
                Err(OutputOutOfRange),
                "{bad:?}"
            );
        }
        let reg = ModelOutput::Regressor { threshold: 2.0 };
        assert_eq!(p.decide(&reg, &[f32::NAN], &tick()), Err(OutputOutOfRange));
        assert_eq!(p.decide(&reg, &[1.0, 2.0], &tick()), Err(OutputOutOfRange));
    }

    #[test]
    fn regression_beyond_the_threshold_signals() {
        let reg = ModelOutput::Regressor { threshold: 2.0 };
        let p = post(0.5);
        let d = p.decide(&reg, &[6.0], &tick()).unwrap().unwrap();
        assert_eq!(d.side, Side::Buy);
        assert_eq!(d.confidence, 0.75);
        assert_eq!(
            p.decide(&reg, &[-6.0], &tick()).unwrap().unwrap().side,
            Side::Sell
        );
        assert_eq!(p.decide(&reg, &[2.0], &tick()), Ok(None));
        assert_eq!(p.decide(&reg, &[-1.0], &tick()), Ok(None));
    }

    #[test]
    fn temperature_flattens_without_changing_the_class() {
        let out = ModelOutput::Classifier {
            classes: vec![-1, 0, 1],
        };
        let hot = PostProcessor {
            temperature: 2.0,
            ..post(0.0)
        };
        let d = hot
            .decide(&out, &[0.1, 0.1, 0.8], &tick())
            .unwrap()
            .unwrap();
        assert_eq!(d.side, Side::Buy);
        let expected = 0.8f64.sqrt() / (0.8f64.sqrt() + 2.0 * 0.1f64.sqrt());
        assert!((d.confidence - expected).abs() < 1e-6, "{}", d.confidence);
        assert!(d.confidence < f64::from(0.8f32));
    }

    #[test]
    fn feature_names_parse_with_aliases_and_hash_canonically() {
        assert_eq!(
            MlFeature::parse("momentum(5)"),
            Ok(MlFeature::Shared(FeatureSpec::Returns(5)))
        );
        assert_eq!(
            MlFeature::parse("returns_std(20)"),
            Ok(MlFeature::Shared(FeatureSpec::Volatility(20)))
        );
        assert_eq!(
            MlFeature::parse("returns_skew(20)"),
            Ok(MlFeature::ReturnsSkew(20))
        );
        assert_eq!(MlFeature::parse(" price "), Ok(MlFeature::Price));
        assert_eq!(
            MlFeature::parse("sma(5)"),
            Ok(MlFeature::Shared(FeatureSpec::Sma(5)))
        );
        let err = MlFeature::parse("smaa(5)").unwrap_err();
        assert!(err.contains("or derived price, momentum(n)"), "{err}");
        let err = MlFeature::parse("momentum(0)").unwrap_err();
        assert!(err.starts_with("\"momentum(0)\": window"), "{err}");
        let a = [MlFeature::parse("momentum(5)").unwrap(), MlFeature::Price];
        let b = [MlFeature::Shared(FeatureSpec::Returns(5)), MlFeature::Price];
        assert_eq!(feature_hash(&a), feature_hash(&b));
        assert_ne!(feature_hash(&a), feature_hash(&[b[1], b[0]]));
    }

    #[test]
    fn outputs_are_checked_as_the_declared_output() {
        let classifier = ModelOutput::Classifier {
            classes: vec![-1, 0, 1],
        };
        assert_eq!(classifier.check(&[0.2, 0.3, 0.5]), Ok(()));
        for bad in [
            &[0.2, 0.3][..],
            &[0.5, 0.5, 0.5],
            &[1.5, -0.5, 0.0],
            &[f32::NAN, 0.5, 0.5],
        ] {
            assert_eq!(classifier.check(bad), Err(OutputOutOfRange), "{bad:?}");
        }
        let regressor = ModelOutput::Regressor { threshold: 1.0 };
        assert_eq!(regressor.check(&[-7.5]), Ok(()));
        assert_eq!(regressor.check(&[f32::INFINITY]), Err(OutputOutOfRange));
        assert_eq!(regressor.check(&[1.0, 2.0]), Err(OutputOutOfRange));
    }

    #[test]
    fn returns_skew_matches_the_formula() {
        // Returns 0.1, -0.5, 0.6 (exact in binary up to rounding).
        let prices = [100.0, 110.0, 55.0, 88.0];
        let r: Vec<f64> = prices.windows(2).map(|w| (w[1] - w[0]) / w[0]).collect();
        let mean = r.iter().sum::<f64>() / 3.0;
        let m2 = r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0;
        let m3 = r.iter().map(|x| (x - mean).powi(3)).sum::<f64>() / 3.0;
        let got = returns_skew(&prices).unwrap();
        assert!((got - m3 / m2.powf(1.5)).abs() < 1e-12);
        assert_eq!(returns_skew(&[1.0, 1.0, 1.0]), Some(0.0));
        assert_eq!(returns_skew(&[1.0, 2.0]), None);
    }

    #[test]
    fn extraction_skips_missing_features() {
        let features = [MlFeature::Shared(FeatureSpec::Sma(3)), MlFeature::Price];
        let mut s = MlStrategy::new("ml", &features, classifier(), post(0.5));
        assert_eq!(s.required_history(), 3);
        assert_eq!(s.features(), vec![FeatureSpec::Sma(3)]);
        let mut store = InstrumentFeatures::new(s.features());
        let slots = [0u32];
        let mut ring = HistoryRing::new(8);
        let mut row = [0f32; 2];
        for (i, price) in ["10", "11", "12"].iter().enumerate() {
            ring.push(Price::parse(price).unwrap(), 1);
            store.update(ring.view());
            let ctx = TickContext {
                history: ring.view(),
                features: store.view(&slots),
            };
            let tick = Tick::trade(i as i64, 1, Price::parse(price).unwrap(), 1);
            let step = s.prepare(&tick, ctx, &mut row);
            if i < 2 {
                assert_eq!(step, Step::SkippedFeatures(None));
            } else {
                assert_eq!(step, Step::Predict(Carry::default()));
                assert_eq!(row, [11.0, 12.0]);
            }
        }
        let done = s.complete(
            &tick(),
            Carry::default(),
            Prediction::Outputs(&[0.0, 0.1, 0.9]),
        );
        assert_eq!(done.decision.unwrap().side, Side::Buy);
        assert!(!done.rejected_output);
        let bad = s.complete(
            &tick(),
            Carry::default(),
            Prediction::Outputs(&[2.0, 0.1, 0.9]),
        );
        assert_eq!(
            bad,
            Completion {
                decision: None,
                rejected_output: true
            }
        );
        assert_eq!(
            s.complete(&tick(), Carry::default(), Prediction::Unavailable),
            Completion::default()
        );
        assert_eq!(s.model().feature_hash, feature_hash(&features));
    }
}
