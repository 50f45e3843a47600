//! The engine thread: the driver fed by the source task's queue, its model
//! requests overlapped with the next batch on the inference pool, and each
//! finished batch encoded and handed to the sink task.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quiver_core::{Side, Tick};
use quiver_driver::{Batch, Cadence, Consumer, ControlReceiver, Driver, Feed, Inference, Next};
use quiver_engine::{Engine, EngineSignal, ModelBatch, ModelResults, Output, Shed};
use quiver_io::encode_signal;
use quiver_io::live::{LiveTick, OutSignal, SignalBatch, TickBatch};
use quiver_telemetry::Telemetry;
use tokio::sync::{mpsc, oneshot};

use super::sink::Published;
use super::source::ToEngine;
use super::stats::{ModelSync, StatsSync};
use super::strategy_set::LiveSet;
use super::{Gate, RuntimeError};

/// The set a reload built, waiting for its engine.
pub(super) type NextSet = Arc<std::sync::Mutex<Option<LiveSet>>>;
use crate::backtest::PaperBook;
use crate::models::{PoolRunner, Submitted};

/// How often engine-side counters are copied into metrics.
const SYNC_EVERY: Duration = Duration::from_millis(250);

/// What the engine thread needs besides the engine.
pub(super) struct EngineStage {
    pub(super) gate: Gate,
    pub(super) set: LiveSet,
    /// Where a reload leaves the set it built, for the engine thread to
    /// take when the engine is rebuilt for it.
    pub(super) next_set: NextSet,
    pub(super) runner: Option<PoolRunner>,
    pub(super) control: ControlReceiver,
    /// `quiver.load_shedding`: skip low-priority strategies while behind.
    pub(super) load_shedding: bool,
    /// The paper desk (`quiver.paper_report`).
    pub(super) paper: Option<Paper>,
    /// The recording of inbound ticks (`quiver.record`).
    pub(super) recorder: Option<crate::record::Recorder>,
}

/// The paper desk the engine thread runs beside the brokers, and where its
/// report goes.
pub(super) struct Paper {
    pub(super) desk: quiver_paper::DeskSpec,
    pub(super) trades: std::io::BufWriter<std::fs::File>,
    pub(super) dir: std::path::PathBuf,
}

impl EngineStage {
    /// Starts the engine thread; the receiver gets its result once every
    /// batch it read is handed to the sink (or the sink stopped).
    pub(super) fn spawn(
        self,
        engine: Engine,
        from_source: mpsc::Receiver<ToEngine>,
        to_sink: mpsc::Sender<Published>,
        telemetry: Arc<Telemetry>,
    ) -> Result<oneshot::Receiver<Result<(), RuntimeError>>, RuntimeError> {
        let EngineStage {
            gate,
            set,
            next_set,
            runner,
            control,
            load_shedding,
            paper,
            recorder,
        } = self;
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("quiver-engine".to_owned())
            .spawn(move || {
                let strategies = engine.strategy_count();
                let inference = PoolInference {
                    runner,
                    sync: ModelSync::default(),
                    telemetry: Arc::clone(&telemetry),
                    last_sync: Instant::now(),
                };
                let mut driver =
                    Driver::new(engine, inference, Cadence::Overlapped).with_control(control);
                let mut feed = LiveFeed {
                    from_source,
                    gate: gate.clone(),
                    telemetry: Arc::clone(&telemetry),
                    load_shedding,
                    recorder,
                };
                let (book, report_dir) = match paper {
                    Some(Paper { desk, trades, dir }) => (
                        Some(PaperBook::new(desk, driver.engine(), trades)),
                        Some(dir),
                    ),
                    None => (None, None),
                };
                let mut consumer = Encoder {
                    gate,
                    set,
                    next_set,
                    to_sink,
                    telemetry,
                    sync: StatsSync::new(strategies),
                    last_sync: Instant::now(),
                    paper: book,
                };
                // A stop here means the sink stopped; it reports why.
                let _ = driver.run(&mut feed, &mut consumer);
                consumer.sync_stats(driver.engine());
                if let (Some(book), Some(dir)) = (consumer.paper.take(), report_dir) {
                    write_paper_report(book, &dir);
                }
                if let Some(recorder) = feed.recorder.take() {
                    match recorder.finish() {
                        Ok((files, ticks)) => {
                            tracing::info!(files, ticks, "recording finished")
                        }
                        Err(err) => tracing::error!("{err}"),
                    }
                }
                let _ = done_tx.send(Ok(()));
            })
            .map_err(|_| RuntimeError::EngineThread)?;
        Ok(done_rx)
    }
}

/// The source task's batches, with the session gate applied.
struct LiveFeed {
    from_source: mpsc::Receiver<ToEngine>,
    gate: Gate,
    telemetry: Arc<Telemetry>,
    load_shedding: bool,
    recorder: Option<crate::record::Recorder>,
}

impl Feed for LiveFeed {
    type Batch = LiveBatch;

    fn next(&mut self, wait: bool) -> Next<LiveBatch> {
        let next = if wait {
            self.from_source.blocking_recv()
        } else {
            match self.from_source.try_recv() {
                Ok(next) => Some(next),
                Err(mpsc::error::TryRecvError::Empty) => return Next::Idle,
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            }
        };
        match next {
            Some(ToEngine::Batch(batch)) => {
                if let Some(recorder) = &mut self.recorder {
                    recorder.record(batch.ticks.iter().map(|t| (t.seq, t.tick)));
                }
                self.telemetry
                    .metrics
                    .queue_depth_engine
                    .set(self.from_source.len() as f64);
                let shed = if self.load_shedding {
                    shed_for(self.from_source.len(), self.from_source.max_capacity())
                } else {
                    Shed::Nothing
                };
                Next::Batch(LiveBatch::new(batch, &self.gate, shed))
            }
            Some(ToEngine::Wake) => Next::Idle,
            None => Next::End,
        }
    }
}

/// A source batch and which of its ticks the session gate lets through.
struct LiveBatch {
    batch: TickBatch,
    admitted: Vec<bool>,
    /// How far behind the engine was when the batch was taken.
    shed: Shed,
}

impl LiveBatch {
    fn new(batch: TickBatch, gate: &Gate, shed: Shed) -> Self {
        let admitted = batch.ticks.iter().map(|t| gate.admits(&t.tick)).collect();
        LiveBatch {
            batch,
            admitted,
            shed,
        }
    }
}

/// What to skip with `waiting` batches queued in front of the engine, of
/// `capacity`: background strategies from half full, all but critical
/// ones from three quarters (seed 001). Critical strategies are never
/// skipped; every skipped evaluation is counted.
fn shed_for(waiting: usize, capacity: usize) -> Shed {
    if waiting * 4 >= capacity * 3 && waiting > 0 {
        Shed::AllButCritical
    } else if waiting * 2 >= capacity && waiting > 0 {
        Shed::Background
    } else {
        Shed::Nothing
    }
}

impl Batch for LiveBatch {
    fn ticks(&self) -> impl Iterator<Item = (u64, &Tick)> {
        self.batch
            .ticks
            .iter()
            .zip(&self.admitted)
            .filter(|(_, admitted)| **admitted)
            .map(|(live, _)| (live.seq, &live.tick))
    }

    fn shed(&self) -> Option<Shed> {
        Some(self.shed)
    }
}

/// The inference pool, overlapped with dispatch, and its metrics.
struct PoolInference {
    /// `None` without ML strategies: nothing ever asks for a model.
    runner: Option<PoolRunner>,
    sync: ModelSync,
    telemetry: Arc<Telemetry>,
    last_sync: Instant,
}

impl Inference for PoolInference {
    type Ticket = Option<Submitted>;

    fn submit(&mut self, batch: &ModelBatch<'_>) -> Option<Submitted> {
        self.runner.as_mut().map(|runner| runner.submit(batch))
    }

    fn collect(
        &mut self,
        ticket: Option<Submitted>,
        _batch: &ModelBatch<'_>,
        results: &mut ModelResults,
    ) {
        // Without a runner there is nothing to collect: any request counts
        // as failed.
        if let (Some(runner), Some(submitted)) = (&mut self.runner, ticket) {
            runner.collect(submitted, results);
            if self.last_sync.elapsed() >= SYNC_EVERY {
                self.sync.sync(runner, &self.telemetry);
                self.last_sync = Instant::now();
            }
        }
    }

    fn finish(&mut self) {
        if let Some(runner) = &self.runner {
            self.sync.sync(runner, &self.telemetry);
        }
    }
}

/// Counts and encodes each finished batch's signals, one JSON line per
/// broker, and hands the batch to the sink.
struct Encoder {
    gate: Gate,
    set: LiveSet,
    next_set: NextSet,
    to_sink: mpsc::Sender<Published>,
    telemetry: Arc<Telemetry>,
    sync: StatsSync,
    last_sync: Instant,
    /// The paper desk, fed each dispatched tick and then the signals it
    /// caused that left (as a backtest feeds it).
    paper: Option<PaperBook<std::io::BufWriter<std::fs::File>>>,
}

/// What the dead letter of a signal the paper desk refused says, before
/// the reason.
pub(super) const DESK_WITHHELD: &str = "refused by the paper desk: ";

/// What the paper desk made of a signal, for the brokers.
enum Desk {
    Passed,
    /// Let out with this quantity instead.
    Throttled(u64),
    Refused(&'static str),
}

fn desk_says(
    paper: &mut PaperBook<std::io::BufWriter<std::fs::File>>,
    signal: &EngineSignal,
) -> Desk {
    use quiver_paper::{SignalMode, Verdict};
    match paper.signal(signal) {
        Verdict::Accepted | Verdict::NoChange => Desk::Passed,
        Verdict::Throttled(_) => {
            let (order, position) = paper.last_order();
            // An order leaves with its size; a target with the position
            // it now asks for.
            let quantity = match paper.mode(signal) {
                SignalMode::Order => order.unsigned_abs(),
                SignalMode::Target => position.unsigned_abs(),
            };
            Desk::Throttled(quantity.max(1))
        }
        refused => Desk::Refused(refused.reason()),
    }
}

/// Writes the paper desk's report into `dir` (its `trades.csv` was written
/// as the run went); a failure is logged, the run's outcome is the bus's.
fn write_paper_report(book: PaperBook<std::io::BufWriter<std::fs::File>>, dir: &std::path::Path) {
    let written = book.finish().and_then(|desk| {
        crate::backtest::write_report(&desk, dir, "Quiver paper trading: a live session")
    });
    match written {
        Ok((_, html)) => tracing::info!(report = %html.display(), "paper trading report written"),
        Err(err) => {
            tracing::error!(%err, dir = %dir.display(), "could not write the paper trading report")
        }
    }
}

impl Consumer<LiveBatch> for Encoder {
    fn dispatched(&mut self, _engine: &Engine, batch: &LiveBatch) {
        let metrics = &self.telemetry.metrics;
        let dispatched = batch.admitted.iter().filter(|a| **a).count() as u64;
        metrics.ticks_processed.inc_by(dispatched);
        metrics
            .ticks_outside_session
            .inc_by(batch.admitted.len() as u64 - dispatched);
        for letter in &batch.batch.rejected {
            if let Some(counter) = metrics.rejected(letter.category) {
                counter.inc();
            }
            tracing::warn!(
                category = letter.category,
                origin = letter.origin,
                "dead-lettering an entry: {}",
                letter.reason
            );
        }
    }

    fn complete(
        &mut self,
        engine: &Engine,
        batches: std::vec::Drain<'_, LiveBatch>,
        out: &mut Output,
    ) -> ControlFlow<()> {
        crate::publish::log_events(engine, out);
        for change in &out.transitions {
            self.telemetry.status.record_transition(
                engine.strategy_id(change.strategy),
                quiver_telemetry::TransitionRecord {
                    from: change.from.as_str(),
                    to: change.to.as_str(),
                    cause: change.cause.as_str(),
                    seq: change.seq,
                    ts_ns: change.ts_ns,
                },
            );
        }
        let mut signals = out.signals.iter().peekable();
        for LiveBatch {
            batch, admitted, ..
        } in batches
        {
            let mut encoded = SignalBatch::default();
            // Ticks of a batch need not be in seq order (several partition
            // streams), but they were dispatched in batch order and signals
            // follow dispatch order: each tick, then its signals.
            for (live, admitted) in batch.ticks.iter().zip(&admitted) {
                if !*admitted {
                    continue;
                }
                if let Some(paper) = &mut self.paper {
                    paper.tick(live.seq, &live.tick);
                }
                while let Some(signal) = signals.next_if(|s| s.seq == live.seq) {
                    if !self.in_session(signal, live) {
                        continue;
                    }
                    let desk = self.paper.as_mut().map(|paper| desk_says(paper, signal));
                    match desk {
                        Some(Desk::Refused(reason)) => {
                            self.refused_by_desk(engine, signal, live, reason, &mut encoded)
                        }
                        Some(Desk::Throttled(quantity)) => {
                            let mut smaller = *signal;
                            smaller.decision.quantity = quantity;
                            self.telemetry.metrics.throttled.inc();
                            self.count_and_encode(engine, &smaller, live, &mut encoded);
                        }
                        Some(Desk::Passed) | None => {
                            self.count_and_encode(engine, signal, live, &mut encoded)
                        }
                    }
                }
            }
            if let Some(paper) = &mut self.paper {
                if let Err(err) = paper.stream_fills() {
                    tracing::error!(%err, "could not write the paper desk's trades; the paper desk stops");
                    self.paper = None;
                }
            }
            encoded.dead_letters = batch.rejected;
            let published = Published {
                signals: encoded,
                ack: batch.ack,
                arrived: batch.arrived,
                ticks: batch.ticks.len() as u64,
            };
            if self.to_sink.blocking_send(published).is_err() {
                return ControlFlow::Break(()); // the sink stopped; it reports why
            }
            self.telemetry
                .metrics
                .queue_depth_sink
                .set((self.to_sink.max_capacity() - self.to_sink.capacity()) as f64);
        }
        if let Some(signal) = signals.next() {
            tracing::error!(seq = signal.seq, "a signal's tick is not in its batch");
        }
        if self.last_sync.elapsed() >= SYNC_EVERY {
            self.sync_stats(engine);
        }
        ControlFlow::Continue(())
    }

    /// Takes the set the reload built for this engine; what the old set
    /// had and the new one does not is no longer serving.
    fn reconfigured(&mut self, engine: &Engine) {
        if let Some(paper) = &mut self.paper {
            paper.reconfigured(engine);
        }
        let next = self
            .next_set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(next) = next else {
            tracing::error!("the engine was rebuilt without its strategy set; keeping the old one");
            return;
        };
        let matches = next.series.len() == engine.strategy_count()
            && next
                .ids()
                .zip(engine.strategies())
                .all(|(id, s)| engine.strategy_id(s) == id);
        if !matches {
            tracing::error!(
                "the rebuilt engine does not match its strategy set; keeping the old one"
            );
            return;
        }
        let names = self.telemetry.metrics.state_names;
        for gone in &self.set.series {
            if !next.ids().any(|id| id == gone.id) {
                gone.set_state(names, "");
            }
        }
        self.sync.reorder(&self.set, &next);
        self.set = next;
        self.sync_stats(engine);
    }
}

impl Encoder {
    fn sync_stats(&mut self, engine: &Engine) {
        self.sync.sync(engine, &self.telemetry, &self.set);
        self.last_sync = Instant::now();
    }

    /// Whether `signal` may leave at its tick's time; counted when not.
    fn in_session(&self, signal: &EngineSignal, live: &LiveTick) -> bool {
        let s = signal.strategy.index();
        let open = self.gate.is_open(live.tick.ts_ns) || self.set.allow_outside[s];
        if !open {
            self.telemetry.metrics.dropped_outside_session().inc();
        }
        open
    }

    /// Counts `signal` and encodes it for its brokers.
    fn count_and_encode(
        &self,
        engine: &Engine,
        signal: &EngineSignal,
        live: &LiveTick,
        out: &mut SignalBatch,
    ) {
        let s = signal.strategy.index();
        let side = match signal.decision.side {
            Side::Buy => 0,
            Side::Sell => 1,
        };
        self.set.series[s].signals[side].inc();
        self.encode(engine, signal, live, out);
    }

    /// A signal the paper desk refused: dead-lettered for each broker with
    /// the reason, never tried, and counted by it.
    fn refused_by_desk(
        &self,
        engine: &Engine,
        signal: &EngineSignal,
        live: &LiveTick,
        reason: &'static str,
        out: &mut SignalBatch,
    ) {
        if let Some(counter) = self.telemetry.metrics.dropped_by_desk(reason) {
            counter.inc();
        }
        let from = out.signals.len();
        self.encode(engine, signal, live, out);
        let why: Arc<str> = Arc::from(format!("{DESK_WITHHELD}{reason}"));
        for held in &mut out.signals[from..] {
            held.withheld = Some(Arc::clone(&why));
        }
    }

    /// One JSON line per broker of the signal's strategy, as `quiver replay`
    /// writes them, plus the tick's correlation id.
    fn encode(
        &self,
        engine: &Engine,
        signal: &EngineSignal,
        live: &LiveTick,
        out: &mut SignalBatch,
    ) {
        let strategy_id = engine.strategy_id(signal.strategy);
        let key = self.set.series[signal.strategy.index()].key;
        for (broker_idx, broker) in &self.set.brokers[signal.strategy.index()] {
            let start = out.buf.len();
            let record = crate::publish::signal_record(
                engine,
                signal,
                broker,
                live.correlation_id.as_deref(),
            );
            let signal_id = record.signal_id;
            // Writing into a Vec cannot fail; a rendering error drops only
            // this line and is logged.
            if let Err(err) = encode_signal(&record, &mut out.buf) {
                out.buf.truncate(start);
                tracing::error!(%err, strategy = strategy_id, "could not encode a signal");
                continue;
            }
            let end = out.buf.len() - 1; // without the newline
            out.signals.push(OutSignal {
                broker: Arc::clone(broker),
                broker_idx: *broker_idx,
                strategy_idx: key,
                withheld: None,
                signal_id,
                seq: live.seq,
                origin: live.origin.clone(),
                payload: start..end,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shedding_follows_the_queue_in_front_of_the_engine() {
        let levels: Vec<_> = [0, 1, 7, 8, 11, 12, 16]
            .iter()
            .map(|&w| shed_for(w, 16))
            .collect();
        assert_eq!(
            levels,
            [
                Shed::Nothing,
                Shed::Nothing,
                Shed::Nothing,
                Shed::Background,
                Shed::Background,
                Shed::AllButCritical,
                Shed::AllButCritical,
            ]
        );
        assert_eq!(shed_for(1, 1), Shed::AllButCritical);
        assert_eq!(shed_for(0, 0), Shed::Nothing);
    }
}
