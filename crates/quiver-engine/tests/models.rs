//! The engine's model stage: requests queued per evaluation, one runner call
//! per flush, results applied in (tick, strategy) order whatever the flush
//! size, and every way a prediction can be missing or wrong counted.
//!
//! The runner here is a formula of the row (the contract the engine relies
//! on: a row's result depends only on the row); real ONNX models run through
//! the same path in the CLI tests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use proptest::prelude::*;
use quiver_core::synthetic::SyntheticSpec;
use quiver_core::{Price, Side, Tick};
use quiver_engine::{
    Engine, EngineSignal, Flight, Input, ModelBatch, ModelIdx, ModelResults, ModelRunner,
    ModelStamp, Output, StrategyEntry, StrategyIdx, Unavailable,
};
use quiver_strategy::ml::{MlFeature, MlStrategy, ModelInfo, ModelOutput, PostProcessor};
use quiver_strategy::rules::Momentum;
use quiver_strategy::{
    FeatureSpec, HybridStrategy, Logic, ModelStrategy, Policy, StandardValidator, Strategy,
};

/// "Probabilities" from the row: BUY when the price is above its SMA(3),
/// SELL below, HOLD when equal — a pure function of the row.
struct Formula {
    version: &'static str,
    calls: usize,
    rows: usize,
    /// Model index whose requests fail with this reason.
    failing: Option<(ModelIdx, Unavailable)>,
    /// Return out-of-range outputs instead.
    garbage: bool,
}

impl Formula {
    fn new() -> Formula {
        Formula {
            version: "1.0.0",
            calls: 0,
            rows: 0,
            failing: None,
            garbage: false,
        }
    }
}

impl ModelRunner for Formula {
    fn run(&mut self, batch: &ModelBatch<'_>, results: &mut ModelResults) {
        self.calls += 1;
        self.rows += batch.requests.len();
        for (i, request) in batch.requests.iter().enumerate() {
            if let Some((model, why)) = self.failing {
                if request.model == model {
                    results.fail(i, why);
                    continue;
                }
            }
            let row = batch.row(i);
            let (sma, price) = (row[0], row[1]);
            let probabilities = if self.garbage {
                [0.9, 0.9, 0.9]
            } else if price > sma {
                [0.1, 0.1, 0.8]
            } else if price < sma {
                [0.7, 0.2, 0.1]
            } else {
                [0.1, 0.8, 0.1]
            };
            results.set(i, &probabilities);
        }
        for model in 0..batch.models.len() {
            results.set_version(ModelIdx::new(model as u32), self.version);
        }
    }
}

fn model(name: &str) -> ModelInfo {
    ModelInfo {
        name: name.to_owned(),
        n_features: 2,
        output: ModelOutput::Classifier {
            classes: vec![-1, 0, 1],
        },
    }
}

fn ml(name: &str) -> Logic {
    Logic::Model(ml_strategy(name))
}

fn ml_strategy(name: &str) -> Box<MlStrategy> {
    Box::new(MlStrategy::new(
        "ml",
        &[MlFeature::Shared(FeatureSpec::Sma(3)), MlFeature::Price],
        model(name),
        PostProcessor {
            confidence_threshold: 0.5,
            quantity: 5,
            temperature: 1.0,
        },
    ))
}

fn entry(id: &str, logic: impl Into<Logic>, instruments: &[u64]) -> StrategyEntry {
    StrategyEntry {
        id: id.to_owned(),
        logic: logic.into(),
        instruments: instruments.to_vec(),
        brokers: vec!["paper".to_owned()],
        validator: StandardValidator::default(),
        guards: quiver_strategy::GuardSpec::default(),
        schedule: quiver_engine::Schedule::default(),
    }
}

/// Rules, ML on two models and a hybrid with an ML part, over 3 instruments.
fn mixed_engine() -> Engine {
    Engine::new(mixed_engine_entries()).unwrap()
}

fn ticks(n: u64) -> Vec<Tick> {
    SyntheticSpec::new(3, n, 7).iter().collect()
}

/// Replays `ticks`, flushing whenever `flush_at` requests are pending.
fn replay(
    engine: &mut Engine,
    runner: &mut Formula,
    ticks: &[Tick],
    flush_at: usize,
) -> Vec<EngineSignal> {
    replay_all(engine, runner, ticks, flush_at).signals
}

fn replay_all(
    engine: &mut Engine,
    runner: &mut Formula,
    ticks: &[Tick],
    flush_at: usize,
) -> Output {
    let mut out = Output::default();
    for (seq, tick) in ticks.iter().enumerate() {
        dispatch(engine, seq as u64, tick, &mut out);
        if engine.pending_requests() >= flush_at {
            engine.flush(runner, &mut out);
        }
    }
    engine.flush(runner, &mut out);
    out
}

fn dispatch(engine: &mut Engine, seq: u64, tick: &Tick, out: &mut Output) {
    engine.process(Input::Tick { seq, tick }, out);
}

fn land(engine: &mut Engine, flight: Flight, results: &ModelResults, out: &mut Output) {
    engine.process(Input::Landed { flight, results }, out);
}

#[test]
fn signals_come_out_in_tick_then_strategy_order_whatever_the_flush_size() {
    let ticks = ticks(2_000);
    let mut reference = None;
    for flush_at in [1, 7, 64, 1024, usize::MAX] {
        let mut engine = mixed_engine();
        let mut runner = Formula::new();
        let out = replay(&mut engine, &mut runner, &ticks, flush_at);
        // Ordered by (seq, strategy), and the same as every other flush size.
        assert!(
            out.windows(2)
                .all(|w| (w[0].seq, w[0].strategy) < (w[1].seq, w[1].strategy)),
            "flush_at {flush_at}: out of order"
        );
        // One runner call per flush: per tick at flush_at 1 (each instrument
        // has two model followers), one in all without intermediate flushes.
        match flush_at {
            1 => assert!(runner.calls <= runner.rows && runner.rows <= 2 * runner.calls),
            usize::MAX => assert_eq!(runner.calls, 1),
            n => assert!(runner.calls <= runner.rows / n + 1, "flush_at {n}"),
        }
        match &reference {
            None => reference = Some(out),
            Some(reference) => assert_eq!(&out, reference, "flush_at {flush_at}"),
        }
    }
    let out = reference.unwrap();
    let by = |id: &str| {
        out.iter()
            .filter(|s| s.strategy == strategy_index(id))
            .count()
    };
    for id in ["mom", "ml-a", "ml-b", "hyb", "mom-late"] {
        assert!(by(id) > 0, "{id} never signalled");
    }
}

fn strategy_index(id: &str) -> StrategyIdx {
    mixed_engine().strategy_index(id).unwrap()
}

#[test]
fn ml_decisions_follow_the_model_and_carry_its_stamp() {
    let mut engine = Engine::new(vec![entry("ml", ml("a"), &[7])]).unwrap();
    let mut runner = Formula::new();
    let prices = [100, 100, 100, 103, 103, 97];
    let ticks: Vec<Tick> = prices
        .iter()
        .enumerate()
        .map(|(i, p)| Tick::trade(i as i64, 7, Price::from_int(*p), 1))
        .collect();
    let out = replay(&mut engine, &mut runner, &ticks, usize::MAX);
    // Tick 2: price == SMA(3) → HOLD. Tick 3: 103 > 101 → BUY. Tick 4:
    // 103 > 102 → BUY. Tick 5: 97 < 101 → SELL.
    let sides: Vec<(u64, Side)> = out.iter().map(|s| (s.seq, s.decision.side)).collect();
    assert_eq!(sides, [(3, Side::Buy), (4, Side::Buy), (5, Side::Sell)]);
    assert_eq!(out[0].decision.quantity, 5);
    assert_eq!(out[0].decision.price, Price::from_int(103));
    let stamp = out[0].model.unwrap();
    assert_eq!(engine.model_name(stamp), "a");
    assert_eq!(engine.model_version(stamp), "1.0.0");
    assert_ne!(engine.feature_hash(StrategyIdx::new(0)), 0);
    let stats = engine.stats();
    assert_eq!(stats.inferences, 4);
    // Ticks 0 and 1: SMA(3) not warm yet → required history keeps them out.
    assert_eq!(stats.skipped_features, 0);
    assert_eq!(runner.calls, 1);

    // A hot-swapped version is recorded on the signals it produced.
    runner.version = "2.0.0";
    let more: Vec<Tick> = [110, 90]
        .iter()
        .enumerate()
        .map(|(i, p)| Tick::trade(10 + i as i64, 7, Price::from_int(*p), 1))
        .collect();
    let mut out = Output::default();
    for (i, t) in more.iter().enumerate() {
        dispatch(&mut engine, 100 + i as u64, t, &mut out);
    }
    engine.flush(&mut runner, &mut out);
    assert_eq!(out.signals.len(), 2);
    let stamp = out.signals[0].model.unwrap();
    assert_eq!(
        stamp,
        ModelStamp {
            model: ModelIdx::new(0),
            version: 1
        }
    );
    assert_eq!(engine.model_version(stamp), "2.0.0");
}

#[test]
fn missing_predictions_hold_and_are_counted_while_rules_run_on() {
    for why in Unavailable::ALL {
        let mut engine = mixed_engine();
        let mut runner = Formula {
            failing: Some((ModelIdx::new(0), why)),
            ..Formula::new()
        };
        let out = replay(&mut engine, &mut runner, &ticks(600), 64);
        let from = |id: &str| {
            out.iter()
                .filter(|s| s.strategy == strategy_index(id))
                .count()
        };
        assert_eq!(from("ml-a"), 0, "{why:?}");
        assert!(from("ml-b") > 0, "{why:?}");
        assert!(from("mom") > 0, "{why:?}");
        // The hybrid falls back on its rules part, without a model stamp.
        assert!(from("hyb") > 0, "{why:?}");
        assert!(out
            .iter()
            .filter(|s| s.strategy == strategy_index("hyb"))
            .all(|s| s.model.is_none()));
        let stats = engine.stats();
        let slot = Unavailable::ALL.iter().position(|w| *w == why).unwrap();
        let a_requests = engine.strategy_stats(strategy_index("ml-a")).inferences
            + engine.strategy_stats(strategy_index("hyb")).inferences;
        assert_eq!(stats.unavailable[slot], a_requests, "{why:?}");
        assert_eq!(stats.unavailable.iter().sum::<u64>(), a_requests);
    }
}

#[test]
fn out_of_range_outputs_are_rejected_and_counted() {
    let mut engine = mixed_engine();
    let mut runner = Formula {
        garbage: true,
        ..Formula::new()
    };
    let out = replay(&mut engine, &mut runner, &ticks(300), 16);
    assert!(out
        .iter()
        .all(|s| s.strategy != strategy_index("ml-a") && s.strategy != strategy_index("ml-b")));
    let stats = engine.stats();
    assert!(stats.inferences > 0);
    assert_eq!(stats.rejected_outputs, stats.inferences);
}

/// A model strategy whose feature extraction or post-processing panics.
struct Exploding {
    inner: MlStrategy,
    in_complete: bool,
}

impl Strategy for Exploding {
    fn name(&self) -> &str {
        "exploding"
    }
    fn kind(&self) -> quiver_strategy::StrategyKind {
        quiver_strategy::StrategyKind::Ml
    }
    fn required_history(&self) -> usize {
        self.inner.required_history()
    }
    fn features(&self) -> Vec<FeatureSpec> {
        self.inner.features()
    }
    fn on_tick(
        &mut self,
        _tick: &Tick,
        _ctx: quiver_strategy::TickContext<'_>,
    ) -> Option<quiver_core::Decision> {
        None
    }
}

impl ModelStrategy for Exploding {
    fn model(&self) -> &quiver_strategy::ModelUse {
        self.inner.model()
    }
    fn prepare(
        &mut self,
        tick: &Tick,
        ctx: quiver_strategy::TickContext<'_>,
        row: &mut [f32],
    ) -> quiver_strategy::Step {
        if !self.in_complete && tick.ts_ns % 2 == 0 {
            panic!("deliberate: prepare");
        }
        self.inner.prepare(tick, ctx, row)
    }
    fn complete(
        &mut self,
        tick: &Tick,
        carry: quiver_strategy::Carry,
        prediction: quiver_strategy::Prediction<'_>,
    ) -> quiver_strategy::Completion {
        if self.in_complete && tick.ts_ns % 2 == 0 {
            panic!("deliberate: complete");
        }
        self.inner.complete(tick, carry, prediction)
    }
}

#[test]
fn panics_in_either_stage_stay_inside_the_strategy() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info.to_string();
        if !text.contains("deliberate") {
            default_hook(info);
        }
    }));
    for in_complete in [false, true] {
        let mut healthy = mixed_engine();
        let reference = replay(&mut healthy, &mut Formula::new(), &ticks(400), 32);
        let mut entries = vec![entry(
            "boom",
            Logic::Model(Box::new(Exploding {
                inner: *ml_strategy("a"),
                in_complete,
            })),
            &[1001, 1002, 1003],
        )];
        entries.extend(mixed_engine_entries());
        let mut engine = Engine::new(entries).unwrap();
        let out = replay_all(&mut engine, &mut Formula::new(), &ticks(400), 32);
        let boom = StrategyIdx::new(0);
        let others: Vec<(u64, String, Side)> = out
            .signals
            .iter()
            .filter(|s| s.strategy != boom)
            .map(|s| {
                (
                    s.seq,
                    engine.strategy_id(s.strategy).to_owned(),
                    s.decision.side,
                )
            })
            .collect();
        let expected: Vec<(u64, String, Side)> = reference
            .iter()
            .map(|s| {
                (
                    s.seq,
                    healthy.strategy_id(s.strategy).to_owned(),
                    s.decision.side,
                )
            })
            .collect();
        assert_eq!(others, expected, "in_complete {in_complete}");
        let faults = out.faults;
        assert!(!faults.is_empty());
        assert!(faults.iter().all(|f| f.strategy == boom));
        let stage = if in_complete { "complete" } else { "prepare" };
        assert!(faults[0].message.contains(stage), "{}", faults[0].message);
    }
}

fn mixed_engine_entries() -> Vec<StrategyEntry> {
    vec![
        entry(
            "mom",
            Box::new(Momentum::new(3, 0.001, 1)),
            &[1001, 1002, 1003],
        ),
        entry("ml-a", ml("a"), &[1001, 1002]),
        entry("ml-b", ml("b"), &[1002, 1003]),
        entry(
            "hyb",
            Logic::Model(Box::new(HybridStrategy::new(
                Box::new(Momentum::new(4, 0.001, 10)),
                ml_strategy("a") as Box<dyn ModelStrategy>,
                Policy::majority_vote(0.55),
            ))),
            &[1001, 1003],
        ),
        entry(
            "mom-late",
            Box::new(Momentum::new(5, 0.001, 2)),
            &[1001, 1003],
        ),
    ]
}

#[test]
fn an_engine_without_models_never_waits() {
    let mut engine = Engine::new(vec![entry(
        "mom",
        Box::new(Momentum::new(3, 0.001, 1)),
        &[1001, 1002, 1003],
    )])
    .unwrap();
    assert!(engine.models().is_empty());
    let mut out = Output::default();
    for (seq, tick) in ticks(200).iter().enumerate() {
        dispatch(&mut engine, seq as u64, tick, &mut out);
        assert!(!engine.has_pending());
    }
    assert!(!out.signals.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any schedule of flushes gives the output of one flush at the end.
    #[test]
    fn any_flush_schedule_gives_the_same_signals(
        seed in 1u64..1_000,
        flushes in proptest::collection::vec(0usize..400, 0..12),
    ) {
        let ticks: Vec<Tick> = SyntheticSpec::new(3, 400, seed).iter().collect();
        let mut once = mixed_engine();
        let reference = replay(&mut once, &mut Formula::new(), &ticks, usize::MAX);
        let mut engine = mixed_engine();
        let mut runner = Formula::new();
        let mut out = Output::default();
        for (seq, tick) in ticks.iter().enumerate() {
            dispatch(&mut engine, seq as u64, tick, &mut out);
            if flushes.contains(&seq) {
                engine.flush(&mut runner, &mut out);
            }
        }
        engine.flush(&mut runner, &mut out);
        prop_assert_eq!(out.signals, reference);
    }
}

#[test]
fn restart_preload_covers_the_whole_past_of_unbounded_features() {
    let wilder = Logic::Model(Box::new(MlStrategy::new(
        "ml",
        &[MlFeature::Shared(FeatureSpec::Rsi(14)), MlFeature::Price],
        model("a"),
        PostProcessor {
            confidence_threshold: 0.5,
            quantity: 1,
            temperature: 1.0,
        },
    )));
    let engine = Engine::new(vec![
        entry("mom", Box::new(Momentum::new(30, 0.001, 1)), &[1, 2]),
        entry("wilder", wilder, &[2]),
    ])
    .unwrap();
    let depth = |token| engine.preload_depth(engine.instrument_index(token).unwrap());
    // Momentum's window fits its ring; Wilder's RSI remembers every tick.
    assert_eq!(
        depth(1),
        engine.ring_fill(engine.instrument_index(1).unwrap()).1
    );
    assert_eq!(depth(2), usize::MAX);
}

#[test]
fn a_detached_flight_lands_in_order_while_ticks_keep_coming() {
    let ticks = ticks(1_500);
    let reference = replay(&mut mixed_engine(), &mut Formula::new(), &ticks, usize::MAX);
    let mut engine = mixed_engine();
    let mut runner = Formula::new();
    let mut out = Output::default();
    let mut flying: Option<(Flight, ModelResults)> = None;
    for (c, chunk) in ticks.chunks(37).enumerate() {
        for (j, tick) in chunk.iter().enumerate() {
            dispatch(&mut engine, (c * 37 + j) as u64, tick, &mut out);
        }
        if flying.is_some() {
            // One flight at a time: the next waits for this one to land.
            assert!(engine.detach().is_none());
        }
        // The previous chunk's flight lands only after this chunk was
        // dispatched, as in the live service.
        if let Some((flight, results)) = flying.take() {
            land(&mut engine, flight, &results, &mut out);
        }
        if let Some(flight) = engine.detach() {
            let mut results = ModelResults::default();
            let batch = flight.batch(engine.models());
            results.reset_for(&batch);
            runner.run(&batch, &mut results);
            flying = Some((flight, results));
        }
    }
    if let Some((flight, results)) = flying.take() {
        land(&mut engine, flight, &results, &mut out);
    }
    engine.flush(&mut runner, &mut out);
    assert!(!engine.has_pending());
    assert_eq!(out.signals, reference);
}
