//! Cost of one evaluation of each built-in strategy on a warm 64-tick history,
//! cycling through the windows of a random walk.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use quiver_core::synthetic::SyntheticSpec;
use quiver_core::{History, Tick};
use quiver_strategy::exact;
use quiver_strategy::hybrid::{HybridStrategy, Policy, PolicyKind};
use quiver_strategy::rules::{Breakout, MeanReversion, Momentum, Rsi};
use quiver_strategy::Strategy;

const WINDOW: usize = 64;

fn strategies(c: &mut Criterion) {
    let ticks: Vec<Tick> = SyntheticSpec::new(1, 4_096, 5).iter().collect();
    let prices: Vec<f64> = ticks.iter().map(|t| t.price.to_f64()).collect();
    let volumes = vec![1.0; prices.len()];
    let units: Vec<i64> = ticks.iter().map(|t| t.price.units()).collect();
    let mut group = c.benchmark_group("strategy_eval");
    let cases: Vec<(&str, Box<dyn Strategy>)> = vec![
        ("momentum_20", Box::new(Momentum::new(20, 0.004, 1))),
        (
            "mean_reversion_20_z1.5",
            Box::new(MeanReversion::new(20, 1.5, 1)),
        ),
        (
            "mean_reversion_20_z3",
            Box::new(MeanReversion::new(20, 3.0, 1)),
        ),
        ("rsi_14", Box::new(Rsi::new(14, 30.0, 70.0, 1))),
        ("breakout_40", Box::new(Breakout::new(40, 0.0, 1))),
        (
            "hybrid_majority",
            Box::new(HybridStrategy::new(
                Box::new(Momentum::new(20, 0.004, 1)),
                Box::new(MeanReversion::new(20, 1.5, 1)),
                Policy::with_defaults(PolicyKind::MajorityVote),
            )),
        ),
    ];
    for (name, mut strategy) in cases {
        let mut i = WINDOW;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = if i + 1 >= prices.len() { WINDOW } else { i + 1 };
                let history = History::from_slices(
                    &prices[i - WINDOW..i],
                    &units[i - WINDOW..i],
                    &volumes[i - WINDOW..i],
                );
                black_box(strategy.on_tick(&ticks[i - 1], history))
            })
        });
    }
    let mut i = WINDOW;
    group.bench_function("exact_mean_and_pstdev_20", |b| {
        b.iter(|| {
            i = if i + 1 >= prices.len() { WINDOW } else { i + 1 };
            let w = &prices[i - 20..i];
            black_box(exact::mean_and_pstdev(w))
        })
    });
    group.finish();
}

criterion_group!(benches, strategies);
criterion_main!(benches);
