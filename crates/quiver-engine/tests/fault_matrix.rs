//! The fault matrix: one of 100 strategies is made to fail in each way the
//! lifecycle knows — a panic, a decision out of range, an evaluation over
//! its budget, a flood of signals — while the other 99 run the standard
//! mix. Their signals are identical to a run without the faulty one, and the
//! faulty one's states and counters are the documented ones.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};

use quiver_core::{Decision, Metadata, Reasoning, Side, Tick};
use quiver_engine::scenario::Scenario;
use quiver_engine::{
    Cause, Engine, EngineSignal, Input, LifecyclePolicy, Output, Schedule, StrategyEntry,
    StrategyIdx, StrategyState,
};
use quiver_strategy::{GuardDrop, GuardSpec, Logic, RateSpec, Strategy, StrategyKind, TickContext};

#[derive(Clone, Copy, Debug)]
enum Fault {
    Panic,
    NanConfidence,
    Slow,
    Flood,
}

/// Fails in its own way from its `from`-th call on; decides BUY otherwise.
struct Faulty {
    fault: Fault,
    calls: u64,
}

quiver_core::fixed_reason!(faulty_reason, "faulty");

/// The faulty strategy's evaluations "take" 10 ms on this clock.
static CLOCK_NS: AtomicU64 = AtomicU64::new(0);

fn clock() -> u64 {
    CLOCK_NS.load(Ordering::SeqCst)
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
        let mut confidence = 0.9;
        match self.fault {
            Fault::Panic => panic!("deliberate failure {}", self.calls),
            Fault::NanConfidence => confidence = f64::NAN,
            Fault::Slow => {
                CLOCK_NS.fetch_add(10_000_000, Ordering::SeqCst);
            }
            Fault::Flood => {}
        }
        Some(Decision {
            side: if self.calls.is_multiple_of(2) {
                Side::Sell
            } else {
                Side::Buy
            },
            confidence,
            quantity: 1,
            price: tick.price,
            reasoning: Reasoning::fixed(faulty_reason),
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

const SCENARIO: Scenario = Scenario {
    strategies: 99,
    instruments: 40,
    followers: 10,
    ticks: 20_000,
    seed: 11,
};

fn policy() -> LifecyclePolicy {
    LifecyclePolicy {
        quarantine_after: 5,
        backoff_base_ns: 2_000_000_000,
        backoff_cap_ns: 8_000_000_000,
    }
}

/// Runs the 99 (and the faulty one, placed 50th, when given): the 99's
/// signals keyed by strategy id, and the engine.
fn run(faulty: Option<Fault>) -> (Vec<(String, EngineSignal)>, Engine, Output) {
    let mut entries = SCENARIO.entries();
    if let Some(fault) = faulty {
        quiet_deliberate_panics();
        let instruments = entries[0].instruments.clone();
        entries.insert(
            50,
            StrategyEntry {
                id: "faulty".to_owned(),
                logic: Logic::Rules(Box::new(Faulty { fault, calls: 0 })),
                instruments,
                brokers: vec!["paper".to_owned()],
                validator: Default::default(),
                guards: GuardSpec {
                    rates: RateSpec {
                        max_per_minute: Some(6),
                        min_interval_ns: None,
                    },
                    ..GuardSpec::default()
                },
                schedule: Schedule {
                    budget_ns: Some(1_000_000), // 1 ms; a slow call takes 10
                    ..Schedule::default()
                },
            },
        );
    }
    let mut engine = Engine::new(entries).unwrap();
    engine.set_lifecycle(policy());
    engine.set_clock(Some(clock));
    let mut out = Output::default();
    for (seq, tick) in SCENARIO.ticks().iter().enumerate() {
        engine.process(
            Input::Tick {
                seq: seq as u64,
                tick: &tick,
            },
            &mut out,
        );
    }
    let signals = std::mem::take(&mut out.signals)
        .into_iter()
        .map(|mut s| {
            let id = engine.strategy_id(s.strategy).to_owned();
            // Indices after the faulty one shift by one; ids do not.
            s.strategy = StrategyIdx::new(0);
            (id, s)
        })
        .filter(|(id, _)| id != "faulty")
        .collect();
    (signals, engine, out)
}

#[test]
fn one_faulty_strategy_of_100_changes_nothing_for_the_other_99() {
    let (clean, _, _) = run(None);
    assert!(clean.len() > 10_000, "the 99 trade: {}", clean.len());
    for fault in [
        Fault::Panic,
        Fault::NanConfidence,
        Fault::Slow,
        Fault::Flood,
    ] {
        let (signals, engine, out) = run(Some(fault));
        assert!(
            signals == clean,
            "{fault:?}: the other 99 signalled differently"
        );
        let faulty = StrategyIdx::new(50);
        assert_eq!(engine.strategy_id(faulty), "faulty");
        let stats = engine.strategy_stats(faulty);
        let causes: Vec<Cause> = out
            .transitions
            .iter()
            .filter(|t| t.strategy == faulty)
            .map(|t| t.cause)
            .collect();
        let ticks_seen = stats.evaluations;
        match fault {
            Fault::Flood => {
                // Never a failure: the flood is held back by the rate limit.
                assert_eq!(causes, [Cause::HistoryReady]);
                assert_eq!(stats.failures, 0);
                assert!(stats.held_back[GuardDrop::RateLimited.index()] > 0);
                assert_eq!(
                    stats.signals + stats.held_back[GuardDrop::RateLimited.index()],
                    ticks_seen
                );
                assert_eq!(engine.strategy_state(faulty), StrategyState::Active);
            }
            _ => {
                let failed = match fault {
                    Fault::Panic => Cause::Panicked,
                    Fault::NanConfidence => Cause::InvalidDecision,
                    _ => Cause::OverBudget,
                };
                // Quarantined after 5, retried after each back-off, failing
                // at once on probation each time.
                assert_eq!(
                    causes[..3],
                    [Cause::HistoryReady, failed, Cause::Retried],
                    "{fault:?}"
                );
                assert!(causes[1..]
                    .chunks(2)
                    .all(|pair| pair[0] == failed
                        && pair.get(1).is_none_or(|c| *c == Cause::Retried)));
                let quarantines = causes.iter().filter(|c| **c == failed).count() as u64;
                // 5 failures for the first quarantine, 1 for each after it.
                assert_eq!(stats.failures, 5 + (quarantines - 1), "{fault:?}");
                assert_eq!(stats.evaluations, stats.failures);
                let panics = if matches!(fault, Fault::Panic) {
                    stats.failures
                } else {
                    0
                };
                assert_eq!(stats.panics, panics);
                assert_eq!(out.faults.len() as u64, panics);
                let slow = if matches!(fault, Fault::Slow) {
                    stats.failures
                } else {
                    0
                };
                assert_eq!(stats.over_budget, slow);
            }
        }
    }
}
