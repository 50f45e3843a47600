//! The live-mode pool: never blocks the submitter; a full queue or a missed
//! deadline is a typed result.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Fake, Gate};
use quiver_infer::{DropReason, InferencePool, ModelHandle, Outcome, PoolConfig, PoolResult};

const WAIT: Duration = Duration::from_secs(10);

fn config(workers: usize, queue_size: usize) -> PoolConfig {
    PoolConfig {
        workers,
        queue_size,
        max_batch_size: 64,
        batch_window: Duration::ZERO,
        timeout: Duration::from_secs(5),
        deterministic: None,
    }
}

fn collect(pool: &InferencePool, n: usize) -> Vec<PoolResult> {
    let mut out = Vec::new();
    while out.len() < n {
        out.push(pool.recv_timeout(WAIT).expect("a result within the bound"));
    }
    out.sort_by_key(|r| r.tag);
    out
}

#[test]
fn answers_every_request_with_its_own_outputs() {
    let fake = Fake::new(2, 3, 2.0);
    let expect: Vec<Vec<f32>> = (0..50).map(|i| fake.expect(i as f32)).collect();
    let calls = fake.calls.clone();
    let mut cfg = config(2, 100);
    cfg.batch_window = Duration::from_millis(20);
    let pool = InferencePool::new(cfg, vec![fake.into_handle("m")]).expect("pool");
    for i in 0..50u64 {
        pool.submit(0, &[i as f32, 0.5], i).expect("queued");
    }
    let results = collect(&pool, 50);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.tag, i as u64);
        match &result.outcome {
            Outcome::Done { outputs, version } => {
                assert_eq!(outputs.as_slice(), expect[i].as_slice());
                assert_eq!(&**version, "1");
            }
            other => panic!("request {i}: {other:?}"),
        }
    }
    let batches = calls.lock().unwrap().len();
    assert!(
        batches < 50,
        "requests were batched: {batches} calls for 50 rows"
    );
    let stats = pool.stats();
    assert_eq!((stats.submitted, stats.completed), (50, 50));
    assert!(stats.dropped.iter().all(|(_, n)| *n == 0));
}

#[test]
fn a_full_queue_refuses_at_once_instead_of_blocking() {
    let gate = Arc::new(Gate::default());
    let mut fake = Fake::new(1, 1, 1.0);
    fake.gate = Some(gate.clone());
    let mut cfg = config(1, 2);
    cfg.max_batch_size = 1;
    let pool = InferencePool::new(cfg, vec![fake.into_handle("slow")]).expect("pool");
    pool.submit(0, &[0.0], 0).expect("taken by the worker");
    gate.until_waiting(1);
    pool.submit(0, &[1.0], 1).expect("queued");
    pool.submit(0, &[2.0], 2).expect("queued");
    assert_eq!(pool.queue_depth(), 2);
    let started = Instant::now();
    for tag in 3..103 {
        assert_eq!(
            pool.submit(0, &[tag as f32], tag),
            Err(DropReason::QueueFull)
        );
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "100 refusals took {:?}",
        started.elapsed()
    );
    assert_eq!(pool.stats().dropped(DropReason::QueueFull), 100);
    gate.open();
    let results = collect(&pool, 3);
    assert!(results
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Done { .. })));
}

#[test]
fn requests_past_their_deadline_are_answered_timed_out() {
    let gate = Arc::new(Gate::default());
    let mut fake = Fake::new(1, 1, 1.0);
    fake.gate = Some(gate.clone());
    let mut cfg = config(1, 16);
    cfg.max_batch_size = 1;
    cfg.timeout = Duration::from_millis(30);
    let pool = InferencePool::new(cfg, vec![fake.into_handle("slow")]).expect("pool");
    let started = Instant::now();
    let ticket = pool.submit(0, &[0.0], 0).expect("running");
    assert_eq!(
        ticket.deadline,
        ticket.deadline.max(started + Duration::from_millis(30))
    );
    gate.until_waiting(1);
    let submitting = Instant::now();
    for tag in 1..4 {
        pool.submit(0, &[tag as f32], tag).expect("queued");
    }
    assert!(
        submitting.elapsed() < Duration::from_millis(100),
        "submits behind a stuck model did not wait"
    );
    std::thread::sleep(Duration::from_millis(60));
    gate.open();
    let results = collect(&pool, 4);
    for result in &results {
        assert_eq!(
            result.outcome,
            Outcome::Dropped(DropReason::TimedOut),
            "request {}",
            result.tag
        );
    }
    assert_eq!(pool.stats().dropped(DropReason::TimedOut), 4);
    assert_eq!(pool.stats().completed, 0);
    // The pool keeps serving once the model is fast again.
    pool.submit(0, &[9.0], 9).expect("queued");
    assert!(matches!(
        pool.recv_timeout(WAIT).map(|r| r.outcome),
        Some(Outcome::Done { .. })
    ));
}

#[test]
fn unavailable_models_bad_requests_and_panics_are_typed_drops() {
    let mut panicking = Fake::new(1, 1, 1.0);
    panicking.panic_on = Some(13.0);
    let models = vec![panicking.into_handle("p"), ModelHandle::new("never-loaded")];
    let pool = InferencePool::new(config(1, 16), models).expect("pool");
    assert_eq!(pool.submit(5, &[1.0], 0), Err(DropReason::BadRequest));
    pool.submit(1, &[1.0], 1).expect("queued");
    pool.submit(0, &[1.0, 2.0], 2).expect("queued");
    let results = collect(&pool, 2);
    assert_eq!(
        results[0].outcome,
        Outcome::Dropped(DropReason::ModelUnavailable)
    );
    assert_eq!(results[1].outcome, Outcome::Dropped(DropReason::BadRequest));

    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    pool.submit(0, &[13.0], 3).expect("queued");
    let panicked = pool.recv_timeout(WAIT).expect("answered");
    std::panic::set_hook(prev);
    assert_eq!(panicked.outcome, Outcome::Dropped(DropReason::Failed));
    pool.submit(0, &[4.0], 4).expect("queued");
    let after = pool.recv_timeout(WAIT).expect("answered");
    assert!(
        matches!(after.outcome, Outcome::Done { .. }),
        "worker survived: {after:?}"
    );
    let stats = pool.stats();
    assert_eq!(stats.dropped(DropReason::BadRequest), 2);
    assert_eq!(stats.dropped(DropReason::ModelUnavailable), 1);
    assert_eq!(stats.dropped(DropReason::Failed), 1);
}

#[test]
fn shutdown_answers_what_is_queued_and_refuses_the_rest() {
    let fake = Fake::new(1, 1, 1.0);
    let mut pool = InferencePool::new(config(2, 64), vec![fake.into_handle("m")]).expect("pool");
    for tag in 0..20 {
        pool.submit(0, &[tag as f32], tag).expect("queued");
    }
    pool.shutdown();
    let mut results = Vec::new();
    pool.drain_into(&mut results);
    assert_eq!(results.len(), 20);
    assert_eq!(pool.submit(0, &[1.0], 99), Err(DropReason::ShuttingDown));
}
