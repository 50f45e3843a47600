//! Per-row inference cost of every shipped model, at batch 1 and batch 100,
//! on every backend available (tract always; ONNX Runtime when
//! `ORT_DYLIB_PATH` points at libonnxruntime.so).
//!
//! ```sh
//! ORT_DYLIB_PATH="$(scripts/fetch_onnxruntime.sh)" cargo bench -p quiver-infer --bench inference
//! ```
//!
//! Criterion reports time per call; divide by the batch for the per-row cost
//! (the throughput line gives rows/s directly).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use quiver_infer::{Backend, BackendChoice, Loader, Predictor, Registry};

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// Feature rows from the model's reference file: realistic values, not zeros.
fn rows(name: &str, n: usize) -> Vec<f32> {
    let text = std::fs::read_to_string(models_dir().join(format!("reference/{name}.json")))
        .expect("reference file");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    let inputs: Vec<Vec<f32>> = doc["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|row| {
            row.as_array()
                .expect("row")
                .iter()
                .map(|v| v.as_f64().expect("number") as f32)
                .collect()
        })
        .collect();
    inputs.iter().cycle().take(n).flatten().copied().collect()
}

fn bench(c: &mut Criterion) {
    let registry = Registry::load(&models_dir().join("registry.yaml")).expect("registry");
    let mut loaders = vec![Loader::new(BackendChoice::Tract, None)];
    let ort = Loader::new(BackendChoice::OnnxRuntime, None);
    match ort.backend() {
        Some(Backend::OnnxRuntime) => loaders.insert(0, ort),
        _ => eprintln!(
            "ONNX Runtime benches skipped: {}",
            ort.ort_unavailable()
                .map(ToString::to_string)
                .unwrap_or_default()
        ),
    }
    let mut group = c.benchmark_group("infer");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for loader in &loaders {
        let backend = loader.backend().expect("backend");
        for spec in &registry.models {
            let model = match loader.load(spec) {
                Ok(model) => model,
                Err(err) => {
                    eprintln!("skip {} on {backend}: {err}", spec.name);
                    continue;
                }
            };
            for batch in [1usize, 100] {
                let input = rows(&spec.name, batch);
                let mut out = vec![0.0f32; batch * model.n_outputs()];
                group.throughput(Throughput::Elements(batch as u64));
                group.bench_with_input(
                    BenchmarkId::new(format!("{backend}/{}", spec.name), format!("batch{batch}")),
                    &input,
                    |b, input| b.iter(|| model.predict(input, &mut out).expect("inference")),
                );
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
