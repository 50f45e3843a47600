//! Shared features vs per-strategy indicators: per-tick cost on one instrument
//! with 1 and 100 strategies reading `zscore(20)` from the shared store, and
//! with 1 and 100 strategies each computing their own z-score from history.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use quiver_core::synthetic::SyntheticSpec;
use quiver_core::{Decision, Metadata, Reasoning, Side, Tick};
use quiver_engine::{Engine, Input, Output, StrategyEntry};
use quiver_features::exact;
use quiver_strategy::rules::MeanReversion;
use quiver_strategy::{Logic, StandardValidator, Strategy, StrategyKind, TickContext};

quiver_core::fixed_reason!(own, "own z-score");

/// The pre-store way: every strategy recomputes its z-score from the window.
struct OwnZScore {
    lookback: usize,
    z_entry: f64,
}

impl Strategy for OwnZScore {
    fn name(&self) -> &str {
        "own_zscore"
    }
    fn kind(&self) -> StrategyKind {
        StrategyKind::Rules
    }
    fn required_history(&self) -> usize {
        self.lookback
    }
    fn on_tick(&mut self, tick: &Tick, ctx: TickContext<'_>) -> Option<Decision> {
        let window = ctx.history.last_prices(self.lookback);
        let (mu, sigma) = exact::mean_and_pstdev(window);
        let sigma = if sigma == 0.0 { 1e-9 } else { sigma };
        let z = (ctx.history.current()? - mu) / sigma;
        (z.abs() >= self.z_entry).then(|| Decision {
            side: if z < 0.0 { Side::Buy } else { Side::Sell },
            confidence: (z.abs() / 3.0).min(1.0),
            quantity: 1,
            price: tick.price,
            reasoning: Reasoning::fixed(own),
            metadata: Metadata::one(&["z"], z),
        })
    }
}

fn engine(count: usize, shared: bool) -> Engine {
    let entries = (0..count)
        .map(|s| StrategyEntry {
            id: format!("s{s}"),
            logic: Logic::Rules(if shared {
                Box::new(MeanReversion::new(20, 2.0, 1)) as Box<dyn Strategy>
            } else {
                Box::new(OwnZScore {
                    lookback: 20,
                    z_entry: 2.0,
                })
            }),
            instruments: vec![1001],
            brokers: vec!["paper".to_owned()],
            validator: StandardValidator::default(),
            guards: quiver_strategy::GuardSpec::default(),
            schedule: quiver_engine::Schedule::default(),
        })
        .collect();
    Engine::new(entries).expect("bench engine builds")
}

fn shared_vs_own(c: &mut Criterion) {
    let ticks: Vec<Tick> = SyntheticSpec::new(1, 20_000, 3).iter().collect();
    let mut group = c.benchmark_group("zscore20_one_instrument");
    group.throughput(Throughput::Elements(ticks.len() as u64));
    group.sample_size(20);
    for (name, count, shared) in [
        ("shared_1_strategy", 1, true),
        ("shared_100_strategies", 100, true),
        ("own_1_strategy", 1, false),
        ("own_100_strategies", 100, false),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || (engine(count, shared), Output::with_capacity(count)),
                |(mut engine, mut out)| {
                    for (seq, tick) in ticks.iter().enumerate() {
                        out.signals.clear();
                        let seq = seq as u64;
                        engine.process(Input::Tick { seq, tick }, &mut out);
                    }
                    engine
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, shared_vs_own);
criterion_main!(benches);
