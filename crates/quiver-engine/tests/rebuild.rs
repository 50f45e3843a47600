//! Rebuilding the engine for a new strategy set between two ticks: the
//! strategies carried over signal exactly as in a run without the rebuild;
//! removed ones stop, added ones start from the shared history.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use quiver_core::Tick;
use quiver_engine::scenario::Scenario;
use quiver_engine::{Control, ControlError, Engine, Input, Output, StrategyEntry, StrategyState};

const SCENARIO: Scenario = Scenario {
    strategies: 30,
    instruments: 60,
    followers: 5,
    ticks: 30_000,
    seed: 3,
};

/// Every signal as one comparable line, by strategy id.
type Signals = BTreeMap<String, Vec<String>>;

fn record(engine: &Engine, out: &mut Output, signals: &mut Signals) {
    for s in out.signals.drain(..) {
        let d = &s.decision;
        signals
            .entry(engine.strategy_id(s.strategy).to_owned())
            .or_default()
            .push(format!(
                "{} {} {:?} {:016x} {} {}",
                s.seq,
                s.instrument,
                d.side,
                d.confidence.to_bits(),
                d.quantity,
                d.price
            ));
    }
    out.transitions.clear();
}

/// The entries of `SCENARIO` whose index `pick` keeps.
fn entries(pick: impl Fn(usize) -> bool) -> Vec<StrategyEntry> {
    SCENARIO
        .entries()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| pick(*i))
        .map(|(_, e)| e)
        .collect()
}

fn ticks() -> Vec<Tick> {
    SCENARIO.ticks().iter().collect()
}

/// Which strategies (by scenario index) a set keeps.
type Set = fn(usize) -> bool;
/// At a tick, from one set to another.
type Step = (u64, Set, Set);

/// Runs `ticks` through `engine`, rebuilding at each `(seq, set)` of
/// `schedule` into the strategies `set` keeps, carrying those in both.
fn run(mut engine: Engine, ticks: &[Tick], schedule: &[Step]) -> (Signals, Engine) {
    let mut out = Output::default();
    let mut signals = Signals::new();
    let mut next = 0;
    for (seq, tick) in ticks.iter().enumerate() {
        let seq = seq as u64;
        if let Some(&(at, from, to)) = schedule.get(next) {
            if at == seq {
                let carried: Vec<String> = entries(|i| from(i) && to(i))
                    .into_iter()
                    .map(|e| e.id)
                    .collect();
                let rebuilt = Engine::new(entries(to)).unwrap();
                engine.process(
                    Input::Control(Control::Rebuild {
                        engine: Box::new(rebuilt),
                        carried,
                    }),
                    &mut out,
                );
                assert!(out.refused.is_empty(), "{:?}", out.refused);
                next += 1;
            }
        }
        engine.process(Input::Tick { seq, tick }, &mut out);
        record(&engine, &mut out, &mut signals);
    }
    (signals, engine)
}

fn first_half(i: usize) -> bool {
    i < 20
}
fn second_half(i: usize) -> bool {
    i >= 10
}
fn evens(i: usize) -> bool {
    i.is_multiple_of(2) || i >= 25
}

#[test]
fn carried_strategies_signal_as_without_the_rebuild_and_added_ones_start_from_history() {
    let ticks = ticks();
    let (reference, whole) = run(Engine::new(entries(|_| true)).unwrap(), &ticks, &[]);
    let (rebuilt, engine) = run(
        Engine::new(entries(first_half)).unwrap(),
        &ticks,
        &[
            (10_000, first_half, second_half),
            (20_000, second_half, evens),
        ],
    );
    let id = |i: usize| format!("bench-{i:03}");
    for i in 0..30 {
        let got = rebuilt.get(&id(i)).cloned().unwrap_or_default();
        let all = reference.get(&id(i)).cloned().unwrap_or_default();
        let seq_of = |line: &String| line.split(' ').next().unwrap().parse::<u64>().unwrap();
        let within = |from: u64, to: u64| -> Vec<String> {
            all.iter()
                .filter(|l| (from..to).contains(&seq_of(l)))
                .cloned()
                .collect()
        };
        // The spans it was in the serving set for: [0, 10k), [10k, 20k),
        // [20k, 30k). From tick 0 on it is carried whole for as long as it
        // stays, so that run is exactly the reference; a later start is
        // fresh (from the shared history), and nothing signals outside its
        // spans.
        let spans = [
            (0, first_half(i)),
            (10_000, second_half(i)),
            (20_000, evens(i)),
        ];
        let member = |seq: u64| {
            spans
                .iter()
                .rev()
                .find(|(at, _)| seq >= *at)
                .is_some_and(|s| s.1)
        };
        assert!(
            got.iter().all(|l| member(seq_of(l))),
            "{}: a signal outside its spans",
            id(i)
        );
        let carried_until = spans
            .iter()
            .take_while(|(_, m)| *m)
            .map(|(at, _)| at + 10_000)
            .last()
            .unwrap_or(0);
        let expected = within(0, carried_until);
        let got: Vec<String> = got
            .into_iter()
            .filter(|l| seq_of(l) < carried_until)
            .collect();
        let fresh_later = spans.iter().skip_while(|(_, m)| *m).any(|(_, m)| *m);
        if fresh_later {
            let later = rebuilt.get(&id(i)).map_or(0, |all| {
                all.iter().filter(|l| seq_of(l) >= carried_until).count()
            });
            assert!(later > 0, "{}: never signalled after it was added", id(i));
        }
        if got != expected {
            let k = got
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(expected.len()));
            panic!(
                "{}: {} signals, expected {}; first difference at {k}: {:?} vs {:?}",
                id(i),
                got.len(),
                expected.len(),
                got.get(k),
                expected.get(k)
            );
        }
    }
    // The set now serving is `evens` of the second half's survivors.
    let serving: Vec<String> = (0..engine.strategy_count())
        .map(|s| {
            engine
                .strategy_id(quiver_engine::StrategyIdx::new(s as u32))
                .to_owned()
        })
        .collect();
    let want: Vec<String> = (0..30).filter(|&i| evens(i)).map(id).collect();
    assert_eq!(serving, want);
    assert_eq!(engine.stats().ticks, 30_000, "counters carried over");
    // Carried through both rebuilds: the same instance, counters and all.
    let stats = |e: &Engine, id: &str| e.strategy_stats(e.strategy_index(id).unwrap()).clone();
    for carried in ["bench-010", "bench-012", "bench-018"] {
        assert_eq!(
            stats(&engine, carried).evaluations,
            stats(&whole, carried).evaluations,
            "{carried}"
        );
        assert_eq!(
            stats(&engine, carried).signals,
            stats(&whole, carried).signals
        );
    }
    // Added at 10,000: only what it evaluated since.
    assert!(stats(&engine, "bench-026").evaluations < stats(&whole, "bench-026").evaluations);
}

#[test]
fn added_strategies_whose_history_is_kept_are_active_at_their_next_tick() {
    let ticks = ticks();
    let mut engine = Engine::new(entries(first_half)).unwrap();
    let mut out = Output::default();
    for (seq, tick) in ticks.iter().take(10_000).enumerate() {
        engine.process(
            Input::Tick {
                seq: seq as u64,
                tick,
            },
            &mut out,
        );
    }
    let carried: Vec<String> = entries(first_half).into_iter().map(|e| e.id).collect();
    engine.process(
        Input::Control(Control::Rebuild {
            engine: Box::new(Engine::new(entries(|_| true)).unwrap()),
            carried,
        }),
        &mut out,
    );
    assert!(out.refused.is_empty());
    assert_eq!(out.rebuilds.len(), 1);
    let report = &out.rebuilds[0];
    assert_eq!((report.carried, report.fresh), (20, 10));
    assert!(report.features_replayed > 0, "{report:?}");
    let added = engine.strategy_index("bench-025").unwrap();
    assert_eq!(engine.strategy_state(added), StrategyState::Warmup);
    // One tick of one of its instruments: its ring already holds enough.
    let token = engine.instruments(added)[0];
    let tick = ticks[10_000..]
        .iter()
        .find(|t| t.instrument == token)
        .unwrap();
    engine.process(Input::Tick { seq: 10_000, tick }, &mut out);
    assert_eq!(engine.strategy_state(added), StrategyState::Active);
}

#[test]
fn a_rebuild_naming_a_strategy_not_in_both_sets_is_refused_and_changes_nothing() {
    let mut engine = Engine::new(entries(first_half)).unwrap();
    let mut out = Output::default();
    let before = engine.strategy_count();
    engine.process(
        Input::Control(Control::Rebuild {
            engine: Box::new(Engine::new(entries(second_half)).unwrap()),
            carried: vec!["bench-000".to_owned()],
        }),
        &mut out,
    );
    assert_eq!(
        out.refused,
        [ControlError::NotCarried("bench-000".to_owned())]
    );
    assert_eq!(engine.strategy_count(), before);
    assert_eq!(
        engine.strategy_id(quiver_engine::StrategyIdx::new(0)),
        "bench-000"
    );
}
