//! Cost of encoding one signal line (`encode_signal`), as replay and the live
//! service do for every signal and broker.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use std::fmt;

use criterion::{criterion_group, criterion_main, Criterion};
use quiver_core::{MetaValue, Metadata, Price, Reasoning, Side};
use quiver_io::{encode_signal, SignalRecord};

fn render(f: &mut fmt::Formatter<'_>, [change, lookback]: [f64; 2]) -> fmt::Result {
    write!(f, "Momentum: +{:.2}% over {lookback}", change * 100.0)
}

fn encode(c: &mut Criterion) {
    let reasoning = Reasoning::rendered(render, [0.012_345_6, 20.0]);
    let metadata = Metadata::new(&["change"], &[MetaValue::F64(0.012_345_6)]);
    let record = SignalRecord {
        seq: 812_345,
        ts_ns: 1_767_584_736_540_000_000,
        signal_id: 0x5f0c_3e0b_8d1e_7a42,
        strategy_id: "bench-042",
        instrument: 256_265,
        broker: "paper",
        side: Side::Buy,
        confidence: 0.061_234_567_891_2,
        quantity: 100,
        price: Price::parse("101.05").expect("price"),
        reasoning: &reasoning,
        metadata: &metadata,
        model: None,
        correlation_id: None,
    };
    let mut line = Vec::with_capacity(512);
    c.bench_function("encode_signal", |b| {
        b.iter(|| {
            line.clear();
            encode_signal(std::hint::black_box(&record), &mut line).expect("encode");
            std::hint::black_box(&line);
        })
    });
}

criterion_group!(benches, encode);
criterion_main!(benches);
