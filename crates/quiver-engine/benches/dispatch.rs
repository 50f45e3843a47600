//! The dispatch loop on the standard scenario (100 strategies × 400
//! instruments, ~10 followers per instrument), per tick.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use quiver_core::Tick;
use quiver_engine::scenario::Scenario;
use quiver_engine::Engine;

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
                let mut out = Vec::new();
                for (seq, t) in warm.iter().enumerate() {
                    engine.on_tick(seq as u64, t, &mut out);
                }
                (engine, out)
            },
            |(mut engine, mut out)| {
                for (seq, t) in measured.iter().enumerate() {
                    out.clear();
                    engine.on_tick(seq as u64, t, &mut out);
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
