//! Engine behaviour: routing, warm-up, shared history, fault isolation,
//! quarantine, validation, and no cross-talk between instruments.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use std::sync::{Arc, Mutex};

use quiver_core::synthetic::SyntheticSpec;
use quiver_core::{Decision, Metadata, Price, Reasoning, Side, Tick};
use quiver_engine::scenario::{strategy_for, Scenario};
use quiver_engine::{
    Engine, EngineSignal, Input, Output, StrategyEntry, StrategyIdx, StrategyState,
    QUARANTINE_AFTER,
};
use quiver_strategy::{Logic, StandardValidator, Strategy, StrategyKind, TickContext};

/// One recorded call: (timestamp, instrument, history length, history prices).
type Call = (i64, u64, usize, Vec<f64>);

/// Records every call it receives.
struct Recorder {
    need: usize,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Strategy for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn kind(&self) -> StrategyKind {
        StrategyKind::Rules
    }
    fn required_history(&self) -> usize {
        self.need
    }
    fn on_tick(&mut self, tick: &Tick, ctx: TickContext<'_>) -> Option<Decision> {
        let history = ctx.history;
        self.calls.lock().unwrap().push((
            tick.ts_ns,
            tick.instrument,
            history.len(),
            history.prices().to_vec(),
        ));
        None
    }
}

/// Panics on every `every`-th call, otherwise buys.
struct Faulty {
    every: u64,
    calls: u64,
}

fn faulty(every: u64) -> Box<Faulty> {
    quiet_deliberate_panics();
    Box::new(Faulty { every, calls: 0 })
}

/// Keeps the deliberate panics out of the test output; others still print.
fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let deliberate = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|m| m.starts_with("deliberate failure"));
            if !deliberate {
                default(info);
            }
        }));
    });
}

impl Strategy for Faulty {
    fn name(&self) -> &str {
        "faulty"
    }
    fn kind(&self) -> StrategyKind {
        StrategyKind::Rules
    }
    fn required_history(&self) -> usize {
        1
    }
    fn on_tick(&mut self, tick: &Tick, _ctx: TickContext<'_>) -> Option<Decision> {
        self.calls += 1;
        if self.calls.is_multiple_of(self.every) {
            panic!("deliberate failure at {}", tick.ts_ns);
        }
        Some(Decision {
            side: Side::Buy,
            confidence: 0.5,
            quantity: 1,
            price: tick.price,
            reasoning: Reasoning::fixed(faulty_reason),
            metadata: Metadata::EMPTY,
        })
    }
}

quiver_core::fixed_reason!(faulty_reason, "faulty");

fn entry(id: &str, strategy: Box<dyn Strategy>, instruments: &[u64]) -> StrategyEntry {
    StrategyEntry {
        id: id.to_owned(),
        logic: Logic::Rules(strategy),
        instruments: instruments.to_vec(),
        brokers: vec!["paper".to_owned()],
        validator: StandardValidator::default(),
        guards: quiver_strategy::GuardSpec::default(),
        schedule: quiver_engine::Schedule::default(),
    }
}

fn tick(ts: i64, instrument: u64, price: i64) -> Tick {
    Tick::trade(ts, instrument, Price::from_int(price), 1)
}

/// Dispatches `ticks` (seq = position); returns everything that came out.
fn run_all(engine: &mut Engine, ticks: &[Tick]) -> Output {
    let mut out = Output::default();
    for (seq, t) in ticks.iter().enumerate() {
        engine.process(
            Input::Tick {
                seq: seq as u64,
                tick: t,
            },
            &mut out,
        );
    }
    out
}

fn run(engine: &mut Engine, ticks: &[Tick]) -> Vec<EngineSignal> {
    run_all(engine, ticks).signals
}

fn s(index: u32) -> StrategyIdx {
    StrategyIdx::new(index)
}

#[test]
fn routes_only_followed_instruments_after_warmup_over_one_shared_ring() {
    let short = Arc::new(Mutex::new(Vec::new()));
    let long = Arc::new(Mutex::new(Vec::new()));
    let mut engine = Engine::new(vec![
        entry(
            "short",
            Box::new(Recorder {
                need: 2,
                calls: short.clone(),
            }),
            &[7, 9],
        ),
        entry(
            "long",
            Box::new(Recorder {
                need: 3,
                calls: long.clone(),
            }),
            &[7],
        ),
    ])
    .unwrap();
    let ticks = [
        tick(1, 7, 10),
        tick(2, 9, 50),
        tick(3, 7, 11),
        tick(4, 8, 99),
        tick(5, 7, 12),
        tick(6, 9, 51),
        tick(7, 7, 13),
    ];
    run(&mut engine, &ticks);
    let short = short.lock().unwrap();
    let long = long.lock().unwrap();
    // "short" needs 2 ticks: first call on instrument 7 at ts 3, on 9 at ts 6.
    let seen: Vec<(i64, u64, usize)> = short.iter().map(|c| (c.0, c.1, c.2)).collect();
    assert_eq!(seen, vec![(3, 7, 2), (5, 7, 3), (6, 9, 2), (7, 7, 3)]);
    // Instrument 7's ring is sized by the larger requirement (3) and shared.
    assert_eq!(short[3].3, vec![11.0, 12.0, 13.0]);
    let seen: Vec<(i64, usize)> = long.iter().map(|c| (c.0, c.2)).collect();
    assert_eq!(seen, vec![(5, 3), (7, 3)]);
    assert_eq!(long[1].3, short[3].3);
    assert_eq!(
        engine.ring_fill(engine.instrument_index(7).unwrap()),
        (3, 3)
    );
    assert_eq!(
        engine.ring_fill(engine.instrument_index(9).unwrap()),
        (2, 2)
    );
    let stats = engine.stats();
    assert_eq!(
        (stats.ticks, stats.unrouted_ticks, stats.evaluations),
        (7, 1, 6)
    );
}

#[test]
fn warmup_state_turns_active() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut engine = Engine::new(vec![entry(
        "r",
        Box::new(Recorder { need: 2, calls }),
        &[1],
    )])
    .unwrap();
    run(&mut engine, &[tick(1, 1, 10)]);
    assert_eq!(engine.strategy_state(s(0)), StrategyState::Warmup);
    run(&mut engine, &[tick(2, 1, 10)]);
    assert_eq!(engine.strategy_state(s(0)), StrategyState::Active);
}

fn mixed_entries(n: usize, instruments: &[u64]) -> Vec<StrategyEntry> {
    (0..n)
        .map(|s| {
            let follows: Vec<u64> = instruments
                .iter()
                .copied()
                .filter(|t| !(*t as usize + s).is_multiple_of(3))
                .collect();
            entry(&format!("s{s}"), strategy_for(s), &follows)
        })
        .collect()
}

#[test]
fn a_panicking_strategy_changes_nobody_elses_output() {
    let spec = SyntheticSpec::new(6, 5_000, 11);
    let ticks: Vec<Tick> = spec.iter().collect();
    let tokens: Vec<u64> = spec.tokens().collect();

    let mut clean = Engine::new(mixed_entries(20, &tokens)).unwrap();
    let expected = run(&mut clean, &ticks);
    assert!(expected.len() > 100, "the scenario should produce signals");

    let mut entries = mixed_entries(20, &tokens);
    entries.insert(7, entry("faulty", faulty(3), &tokens));
    let mut with_fault = Engine::new(entries).unwrap();
    let out = run_all(&mut with_fault, &ticks);
    let got = out.signals;

    let faulty_idx = s(7);
    let others: Vec<(u64, String, Decision)> = got
        .iter()
        .filter(|s| s.strategy != faulty_idx)
        .map(|s| {
            (
                s.seq,
                with_fault.strategy_id(s.strategy).to_owned(),
                s.decision,
            )
        })
        .collect();
    let expected: Vec<(u64, String, Decision)> = expected
        .iter()
        .map(|s| (s.seq, clean.strategy_id(s.strategy).to_owned(), s.decision))
        .collect();
    assert_eq!(others, expected);

    // The faulty strategy kept running between its panics, each one recorded.
    let faults = out.faults;
    assert!(faults.len() > 100);
    assert!(faults.iter().all(|f| f.strategy == faulty_idx));
    assert!(faults[0].message.starts_with("deliberate failure at "));
    assert_eq!(
        with_fault.strategy_stats(faulty_idx).panics,
        faults.len() as u64
    );
    assert!(got.iter().any(|s| s.strategy == faulty_idx));
    assert_ne!(
        with_fault.strategy_state(faulty_idx),
        StrategyState::Quarantined
    );
}

#[test]
fn consecutive_panics_quarantine_the_strategy() {
    let mut engine = Engine::new(vec![
        entry("always", faulty(1), &[1]),
        entry("fine", faulty(u64::MAX), &[1]),
    ])
    .unwrap();
    let ticks: Vec<Tick> = (1..=20).map(|ts| tick(ts, 1, 100)).collect();
    let out = run_all(&mut engine, &ticks);
    let signals = out.signals;
    assert_eq!(engine.strategy_state(s(0)), StrategyState::Quarantined);
    // Warm at the first tick, quarantined at the fifth panic, with its time.
    let changes: Vec<_> = out
        .transitions
        .iter()
        .filter(|t| t.strategy == s(0))
        .map(|t| (t.to, t.cause, t.seq, t.ts_ns))
        .collect();
    let quarantined_at = u64::from(QUARANTINE_AFTER) - 1;
    assert_eq!(
        changes,
        [
            (
                StrategyState::Active,
                quiver_engine::Cause::HistoryReady,
                Some(0),
                Some(1)
            ),
            (
                StrategyState::Quarantined,
                quiver_engine::Cause::Panicked,
                Some(quarantined_at),
                Some(quarantined_at as i64 + 1)
            ),
        ]
    );
    assert_eq!(
        engine.strategy_stats(s(0)).panics,
        u64::from(QUARANTINE_AFTER)
    );
    assert_eq!(
        engine.strategy_stats(s(0)).evaluations,
        u64::from(QUARANTINE_AFTER)
    );
    assert_eq!(signals.len(), 20);
    assert!(signals.iter().all(|signal| signal.strategy == s(1)));
}

#[test]
fn invalid_decisions_are_dropped_and_counted() {
    let mut strict = entry("strict", faulty(u64::MAX), &[1]);
    strict.validator = StandardValidator {
        min_confidence: 0.6,
        max_quantity: 10,
    };
    let mut engine = Engine::new(vec![strict]).unwrap();
    let signals = run(&mut engine, &[tick(1, 1, 100), tick(2, 1, 100)]);
    assert!(signals.is_empty());
    let stats = engine.stats();
    assert_eq!(stats.dropped_total(), 2);
    assert_eq!(stats.dropped[3], 2, "below_min_confidence");
}

#[test]
fn one_thousand_ticks_through_one_hundred_strategies_without_cross_talk() {
    let spec = SyntheticSpec::new(10, 1_000, 3);
    let ticks: Vec<Tick> = spec.iter().collect();
    let tokens: Vec<u64> = spec.tokens().collect();
    let mut together = Engine::new(mixed_entries(100, &tokens)).unwrap();
    let all = run(&mut together, &ticks);
    assert!(all.len() > 50);
    // Each instrument alone, through a fresh engine, gives exactly its share.
    for &token in &tokens {
        let mut alone = Engine::new(mixed_entries(100, &tokens)).unwrap();
        let mut out = Output::default();
        for (seq, t) in ticks.iter().enumerate() {
            if t.instrument == token {
                let seq = seq as u64;
                alone.process(Input::Tick { seq, tick: t }, &mut out);
            }
        }
        let got = out.signals;
        let expected: Vec<&EngineSignal> = all.iter().filter(|s| s.instrument == token).collect();
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            expected,
            "instrument {token}"
        );
    }
}

#[test]
fn standard_scenario_shape() {
    let scenario = Scenario {
        ticks: 10,
        ..Scenario::STANDARD
    };
    let entries = scenario.entries();
    assert_eq!(entries.len(), 100);
    let engine = Engine::new(entries).unwrap();
    assert_eq!(engine.instrument_tokens().len(), 400);
    let mut followers = vec![0; 400];
    for s in engine.strategies() {
        for t in engine.instruments(s) {
            followers[engine.instrument_index(*t).unwrap().index()] += 1;
        }
    }
    assert!(followers.iter().all(|&f| f == 10));
    let kinds: std::collections::BTreeSet<&str> = engine
        .strategies()
        .map(|s| engine.strategy_kind(s).as_str())
        .collect();
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), ["hybrid", "rules"]);
}

#[test]
fn duplicate_ids_are_refused() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let err = Engine::new(vec![
        entry(
            "x",
            Box::new(Recorder {
                need: 1,
                calls: calls.clone(),
            }),
            &[1],
        ),
        entry("x", Box::new(Recorder { need: 1, calls }), &[1]),
    ])
    .err()
    .unwrap();
    assert_eq!(err.to_string(), "duplicate strategy id \"x\"");
}

#[test]
fn warming_up_history_then_resuming_equals_an_uninterrupted_run() {
    let spec = SyntheticSpec::new(5, 4_000, 21);
    let ticks: Vec<Tick> = spec.iter().collect();
    let tokens: Vec<u64> = spec.tokens().collect();
    let mut whole = Engine::new(mixed_entries(30, &tokens)).unwrap();
    let expected: Vec<EngineSignal> = run(&mut whole, &ticks)
        .into_iter()
        .filter(|s| s.seq >= 2_500)
        .collect();
    assert!(!expected.is_empty());
    // A restarted engine preloads the last 500 ticks (~100 per instrument,
    // more than any lookback in the mix) before resuming at tick 2,500.
    let mut resumed = Engine::new(mixed_entries(30, &tokens)).unwrap();
    let mut out = Output::default();
    for t in &ticks[2_000..2_500] {
        resumed.process(Input::WarmUp(t), &mut out);
    }
    // An unfollowed instrument's warm-up tick is ignored.
    resumed.process(Input::WarmUp(&tick(1, 424_242, 1)), &mut out);
    assert!(out.signals.is_empty());
    for (seq, t) in ticks.iter().enumerate().skip(2_500) {
        let seq = seq as u64;
        resumed.process(Input::Tick { seq, tick: t }, &mut out);
    }
    assert_eq!(out.signals, expected);
}
