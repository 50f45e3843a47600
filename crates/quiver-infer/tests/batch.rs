//! Micro-batching: one backend call per model per batch, results in request
//! order, and the same results whatever the batch size.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

mod common;

use common::Fake;
use quiver_infer::{BatchResults, LoadPolicy, MicroBatcher, ModelHandle, ModelStore, RequestError};

#[test]
fn groups_by_model_and_returns_results_in_request_order() {
    let a = Fake::new(2, 3, 1.0);
    let b = Fake::new(1, 2, 10.0);
    let (a_calls, b_calls) = (a.calls.clone(), b.calls.clone());
    let models = vec![a.into_handle("a"), b.into_handle("b")];
    let mut batcher = MicroBatcher::new(64);
    // Interleaved: a b a a b.
    let pushes: [(usize, Vec<f32>); 5] = [
        (0, vec![1.0, 0.0]),
        (1, vec![2.0]),
        (0, vec![3.0, 0.0]),
        (0, vec![4.0, 0.0]),
        (1, vec![5.0]),
    ];
    for (i, (model, row)) in pushes.iter().enumerate() {
        assert_eq!(batcher.push(*model, row), i);
    }
    let mut results = BatchResults::new();
    batcher.run(&models, &mut results);
    assert!(batcher.is_empty(), "run empties the queue");
    assert_eq!(results.len(), 5);
    assert_eq!(results.get(0).unwrap(), &[1.0, 2.0, 3.0]);
    assert_eq!(results.get(1).unwrap(), &[20.0, 21.0]);
    assert_eq!(results.get(2).unwrap(), &[3.0, 4.0, 5.0]);
    assert_eq!(results.get(3).unwrap(), &[4.0, 5.0, 6.0]);
    assert_eq!(results.get(4).unwrap(), &[50.0, 51.0]);
    assert_eq!(
        *a_calls.lock().unwrap(),
        vec![3],
        "one call for model a's three rows"
    );
    assert_eq!(
        *b_calls.lock().unwrap(),
        vec![2],
        "one call for model b's two rows"
    );
    assert_eq!(results.model_used(0).map(|m| m.name()), Some("a"));
    let stats = models[0].stats().snapshot();
    assert_eq!((stats.inferences, stats.batches), (3, 1));
}

#[test]
fn splits_a_model_group_at_max_batch_size() {
    let fake = Fake::new(1, 1, 1.0);
    let calls = fake.calls.clone();
    let models = vec![fake.into_handle("m")];
    let mut batcher = MicroBatcher::new(4);
    for i in 0..10 {
        batcher.push(0, &[i as f32]);
    }
    let mut results = BatchResults::new();
    batcher.run(&models, &mut results);
    assert_eq!(*calls.lock().unwrap(), vec![4, 4, 2]);
    for i in 0..10 {
        assert_eq!(results.get(i).unwrap(), &[i as f32]);
    }
    let stats = models[0].stats().snapshot();
    assert_eq!(stats.batch_size.count(), 3);
    assert_eq!(stats.inferences, 10);
}

#[test]
fn failures_stay_with_their_requests() {
    let mut failing = Fake::new(1, 1, 1.0);
    failing.fail_on = Some(7.0);
    let models = vec![
        failing.into_handle("fails"),
        ModelHandle::new("empty"),
        Fake::new(1, 1, 2.0).into_handle("ok"),
    ];
    let mut batcher = MicroBatcher::new(2);
    batcher.push(0, &[1.0]); // same chunk as the failing row
    batcher.push(2, &[1.0]);
    batcher.push(0, &[7.0]);
    batcher.push(1, &[1.0]);
    batcher.push(0, &[3.0]); // next chunk: unaffected
    batcher.push(2, &[1.0, 2.0]);
    batcher.push(9, &[1.0]);
    let mut results = BatchResults::new();
    batcher.run(&models, &mut results);
    assert!(matches!(results.get(0), Err(RequestError::Failed(_))));
    assert_eq!(results.get(1).unwrap(), &[2.0]);
    assert!(matches!(results.get(2), Err(RequestError::Failed(_))));
    assert_eq!(results.get(3), Err(&RequestError::ModelUnavailable));
    assert_eq!(results.get(4).unwrap(), &[3.0]);
    assert_eq!(
        results.get(5),
        Err(&RequestError::WrongWidth {
            expected: 1,
            got: 2
        })
    );
    assert_eq!(results.get(6), Err(&RequestError::UnknownModel));
    assert_eq!(models[0].stats().snapshot().failures, 1);
}

#[test]
fn a_padded_batcher_always_calls_with_the_full_row_count() {
    let fake = Fake::new(1, 2, 1.0);
    let calls = fake.calls.clone();
    let models = vec![fake.into_handle("m")];
    let mut batcher = MicroBatcher::padded(8);
    assert!(batcher.is_padded());
    for i in 0..10 {
        batcher.push(0, &[i as f32]);
    }
    let mut results = BatchResults::new();
    batcher.run(&models, &mut results);
    assert_eq!(
        *calls.lock().unwrap(),
        vec![8, 8],
        "the second call is padded"
    );
    for i in 0..10 {
        assert_eq!(results.get(i).unwrap(), &[i as f32, i as f32 + 1.0]);
    }
    assert_eq!(
        models[0].stats().snapshot().inferences,
        10,
        "padding is not counted"
    );
}

/// The property replay relies on: with the deterministic batcher, a row's
/// result does not depend on which other rows share its batch or how many
/// there are.
/// Checked on the shipped models, on every backend here, for requests
/// grouped 1, 7, 64 and 1024 at a time, bit for bit. (Unpadded, the same
/// rows differ by a few ulps between call sizes; that is only reported.)
#[test]
fn shipped_models_give_identical_results_at_every_batch_size() {
    let reference =
        std::fs::read_to_string(common::models_dir().join("reference/ml_momentum_mlp.json"))
            .expect("reference rows");
    let doc: serde_json::Value = serde_json::from_str(&reference).expect("json");
    let rows: Vec<Vec<f32>> = doc["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|r| {
            r.as_array()
                .expect("row")
                .iter()
                .map(|v| v.as_f64().expect("f") as f32)
                .collect()
        })
        .collect();
    for loader in common::loaders("shipped_models_give_identical_results_at_every_batch_size") {
        let store = ModelStore::with_loader(&common::registry_path(), loader, LoadPolicy::Lazy)
            .expect("registry");
        let backend = store.loader().backend().expect("backend");
        let handles: Vec<ModelHandle> = store
            .names()
            .iter()
            .filter_map(|name| store.acquire(name).ok())
            .collect();
        assert!(handles.len() >= 3, "{backend:?}");
        // 1024 requests: the reference rows repeated, spread over every model.
        let requests: Vec<(usize, &[f32])> = (0..1024)
            .map(|i| (i % handles.len(), rows[(i * 7) % rows.len()].as_slice()))
            .collect();
        let run = |batcher: &mut MicroBatcher, group: usize| -> Vec<Vec<f32>> {
            let mut got = Vec::new();
            let mut results = BatchResults::new();
            for requests in requests.chunks(group) {
                for (model, row) in requests {
                    batcher.push(*model, row);
                }
                batcher.run(&handles, &mut results);
                got.extend((0..requests.len()).map(|i| results.get(i).expect("result").to_vec()));
            }
            got
        };
        let mut baseline: Option<Vec<Vec<f32>>> = None;
        for group in [1, 7, 64, 1024] {
            let got = run(&mut MicroBatcher::deterministic(backend, 64), group);
            match &baseline {
                None => baseline = Some(got),
                Some(base) => {
                    for (i, (a, b)) in base.iter().zip(&got).enumerate() {
                        assert_eq!(
                            a,
                            b,
                            "{} on {backend:?}: request {i} grouped 1 vs {group} at a time",
                            handles[requests[i].0].name()
                        );
                    }
                }
            }
        }
        let Some(baseline) = baseline else { continue };
        for size in [1, 7, 64, 1024] {
            let mut batcher = MicroBatcher::new(size);
            let got = run(&mut batcher, 1024);
            let mut worst: Vec<(String, f32, usize)> = Vec::new();
            for (i, (a, b)) in baseline.iter().zip(&got).enumerate() {
                let model = handles[requests[i].0].name();
                let diff = a
                    .iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0f32, f32::max);
                match worst.iter_mut().find(|(m, _, _)| m == model) {
                    Some(entry) => {
                        entry.1 = entry.1.max(diff);
                        entry.2 += usize::from(a != b);
                    }
                    None => worst.push((model.to_owned(), diff, usize::from(a != b))),
                }
            }
            for (model, diff, count) in worst.iter().filter(|w| w.2 > 0) {
                eprintln!(
                    "note: plain calls of up to {size} rows: {model} on {backend:?}: {count} results differ from the deterministic batcher's, by at most {diff:e}"
                );
            }
        }
    }
}
