//! Failures, quarantine and back-off on tick time: what counts as a
//! failure, when a strategy is taken out, when it is tried again, and that
//! nothing of it reaches the other strategies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use quiver_core::{Decision, Metadata, Price, Reasoning, Side, Tick};
use quiver_engine::{
    Cause, Engine, Input, LifecyclePolicy, Output, StrategyEntry, StrategyIdx, StrategyState,
};
use quiver_strategy::{Logic, StandardValidator, Strategy, StrategyKind, TickContext};

const S: i64 = 1_000_000_000;

/// What a scripted strategy does on a call.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Act {
    Good,
    Panic,
    Nan,
    /// Below the validator's `min_confidence`: held back, not a failure.
    Timid,
    Nothing,
}

/// Acts by tick time: `script(ts_ns / S)`.
struct Scripted {
    script: fn(i64) -> Act,
}

quiver_core::fixed_reason!(scripted, "scripted");

impl Strategy for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    fn kind(&self) -> StrategyKind {
        StrategyKind::Rules
    }
    fn required_history(&self) -> usize {
        1
    }
    fn on_tick(&mut self, tick: &Tick, _ctx: TickContext<'_>) -> Option<Decision> {
        let confidence = match (self.script)(tick.ts_ns / S) {
            Act::Good => 0.9,
            Act::Timid => 0.1,
            Act::Nan => f64::NAN,
            Act::Nothing => return None,
            Act::Panic => panic!("deliberate failure at {}", tick.ts_ns),
        };
        Some(Decision {
            side: Side::Buy,
            confidence,
            quantity: 1,
            price: tick.price,
            reasoning: Reasoning::fixed(scripted),
            metadata: Metadata::EMPTY,
        })
    }
}

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

fn entry(id: &str, script: fn(i64) -> Act) -> StrategyEntry {
    quiet_deliberate_panics();
    StrategyEntry {
        id: id.to_owned(),
        logic: Logic::Rules(Box::new(Scripted { script })),
        instruments: vec![7],
        brokers: vec!["paper".to_owned()],
        validator: StandardValidator {
            min_confidence: 0.5,
            ..StandardValidator::default()
        },
        guards: quiver_strategy::GuardSpec::default(),
        schedule: quiver_engine::Schedule::default(),
    }
}

/// One tick per second, from second 1 to `seconds`; everything that came out.
fn run(engine: &mut Engine, seconds: i64) -> Output {
    let mut out = Output::default();
    for second in 1..=seconds {
        let tick = Tick::trade(second * S, 7, Price::from_int(100), 1);
        let seq = (second - 1) as u64;
        engine.process(Input::Tick { seq, tick: &tick }, &mut out);
    }
    out
}

fn changes(out: &Output, strategy: u32) -> Vec<(StrategyState, Cause, i64)> {
    out.transitions
        .iter()
        .filter(|t| t.strategy == StrategyIdx::new(strategy))
        .map(|t| (t.to, t.cause, t.ts_ns.unwrap() / S))
        .collect()
}

fn policy() -> LifecyclePolicy {
    LifecyclePolicy {
        quarantine_after: 5,
        backoff_base_ns: 10 * S,
        backoff_cap_ns: 40 * S,
    }
}

#[test]
fn out_of_range_decisions_count_as_failures_and_thresholds_do_not() {
    let mut engine = Engine::new(vec![
        entry("nan", |_| Act::Nan),
        entry("timid", |_| Act::Timid),
        entry("fine", |_| Act::Good),
    ])
    .unwrap();
    engine.set_lifecycle(policy());
    let out = run(&mut engine, 8);
    assert_eq!(
        changes(&out, 0),
        [
            (StrategyState::Active, Cause::HistoryReady, 1),
            (StrategyState::Quarantined, Cause::InvalidDecision, 5),
        ]
    );
    assert_eq!(engine.strategy_stats(StrategyIdx::new(0)).failures, 5);
    assert_eq!(
        engine.strategy_state(StrategyIdx::new(1)),
        StrategyState::Active
    );
    assert_eq!(engine.strategy_stats(StrategyIdx::new(1)).failures, 0);
    assert_eq!(out.signals.len(), 8);
    assert!(out
        .signals
        .iter()
        .all(|s| s.strategy == StrategyIdx::new(2)));
}

#[test]
fn a_quarantined_strategy_is_retried_after_a_doubling_back_off_and_recovers() {
    // Panics in seconds 1-5 (quarantined at 5, back-off 10 s: retried at 15),
    // fails on retry at 15 (back-off 20 s: retried at 35), fails at 35 (40 s,
    // the cap: retried at 75), then works: the count and back-off reset, so
    // failures from second 100 on quarantine it after 5 again, for 10 s.
    let script = |second: i64| match second {
        1..=5 | 15 | 35 => Act::Panic,
        100..=104 => Act::Nan,
        _ => Act::Good,
    };
    let mut engine =
        Engine::new(vec![entry("flaky", script), entry("fine", |_| Act::Good)]).unwrap();
    engine.set_lifecycle(policy());
    let out = run(&mut engine, 120);
    assert_eq!(
        changes(&out, 0),
        [
            (StrategyState::Active, Cause::HistoryReady, 1),
            (StrategyState::Quarantined, Cause::Panicked, 5),
            (StrategyState::Active, Cause::Retried, 15),
            (StrategyState::Quarantined, Cause::Panicked, 15),
            (StrategyState::Active, Cause::Retried, 35),
            (StrategyState::Quarantined, Cause::Panicked, 35),
            (StrategyState::Active, Cause::Retried, 75),
            (StrategyState::Quarantined, Cause::InvalidDecision, 104),
            (StrategyState::Active, Cause::Retried, 114),
        ]
    );
    let stats = engine.strategy_stats(StrategyIdx::new(0));
    assert_eq!((stats.panics, stats.failures), (7, 12));
    // Evaluated only while active: 5 + 1 + 1 + (75..=104) + (114..=120).
    assert_eq!(stats.evaluations, 5 + 1 + 1 + 30 + 7);
    assert_eq!(out.faults.len(), 7);
    // The other strategy never noticed.
    let fine: Vec<_> = out
        .signals
        .iter()
        .filter(|s| s.strategy == StrategyIdx::new(1))
        .collect();
    assert_eq!(fine.len(), 120);
    assert_eq!(
        engine.strategy_state(StrategyIdx::new(1)),
        StrategyState::Active
    );
}

#[test]
fn back_off_doubles_up_to_its_cap_without_overflow() {
    let p = policy();
    let backoffs: Vec<_> = (0..6).map(|n| p.backoff_ns(n) / S).collect();
    assert_eq!(backoffs, [10, 20, 40, 40, 40, 40]);
    let wide = LifecyclePolicy {
        backoff_cap_ns: i64::MAX,
        ..p
    };
    assert_eq!(wide.backoff_ns(200), i64::MAX);
    assert_eq!(LifecyclePolicy::default().backoff_ns(0), S);
}

#[test]
fn a_strategy_that_decides_nothing_is_not_failing() {
    let script = |second: i64| match second {
        1..=4 => Act::Panic,
        5 => Act::Nothing,
        6..=9 => Act::Panic,
        _ => Act::Good,
    };
    let mut engine = Engine::new(vec![entry("quiet", script)]).unwrap();
    engine.set_lifecycle(policy());
    run(&mut engine, 12);
    assert_eq!(
        engine.strategy_state(StrategyIdx::new(0)),
        StrategyState::Active
    );
    assert_eq!(engine.strategy_stats(StrategyIdx::new(0)).failures, 8);
}

#[test]
fn signal_hygiene_holds_valid_signals_back_counts_them_and_is_no_failure() {
    let mut guarded = entry("guarded", |_| Act::Good);
    guarded.guards = quiver_strategy::GuardSpec {
        cooldown_ns: Some(3 * S),
        ..quiver_strategy::GuardSpec::default()
    };
    let mut engine = Engine::new(vec![guarded, entry("free", |_| Act::Good)]).unwrap();
    engine.set_lifecycle(policy());
    let out = run(&mut engine, 10);
    let seconds: Vec<i64> = out
        .signals
        .iter()
        .filter(|s| s.strategy == StrategyIdx::new(0))
        .map(|s| s.ts_ns / S)
        .collect();
    assert_eq!(seconds, [1, 4, 7, 10]);
    let stats = engine.strategy_stats(StrategyIdx::new(0));
    assert_eq!(
        stats.held_back[quiver_strategy::GuardDrop::Cooldown.index()],
        6
    );
    assert_eq!((stats.signals, stats.failures), (4, 0));
    assert_eq!(
        engine.strategy_state(StrategyIdx::new(0)),
        StrategyState::Active
    );
    assert_eq!(
        out.signals
            .iter()
            .filter(|s| s.strategy == StrategyIdx::new(1))
            .count(),
        10
    );
}

/// A clock the slow strategy moves: each of its calls "takes" 10 ms.
static FAKE_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn fake_clock() -> u64 {
    FAKE_NS.load(std::sync::atomic::Ordering::SeqCst)
}

struct Slow;

impl Strategy for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    fn kind(&self) -> StrategyKind {
        StrategyKind::Rules
    }
    fn required_history(&self) -> usize {
        1
    }
    fn on_tick(&mut self, tick: &Tick, _ctx: TickContext<'_>) -> Option<Decision> {
        if tick.ts_ns / S <= 5 {
            FAKE_NS.fetch_add(10_000_000, std::sync::atomic::Ordering::SeqCst);
        }
        Some(Decision {
            side: Side::Buy,
            confidence: 0.9,
            quantity: 1,
            price: tick.price,
            reasoning: Reasoning::fixed(scripted),
            metadata: Metadata::EMPTY,
        })
    }
}

#[test]
fn evaluations_over_budget_are_failures_only_when_the_engine_has_a_clock() {
    let budgeted = || {
        let mut slow = entry("slow", |_| Act::Good);
        slow.logic = Logic::Rules(Box::new(Slow));
        slow.schedule = quiver_engine::Schedule {
            budget_ns: Some(1_000_000), // 1 ms; each of the first 5 calls takes 10
            ..quiver_engine::Schedule::default()
        };
        slow
    };
    // Without a clock (a replay) the budget is not enforced.
    let mut replay = Engine::new(vec![budgeted()]).unwrap();
    replay.set_lifecycle(policy());
    let out = run(&mut replay, 8);
    assert_eq!(out.signals.len(), 8);
    assert_eq!(replay.strategy_stats(StrategyIdx::new(0)).over_budget, 0);

    let mut live = Engine::new(vec![budgeted(), entry("fine", |_| Act::Good)]).unwrap();
    live.set_lifecycle(policy());
    live.set_clock(Some(fake_clock));
    let out = run(&mut live, 8);
    assert_eq!(
        changes(&out, 0),
        [
            (StrategyState::Active, Cause::HistoryReady, 1),
            (StrategyState::Quarantined, Cause::OverBudget, 5),
        ]
    );
    let stats = live.strategy_stats(StrategyIdx::new(0));
    assert_eq!((stats.over_budget, stats.failures), (5, 5));
    // Its decisions still went out: slow is not wrong.
    assert_eq!(
        out.signals
            .iter()
            .filter(|s| s.strategy == StrategyIdx::new(0))
            .count(),
        5
    );
    assert_eq!(
        out.signals
            .iter()
            .filter(|s| s.strategy == StrategyIdx::new(1))
            .count(),
        8
    );
}

#[test]
fn shedding_skips_background_first_then_normal_and_never_critical() {
    let with = |id: &str, priority| {
        let mut e = entry(id, |_| Act::Good);
        e.schedule.priority = priority;
        e
    };
    let mut engine = Engine::new(vec![
        with("critical", quiver_engine::Priority::Critical),
        with("normal", quiver_engine::Priority::Normal),
        with("background", quiver_engine::Priority::Background),
    ])
    .unwrap();
    let mut out = Output::default();
    let levels = [
        quiver_engine::Shed::Nothing,
        quiver_engine::Shed::Background,
        quiver_engine::Shed::AllButCritical,
        quiver_engine::Shed::Nothing,
    ];
    for (second, shed) in (1..).zip(levels) {
        engine.set_shed(shed);
        let tick = Tick::trade(second * S, 7, Price::from_int(100), 1);
        engine.process(
            Input::Tick {
                seq: second as u64,
                tick: &tick,
            },
            &mut out,
        );
    }
    let per: Vec<_> = (0..3)
        .map(|i| {
            let stats = engine.strategy_stats(StrategyIdx::new(i));
            (stats.evaluations, stats.shed)
        })
        .collect();
    assert_eq!(per, [(4, 0), (3, 1), (2, 2)]);
    assert!((0..3).all(|i| engine.strategy_state(StrategyIdx::new(i)) == StrategyState::Active));
}
