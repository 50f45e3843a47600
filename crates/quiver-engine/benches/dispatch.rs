//! The dispatch loop on the standard scenario (100 strategies × 400
//! instruments, ~10 followers per instrument), per tick.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use quiver_core::Tick;
use quiver_engine::scenario::Scenario;
use quiver_engine::{Engine, Input, Output};

fn dispatch(c: &mut Criterion) {
    let scenario = Scenario {
        ticks: 200_000,
        ..Scenario::STANDARD
    };
    let ticks: Vec<Tick> = scenario.ticks().iter().collect();
    // Warm every ring first so the measured ticks run every strategy.
    let (warm, measured) = ticks.split_at(100_000);
    let mut group = c.benchmark_group("dispatch");
    group.throughput(Throughput::Elements(measured.len() as u64));
    group.sample_size(10);
    group.bench_function("standard_scenario_100k_ticks", |b| {
        b.iter_batched(
            || {
                let mut engine = Engine::new(scenario.entries()).expect("scenario builds");
                let mut out = Output::default();
                for (seq, tick) in warm.iter().enumerate() {
                    let seq = seq as u64;
                    engine.process(Input::Tick { seq, tick }, &mut out);
                }
                out.signals.clear();
                (engine, out)
            },
            |(mut engine, mut out)| {
                for (seq, tick) in measured.iter().enumerate() {
                    out.signals.clear();
                    let seq = seq as u64;
                    engine.process(Input::Tick { seq, tick }, &mut out);
                }
                engine
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
