//! The registry-backed store: checksum refusal, lazy/eager loading, hot swap
//! with rollback, change polling. Runs on tract (always available) with the
//! shipped linear and MLP models.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use quiver_infer::{
    sha256_hex, Backend, BackendChoice, Change, LoadError, LoadPolicy, Loader, ModelStore,
    Predictor,
};

const ROW: [f32; 9] = [
    366.27, 366.4775, 45.3, 0.00083, -0.0023, 0.0011, 0.0009, -0.04, 365.75,
];

fn entry(name: &str, file: &str, sha: &str, version: &str) -> String {
    format!(
        "  - name: {name}\n    path: {file}\n    sha256: \"{sha}\"\n    version: \"{version}\"\n    framework: sklearn\n    input: {{features: 9, dtype: f32}}\n    output: {{kind: classifier, classes: [-1, 0, 1]}}\n"
    )
}

struct Dir {
    _tmp: tempfile::TempDir,
    path: PathBuf,
}

impl Dir {
    fn new() -> Dir {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().to_owned();
        for name in ["ml_momentum_mlp", "ml_momentum_logreg"] {
            std::fs::copy(
                common::models_dir().join(format!("{name}.onnx")),
                path.join(format!("{name}.onnx")),
            )
            .expect("copy model");
        }
        Dir { _tmp: tmp, path }
    }

    fn sha(&self, file: &str) -> String {
        sha256_hex(&std::fs::read(self.path.join(file)).expect("model"))
    }

    fn registry(&self, entries: &[String]) -> PathBuf {
        let path = self.path.join("registry.yaml");
        // Rename into place so a poll never sees a half-written file.
        let tmp = self.path.join("registry.yaml.tmp");
        std::fs::write(&tmp, format!("models:\n{}", entries.concat())).expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
        path
    }

    fn write(&self, file: &str, bytes: &[u8]) {
        let tmp = self.path.join(format!("{file}.tmp"));
        std::fs::write(&tmp, bytes).expect("write");
        std::fs::rename(&tmp, self.path.join(file)).expect("rename");
    }
}

fn store(registry: &Path, policy: LoadPolicy) -> ModelStore {
    ModelStore::with_loader(registry, Loader::new(BackendChoice::Tract, None), policy)
        .expect("registry")
}

fn predict(model: &dyn Predictor) -> Vec<f32> {
    let mut out = vec![0.0; 3];
    model.predict(&ROW, &mut out).expect("inference");
    out
}

#[test]
fn a_checksum_mismatch_refuses_that_model_only() {
    let dir = Dir::new();
    let good = dir.sha("ml_momentum_mlp.onnx");
    let registry = dir.registry(&[
        entry("good", "ml_momentum_mlp.onnx", &good, "1"),
        entry("bad", "ml_momentum_logreg.onnx", &"ab".repeat(32), "1"),
    ]);
    let store = store(&registry, LoadPolicy::Eager);
    let status = store.status();
    let bad = status.iter().find(|s| s.spec.name == "bad").expect("bad");
    let good_status = status.iter().find(|s| s.spec.name == "good").expect("good");
    assert!(
        matches!(bad.error, Some(LoadError::Checksum { .. })),
        "{:?}",
        bad.error
    );
    assert_eq!(bad.loaded_version, None);
    assert_eq!(good_status.loaded_version.as_deref(), Some("1"));
    assert_eq!(good_status.backend, Some(Backend::Tract));
    assert!(good_status.load_seconds.expect("timed") > 0.0);

    let err = store.acquire("bad").expect_err("refused");
    let text = err.to_string();
    assert!(
        text.starts_with("model bad: sha256 mismatch for "),
        "{text}"
    );
    assert!(
        text.contains(&format!("registry says {}", "ab".repeat(32))),
        "{text}"
    );
    assert!(
        text.contains(&format!("file has {}", dir.sha("ml_momentum_logreg.onnx"))),
        "{text}"
    );
    let handle = store.acquire("good").expect("good model serves");
    let model = handle.current().expect("loaded");
    let probabilities = predict(model.as_ref());
    assert!((probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert!(matches!(
        store.acquire("nope"),
        Err(LoadError::Unknown { .. })
    ));
}

#[test]
fn lazy_loading_waits_for_the_first_acquire() {
    let dir = Dir::new();
    let registry = dir.registry(&[entry(
        "m",
        "ml_momentum_mlp.onnx",
        &dir.sha("ml_momentum_mlp.onnx"),
        "1",
    )]);
    let store = store(&registry, LoadPolicy::Lazy);
    assert!(!store.handle("m").expect("known").is_loaded());
    let handle = store.acquire("m").expect("loads");
    assert!(handle.is_loaded());
    assert!(handle.same(&store.handle("m").expect("same slot")));
    let stats = handle.stats().snapshot();
    assert_eq!(stats.loads, 1);
    assert!(stats.model_load_seconds > 0.0);
}

#[test]
fn hot_swap_replaces_the_version_and_a_failed_load_keeps_the_old_one() {
    let dir = Dir::new();
    let mlp = dir.sha("ml_momentum_mlp.onnx");
    let logreg = dir.sha("ml_momentum_logreg.onnx");
    let registry = dir.registry(&[entry("m", "ml_momentum_mlp.onnx", &mlp, "1")]);
    let store = store(&registry, LoadPolicy::Eager);
    let handle = store.acquire("m").expect("v1");
    let v1 = handle.current().expect("v1");
    let v1_out = predict(v1.as_ref());
    assert_eq!(store.poll_changes(), vec![], "nothing changed");

    // A new version: new file, new registry entry.
    std::fs::copy(
        dir.path.join("ml_momentum_logreg.onnx"),
        dir.path.join("v2.onnx"),
    )
    .expect("copy");
    dir.registry(&[entry("m", "v2.onnx", &logreg, "2")]);
    assert_eq!(
        store.poll_changes(),
        vec![Change::Reloaded {
            name: "m".into(),
            from_version: "1".into(),
            to_version: "2".into()
        }]
    );
    let v2 = handle.current().expect("v2");
    assert_eq!(v2.version(), "2");
    let v2_out = predict(v2.as_ref());
    assert_ne!(v1_out, v2_out, "a different model answers");
    assert_eq!(
        predict(v1.as_ref()),
        v1_out,
        "a batch holding v1 finishes on v1"
    );

    // The file is overwritten with garbage: checksum refusal, v2 stays.
    dir.write("v2.onnx", b"not a model at all");
    let changes = store.poll_changes();
    assert!(
        matches!(&changes[..], [Change::LoadFailed { name, error: LoadError::Checksum { .. }, kept_version: Some(v) }] if name == "m" && v == "2"),
        "{changes:?}"
    );
    assert_eq!(handle.current().expect("still v2").version(), "2");
    assert_eq!(predict(handle.current().expect("v2").as_ref()), v2_out);

    // Registry follows the garbage: it is no ONNX model, v2 still stays.
    dir.registry(&[entry(
        "m",
        "v2.onnx",
        &sha256_hex(b"not a model at all"),
        "3",
    )]);
    let changes = store.poll_changes();
    assert!(
        matches!(&changes[..], [Change::LoadFailed { error: LoadError::Malformed { .. }, kept_version: Some(v), .. }] if v == "2"),
        "{changes:?}"
    );
    assert_eq!(handle.current().expect("still v2").version(), "2");
    assert_eq!(handle.stats().snapshot().load_failures, 2);

    // An invalid registry changes nothing.
    std::fs::write(&registry, "models: [\n").expect("write");
    assert!(matches!(
        &store.poll_changes()[..],
        [Change::RegistryInvalid(_)]
    ));
    assert_eq!(handle.current().expect("still v2").version(), "2");

    // A good file again; then removal takes the model out of service.
    dir.write(
        "v2.onnx",
        &std::fs::read(dir.path.join("ml_momentum_mlp.onnx")).expect("read"),
    );
    dir.registry(&[entry("m", "v2.onnx", &mlp, "4")]);
    assert_eq!(
        store.poll_changes(),
        vec![Change::Reloaded {
            name: "m".into(),
            from_version: "2".into(),
            to_version: "4".into()
        }]
    );
    assert_eq!(predict(handle.current().expect("v4").as_ref()), v1_out);
    dir.registry(&[]);
    assert_eq!(
        store.poll_changes(),
        vec![Change::Removed { name: "m".into() }]
    );
    assert!(handle.current().is_none());
}

#[test]
fn readers_always_see_a_whole_version_during_swaps() {
    let dir = Dir::new();
    let loader = Loader::new(BackendChoice::Tract, None);
    let registry = dir.registry(&[
        entry(
            "a",
            "ml_momentum_mlp.onnx",
            &dir.sha("ml_momentum_mlp.onnx"),
            "a",
        ),
        entry(
            "b",
            "ml_momentum_logreg.onnx",
            &dir.sha("ml_momentum_logreg.onnx"),
            "b",
        ),
    ]);
    let parsed = quiver_infer::Registry::load(&registry).expect("registry");
    let a = Arc::new(loader.load(parsed.get("a").expect("a")).expect("load a"));
    let b = Arc::new(loader.load(parsed.get("b").expect("b")).expect("load b"));
    let (out_a, out_b) = (predict(a.as_ref()), predict(b.as_ref()));
    let handle = quiver_infer::ModelHandle::new("m");
    handle.replace(Arc::clone(&a));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (handle, stop) = (handle.clone(), Arc::clone(&stop));
        let (out_a, out_b) = (out_a.clone(), out_b.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) || reads < 100 {
                let model = handle.current().expect("never empty");
                let out = predict(model.as_ref());
                let expected = if model.version() == "a" {
                    &out_a
                } else {
                    &out_b
                };
                assert_eq!(
                    &out,
                    expected,
                    "version {} answered like itself",
                    model.version()
                );
                reads += 1;
            }
            reads
        })
    };
    for i in 0..200 {
        handle.replace(Arc::clone(if i % 2 == 0 { &b } else { &a }));
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("reader never saw a torn version");
    assert!(reads >= 100);
    assert_eq!(handle.swaps(), 201);
}
