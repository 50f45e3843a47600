//! The driver: the same signals whatever the cadence and batching, every
//! batch finished once and in order with exactly its ticks' signals, commands
//! applied between batches even while the feed is idle, and a consumer that
//! stops the loop.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use std::ops::ControlFlow;
use std::sync::mpsc;
use std::time::Duration;

use quiver_core::synthetic::SyntheticSpec;
use quiver_core::Tick;
use quiver_driver::{
    control_channel, Batch, Cadence, Consumer, Driver, Feed, Finish, InLine, Next, Request,
};
use quiver_engine::{
    Cause, Engine, EngineSignal, Input, ModelBatch, ModelIdx, ModelResults, ModelRunner, Output,
    StrategyEntry, StrategyState,
};
use quiver_strategy::ml::{MlFeature, MlStrategy, ModelInfo, ModelOutput, PostProcessor};
use quiver_strategy::rules::Momentum;
use quiver_strategy::{FeatureSpec, Logic, StandardValidator};

/// BUY above the row's SMA(3), SELL below: a pure function of the row.
struct Formula;

impl ModelRunner for Formula {
    fn run(&mut self, batch: &ModelBatch<'_>, results: &mut ModelResults) {
        for i in 0..batch.requests.len() {
            let row = batch.row(i);
            let p = if row[1] > row[0] {
                [0.1, 0.1, 0.8]
            } else {
                [0.8, 0.1, 0.1]
            };
            results.set(i, &p);
        }
        for model in 0..batch.models.len() {
            results.set_version(ModelIdx::new(model as u32), "1");
        }
    }
}

fn entries() -> Vec<StrategyEntry> {
    let ml = || {
        Logic::Model(Box::new(MlStrategy::new(
            "ml",
            &[MlFeature::Shared(FeatureSpec::Sma(3)), MlFeature::Price],
            ModelInfo {
                name: "m".into(),
                n_features: 2,
                output: ModelOutput::Classifier {
                    classes: vec![-1, 0, 1],
                },
            },
            PostProcessor {
                confidence_threshold: 0.5,
                quantity: 1,
                temperature: 1.0,
            },
        )))
    };
    let entry = |id: &str, logic: Logic, instruments: &[u64]| StrategyEntry {
        id: id.into(),
        logic,
        instruments: instruments.to_vec(),
        brokers: vec!["paper".into()],
        validator: StandardValidator::default(),
        guards: quiver_strategy::GuardSpec::default(),
        schedule: quiver_engine::Schedule::default(),
    };
    vec![
        entry(
            "mom",
            Logic::Rules(Box::new(Momentum::new(3, 0.001, 1))),
            &[1001, 1002, 1003],
        ),
        entry("ml", ml(), &[1001, 1002]),
        entry(
            "mom-2",
            Logic::Rules(Box::new(Momentum::new(5, 0.001, 1))),
            &[1002, 1003],
        ),
    ]
}

fn ticks() -> Vec<Tick> {
    SyntheticSpec::new(3, 2_000, 4).iter().collect()
}

/// Ticks in batches of `size`, seq = position.
struct Chunks {
    ticks: Vec<Tick>,
    size: usize,
    at: usize,
}

struct Chunk(Vec<(u64, Tick)>);

impl Batch for Chunk {
    fn ticks(&self) -> impl Iterator<Item = (u64, &Tick)> {
        self.0.iter().map(|(seq, tick)| (*seq, tick))
    }
}

impl Feed for Chunks {
    type Batch = Chunk;
    fn next(&mut self, _wait: bool) -> Next<Chunk> {
        if self.at >= self.ticks.len() {
            return Next::End;
        }
        let end = (self.at + self.size).min(self.ticks.len());
        let chunk = (self.at..end).map(|i| (i as u64, self.ticks[i])).collect();
        self.at = end;
        Next::Batch(Chunk(chunk))
    }
}

fn chunks(size: usize) -> Chunks {
    Chunks {
        ticks: ticks(),
        size,
        at: 0,
    }
}

/// Sharded over `shards`, each shard running its requests once `requests`
/// are pending.
fn sharded(shards: usize, requests: usize) -> quiver_driver::Sharded<InLine<Formula>> {
    quiver_driver::Sharded::build(
        shards,
        requests,
        || Ok::<_, quiver_engine::EngineError>(entries()),
        |_| {},
        |_| InLine(Formula),
    )
    .unwrap()
}

/// Records each finished batch's seqs and the signals handed with it.
#[derive(Default)]
struct Record {
    batches: Vec<Vec<u64>>,
    signals: Vec<EngineSignal>,
    /// Per finished group: (first seq, last seq) of its batches and the seqs
    /// of its signals.
    groups: Vec<(u64, u64, Vec<u64>)>,
    stop_after: Option<usize>,
    /// Told the number of batches finished, after each.
    finished: Option<mpsc::Sender<usize>>,
}

impl<B: Batch> Consumer<B> for Record {
    fn complete(
        &mut self,
        _engine: &Engine,
        batches: std::vec::Drain<'_, B>,
        out: &mut Output,
    ) -> ControlFlow<()> {
        let mut seqs = Vec::new();
        for batch in batches {
            let these: Vec<u64> = batch.ticks().map(|(seq, _)| seq).collect();
            seqs.extend(&these);
            self.batches.push(these);
        }
        if let (Some(first), Some(last)) = (seqs.first(), seqs.last()) {
            let signal_seqs = out.signals.iter().map(|s| s.seq).collect();
            self.groups.push((*first, *last, signal_seqs));
        }
        self.signals.append(&mut out.signals);
        if let Some(finished) = &self.finished {
            let _ = finished.send(self.batches.len());
        }
        match self.stop_after {
            Some(n) if self.batches.len() >= n => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }
}

/// The engine alone, one flush at the end.
fn reference() -> Vec<EngineSignal> {
    let mut engine = Engine::new(entries()).unwrap();
    let mut out = Output::default();
    for (seq, tick) in ticks().iter().enumerate() {
        let seq = seq as u64;
        engine.process(
            Input::Tick {
                seq,
                tick: &tick.clone(),
            },
            &mut out,
        );
    }
    engine.flush(&mut Formula, &mut out);
    out.signals
}

#[test]
fn every_cadence_and_batch_size_gives_the_same_signals_batch_by_batch() {
    let expected = reference();
    assert!(expected.iter().any(|s| s.model.is_some()), "the model runs");
    for cadence in [
        Cadence::EveryRequests(1),
        Cadence::EveryRequests(7),
        Cadence::EveryRequests(100_000),
        Cadence::Overlapped,
    ] {
        for size in [1, 13, 256] {
            let engine = Engine::new(entries()).unwrap();
            let mut driver = Driver::new(engine, InLine(Formula), cadence);
            let mut feed = chunks(size);
            let mut record = Record::default();
            assert_eq!(driver.run(&mut feed, &mut record), Finish::Exhausted);
            assert_eq!(record.signals, expected, "{cadence:?}, batches of {size}");
            // Every batch once, in order.
            let seqs: Vec<u64> = record.batches.concat();
            assert_eq!(seqs, (0..2_000).collect::<Vec<_>>());
            // Each group's signals come from its own ticks.
            for (first, last, signals) in &record.groups {
                assert!(signals.iter().all(|s| first <= s && s <= last));
            }
            if cadence == Cadence::Overlapped {
                assert_eq!(
                    record.groups.len(),
                    record.batches.len(),
                    "one batch a flight"
                );
            }
        }
    }
}

#[test]
fn a_consumer_can_stop_the_loop() {
    let engine = Engine::new(entries()).unwrap();
    let mut driver = Driver::new(engine, InLine(Formula), Cadence::Overlapped);
    let mut feed = chunks(10);
    let mut record = Record {
        stop_after: Some(3),
        ..Record::default()
    };
    assert_eq!(driver.run(&mut feed, &mut record), Finish::Stopped);
    assert_eq!(record.batches.len(), 3);
}

enum Message {
    Batch(Chunk),
    Wake,
    /// The waker keeps a sender, so the channel alone never closes.
    End,
}

/// Batches from a channel; waits for the next one when asked to.
struct Channel(mpsc::Receiver<Message>);

impl Feed for Channel {
    type Batch = Chunk;
    fn next(&mut self, wait: bool) -> Next<Chunk> {
        let message = if wait {
            self.0.recv().ok()
        } else {
            match self.0.try_recv() {
                Ok(message) => Some(message),
                Err(mpsc::TryRecvError::Empty) => return Next::Idle,
                Err(mpsc::TryRecvError::Disconnected) => None,
            }
        };
        match message {
            Some(Message::Batch(chunk)) => Next::Batch(chunk),
            Some(Message::Wake) => Next::Idle,
            Some(Message::End) | None => Next::End,
        }
    }
}

#[test]
fn commands_apply_between_batches_even_while_the_feed_is_idle() {
    let ticks = ticks();
    let (to_feed, from_test) = mpsc::channel();
    let (control, receiver) = control_channel();
    let waker = to_feed.clone();
    receiver.wake_with(move || {
        let _ = waker.send(Message::Wake);
    });
    let chunk = |range: std::ops::Range<usize>| {
        Message::Batch(Chunk(range.map(|i| (i as u64, ticks[i])).collect()))
    };
    to_feed.send(chunk(0..1_000)).unwrap();
    let (finished, batches_done) = mpsc::channel();
    let driver = std::thread::spawn(move || {
        let engine = Engine::new(entries()).unwrap();
        let mut driver =
            Driver::new(engine, InLine(Formula), Cadence::Overlapped).with_control(receiver);
        let mut record = Record {
            finished: Some(finished),
            ..Record::default()
        };
        let finish = driver.run(&mut Channel(from_test), &mut record);
        (finish, record)
    });
    // The first batch is finished and no other is coming: the driver waits
    // for the feed, and only the wake-up lets it see the command.
    assert_eq!(batches_done.recv_timeout(Duration::from_secs(30)), Ok(1));
    let reply = control
        .send(Request::Pause("mom".into()))
        .unwrap()
        .recv_timeout(Duration::from_secs(30))
        .unwrap()
        .unwrap();
    assert_eq!(
        (reply[0].to, reply[0].cause, reply[0].seq),
        (StrategyState::Paused, Cause::Paused, Some(999))
    );
    to_feed.send(chunk(1_000..2_000)).unwrap();
    to_feed.send(Message::End).unwrap();
    let (finish, record) = driver.join().unwrap();
    assert_eq!(finish, Finish::Exhausted);
    let mom = quiver_engine::StrategyIdx::new(0);
    let expected = reference();
    // The paused strategy is silent after the pause; everything else is
    // as without it.
    assert!(record
        .signals
        .iter()
        .all(|s| s.strategy != mom || s.seq < 1_000));
    let without = |signals: &[EngineSignal]| -> Vec<EngineSignal> {
        signals
            .iter()
            .filter(|s| s.strategy != mom || s.seq < 1_000)
            .copied()
            .collect()
    };
    assert_eq!(record.signals, without(&expected));
    assert!(expected.iter().any(|s| s.strategy == mom && s.seq >= 1_000));
}

/// One engine per shard: the engine alone's signals, in its order, for any
/// shard count, batch size and request cadence, and every batch finished
/// once, in order.
#[test]
fn sharded_runs_give_one_engines_signals_in_its_order() {
    let expected = reference();
    let single = {
        let engine = Engine::new(entries()).unwrap();
        let mut driver = Driver::new(engine, InLine(Formula), Cadence::EveryRequests(1));
        let mut feed = chunks(1);
        driver.run(&mut feed, &mut Record::default());
        driver.engine().stats()
    };
    // Three instruments over up to eight shards: some shards get none.
    let spread: Vec<u32> = [1001u64, 1002, 1003]
        .iter()
        .map(|&t| quiver_core::partition_of(t, 2))
        .collect();
    assert!(spread.contains(&0) && spread.contains(&1), "{spread:?}");
    for shards in [1, 2, 3, 8] {
        for size in [1, 13, 5_000] {
            for requests in [1, 100_000] {
                let mut sharded = sharded(shards, requests);
                let mut feed = chunks(size);
                let mut record = Record::default();
                assert_eq!(sharded.run(&mut feed, &mut record), Finish::Exhausted);
                let what = format!("{shards} shards, batches of {size}, flush at {requests}");
                assert_eq!(record.signals, expected, "{what}");
                assert_eq!(
                    record.batches.concat(),
                    (0..2_000).collect::<Vec<_>>(),
                    "{what}"
                );
                for (first, last, signals) in &record.groups {
                    assert!(signals.iter().all(|s| first <= s && s <= last), "{what}");
                }
                let stats = sharded.stats();
                assert_eq!(
                    (
                        stats.ticks,
                        stats.evaluations,
                        stats.signals,
                        stats.inferences
                    ),
                    (
                        single.ticks,
                        single.evaluations,
                        single.signals,
                        single.inferences
                    ),
                    "{what}"
                );
                // Model stamps name the version through the catalog.
                let catalog = sharded.catalog();
                for signal in record.signals.iter().filter(|s| s.model.is_some()) {
                    let stamp = signal.model.unwrap();
                    assert_eq!(catalog.model_version(stamp), "1", "{what}");
                }
            }
        }
    }
}

#[test]
fn a_consumer_can_stop_a_sharded_run() {
    let mut sharded = sharded(2, 1);
    let mut feed = chunks(10);
    let mut record = Record {
        stop_after: Some(3),
        ..Record::default()
    };
    assert_eq!(sharded.run(&mut feed, &mut record), Finish::Stopped);
    // Stopped after the round that passed three batches: no round after it.
    let finished = record.batches.len();
    assert!(finished >= 3, "{finished}");
    assert_eq!(
        record.groups.len(),
        1,
        "one round handed over, then stopped"
    );
}
