//! The engine loop, one for every mode.
//!
//! A [`Driver`] owns an [`Engine`] and feeds it from a [`Feed`] of tick
//! batches, runs the model requests the ticks leave through an
//! [`Inference`], hands every finished batch with its signals to a
//! [`Consumer`], and applies operators' [`Command`]s between two batches.
//! The modes differ only in what is plugged in:
//!
//! | mode     | feed                    | inference                  | cadence        | consumer           |
//! |----------|-------------------------|----------------------------|----------------|--------------------|
//! | replay   | a tick file, one tick a batch | micro-batcher, in line | every N requests | JSONL lines    |
//! | live     | the source task's batches | worker pool, overlapped  | one flight a batch | encode, to the sink task |
//!
//! A batch is finished when every signal its ticks caused is out: at once
//! for rules strategies, after its flight of model requests lands for ML
//! ones. Signals leave in (tick, strategy) order whatever the cadence (the
//! engine's invariant), so the consumer sees the same signals in replay and
//! live.
//!
//! The driver is synchronous and does no I/O: it runs on whatever thread
//! calls [`Driver::run`] (the live service gives it a thread of its own).
//! [`Sharded`] runs one driver per shard of the instruments, each on a
//! thread of its own for a round of ticks, and merges their output back
//! into one engine's order.

mod control;
mod shards;

use std::ops::ControlFlow;

use quiver_core::Tick;
use quiver_engine::{Engine, Flight, Input, ModelBatch, ModelResults, ModelRunner, Output};

pub use control::{
    control_channel, Command, ControlHandle, ControlReceiver, Disconnected, Reply, Request,
};
pub use shards::{Sharded, ROUND_TICKS};

/// A batch of ticks, dispatched together and finished together.
pub trait Batch {
    /// The ticks to dispatch, in order, with their sequence numbers.
    fn ticks(&self) -> impl Iterator<Item = (u64, &Tick)>;

    /// Which priorities to skip while dispatching this batch, when its
    /// source is behind; `None` leaves the engine's level as it is. A
    /// replay's batches never shed.
    fn shed(&self) -> Option<quiver_engine::Shed> {
        None
    }
}

/// What [`Feed::next`] found.
pub enum Next<B> {
    Batch(B),
    /// Nothing yet (only when asked not to wait), or woken up to look at
    /// the controls.
    Idle,
    /// No more batches, ever.
    End,
}

/// Where batches come from.
pub trait Feed {
    type Batch: Batch;

    /// The next batch. With `wait` false, returns [`Next::Idle`] rather
    /// than wait for one.
    fn next(&mut self, wait: bool) -> Next<Self::Batch>;
}

/// Runs the model requests of a flight: at once ([`InLine`]) or off the
/// driver's thread while it dispatches the next batch.
pub trait Inference {
    type Ticket;

    /// Starts running `batch`.
    fn submit(&mut self, batch: &ModelBatch<'_>) -> Self::Ticket;

    /// Writes the results of `ticket` (started for `batch`) into `results`,
    /// which arrive reset for `batch`.
    fn collect(&mut self, ticket: Self::Ticket, batch: &ModelBatch<'_>, results: &mut ModelResults);

    /// Called once when the driver stops.
    fn finish(&mut self) {}
}

/// A [`ModelRunner`] run synchronously when its results are collected.
pub struct InLine<R>(pub R);

impl<R: ModelRunner> Inference for InLine<R> {
    type Ticket = ();

    fn submit(&mut self, _batch: &ModelBatch<'_>) {}

    fn collect(&mut self, _ticket: (), batch: &ModelBatch<'_>, results: &mut ModelResults) {
        if !batch.requests.is_empty() {
            self.0.run(batch, results);
        }
    }
}

/// No models: an engine without model strategies never makes a request.
pub struct NoInference;

impl Inference for NoInference {
    type Ticket = ();
    fn submit(&mut self, _batch: &ModelBatch<'_>) {}
    fn collect(&mut self, _ticket: (), _batch: &ModelBatch<'_>, _results: &mut ModelResults) {}
}

/// When model requests run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cadence {
    /// Once at least this many requests are pending (checked after every
    /// batch) and at the end, waiting for the results: replay. Any value
    /// gives the same signals.
    EveryRequests(usize),
    /// Each batch's requests fly while the next batch is dispatched; a
    /// flight lands before the next one leaves, or as soon as the feed is
    /// idle: live.
    Overlapped,
}

/// Where finished batches go.
pub trait Consumer<B> {
    /// Called after each batch is dispatched, before it is finished.
    fn dispatched(&mut self, engine: &Engine, batch: &B) {
        let _ = (engine, batch);
    }

    /// `batches` (consecutive, oldest first) are finished: `out.signals`
    /// holds every signal their ticks caused, in output order, and `out`
    /// also what else came out since the last call (faults, transitions,
    /// refused controls). The driver clears `out` afterwards.
    /// [`ControlFlow::Break`] stops the driver.
    fn complete(
        &mut self,
        engine: &Engine,
        batches: std::vec::Drain<'_, B>,
        out: &mut Output,
    ) -> ControlFlow<()>;

    /// The engine was rebuilt for a new strategy set
    /// ([`Request::Rebuild`]): strategy indices
    /// now name the new set's strategies. Called before the next batch.
    fn reconfigured(&mut self, engine: &Engine) {
        let _ = engine;
    }
}

/// Why [`Driver::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// The feed ended and every batch was finished.
    Exhausted,
    /// The consumer asked to stop.
    Stopped,
}

/// A flight in the air, with the batches it finishes.
struct Flying<T, B> {
    flight: Flight,
    ticket: T,
    batches: Vec<B>,
}

/// The engine loop. See the crate docs.
pub struct Driver<I: Inference> {
    engine: Engine,
    inference: I,
    cadence: Cadence,
    control: Option<ControlReceiver>,
    /// Commands received and not yet applied.
    waiting: Vec<Command>,
    out: Output,
    results: ModelResults,
}

impl<I: Inference> Driver<I> {
    pub fn new(engine: Engine, inference: I, cadence: Cadence) -> Self {
        let out = Output::with_capacity(engine.strategy_count());
        Driver {
            engine,
            inference,
            cadence,
            control: None,
            waiting: Vec::new(),
            out,
            results: ModelResults::default(),
        }
    }

    /// Applies the commands sent to `control`'s handle between batches.
    pub fn with_control(mut self, control: ControlReceiver) -> Self {
        self.control = Some(control);
        self
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// What runs the model requests.
    pub fn inference(&self) -> &I {
        &self.inference
    }

    pub fn into_parts(self) -> (Engine, I) {
        (self.engine, self.inference)
    }

    /// Appends `ticks` to history without calling any strategy (a restart's
    /// preload).
    pub fn warm_up<'a>(&mut self, ticks: impl IntoIterator<Item = &'a Tick>) {
        for tick in ticks {
            self.engine.process(Input::WarmUp(tick), &mut self.out);
        }
    }

    /// Runs until the feed ends (every batch finished) or the consumer
    /// stops it.
    pub fn run<F: Feed, C: Consumer<F::Batch>>(
        &mut self,
        feed: &mut F,
        consumer: &mut C,
    ) -> Finish {
        let finish = self.drive(feed, consumer);
        self.inference.finish();
        finish
    }

    fn drive<F: Feed, C: Consumer<F::Batch>>(&mut self, feed: &mut F, consumer: &mut C) -> Finish {
        let mut open: Vec<F::Batch> = Vec::new();
        let mut flying: Option<Flying<I::Ticket, F::Batch>> = None;
        loop {
            if self.has_commands() {
                // Controls apply to a quiet engine: everything dispatched
                // so far is finished first.
                if self.settle(&mut flying, &mut open, consumer).is_break() {
                    return Finish::Stopped;
                }
                self.apply_commands(|engine| consumer.reconfigured(engine));
            }
            let batch = match feed.next(flying.is_none()) {
                Next::Batch(batch) => batch,
                Next::Idle => {
                    if let Some(f) = flying.take() {
                        if self.land(f, consumer).is_break() {
                            return Finish::Stopped;
                        }
                    }
                    continue;
                }
                Next::End => break,
            };
            if let Some(shed) = batch.shed() {
                self.engine.set_shed(shed);
            }
            for (seq, tick) in batch.ticks() {
                let _span =
                    tracing::debug_span!("tick", seq, instrument = tick.instrument).entered();
                self.engine
                    .process(Input::Tick { seq, tick }, &mut self.out);
            }
            consumer.dispatched(&self.engine, &batch);
            open.push(batch);
            let flow = match self.cadence {
                Cadence::EveryRequests(n) => {
                    if self.engine.pending_requests() >= n {
                        self.flush();
                    }
                    self.complete_if_out(&mut open, consumer)
                }
                Cadence::Overlapped => {
                    // The previous batch's flight lands only now, after
                    // this batch was dispatched while it flew.
                    let landed = match flying.take() {
                        Some(f) => self.land(f, consumer),
                        None => ControlFlow::Continue(()),
                    };
                    if landed.is_break() {
                        return Finish::Stopped;
                    }
                    match self.engine.detach() {
                        Some(flight) => {
                            let ticket = self.inference.submit(&flight.batch(self.engine.models()));
                            flying = Some(Flying {
                                flight,
                                ticket,
                                batches: std::mem::take(&mut open),
                            });
                            ControlFlow::Continue(())
                        }
                        None => self.complete_if_out(&mut open, consumer),
                    }
                }
            };
            if flow.is_break() {
                return Finish::Stopped;
            }
        }
        if self.settle(&mut flying, &mut open, consumer).is_break() {
            return Finish::Stopped;
        }
        Finish::Exhausted
    }

    /// Lands what flies and runs what is pending, finishing every batch.
    fn settle<C: Consumer<B>, B>(
        &mut self,
        flying: &mut Option<Flying<I::Ticket, B>>,
        open: &mut Vec<B>,
        consumer: &mut C,
    ) -> ControlFlow<()> {
        if let Some(f) = flying.take() {
            self.land(f, consumer)?;
        }
        self.flush();
        self.complete_if_out(open, consumer)
    }

    /// Runs every pending request now and lands the results.
    fn flush(&mut self) {
        let Some(flight) = self.engine.detach() else {
            return;
        };
        let ticket = self.inference.submit(&flight.batch(self.engine.models()));
        self.land_flight(flight, ticket);
    }

    fn land<C: Consumer<B>, B>(
        &mut self,
        mut flying: Flying<I::Ticket, B>,
        consumer: &mut C,
    ) -> ControlFlow<()> {
        self.land_flight(flying.flight, flying.ticket);
        let flow = consumer.complete(&self.engine, flying.batches.drain(..), &mut self.out);
        self.out.clear();
        flow
    }

    fn land_flight(&mut self, flight: Flight, ticket: I::Ticket) {
        let mut results = std::mem::take(&mut self.results);
        let batch = flight.batch(self.engine.models());
        results.reset_for(&batch);
        self.inference.collect(ticket, &batch, &mut results);
        self.engine.process(
            Input::Landed {
                flight,
                results: &results,
            },
            &mut self.out,
        );
        self.results = results;
    }

    /// Finishes the open batches when none of their evaluations waits for
    /// a model.
    fn complete_if_out<C: Consumer<B>, B>(
        &mut self,
        open: &mut Vec<B>,
        consumer: &mut C,
    ) -> ControlFlow<()> {
        if self.engine.has_pending() || self.engine.in_flight() || open.is_empty() {
            return ControlFlow::Continue(());
        }
        let flow = consumer.complete(&self.engine, open.drain(..), &mut self.out);
        self.out.clear();
        flow
    }
}
