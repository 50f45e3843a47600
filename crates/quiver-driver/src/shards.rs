//! The engine loop on several cores: one engine per shard of the
//! instruments, merged back into one output.
//!
//! Instruments are independent — each has its own history ring and
//! features, and a (strategy, instrument) route reads nothing else — so
//! the work splits by instrument. Each shard is a whole [`Driver`] over the
//! instruments [`partition_of`] gives it: its own rings, features, routes
//! and a copy of every strategy (state per instrument only). The
//! coordinator (the thread that calls [`Sharded::run`]) gathers a round of
//! batches from the feed and sends each shard's thread its ticks; each
//! shard dispatches them, runs its model requests to the end and sends back
//! what came out; the coordinator merges that in the round's tick order.
//! One tick belongs to one shard, and a shard's signals leave in (tick,
//! strategy config order), so the merged signals are in exactly the order
//! one engine gives, whatever the number of shards.
//!
//! Rounds are pipelined: while the shards dispatch one round, the
//! coordinator merges the round before, hands it to the consumer and reads
//! the next. The shards' threads live for the whole run, each keeping its
//! engine warm in its core's cache, and a round's buffers travel to a shard
//! and back, so nothing is allocated per round once they have grown.
//!
//! What a strategy keeps across instruments is per shard: its lifecycle
//! (a quarantine after failures on one shard's instruments leaves the
//! other shards' copies running), its counters (summed by
//! [`Sharded::stats`]) and any guard that looks at several instruments
//! (rate limits, the exposure cap), which is why callers refuse those with
//! more than one shard. A consumer is handed the catalog engine: the
//! strategies by id, brokers and model names of the set, with no
//! instruments of its own.

use std::sync::mpsc;

use quiver_core::{partition_of, Tick};
use quiver_engine::{Engine, EngineError, EngineStats, Input, Output, Shed, StrategyEntry};

use crate::{Batch, Cadence, Consumer, Driver, Feed, Finish, Inference, Next};

/// Ticks gathered before the shards run: enough that handing a round over
/// is a small part of it, few enough to keep a round's signals in cache
/// and its latency low.
pub const ROUND_TICKS: usize = 4_096;

/// One tick of a shard's round.
#[derive(Clone, Copy)]
struct Work {
    seq: u64,
    tick: Tick,
    /// The shed level in force at this tick.
    shed: Option<Shed>,
}

/// What travels to a shard and back: its ticks of a round, and then what
/// they gave.
#[derive(Default)]
struct Part {
    work: Vec<Work>,
    out: Output,
    /// The shard's model versions by model, which its stamps index (copied
    /// when the shard has interned a new one).
    versions: Vec<Vec<String>>,
}

/// A round: the batches gathered, each shard's part, and which shard took
/// each tick, in order.
struct Round<B> {
    batches: Vec<B>,
    parts: Vec<Part>,
    order: Vec<u32>,
}

impl<B> Round<B> {
    fn new(shards: usize) -> Self {
        Round {
            batches: Vec::new(),
            parts: (0..shards).map(|_| Part::default()).collect(),
            order: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    fn clear(&mut self) {
        self.batches.clear();
        self.order.clear();
        for part in &mut self.parts {
            part.work.clear();
            part.out.clear();
        }
    }
}

/// Several drivers, one per shard of the instruments. See the module docs.
pub struct Sharded<I: Inference> {
    catalog: Engine,
    shards: Vec<Driver<I>>,
    merged: Output,
}

impl<I: Inference + Send> Sharded<I> {
    /// The catalog and `shards` engines of one strategy set. `entries` is
    /// called once per engine, since each needs instances of its own: the
    /// catalog follows nothing and names the strategies for the consumer;
    /// shard `k` follows the instruments whose [`partition_of`] over
    /// `shards` is `k` ([`StrategyEntry::for_shard`]), is set up by
    /// `setup` (its lifecycle policy, say) and runs its models through
    /// `inference(its engine)`. Each shard runs its model requests once
    /// `requests` are pending and at the end of every round.
    pub fn build<E: From<EngineError>>(
        shards: usize,
        requests: usize,
        mut entries: impl FnMut() -> Result<Vec<StrategyEntry>, E>,
        mut setup: impl FnMut(&mut Engine),
        mut inference: impl FnMut(&Engine) -> I,
    ) -> Result<Self, E> {
        let everything = entries()?.into_iter().map(|entry| StrategyEntry {
            instruments: Vec::new(),
            ..entry
        });
        let catalog = Engine::new(everything.collect())?;
        let mut engines = Vec::with_capacity(shards);
        for shard in 0..shards {
            let mine = entries()?
                .into_iter()
                .map(|entry| entry.for_shard(shard, shards));
            let mut engine = Engine::new(mine.collect())?;
            setup(&mut engine);
            let inference = inference(&engine);
            engines.push((engine, inference));
        }
        Ok(Sharded::new(catalog, engines, requests))
    }

    fn new(catalog: Engine, shards: Vec<(Engine, I)>, requests: usize) -> Self {
        let merged = Output::with_capacity(catalog.strategy_count());
        Sharded {
            catalog,
            shards: shards
                .into_iter()
                .map(|(engine, inference)| {
                    Driver::new(engine, inference, Cadence::EveryRequests(requests.max(1)))
                })
                .collect(),
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
    /// stops it. The consumer's [`Consumer::dispatched`] is called as each
    /// batch is read (the shards dispatch it after), with the catalog; its
    /// `complete` gets each round, merged. A sharded run takes no commands, so a feed that is idle
    /// with nothing gathered is asked again (it should wait for its next
    /// batch); idle with a round gathered, the round is dispatched.
    pub fn run<F: Feed, C: Consumer<F::Batch>>(
        &mut self,
        feed: &mut F,
        consumer: &mut C,
    ) -> Finish {
        let Sharded {
            catalog,
            shards,
            merged,
        } = self;
        let n = shards.len();
        let finish = std::thread::scope(|scope| {
            let mut links = Vec::with_capacity(n);
            for shard in shards.iter_mut() {
                let (to_shard, work) = mpsc::channel::<Part>();
                let (done, from_shard) = mpsc::channel::<Part>();
                scope.spawn(move || {
                    while let Ok(mut part) = work.recv() {
                        shard.run_round(&part.work);
                        std::mem::swap(&mut part.out, &mut shard.out);
                        shard.copy_versions(&mut part.versions);
                        if done.send(part).is_err() {
                            break;
                        }
                    }
                });
                links.push((to_shard, from_shard));
            }
            let mut pipeline = Pipeline {
                links,
                catalog,
                merged,
                shed: None,
            };
            pipeline.drive(feed, consumer)
            // Dropping the links ends the shards' threads.
        });
        for shard in shards.iter_mut() {
            shard.finish_inference();
        }
        finish
    }
}

/// The coordinator's side of a run: a link to each shard's thread.
struct Pipeline<'r> {
    links: Vec<(mpsc::Sender<Part>, mpsc::Receiver<Part>)>,
    catalog: &'r mut Engine,
    merged: &'r mut Output,
    /// The shed level the feed set last: every tick after it carries it,
    /// so a shard that had no tick when it was set still learns it.
    shed: Option<Shed>,
}

impl Pipeline<'_> {
    fn drive<F: Feed, C: Consumer<F::Batch>>(&mut self, feed: &mut F, consumer: &mut C) -> Finish {
        let n = self.links.len();
        let mut gathering = Round::new(n);
        let mut flying = Round::new(n);
        let mut landed = Round::new(n);
        let mut ended = gather(feed, consumer, self.catalog, &mut self.shed, &mut gathering);
        loop {
            std::mem::swap(&mut gathering, &mut flying);
            let sent = !flying.is_empty();
            if sent {
                for ((to_shard, _), part) in self.links.iter().zip(&mut flying.parts) {
                    if to_shard.send(std::mem::take(part)).is_err() {
                        panic!("a shard's thread stopped");
                    }
                }
            }
            // While the shards dispatch `flying`: `landed` out, the next in.
            if !landed.is_empty() {
                merge(&mut landed, self.catalog, self.merged);
                let flow = consumer.complete(self.catalog, landed.batches.drain(..), self.merged);
                self.merged.clear();
                landed.clear();
                if flow.is_break() {
                    return Finish::Stopped;
                }
            }
            if !ended {
                ended = gather(feed, consumer, self.catalog, &mut self.shed, &mut gathering);
            }
            if !sent {
                return Finish::Exhausted;
            }
            for ((_, from_shard), part) in self.links.iter().zip(&mut flying.parts) {
                match from_shard.recv() {
                    Ok(back) => *part = back,
                    Err(_) => panic!("a shard's thread stopped"),
                }
            }
            std::mem::swap(&mut flying, &mut landed);
        }
    }
}

/// Reads batches into `round` until it holds [`ROUND_TICKS`] ticks or the
/// feed has nothing more right now; true when the feed ended.
fn gather<F: Feed, C: Consumer<F::Batch>>(
    feed: &mut F,
    consumer: &mut C,
    catalog: &Engine,
    shed: &mut Option<Shed>,
    round: &mut Round<F::Batch>,
) -> bool {
    let shards = round.parts.len() as u32;
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
            round.parts[shard as usize].work.push(Work {
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

/// Takes every shard's output of `round` into `merged`, in the round's tick
/// order; model stamps are re-interned in the catalog, which names them.
fn merge<B>(round: &mut Round<B>, catalog: &mut Engine, merged: &mut Output) {
    let mut taken = vec![(0usize, 0usize); round.parts.len()];
    for &shard in &round.order {
        let shard = shard as usize;
        let (next_tick, next_signal) = &mut taken[shard];
        let part = &round.parts[shard];
        let seq = part.work[*next_tick].seq;
        *next_tick += 1;
        while let Some(signal) = part.out.signals.get(*next_signal).filter(|s| s.seq == seq) {
            let mut signal = *signal;
            if let Some(stamp) = signal.model {
                let version = &part.versions[stamp.model.index()][stamp.version as usize];
                signal.model = Some(catalog.adopt_model_version(stamp.model, version));
            }
            merged.signals.push(signal);
            *next_signal += 1;
        }
    }
    for (part, (_, signals)) in round.parts.iter_mut().zip(taken) {
        debug_assert_eq!(signals, part.out.signals.len(), "a signal of no tick");
        merged.faults.append(&mut part.out.faults);
        merged.transitions.append(&mut part.out.transitions);
        merged.refused.append(&mut part.out.refused);
        merged.rebuilds.append(&mut part.out.rebuilds);
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

    /// Brings `versions` up to the engine's model versions.
    fn copy_versions(&self, versions: &mut Vec<Vec<String>>) {
        let models = self.engine.models().len();
        versions.resize_with(models, Vec::new);
        for (model, copy) in versions.iter_mut().enumerate() {
            let serving = self
                .engine
                .model_versions(quiver_engine::ModelIdx::new(model as u32));
            if copy.len() != serving.len() {
                *copy = serving.to_vec();
            }
        }
    }

    fn finish_inference(&mut self) {
        self.inference.finish();
    }
}
