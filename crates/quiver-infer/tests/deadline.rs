//! Inference deadlines on real hostile models (models/testdata/, written by
//! scripts/gen_deadline_models.py): a `Loop` of 10^12 iterations is stopped
//! at its deadline on ONNX Runtime and its model taken out of service, while
//! the other models keep serving; tract refuses `Loop` at load; a backend
//! that cannot be interrupted is timed and retired after a late call.
//!
//! Every wait is bounded: a test that hangs fails at its bound instead.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use quiver_infer::{
    BatchResults, DropReason, InferError, InferencePool, LoadError, LoadedModel, Loader,
    MicroBatcher, ModelHandle, ModelSpec, Outcome, PoolConfig, Predictor, Registry, RequestError,
};

use common::Fake;

/// Real features: prices near 366, so `loop_on_input` runs ~3.7 * 10^12
/// iterations on it.
const ROW: [f32; 9] = [
    366.27, 366.4775, 45.3, 0.00083, -0.0023, 0.0011, 0.0009, -0.04, 365.75,
];

const DEADLINE: Duration = Duration::from_millis(200);

/// How long a deadline of [`DEADLINE`] may take to show: the watchdog's
/// wake-up plus ONNX Runtime finishing the kernel it is in, on a busy
/// two-core machine. A hang is ~10^5 s, so the bound cannot hide one.
const BOUND: Duration = Duration::from_secs(10);

fn hostile(name: &str, deadline: Option<Duration>) -> ModelSpec {
    let registry = Registry::load(&common::hostile_registry_path()).unwrap();
    let mut spec = registry.get(name).unwrap().clone();
    spec.deadline = deadline;
    spec
}

fn shipped(name: &str) -> ModelSpec {
    let registry = Registry::load(&common::registry_path()).unwrap();
    registry.get(name).unwrap().clone()
}

/// Runs `f`, failing if it takes longer than `bound`.
fn within<T>(bound: Duration, what: &str, f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    assert!(took < bound, "{what} took {took:?}, bound {bound:?}");
    (out, took)
}

#[test]
fn ort_stops_a_warm_up_that_never_ends_and_refuses_the_model() {
    let Some(loader) = common::ort_loader("warm-up deadline") else {
        return;
    };
    let spec = hostile("loop_forever", Some(DEADLINE));
    let (result, took) = within(BOUND, "loading loop_forever", || loader.load(&spec));
    let err = result.unwrap_err();
    assert!(took >= DEADLINE, "stopped before its deadline: {took:?}");
    match &err {
        LoadError::WarmUpDeadline {
            model,
            deadline,
            interrupted,
            ..
        } => {
            assert_eq!(model, "loop_forever");
            assert_eq!(*deadline, DEADLINE);
            assert!(interrupted, "ONNX Runtime interrupts");
        }
        other => panic!("expected a warm-up deadline, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with(
            "model loop_forever: onnxruntime warm-up inference exceeded its deadline of 200 ms (stopped after"
        ) && text.ends_with("refusing to load it"),
        "{text}"
    );

    // The loader's default applies when the registry sets none.
    let spec = hostile("loop_forever", None);
    let loader = loader.with_deadline(Duration::from_millis(150));
    let (result, _) = within(BOUND, "loading loop_forever", || loader.load(&spec));
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("exceeded its deadline of 150 ms"),
        "the loader's deadline"
    );
}

#[test]
fn ort_stops_a_call_past_its_deadline_and_retires_only_that_model() {
    let Some(loader) = common::ort_loader("call deadline") else {
        return;
    };
    // Zeros at warm-up run no iteration: the model loads.
    let hostile = ModelHandle::with_model(
        loader
            .load(&hostile("loop_on_input", Some(DEADLINE)))
            .unwrap(),
    );
    let healthy = ModelHandle::with_model(loader.load(&shipped("ml_momentum_mlp")).unwrap());
    let handles = vec![hostile.clone(), healthy.clone()];
    let mut batcher = MicroBatcher::deterministic(quiver_infer::Backend::OnnxRuntime, 64);
    let mut results = BatchResults::new();

    batcher.push(0, &ROW);
    batcher.push(1, &ROW);
    let (_, took) = within(BOUND, "the first batch", || {
        batcher.run(&handles, &mut results)
    });
    assert!(took >= DEADLINE, "stopped before its deadline: {took:?}");
    match results.get(0) {
        Err(RequestError::Failed(InferError::DeadlineExceeded {
            model,
            backend,
            deadline,
            interrupted,
            ..
        })) => {
            assert_eq!(
                (model.as_str(), *backend, *deadline, *interrupted),
                ("loop_on_input", "onnxruntime", DEADLINE, true)
            );
        }
        other => panic!("expected a deadline error, got {other:?}"),
    }
    let reference = results.get(1).unwrap().to_vec();
    assert_eq!(reference.len(), 3, "the other model answered");

    // Out of service: counted once, named with its deadline, not run again.
    assert!(!hostile.is_loaded());
    assert_eq!(hostile.stats().snapshot().deadline_exceeded, 1);
    let fault = hostile.fault().unwrap().to_string();
    assert!(
        fault.starts_with(
            "model loop_on_input: onnxruntime inference exceeded its deadline of 200 ms (stopped after"
        ),
        "{fault}"
    );
    assert!(healthy.is_loaded());
    assert_eq!(healthy.stats().snapshot().deadline_exceeded, 0);
    for _ in 0..3 {
        batcher.push(0, &ROW);
        batcher.push(1, &ROW);
        let (_, took) = within(Duration::from_secs(2), "a later batch", || {
            batcher.run(&handles, &mut results)
        });
        assert!(took < DEADLINE, "the retired model was run again: {took:?}");
        assert_eq!(results.get(0), Err(&RequestError::ModelUnavailable));
        assert_eq!(results.get(1).unwrap(), reference.as_slice());
    }
    assert_eq!(hostile.stats().snapshot().deadline_exceeded, 1);
}

#[test]
fn a_retired_version_refuses_calls_and_its_session_still_runs_after_a_stop() {
    let Some(loader) = common::ort_loader("out of service") else {
        return;
    };
    let model = loader
        .load(&hostile("loop_on_input", Some(DEADLINE)))
        .unwrap();
    let mut out = [0.0f32];
    let (first, _) = within(BOUND, "the first call", || model.predict(&ROW, &mut out));
    assert!(matches!(first, Err(InferError::DeadlineExceeded { .. })));
    assert!(model.overdue().is_some());
    let (second, took) = within(BOUND, "a refused call", || model.predict(&ROW, &mut out));
    assert!(took < DEADLINE, "{took:?}");
    assert_eq!(
        second.unwrap_err().to_string(),
        "model loop_on_input: out of service since a call exceeded its deadline of 200 ms"
    );
    // The stop flag was lowered: the session itself answers a row that runs
    // no iteration (the predictor without the model's deadline).
    let zeros = [0.0f32; 9];
    model.predictor().predict(&zeros, &mut out).unwrap();
    assert_eq!(out, [0.0]);
}

#[test]
fn the_pool_answers_a_call_past_its_deadline_and_keeps_serving_other_models() {
    let Some(loader) = common::ort_loader("pool deadline") else {
        return;
    };
    let hostile = ModelHandle::with_model(
        loader
            .load(&hostile("loop_on_input", Some(DEADLINE)))
            .unwrap(),
    );
    let healthy = ModelHandle::with_model(loader.load(&shipped("ml_momentum_mlp")).unwrap());
    // One worker: a call that never ended would starve every model.
    let config = PoolConfig {
        workers: 1,
        timeout: Duration::from_secs(30),
        ..PoolConfig::default()
    };
    let pool = InferencePool::new(config, vec![hostile.clone(), healthy]).unwrap();
    pool.submit(0, &ROW, 0).unwrap();
    pool.submit(1, &ROW, 1).unwrap();
    let mut answers = Vec::new();
    within(BOUND, "the pool's answers", || {
        while answers.len() < 2 {
            answers.push(pool.recv_timeout(BOUND).expect("answered"));
        }
    });
    answers.sort_by_key(|a| a.tag);
    assert_eq!(answers[0].outcome, Outcome::Dropped(DropReason::Failed));
    assert!(matches!(answers[1].outcome, Outcome::Done { .. }));
    assert!(!hostile.is_loaded());

    pool.submit(0, &ROW, 2).unwrap();
    pool.submit(1, &ROW, 3).unwrap();
    let mut later = Vec::new();
    within(Duration::from_secs(5), "later answers", || {
        while later.len() < 2 {
            later.push(pool.recv_timeout(BOUND).expect("answered"));
        }
    });
    later.sort_by_key(|a| a.tag);
    assert_eq!(
        later[0].outcome,
        Outcome::Dropped(DropReason::ModelUnavailable)
    );
    assert!(matches!(later[1].outcome, Outcome::Done { .. }));
    assert_eq!(
        pool.stats().dropped(DropReason::ModelUnavailable),
        1,
        "{:?}",
        pool.stats()
    );
}

#[test]
fn tract_refuses_loop_models_at_load() {
    let loader = common::tract_loader();
    for name in ["loop_forever", "loop_on_input"] {
        let (result, _) = within(BOUND, name, || loader.load(&hostile(name, None)));
        let err = result.unwrap_err();
        assert!(
            matches!(&err, LoadError::UnsupportedOperator { operator, .. } if operator == "Loop"),
            "{name}: {err:?}"
        );
        assert!(
            err.to_string().starts_with(&format!(
                "model {name}: operator Loop is not supported by tract: "
            )),
            "{err}"
        );
    }
}

/// A backend that cannot be interrupted: its calls take `sleep`, whatever
/// the deadline.
struct Slow {
    inner: Fake,
    sleep: Duration,
}

impl Predictor for Slow {
    fn backend(&self) -> quiver_infer::Backend {
        quiver_infer::Backend::Tract
    }
    fn n_features(&self) -> usize {
        self.inner.n_features
    }
    fn n_outputs(&self) -> usize {
        self.inner.n_outputs
    }
    fn predict(&self, rows: &[f32], out: &mut [f32]) -> Result<usize, InferError> {
        std::thread::sleep(self.sleep);
        self.inner.predict(rows, out)
    }
}

#[test]
fn a_call_that_cannot_be_interrupted_is_timed_and_retires_its_model_when_late() {
    let fake = Fake::new(1, 2, 1.0);
    let calls = Arc::clone(&fake.calls);
    let spec = common::fake_spec("slow", 1, &[0, 1]);
    let slow = Slow {
        inner: fake,
        sleep: Duration::from_millis(60),
    };
    let model = LoadedModel::from_predictor(spec, Box::new(slow))
        .unwrap()
        .with_deadline(Duration::from_millis(20));
    let handle = ModelHandle::with_model(model);
    let mut batcher = MicroBatcher::new(8);
    let mut results = BatchResults::new();
    batcher.push(0, &[1.0]);
    batcher.run(std::slice::from_ref(&handle), &mut results);
    match results.get(0) {
        Err(RequestError::Failed(err @ InferError::DeadlineExceeded { interrupted, .. })) => {
            assert!(!interrupted);
            let text = err.to_string();
            assert!(
                text.starts_with("model slow: tract inference exceeded its deadline of 20 ms (it returned after ")
                    && text.contains("this backend cannot interrupt a call"),
                "{text}"
            );
        }
        other => panic!("expected a deadline error, got {other:?}"),
    }
    assert!(!handle.is_loaded());
    assert_eq!(handle.stats().snapshot().deadline_exceeded, 1);
    batcher.push(0, &[2.0]);
    batcher.run(std::slice::from_ref(&handle), &mut results);
    assert_eq!(results.get(0), Err(&RequestError::ModelUnavailable));
    assert_eq!(*calls.lock().unwrap(), [1], "not run again");

    // A call inside its deadline is served as before.
    let fast = LoadedModel::from_predictor(
        common::fake_spec("fast", 1, &[0, 1]),
        Box::new(Fake::new(1, 2, 1.0)),
    )
    .unwrap();
    let mut out = [0.0f32; 2];
    assert_eq!(fast.predict(&[3.0], &mut out), Ok(1));
    assert_eq!(out, [3.0, 4.0]);
    assert!(fast.overdue().is_none());
}

#[test]
fn a_reload_puts_a_retired_model_back_in_service() {
    let loader = Loader::new(quiver_infer::BackendChoice::Tract, None);
    let spec = shipped("ml_momentum_mlp");
    let handle = ModelHandle::new("ml_momentum_mlp");
    let first = handle.reload(&loader, &spec).unwrap();
    // Stand for a call over the deadline on this version.
    let retired = Arc::new(
        LoadedModel::from_predictor(spec.clone(), Box::new(Fake::new(9, 3, 1.0))).unwrap(),
    );
    handle.retire(&retired);
    assert!(handle.is_loaded(), "only the version in service is retired");
    assert_eq!(handle.stats().snapshot().deadline_exceeded, 0);
    handle.retire(&first);
    assert!(!handle.is_loaded());
    assert_eq!(handle.stats().snapshot().deadline_exceeded, 1);
    handle.reload(&loader, &spec).unwrap();
    assert!(handle.is_loaded());
    assert!(handle.fault().is_none());
}
