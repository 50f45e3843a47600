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
