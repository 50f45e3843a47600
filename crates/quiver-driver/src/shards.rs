//! The engine loop on several cores: one engine per shard of the
//! instruments, merged back into one output.
//!
//! Instruments are independent — each has its own history ring and
//! features, and a (strategy, instrument) route reads nothing else — so
//! the work splits by instrument. Each shard is a whole [`Driver`] over the
//! instruments [`partition_of`] gives it: its own rings, features, routes
//! and a copy of every strategy (state per instrument only). The
//! coordinator (the thread that calls [`Sharded::run`]) gathers a round of
//! batches from the feed, hands each shard its ticks, runs the shards in
//! parallel, each to the end of its model requests, and merges what they
//! return in the round's tick order. One tick belongs to one shard, and a
//! shard's signals leave in (tick, strategy config order), so the merged
//! signals are in exactly the order one engine gives, whatever the number
//! of shards.
//!
//! While the shards work on one round, the coordinator hands the round
//! before to the consumer and reads the next one, so reading, publishing
//! and dispatching overlap.
//!
//! What a strategy keeps across instruments is per shard: its lifecycle
//! (a quarantine after failures on one shard's instruments leaves the
//! other shards' copies running), its counters (summed by
//! [`Sharded::stats`]) and any guard that looks at several instruments
//! (rate limits, the exposure cap), which is why callers refuse those with
//! more than one shard. A consumer is handed the catalog engine: the
//! strategies by id, brokers and model names of the set, with no
//! instruments of its own.

use std::ops::ControlFlow;

use quiver_core::{partition_of, Tick};
use quiver_engine::{Engine, EngineStats, Input, Output, Shed};

use crate::{Batch, Cadence, Consumer, Driver, Feed, Finish, Inference, Next};

/// Ticks gathered before the shards run: enough that starting the shards'
/// threads is a small part of a round, few enough to keep a round's
/// signals in cache and its latency low.
pub const ROUND_TICKS: usize = 4_096;

/// One tick of a shard's round.
#[derive(Clone, Copy)]
struct Work {
    seq: u64,
    tick: Tick,
    /// The shed level in force at this tick.
    shed: Option<Shed>,
}

/// A round: the batches gathered, each shard's ticks, and which shard took
/// each tick, in order.
struct Round<B> {
    batches: Vec<B>,
    work: Vec<Vec<Work>>,
    order: Vec<u32>,
}

impl<B> Round<B> {
    fn new(shards: usize) -> Self {
        Round {
            batches: Vec::new(),
            work: (0..shards).map(|_| Vec::new()).collect(),
            order: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    fn clear(&mut self) {
        self.batches.clear();
        self.order.clear();
        for work in &mut self.work {
            work.clear();
        }
    }
}

/// Several drivers, one per shard of the instruments. See the module docs.
pub struct Sharded<I: Inference> {
    catalog: Engine,
    shards: Vec<Driver<I>>,
    /// The shed level the feed last set.
    shed: Option<Shed>,
    merged: Output,
}

impl<I: Inference + Send> Sharded<I> {
    /// `catalog` names the strategies for the consumer (the same set as
    /// every shard, following nothing); `shards[k]` is the engine of the
    /// instruments whose [`partition_of`] over `shards.len()` is `k`, with
    /// its inference. Each shard runs its model requests once `requests`
    /// are pending and at the end of every round.
    pub fn new(catalog: Engine, shards: Vec<(Engine, I)>, requests: usize) -> Self {
        let merged = Output::with_capacity(catalog.strategy_count());
        Sharded {
            catalog,
            shards: shards
                .into_iter()
                .map(|(engine, inference)| {
                    Driver::new(engine, inference, Cadence::EveryRequests(requests.max(1)))
                })
                .collect(),
            shed: None,
            merged,
        }
    }

    /// The engine that names strategies, brokers and models.
    pub fn catalog(&self) -> &Engine {
        &self.catalog
    }

    /// The shards' engines, shard 0 first.
    pub fn engines(&self) -> impl Iterator<Item = &Engine> {
        self.shards.iter().map(Driver::engine)
    }

    /// The shards' inferences, shard 0 first.
    pub fn inferences(&self) -> impl Iterator<Item = &I> {
        self.shards.iter().map(Driver::inference)
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Every shard's counters, summed.
    pub fn stats(&self) -> EngineStats {
        let mut total = EngineStats::default();
        for engine in self.engines() {
            total.absorb(&engine.stats());
        }
        total
    }

    /// Runs until the feed ends (every batch finished) or the consumer
    /// stops it.
    pub fn run<F: Feed, C: Consumer<F::Batch>>(
        &mut self,
        feed: &mut F,
        consumer: &mut C,
    ) -> Finish {
        let finish = self.drive(feed, consumer);
        for shard in &mut self.shards {
            shard.finish_inference();
        }
        finish
    }

    fn drive<F: Feed, C: Consumer<F::Batch>>(&mut self, feed: &mut F, consumer: &mut C) -> Finish {
        let n = self.shards.len();
        let mut next = Round::new(n);
        let mut ended = gather_into(feed, consumer, &self.catalog, &mut self.shed, &mut next);
        let mut done = Round::new(n);
        while !next.is_empty() {
            let current = std::mem::replace(&mut next, Round::new(0));
            let shards = &mut self.shards;
            let catalog = &mut self.catalog;
            let merged = &mut self.merged;
            let shed = &mut self.shed;
            // The shards dispatch `current` while this thread finishes the
            // round before (`done`) and reads the next.
            let flow = std::thread::scope(|scope| {
                for (shard, work) in shards.iter_mut().zip(&current.work) {
                    if !work.is_empty() {
                        scope.spawn(move || shard.run_round(work));
                    }
                }
                let flow = finish_round(catalog, consumer, &mut done, merged);
                if flow.is_continue() && !ended {
                    next = Round::new(n);
                    ended = gather_into(feed, consumer, catalog, shed, &mut next);
                }
                flow
            });
            merge(
                &mut self.shards,
                &current,
                &mut self.catalog,
                &mut self.merged,
            );
            done = current;
            if flow.is_break() {
                return Finish::Stopped;
            }
        }
        if finish_round(&self.catalog, consumer, &mut done, &mut self.merged).is_break() {
            return Finish::Stopped;
        }
        Finish::Exhausted
    }
}

/// Reads batches into `round` until it holds [`ROUND_TICKS`] ticks or the
/// feed has nothing more right now; true when the feed ended.
fn gather_into<F: Feed, C: Consumer<F::Batch>>(
    feed: &mut F,
    consumer: &mut C,
    catalog: &Engine,
    shed: &mut Option<Shed>,
    round: &mut Round<F::Batch>,
) -> bool {
    let shards = round.work.len() as u32;
    while round.order.len() < ROUND_TICKS {
        let batch = match feed.next(round.is_empty()) {
            Next::Batch(batch) => batch,
            Next::Idle if round.is_empty() => continue,
            Next::Idle => return false,
            Next::End => return true,
        };
        if let Some(level) = batch.shed() {
            *shed = Some(level);
        }
        for (seq, tick) in batch.ticks() {
            let shard = partition_of(tick.instrument, shards);
            round.work[shard as usize].push(Work {
                seq,
                tick: *tick,
                shed: *shed,
            });
            round.order.push(shard);
        }
        consumer.dispatched(catalog, &batch);
        round.batches.push(batch);
    }
    false
}

/// Hands a merged round to the consumer.
fn finish_round<B, C: Consumer<B>>(
    catalog: &Engine,
    consumer: &mut C,
    round: &mut Round<B>,
    merged: &mut Output,
) -> ControlFlow<()> {
    if round.is_empty() {
        return ControlFlow::Continue(());
    }
    let flow = consumer.complete(catalog, round.batches.drain(..), merged);
    round.clear();
    merged.signals.clear();
    merged.faults.clear();
    merged.transitions.clear();
    merged.refused.clear();
    merged.rebuilds.clear();
    flow
}

/// Takes every shard's output of `round` into `merged`, in the round's tick
/// order; model stamps are re-interned in the catalog, which names them.
fn merge<I: Inference, B>(
    shards: &mut [Driver<I>],
    round: &Round<B>,
    catalog: &mut Engine,
    merged: &mut Output,
) {
    let mut taken = vec![(0usize, 0usize); shards.len()];
    for &shard in &round.order {
        let shard = shard as usize;
        let (next_tick, next_signal) = &mut taken[shard];
        let seq = round.work[shard][*next_tick].seq;
        *next_tick += 1;
        let driver = &shards[shard];
        let signals = &driver.out.signals;
        while let Some(signal) = signals.get(*next_signal).filter(|s| s.seq == seq) {
            let mut signal = *signal;
            if let Some(stamp) = signal.model {
                signal.model = Some(
                    catalog.adopt_model_version(stamp.model, driver.engine.model_version(stamp)),
                );
            }
            merged.signals.push(signal);
            *next_signal += 1;
        }
    }
    for (shard, (_, signals)) in shards.iter_mut().zip(taken) {
        debug_assert_eq!(signals, shard.out.signals.len(), "a signal of no tick");
        merged.faults.append(&mut shard.out.faults);
        merged.transitions.append(&mut shard.out.transitions);
        merged.refused.append(&mut shard.out.refused);
        merged.rebuilds.append(&mut shard.out.rebuilds);
        shard.out.signals.clear();
    }
    // Each shard's events are in order; across shards, by tick.
    merged.faults.sort_by_key(|fault| fault.seq);
    merged.transitions.sort_by_key(|change| change.seq);
}

impl<I: Inference> Driver<I> {
    /// One shard's part of a round: dispatches `work`, runs its model
    /// requests at the driver's cadence and at the end, and leaves every
    /// signal in `self.out`.
    fn run_round(&mut self, work: &[Work]) {
        for w in work {
            if let Some(level) = w.shed {
                self.engine.set_shed(level);
            }
            self.engine.process(
                Input::Tick {
                    seq: w.seq,
                    tick: &w.tick,
                },
                &mut self.out,
            );
            if let Cadence::EveryRequests(n) = self.cadence {
                if self.engine.pending_requests() >= n {
                    self.flush();
                }
            }
        }
        self.flush();
    }

    fn finish_inference(&mut self) {
        self.inference.finish();
    }
}
