//! Every shipped model, on every available backend, against the outputs the
//! `onnxruntime` Python package computed when the model was trained
//! (models/reference/*.json, written by scripts/train_models.py).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

mod common;

use quiver_infer::{Backend, LoadError, Loader, OutputSpec, Predictor, Registry};
use serde_json::Value;

/// Probabilities: the bound.
const TOLERANCE: f32 = 1e-5;
/// Regression values are in basis points of a sum over nine collinear
/// features; f32 kernels that sum in a different order (ORT's batch-1 GEMV vs
/// its batched GEMM, tract's) differ by ~1e-5 bps, so allow 1e-4 bps (1e-8 in
/// return terms).
const REGRESSION_TOLERANCE: f32 = 1e-4;

struct Reference {
    inputs: Vec<Vec<f32>>,
    /// Classifier: probabilities per row; regressor: one value per row.
    outputs: Vec<Vec<f32>>,
    labels: Option<Vec<i64>>,
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .expect("a list of numbers")
        .iter()
        .map(|v| v.as_f64().expect("a number") as f32)
        .collect()
}

fn reference(name: &str) -> Reference {
    let path = common::models_dir().join(format!("reference/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("reference JSON");
    let rows = |key: &str| -> Vec<Vec<f32>> {
        doc[key].as_array().expect(key).iter().map(floats).collect()
    };
    match doc.get("probabilities") {
        Some(_) => Reference {
            inputs: rows("inputs"),
            outputs: rows("probabilities"),
            labels: Some(
                doc["labels"]
                    .as_array()
                    .expect("labels")
                    .iter()
                    .map(|v| v.as_i64().expect("integer label"))
                    .collect(),
            ),
        },
        None => Reference {
            inputs: rows("inputs"),
            outputs: floats(&doc["outputs"])
                .into_iter()
                .map(|v| vec![v])
                .collect(),
            labels: None,
        },
    }
}

fn is_tree_model(name: &str) -> bool {
    ["_rf", "_gb", "_lgbm", "_xgb"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Runs `reference` through `model` at batch 64 (all rows at once) and at
/// batch 1, and checks both against the reference.
fn check(model: &dyn Predictor, spec: &quiver_infer::ModelSpec, reference: &Reference) -> usize {
    let width = spec.output.width();
    let tolerance = if spec.output.is_classifier() {
        TOLERANCE
    } else {
        REGRESSION_TOLERANCE
    };
    let flat: Vec<f32> = reference.inputs.iter().flatten().copied().collect();
    let mut batched = vec![0.0; reference.inputs.len() * width];
    model
        .predict(&flat, &mut batched)
        .expect("batched inference");
    let mut single = vec![0.0; width];
    for (i, (row, expected)) in reference.inputs.iter().zip(&reference.outputs).enumerate() {
        model
            .predict(row, &mut single)
            .expect("single-row inference");
        let got = &batched[i * width..(i + 1) * width];
        for (k, want) in expected.iter().enumerate() {
            assert!(
                (got[k] - want).abs() <= tolerance,
                "{} on {:?}: row {i} output {k}: batched {} vs reference {want}",
                spec.name,
                model.backend(),
                got[k]
            );
            assert!(
                (single[k] - want).abs() <= tolerance,
                "{} on {:?}: row {i} output {k}: batch-1 {} vs reference {want}",
                spec.name,
                model.backend(),
                single[k]
            );
        }
        if let Some(labels) = &reference.labels {
            let (class, p) = spec.class_of(got).expect("finite probabilities");
            assert_eq!(
                class,
                labels[i],
                "{} on {:?}: row {i}: argmax class vs the model's label",
                spec.name,
                model.backend()
            );
            assert!(p >= 1.0 / width as f32 - TOLERANCE);
        }
    }
    reference.inputs.len()
}

fn run_all(loader: &Loader) -> Vec<String> {
    let registry = Registry::load(&common::registry_path()).expect("shipped registry is valid");
    assert!(
        registry.models.len() >= 7,
        "shipped models: {}",
        registry.models.len()
    );
    let backend = loader.backend().expect("backend");
    let mut checked = Vec::new();
    for spec in &registry.models {
        let reference = reference(&spec.name);
        match loader.load(spec) {
            Ok(model) => {
                assert_eq!(model.backend, backend);
                assert!(
                    !(backend == Backend::Tract && is_tree_model(&spec.name)),
                    "tract must refuse the tree model {}",
                    spec.name
                );
                let rows = check(&model, spec, &reference);
                checked.push(format!("{} ({rows} rows)", spec.name));
            }
            Err(LoadError::UnsupportedOperator {
                operator,
                backend: "tract",
                hint,
                ..
            }) if backend == Backend::Tract && is_tree_model(&spec.name) => {
                assert!(
                    operator.contains("TreeEnsemble"),
                    "{}: {operator}",
                    spec.name
                );
                assert!(hint.contains("scripts/fetch_onnxruntime.sh"), "{hint}");
                assert!(hint.contains("ORT_DYLIB_PATH"), "{hint}");
            }
            Err(err) => panic!("{} on {backend:?}: {err}", spec.name),
        }
    }
    checked
}

#[test]
fn tract_matches_reference_for_linear_and_mlp_models_and_refuses_trees() {
    let checked = run_all(&common::tract_loader());
    assert_eq!(
        checked.len(),
        3,
        "logreg, mlp and ridge run on tract: {checked:?}"
    );
}

#[test]
fn onnxruntime_matches_reference_for_every_shipped_model() {
    let Some(loader) = common::ort_loader("onnxruntime_matches_reference_for_every_shipped_model")
    else {
        return;
    };
    let checked = run_all(&loader);
    assert_eq!(checked.len(), 7, "{checked:?}");
}

#[test]
fn tract_refusal_names_the_operator_and_the_fix() {
    let registry = Registry::load(&common::registry_path()).expect("registry");
    let spec = registry.get("ml_momentum_rf").expect("rf model");
    let err = common::tract_loader()
        .load(spec)
        .expect_err("tract refuses trees");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "model ml_momentum_rf: operator ai.onnx.ml:TreeEnsembleClassifier is not supported by tract"
        ),
        "{text}"
    );
    assert!(text.contains("scripts/fetch_onnxruntime.sh"), "{text}");
    for name in ["ml_momentum_gb", "ml_momentum_lgbm", "ml_momentum_xgb"] {
        let spec = registry.get(name).expect("tree model");
        let text = common::tract_loader()
            .load(spec)
            .expect_err(name)
            .to_string();
        assert!(
            text.contains("operator ai.onnx.ml:TreeEnsemble") && text.contains("ORT_DYLIB_PATH"),
            "{text}"
        );
    }
}

#[test]
fn shipped_registry_describes_the_ml_momentum_feature_set() {
    let registry = Registry::load(&common::registry_path()).expect("registry");
    for spec in &registry.models {
        assert_eq!(spec.n_features, 9, "{}", spec.name);
        assert_eq!(
            spec.feature_names.as_deref().map(|f| f.join(",")),
            Some(
                "sma_5,sma_20,rsi_14,volatility_10,momentum_5_1,momentum_20_1,returns_std,returns_skew,current_price"
                    .to_owned()
            )
        );
        match &spec.output {
            OutputSpec::Classifier { classes, .. } => assert_eq!(classes, &[-1, 0, 1]),
            OutputSpec::Regressor { threshold, .. } => assert!(*threshold > 0.0),
        }
    }
}
