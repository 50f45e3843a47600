//! Shared by the integration tests: the shipped registry and the backends.
#![allow(dead_code)]

use std::path::PathBuf;

use quiver_infer::{Backend, BackendChoice, Loader};

pub fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

pub fn registry_path() -> PathBuf {
    models_dir().join("registry.yaml")
}

/// The registry of the hostile models (scripts/gen_deadline_models.py).
pub fn hostile_registry_path() -> PathBuf {
    models_dir().join("testdata/registry.yaml")
}

/// A loader on ONNX Runtime, or `None` (with a notice) when the library is
/// not configured. With `QUIVER_REQUIRE_ORT=1` (set by scripts/test.sh) a
/// missing library fails the test instead of skipping it.
pub fn ort_loader(test: &str) -> Option<Loader> {
    let loader = Loader::new(BackendChoice::OnnxRuntime, None);
    match loader.backend() {
        Some(Backend::OnnxRuntime) => Some(loader),
        _ => {
            let reason = loader
                .ort_unavailable()
                .map(ToString::to_string)
                .unwrap_or_default();
            if std::env::var("QUIVER_REQUIRE_ORT").as_deref() == Ok("1") {
                panic!("{test}: QUIVER_REQUIRE_ORT=1 but ONNX Runtime is unavailable: {reason}");
            }
            eprintln!("SKIPPED {test} on ONNX Runtime: {reason}");
            None
        }
    }
}

pub fn tract_loader() -> Loader {
    Loader::new(BackendChoice::Tract, None)
}

/// Every backend available here, tract first.
pub fn loaders(test: &str) -> Vec<Loader> {
    let mut loaders = vec![tract_loader()];
    loaders.extend(ort_loader(test));
    loaders
}

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use quiver_infer::{
    Dtype, Framework, InferError, LoadedModel, ModelHandle, ModelSpec, OutputSpec, Predictor,
};

/// A registry entry for an in-code model.
pub fn fake_spec(name: &str, n_features: usize, classes: &[i64]) -> ModelSpec {
    ModelSpec {
        name: name.to_owned(),
        path_text: format!("{name}.onnx"),
        path: PathBuf::from(format!("{name}.onnx")),
        path_line: 1,
        path_field: "models[0].path".to_owned(),
        sha256: "0".repeat(64),
        version: "1".to_owned(),
        framework: Framework::Onnx,
        n_features,
        dtype: Dtype::F32,
        feature_names: None,
        output: OutputSpec::Classifier {
            classes: classes.to_vec(),
            tensor: None,
        },
        regime: None,
        deadline: None,
        active: true,
        line: 1,
    }
}

/// A model in code: output `j` of a row is `scale * row[0] + j`, so every
/// result says which row it came from. Records its batch sizes; can be held
/// at a gate (to stand for a slow model) or made to fail or panic.
pub struct Fake {
    pub n_features: usize,
    pub n_outputs: usize,
    pub scale: f32,
    pub calls: Arc<Mutex<Vec<usize>>>,
    pub gate: Option<Arc<Gate>>,
    pub fail_on: Option<f32>,
    pub panic_on: Option<f32>,
}

impl Fake {
    pub fn new(n_features: usize, n_outputs: usize, scale: f32) -> Fake {
        Fake {
            n_features,
            n_outputs,
            scale,
            calls: Arc::default(),
            gate: None,
            fail_on: None,
            panic_on: None,
        }
    }

    /// Expected output `j` for a row starting with `x`.
    pub fn expect(&self, x: f32) -> Vec<f32> {
        (0..self.n_outputs)
            .map(|j| self.scale * x + j as f32)
            .collect()
    }

    pub fn into_handle(self, name: &str) -> ModelHandle {
        let classes: Vec<i64> = (0..self.n_outputs as i64).collect();
        let spec = fake_spec(name, self.n_features, &classes);
        ModelHandle::with_model(LoadedModel::from_predictor(spec, Box::new(self)).expect("fake"))
    }
}

impl Predictor for Fake {
    fn backend(&self) -> quiver_infer::Backend {
        quiver_infer::Backend::Tract
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn n_outputs(&self) -> usize {
        self.n_outputs
    }
    fn predict(&self, rows: &[f32], out: &mut [f32]) -> Result<usize, InferError> {
        let k = rows.len() / self.n_features;
        self.calls.lock().unwrap().push(k);
        if let Some(gate) = &self.gate {
            gate.wait();
        }
        for r in 0..k {
            let x = rows[r * self.n_features];
            if self.panic_on == Some(x) {
                panic!("fake model panics on {x}");
            }
            if self.fail_on == Some(x) {
                return Err(InferError::Runtime {
                    model: "fake".into(),
                    backend: "tract",
                    message: format!("refuses {x}"),
                });
            }
            for j in 0..self.n_outputs {
                out[r * self.n_outputs + j] = self.scale * x + j as f32;
            }
        }
        Ok(k)
    }
}

/// Holds predictor calls until opened; counts the calls waiting.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    changed: std::sync::Condvar,
    pub waiting: AtomicUsize,
}

impl Gate {
    pub fn wait(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.changed.wait(open).unwrap();
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }

    /// Waits (bounded) until `n` calls are held at the gate.
    pub fn until_waiting(&self, n: usize) {
        let start = std::time::Instant::now();
        while self.waiting.load(Ordering::SeqCst) < n {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "gate never reached"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
