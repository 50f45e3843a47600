//! Controls applied between ticks: reset brings a quarantined strategy back,
//! replace swaps an instance in place and starts it fresh, and every refusal
//! leaves the engine as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use quiver_core::synthetic::SyntheticSpec;
use quiver_core::{Decision, Metadata, Price, Reasoning, Side, Tick};
use quiver_engine::scenario::strategy_for;
use quiver_engine::{
    Cause, Control, ControlError, Engine, EngineSignal, Input, Output, StrategyEntry, StrategyIdx,
    StrategyState,
};
use quiver_strategy::rules::Momentum;
use quiver_strategy::{Logic, StandardValidator, Strategy, StrategyKind, TickContext};

/// Panics while `failing`, otherwise buys; counts resets.
struct Flaky {
    failing: bool,
    resets: u32,
}

impl Strategy for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    fn kind(&self) -> StrategyKind {
        StrategyKind::Rules
    }
    fn required_history(&self) -> usize {
        1
    }
    fn on_tick(&mut self, tick: &Tick, _ctx: TickContext<'_>) -> Option<Decision> {
        if self.failing {
            std::panic::panic_any(format!("flaky at {}", tick.ts_ns));
        }
        Some(Decision {
            side: Side::Buy,
            confidence: 0.9,
            quantity: 1,
            price: tick.price,
            reasoning: Reasoning::fixed(flaky_reason),
            metadata: Metadata::EMPTY,
        })
    }
    fn reset(&mut self) {
        self.failing = false;
        self.resets += 1;
    }
}

quiver_core::fixed_reason!(flaky_reason, "flaky");

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

fn feed(engine: &mut Engine, ticks: &[Tick], from: u64, out: &mut Output) {
    for (i, tick) in ticks.iter().enumerate() {
        let seq = from + i as u64;
        engine.process(Input::Tick { seq, tick }, out);
    }
}

fn s(i: u32) -> StrategyIdx {
    StrategyIdx::new(i)
}

#[test]
fn reset_brings_a_quarantined_strategy_back() {
    std::panic::set_hook(Box::new(|_| {}));
    let ticks: Vec<Tick> = (1..=20)
        .map(|ts| Tick::trade(ts, 1, Price::from_int(100), 1))
        .collect();
    let flaky = Box::new(Flaky {
        failing: true,
        resets: 0,
    });
    let mut engine = Engine::new(vec![entry("flaky", flaky, &[1])]).unwrap();
    let mut out = Output::default();
    feed(&mut engine, &ticks[..10], 0, &mut out);
    assert_eq!(engine.strategy_state(s(0)), StrategyState::Quarantined);
    assert!(out.signals.is_empty());
    // Stopped ticks do not call it; a reset clears its failure and state.
    engine.process(Input::Control(Control::Reset(s(0))), &mut out);
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    let last = engine.last_transition(s(0)).unwrap();
    assert_eq!(
        (last.from, last.to, last.cause, last.seq, last.ts_ns),
        (
            StrategyState::Quarantined,
            StrategyState::Active,
            Cause::Reset,
            Some(9),
            Some(10)
        )
    );
    feed(&mut engine, &ticks[10..], 10, &mut out);
    let seqs: Vec<u64> = out.signals.iter().map(|sig| sig.seq).collect();
    assert_eq!(seqs, (10..20).collect::<Vec<_>>());
}

#[test]
fn refused_controls_change_nothing() {
    let mut engine = Engine::new(vec![
        entry("a", Box::new(Momentum::new(3, 0.001, 1)), &[1, 2]),
        entry("b", Box::new(Momentum::new(3, 0.001, 1)), &[1]),
    ])
    .unwrap();
    let mut out = Output::default();
    for control in [
        Control::Stop(s(1)),
        Control::Resume(s(1)),
        Control::Reset(s(1)),
        Control::Pause(s(7)),
    ] {
        engine.process(Input::Control(control), &mut out);
    }
    assert_eq!(
        out.refused,
        [
            ControlError::NotAllowed {
                control: "resume",
                id: "b".into(),
                state: StrategyState::Stopped
            },
            ControlError::NotAllowed {
                control: "reset",
                id: "b".into(),
                state: StrategyState::Stopped
            },
            ControlError::NoSuchIndex(7),
        ]
    );
    // A replacement that would need the routing rebuilt is refused whole:
    // the valid first entry is not applied either.
    let before = engine.strategy_name(s(0)).to_owned();
    engine.process(
        Input::Control(Control::Replace(vec![
            entry("a", Box::new(Momentum::new(3, 0.002, 1)), &[1, 2]),
            entry("b", Box::new(Momentum::new(3, 0.002, 1)), &[1, 2]),
        ])),
        &mut out,
    );
    assert!(matches!(
        out.refused.last(),
        Some(ControlError::NeedsRebuild { id, .. }) if id == "b"
    ));
    assert_eq!(engine.strategy_name(s(0)), before);
    assert_eq!(engine.strategy_state(s(0)), StrategyState::Warmup);
    engine.process(
        Input::Control(Control::Replace(vec![entry(
            "nobody",
            Box::new(Momentum::new(3, 0.002, 1)),
            &[1],
        )])),
        &mut out,
    );
    assert_eq!(
        out.refused.last(),
        Some(&ControlError::UnknownId("nobody".into()))
    );
}

#[test]
fn a_replaced_strategy_starts_fresh_from_the_shared_history() {
    let spec = SyntheticSpec::new(4, 3_000, 9);
    let ticks: Vec<Tick> = spec.iter().collect();
    let tokens: Vec<u64> = spec.tokens().collect();
    let entries = |first: Box<dyn Strategy>| {
        vec![
            entry("x", first, &tokens),
            entry("y", strategy_for(1), &tokens),
        ]
    };
    // Reference: the new parameters from the start.
    let replacement = || Box::new(Momentum::new(12, 0.002, 7)) as Box<dyn Strategy>;
    let mut fresh = Engine::new(entries(replacement())).unwrap();
    let mut expected = Output::default();
    feed(&mut fresh, &ticks, 0, &mut expected);

    let mut engine = Engine::new(entries(Box::new(Momentum::new(12, 0.004, 1)))).unwrap();
    let mut out = Output::default();
    feed(&mut engine, &ticks[..1_500], 0, &mut out);
    let control = Control::Replace(vec![entry("x", replacement(), &tokens)]);
    engine.process(Input::Control(control), &mut out);
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    assert_eq!(engine.strategy_state(s(0)), StrategyState::Warmup);
    assert_eq!(engine.last_transition(s(0)).unwrap().cause, Cause::Replaced);
    let mut after = Output::default();
    feed(&mut engine, &ticks[1_500..], 1_500, &mut after);
    // From the next tick on, both strategies decide exactly as in an
    // engine that had the replacement all along: the history it needs was
    // already there.
    let tail = |signals: &[EngineSignal]| -> Vec<EngineSignal> {
        signals
            .iter()
            .filter(|sig| sig.seq >= 1_500)
            .copied()
            .collect()
    };
    assert_eq!(after.signals, tail(&expected.signals));
    assert!(after.signals.iter().any(|sig| sig.strategy == s(0)));
    assert_eq!(engine.strategy_state(s(0)), StrategyState::Active);
}
