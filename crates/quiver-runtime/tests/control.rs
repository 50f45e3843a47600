//! Operators' controls through the live driver, in process: the synthetic
//! source on its own timestamps, an in-memory sink, no server. One strategy
//! is paused, resumed and stopped while ticks flow; every other strategy's
//! output must be byte-identical to a run without controls, and the paused
//! strategy must emit nothing while paused and, once resumed, exactly what
//! it would have emitted had it never been paused (it decides from the
//! shared history, which kept growing).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quiver_core::synthetic::SyntheticSpec;
use quiver_driver::Request;
use quiver_engine::scenario::Scenario;
use quiver_engine::{Cause, StrategyState};
use quiver_io::live::{
    LiveError, Outcome, PublishReport, SignalBatch, SignalSink, Stop, SyntheticSource,
};
use quiver_runtime::{RunReport, Service, Settings};

const TICKS: u64 = 6_000;
/// The target: scenario strategy 0, a momentum strategy that signals often.
const TARGET: &str = "bench-000";

/// Every published line, in order.
#[derive(Clone, Default)]
struct MemorySink(Arc<Mutex<Vec<String>>>);

impl SignalSink for MemorySink {
    fn describe(&self) -> String {
        "memory".to_owned()
    }

    async fn publish(&mut self, batch: &SignalBatch) -> Result<PublishReport, LiveError> {
        let mut lines = self.0.lock().unwrap();
        for signal in &batch.signals {
            lines.push(String::from_utf8(batch.payload(signal).to_vec()).unwrap());
        }
        Ok(PublishReport {
            outcomes: vec![Outcome::Published; batch.signals.len()],
            dead_letters_written: 0,
            refusals: Vec::new(),
        })
    }

    async fn flush(&mut self) -> Result<(), LiveError> {
        Ok(())
    }
}

fn scenario() -> Scenario {
    Scenario {
        strategies: 20,
        instruments: 8,
        followers: 5,
        ticks: TICKS,
        seed: 5,
    }
}

fn settings() -> Settings {
    let mut settings = Settings::load(None, std::iter::empty()).unwrap();
    settings.quiver.batch_size = 16;
    settings.quiver.http_addr = "off".to_owned();
    settings
}

fn service() -> Service {
    Service::from_entries(scenario().entries(), settings()).unwrap()
}

fn source(rate: f64) -> SyntheticSource {
    let spec = SyntheticSpec::new(scenario().instruments, TICKS, scenario().seed);
    SyntheticSource::generated(spec, rate)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn parse(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap()
}

fn seq(line: &str) -> u64 {
    parse(line)["seq"].as_u64().unwrap()
}

fn is_target(line: &str) -> bool {
    parse(line)["strategy_id"] == TARGET
}

/// Waits (polling) until the service has dispatched at least `n` ticks.
fn wait_for_ticks(service_ticks: &quiver_telemetry::Counter, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while service_ticks.get() < n {
        assert!(
            Instant::now() < deadline,
            "stuck at {} ticks",
            service_ticks.get()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The seq a control was applied after, from its reply.
fn applied(
    control: &quiver_driver::ControlHandle,
    request: Request,
    to: StrategyState,
    cause: Cause,
) -> u64 {
    let reply = control
        .send(request)
        .unwrap()
        .recv_timeout(Duration::from_secs(30))
        .unwrap()
        .unwrap();
    assert_eq!(reply.len(), 1, "{reply:?}");
    assert_eq!((reply[0].to, reply[0].cause), (to, cause));
    reply[0].seq.unwrap()
}

#[test]
fn pause_resume_and_stop_touch_only_their_strategy() {
    let rt = runtime();
    // Without controls, as fast as it goes.
    let reference = MemorySink::default();
    let (_switch, stop) = Stop::new();
    let report: RunReport = rt
        .block_on(service().run(source(0.0), reference.clone(), stop))
        .unwrap();
    assert_eq!(report.ticks, TICKS);
    let reference = reference.0.lock().unwrap().clone();

    // With controls, paced so they land while ticks flow.
    let service = service();
    let control = service.control();
    let ticks = service.telemetry().metrics.ticks_processed.clone();
    let sink = MemorySink::default();
    let (_switch, stop) = Stop::new();
    let run = rt.spawn(service.run(source(15_000.0), sink.clone(), stop));
    wait_for_ticks(&ticks, 1_000);
    let paused = applied(
        &control,
        Request::Pause(TARGET.into()),
        StrategyState::Paused,
        Cause::Paused,
    );
    // Pausing again changes nothing and records nothing.
    let again = control.send(Request::Pause(TARGET.into())).unwrap();
    assert_eq!(
        again.recv_timeout(Duration::from_secs(30)).unwrap(),
        Ok(vec![])
    );
    wait_for_ticks(&ticks, 2_500);
    let resumed = applied(
        &control,
        Request::Resume(TARGET.into()),
        StrategyState::Active,
        Cause::Resumed,
    );
    wait_for_ticks(&ticks, 4_000);
    let stopped = applied(
        &control,
        Request::Stop(TARGET.into()),
        StrategyState::Stopped,
        Cause::Stopped,
    );
    // A stopped strategy cannot be resumed; an unknown id is refused.
    let refused = control.send(Request::Resume(TARGET.into())).unwrap();
    assert!(refused
        .recv_timeout(Duration::from_secs(30))
        .unwrap()
        .is_err());
    let unknown = control.send(Request::Pause("nobody".into())).unwrap();
    assert!(unknown
        .recv_timeout(Duration::from_secs(30))
        .unwrap()
        .is_err());
    let report = rt.block_on(run).unwrap().unwrap();
    assert_eq!(report.ticks, TICKS);
    assert!(paused < resumed && resumed < stopped && stopped < TICKS - 1);
    let got = sink.0.lock().unwrap().clone();

    // Everybody else: byte for byte the run without controls.
    let others = |lines: &[String]| -> Vec<String> {
        lines.iter().filter(|l| !is_target(l)).cloned().collect()
    };
    assert_eq!(others(&got), others(&reference));

    // The target: as without controls while active, nothing otherwise.
    let target = |lines: &[String], keep: &dyn Fn(u64) -> bool| -> Vec<String> {
        lines
            .iter()
            .filter(|l| is_target(l) && keep(seq(l)))
            .cloned()
            .collect()
    };
    let active = |s: u64| s <= paused || (resumed < s && s <= stopped);
    let expected = target(&reference, &active);
    assert_eq!(target(&got, &|_| true), expected);
    // Not vacuous: the target signals before the pause, during it (in the
    // reference), after the resume and after the stop (in the reference).
    for (window, keep) in [
        (
            "before the pause",
            &(|s: u64| s <= paused) as &dyn Fn(u64) -> bool,
        ),
        ("while paused", &|s: u64| paused < s && s <= resumed),
        ("after the resume", &|s: u64| resumed < s && s <= stopped),
        ("after the stop", &|s: u64| s > stopped),
    ] {
        assert!(!target(&reference, keep).is_empty(), "no signal {window}");
    }
}

#[test]
fn a_broker_whose_stream_is_the_dead_letter_stream_is_refused() {
    let mut settings = settings();
    settings.quiver.redis.dead_letter_stream = "signals.paper".to_owned();
    let err = Service::from_entries(scenario().entries(), settings)
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("broker \"paper\" would publish into the dead-letter stream"),
        "{err}"
    );
}
