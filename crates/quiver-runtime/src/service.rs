//! The live pipeline: source task → engine thread → sink task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quiver_core::{InstrumentToken, Side, Tick};
use quiver_engine::{Engine, EngineError, EngineSignal, StrategyEntry, StrategyStats, Unavailable};
use quiver_io::encode_signal;
use quiver_io::live::{
    Acker, LagProbe, LiveError, OutSignal, Outcome, PreloadRequest, SignalBatch, SignalSink, Stop,
    TickBatch, TickSource,
};
use quiver_strategy::DropReason;
use quiver_telemetry::registry::EVALUATION_BOUNDS_NS;
use quiver_telemetry::{Catalog, Histogram, StrategyDesc, StrategyStatus, Telemetry};
use tokio::sync::mpsc;

use crate::instrumented::Instrumented;
use crate::models::{ModelSetupError, Models, PoolRunner};
use crate::session::SessionClock;
use crate::settings::Settings;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("strategy {id:?} declares {required} ticks of history, above STRATEGY__HISTORY_STORE_SIZE ({limit})")]
    HistoryTooLong {
        id: String,
        required: usize,
        limit: usize,
    },
    #[error("building the engine: {0}")]
    Engine(#[from] EngineError),
    #[error("registering metrics: {0}")]
    Metrics(#[from] quiver_telemetry::RegistryError),
    #[error("settings: {0}")]
    Settings(String),
    #[error("tick source: {0}")]
    Source(LiveError),
    #[error("signal sink: {0}")]
    Sink(LiveError),
    #[error("acknowledging ticks: {0}")]
    Ack(LiveError),
    #[error("could not publish and acknowledge in-flight ticks within the drain timeout ({0:?}); they stay pending and are processed again on the next start")]
    DrainTimeout(Duration),
    #[error("the engine thread stopped unexpectedly")]
    EngineThread,
    #[error("{0}")]
    Models(#[from] ModelSetupError),
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Ticks appended to history before the first batch (restart preload).
    pub preloaded: u64,
    /// Ticks dispatched to the engine.
    pub ticks: u64,
    pub outside_session: u64,
    pub signals_published: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
}

/// An engine with its telemetry, ready to run.
pub struct Service {
    engine: Engine,
    telemetry: Arc<Telemetry>,
    settings: Settings,
    session: Option<SessionClock>,
    /// Per strategy: trades ticks outside the session.
    allow_outside: Vec<bool>,
    /// Instruments with at least one follower that trades outside the session.
    outside_instruments: Arc<HashMap<InstrumentToken, bool>>,
    /// Per strategy: (broker index, broker).
    brokers: Vec<Vec<(u32, Arc<str>)>>,
    /// Per strategy: evaluation times, for `/strategies` p99.
    timings: Vec<Histogram>,
    /// Runs the engine's model requests; `None` without ML strategies.
    runner: Option<PoolRunner>,
    models: Option<Arc<quiver_infer::ModelStore>>,
}

impl Service {
    /// Builds the engine from the enabled rows of `config`, wrapping each
    /// strategy (timing, spans, warm-up floor), registers every metric and,
    /// when strategies use models, loads them and starts the inference pool.
    pub fn new(
        config: &quiver_config::Config,
        models: &Models,
        settings: Settings,
    ) -> Result<Service, RuntimeError> {
        // Bit-for-bit the results of a replay with as many call rows.
        let pool = quiver_infer::PoolConfig {
            deterministic: Some(models.backend().unwrap_or(quiver_infer::Backend::Tract)),
            ..settings.strategy.pool_config()
        };
        let mut service = Service::from_entries(models.engine_entries(config)?, settings)?;
        let used = service.engine.models();
        if !used.is_empty() {
            // A batch's requests are queued at once: XREADGROUP reads up to
            // batch_size entries from each partition stream.
            let q = &service.settings.quiver;
            let worst = q.batch_size.max(1)
                * q.redis.partitions.max(1) as usize
                * service.engine.max_model_requests_per_tick();
            if worst > pool.queue_size {
                tracing::warn!(
                    worst,
                    queue = pool.queue_size,
                    "a tick batch can make more model requests than STRATEGY__ML_POOL_QUEUE_SIZE holds; the excess will be HOLD (queue_full)"
                );
            }
            service.runner = Some(PoolRunner::new(pool, models.handles(used))?);
            service.models = models.store.clone();
        }
        Ok(service)
    }

    /// As [`Service::new`], from strategies already built (benchmarks, tests).
    pub fn from_entries(
        rows: Vec<StrategyEntry>,
        settings: Settings,
    ) -> Result<Service, RuntimeError> {
        let limit = settings.strategy.history_store_size;
        for row in &rows {
            let required = row
                .strategy
                .required_history()
                .max(settings.strategy.warmup_ticks);
            if limit > 0 && required > limit {
                return Err(RuntimeError::HistoryTooLong {
                    id: row.id.clone(),
                    required,
                    limit,
                });
            }
        }
        let mut broker_names: Vec<String> = Vec::new();
        for row in &rows {
            for broker in &row.brokers {
                if !broker_names.contains(broker) {
                    broker_names.push(broker.clone());
                }
            }
        }
        let broker_arcs: Vec<Arc<str>> =
            broker_names.iter().map(|b| Arc::from(b.as_str())).collect();
        let mut instruments: Vec<u64> = rows
            .iter()
            .flat_map(|r| r.instruments.iter().copied())
            .collect();
        instruments.sort_unstable();
        instruments.dedup();
        let catalog = Catalog {
            strategies: rows
                .iter()
                .map(|row| StrategyDesc {
                    id: row.id.clone(),
                    type_name: row.strategy.name().to_owned(),
                    kind: row.strategy.kind(),
                })
                .collect(),
            brokers: broker_names.clone(),
            instruments,
            models: model_names(&rows),
            inference_latency_bounds_ns: &quiver_infer::stats::LATENCY_BOUNDS_NS,
            batch_size_bounds: &quiver_infer::stats::BATCH_SIZE_BOUNDS,
            ml_drop_reasons: &ML_DROP_REASONS,
        };
        let telemetry = Arc::new(Telemetry::new(&catalog)?);
        let metrics = &telemetry.metrics;
        let every = settings.quiver.strategy_timing_every;
        let timings: Vec<Histogram> = rows
            .iter()
            .map(|_| Histogram::new(EVALUATION_BOUNDS_NS))
            .collect();
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let followed: Vec<Vec<InstrumentToken>> =
            rows.iter().map(|r| r.instruments.clone()).collect();
        let row_brokers: Vec<Vec<String>> = rows.iter().map(|r| r.brokers.clone()).collect();
        let entries: Vec<StrategyEntry> = rows
            .into_iter()
            .enumerate()
            .map(|(s, row)| StrategyEntry {
                strategy: Box::new(Instrumented::new(
                    row.strategy,
                    &row.id,
                    settings.strategy.warmup_ticks,
                    Some((
                        every,
                        metrics.processing_by_type[metrics.type_of[s]].clone(),
                        timings[s].clone(),
                    )),
                )),
                id: row.id,
                instruments: row.instruments,
                brokers: row.brokers,
                validator: row.validator,
            })
            .collect();
        let engine = Engine::new(entries)?;
        let session = SessionClock::from_settings(&settings.quiver.session)
            .map_err(RuntimeError::Settings)?;
        let allow_outside: Vec<bool> = ids
            .iter()
            .map(|id| settings.quiver.session.allow_outside.contains(id))
            .collect();
        for id in &settings.quiver.session.allow_outside {
            if !ids.contains(id) {
                return Err(RuntimeError::Settings(format!(
                    "quiver.session.allow_outside: no enabled strategy has id {id:?}"
                )));
            }
        }
        let mut outside_instruments = HashMap::new();
        for (tokens, allowed) in followed.iter().zip(&allow_outside) {
            for &token in tokens {
                *outside_instruments.entry(token).or_insert(false) |= *allowed;
            }
        }
        let brokers = row_brokers
            .iter()
            .map(|list| {
                list.iter()
                    .map(|b| {
                        let i = broker_names.iter().position(|x| x == b).unwrap_or_default();
                        (i as u32, Arc::clone(&broker_arcs[i]))
                    })
                    .collect()
            })
            .collect();
        telemetry
            .metrics
            .queue_capacity
            .set(settings.quiver.queue_capacity as f64);
        telemetry
            .metrics
            .feature_cache_hit_ratio
            .set(feature_cache_hit_ratio(&engine));
        let service = Service {
            engine,
            telemetry,
            settings,
            session,
            allow_outside,
            outside_instruments: Arc::new(outside_instruments),
            brokers,
            timings,
            runner: None,
            models: None,
        };
        let mut sync = StatsSync::new(service.engine.strategy_count());
        sync.sync(&service.engine, &service.telemetry, &service.timings);
        service.telemetry.status.set_strategies_loaded(true);
        Ok(service)
    }

    pub fn telemetry(&self) -> Arc<Telemetry> {
        Arc::clone(&self.telemetry)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Runs until the source is exhausted or `stop` is raised, then drains:
    /// every tick read is dispatched, its signals published and the tick
    /// acknowledged before this returns.
    pub async fn run<S: TickSource, K: SignalSink>(
        self,
        mut source: S,
        mut sink: K,
        stop: Stop,
    ) -> Result<RunReport, RuntimeError> {
        let Service {
            mut engine,
            telemetry,
            settings,
            session,
            allow_outside,
            outside_instruments,
            brokers,
            timings,
            runner,
            models,
        } = self;
        let _watcher = models.map(ModelWatcher::start);
        tracing::info!(
            source = source.describe(),
            sink = sink.describe(),
            "starting"
        );
        let mut report = RunReport::default();

        // 1. History as an uninterrupted run would have it.
        let depth: HashMap<InstrumentToken, usize> = engine
            .instrument_tokens()
            .iter()
            .filter_map(|&t| Some((t, engine.preload_depth(engine.instrument_index(t)?))))
            .collect();
        let admit = {
            let session = session.clone();
            let outside = Arc::clone(&outside_instruments);
            move |t: &Tick| admits(session.as_ref(), &outside, t)
        };
        let request = PreloadRequest {
            depth,
            max_ticks: settings.quiver.redis.preload_max_ticks,
            admit: Box::new(admit),
        };
        let preload = source
            .preload(&request)
            .await
            .map_err(RuntimeError::Source)?;
        for tick in &preload {
            engine.warm_up(tick);
        }
        report.preloaded = preload.len() as u64;
        if !preload.is_empty() {
            tracing::info!(
                ticks = preload.len(),
                "history preloaded from the tick stream"
            );
        }
        drop(preload);

        let acker = source.acker().await.map_err(RuntimeError::Source)?;
        let probe = source.lag_probe().await.map_err(RuntimeError::Source)?;
        telemetry.status.set_source_connected(true);

        let capacity = settings.quiver.queue_capacity;
        let (to_engine, from_source) = mpsc::channel::<TickBatch<S::Ack>>(capacity);
        let (to_sink, from_engine) = mpsc::channel::<Published<S::Ack>>(capacity);

        // 2. Source task.
        let source_task = {
            let telemetry = Arc::clone(&telemetry);
            let mut stop = stop.clone();
            let batch_size = settings.quiver.batch_size;
            tokio::spawn(async move {
                let mut backoff = Backoff::new();
                loop {
                    match source.next_batch(batch_size, &mut stop).await {
                        Ok(Some(batch)) => {
                            backoff.reset();
                            telemetry.status.set_source_connected(true);
                            if to_engine.send(batch).await.is_err() {
                                break; // the engine stopped: its error is reported there
                            }
                            telemetry
                                .metrics
                                .queue_depth_engine
                                .set((to_engine.max_capacity() - to_engine.capacity()) as f64);
                        }
                        Ok(None) => break,
                        Err(err) if err.is_transient() => {
                            telemetry.status.set_source_connected(false);
                            tracing::warn!(%err, "tick source unavailable; retrying");
                            if !backoff.wait(&mut stop).await {
                                break;
                            }
                        }
                        Err(err) => return Err(RuntimeError::Source(err)),
                    }
                }
                Ok(())
            })
        };

        // 3. Engine thread.
        let engine_thread = {
            let telemetry = Arc::clone(&telemetry);
            let stage = EngineStage {
                session,
                allow_outside,
                outside_instruments,
                brokers,
                timings,
                runner,
                results: Default::default(),
                model_sync: ModelSync::default(),
            };
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name("quiver-engine".to_owned())
                .spawn(move || {
                    let mut stage = stage;
                    let result = stage.run(&mut engine, from_source, to_sink, &telemetry);
                    let _ = done_tx.send((engine, result));
                })
                .map_err(|_| RuntimeError::EngineThread)?;
            done_rx
        };

        // 4. Lag probe.
        let probe_task = probe.map(|mut probe| {
            let telemetry = Arc::clone(&telemetry);
            let mut stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    match probe.lag().await {
                        Ok(lag) => {
                            if let Some(undelivered) = lag.undelivered {
                                telemetry.metrics.source_lag.set(undelivered as f64);
                            }
                            telemetry.metrics.pending_entries.set(lag.pending as f64);
                        }
                        Err(err) => tracing::debug!(%err, "lag probe failed"),
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.stopped() => break,
                    }
                }
            })
        });

        // 5. Sink stage, on this task.
        let drain_timeout = Duration::from_millis(settings.quiver.drain_timeout_ms);
        let sink_result = sink_stage(
            &mut sink,
            acker,
            from_engine,
            &telemetry,
            stop.clone(),
            drain_timeout,
            &mut report,
        )
        .await;
        telemetry.status.set_draining();
        let flushed = sink.flush().await.map_err(RuntimeError::Sink);

        let source_result = source_task.await.unwrap_or(Err(RuntimeError::EngineThread));
        let (engine, engine_result) = engine_thread
            .await
            .map_err(|_| RuntimeError::EngineThread)?;
        if let Some(task) = probe_task {
            task.abort();
        }
        let mut sync = StatsSync::new(0);
        sync.final_sync(&engine, &telemetry);
        report.ticks = telemetry.metrics.ticks_processed.get();
        report.outside_session = telemetry.metrics.ticks_outside_session.get();
        source_result?;
        engine_result?;
        sink_result?;
        flushed?;
        Ok(report)
    }
}

/// Registry names of the models `rows` use, in first-use order.
fn model_names(rows: &[StrategyEntry]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for row in rows {
        if let Some(used) = row.strategy.model() {
            if !names.contains(&used.model.name) {
                names.push(used.model.name.clone());
            }
        }
    }
    names
}

/// The shared feature store's hit ratio, for `feature_cache_hit_ratio`:
/// the share of feature reads served without computing (each feature is
/// computed once per tick and read by every strategy that declared it).
pub fn feature_cache_hit_ratio(engine: &Engine) -> f64 {
    engine.stats().feature_hit_ratio()
}

fn admits(
    session: Option<&SessionClock>,
    outside_instruments: &HashMap<InstrumentToken, bool>,
    tick: &Tick,
) -> bool {
    match session {
        Some(clock) if !clock.is_open(tick.ts_ns) => outside_instruments
            .get(&tick.instrument)
            .copied()
            .unwrap_or(false),
        _ => true,
    }
}

/// A batch's signals on their way to the sink, with what acknowledges it.
struct Published<A> {
    signals: SignalBatch,
    ack: A,
    arrived: Instant,
    ticks: u64,
}

/// What the engine thread needs besides the engine.
struct EngineStage {
    session: Option<SessionClock>,
    allow_outside: Vec<bool>,
    outside_instruments: Arc<HashMap<InstrumentToken, bool>>,
    brokers: Vec<Vec<(u32, Arc<str>)>>,
    timings: Vec<Histogram>,
    runner: Option<PoolRunner>,
    /// Reused for every flight.
    results: quiver_engine::ModelResults,
    model_sync: ModelSync,
}

/// A batch whose signals are being written, and where in its ticks the next
/// signal's tick is (signals come in dispatch order).
struct Draft {
    out: SignalBatch,
    cursor: usize,
}

/// A dispatched batch whose model requests are with the inference pool.
struct Held<A> {
    flight: quiver_engine::Flight,
    submitted: Option<crate::models::Submitted>,
    batch: TickBatch<A>,
    draft: Draft,
}

/// How often engine-side counters are copied into metrics.
const SYNC_EVERY: Duration = Duration::from_millis(250);

impl EngineStage {
    /// Dispatches batch after batch. Model requests of a batch fly to the
    /// inference pool while the next batch is dispatched; a batch is handed
    /// to the sink (and so acknowledged) only once its flight has landed,
    /// with its signals in (tick, strategy) order. The dispatch thread waits
    /// for a flight only when the next batch is dispatched before the
    /// flight is back, or when the source is idle — never longer than the
    /// inference timeout.
    fn run<A: Clone + Send + 'static>(
        &mut self,
        engine: &mut Engine,
        mut from_source: mpsc::Receiver<TickBatch<A>>,
        to_sink: mpsc::Sender<Published<A>>,
        telemetry: &Telemetry,
    ) -> Result<(), RuntimeError> {
        let metrics = &telemetry.metrics;
        let mut signals: Vec<EngineSignal> = Vec::with_capacity(engine.strategy_count());
        let mut sync = StatsSync::new(engine.strategy_count());
        let mut last_sync = Instant::now();
        let mut held: Option<Held<A>> = None;
        loop {
            let next = if held.is_some() {
                match from_source.try_recv() {
                    Ok(batch) => Some(batch),
                    Err(mpsc::error::TryRecvError::Empty) => {
                        // Idle: land the flight now rather than wait for
                        // the next batch.
                        if let Some(flight) = held.take() {
                            if !self.land(engine, flight, &mut signals, metrics, &to_sink) {
                                break;
                            }
                        }
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            } else {
                from_source.blocking_recv()
            };
            let Some(batch) = next else { break };
            let mut draft = Draft {
                out: SignalBatch::default(),
                cursor: 0,
            };
            let mut dispatched = 0u64;
            let mut skipped = 0u64;
            for live in &batch.ticks {
                let outside = matches!(&self.session, Some(c) if !c.is_open(live.tick.ts_ns));
                if outside
                    && !self
                        .outside_instruments
                        .get(&live.tick.instrument)
                        .copied()
                        .unwrap_or(false)
                {
                    skipped += 1;
                    continue;
                }
                let span =
                    tracing::debug_span!("tick", seq = live.seq, instrument = live.tick.instrument);
                let _entered = span.enter();
                engine.on_tick(live.seq, &live.tick, &mut signals);
                dispatched += 1;
                if engine.has_faults() {
                    crate::publish::log_faults(engine);
                }
                self.publish(engine, &mut signals, &batch.ticks, &mut draft, metrics);
            }
            for letter in &batch.rejected {
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
            metrics.ticks_processed.inc_by(dispatched);
            metrics.ticks_outside_session.inc_by(skipped);
            // The previous batch's flight lands only now, after this batch
            // was dispatched while it flew.
            if let Some(flight) = held.take() {
                if !self.land(engine, flight, &mut signals, metrics, &to_sink) {
                    break;
                }
            }
            match engine.detach() {
                Some(flight) => {
                    let submitted = self
                        .runner
                        .as_mut()
                        .map(|runner| runner.submit(&flight.batch(engine.models())));
                    held = Some(Held {
                        flight,
                        submitted,
                        batch,
                        draft,
                    });
                }
                None => {
                    if !self.send(batch, draft, metrics, &to_sink) {
                        break;
                    }
                }
            }
            metrics.queue_depth_engine.set(from_source.len() as f64);
            if last_sync.elapsed() >= SYNC_EVERY {
                sync.sync(engine, telemetry, &self.timings);
                if let Some(runner) = &self.runner {
                    self.model_sync.sync(runner, telemetry);
                }
                last_sync = Instant::now();
            }
        }
        if let Some(flight) = held.take() {
            self.land(engine, flight, &mut signals, metrics, &to_sink);
        }
        sync.sync(engine, telemetry, &self.timings);
        if let Some(runner) = &self.runner {
            self.model_sync.sync(runner, telemetry);
        }
        Ok(())
    }

    /// Waits for `held`'s inference results, completes its evaluations and
    /// hands its batch to the sink; false when the sink has stopped.
    fn land<A>(
        &mut self,
        engine: &mut Engine,
        held: Held<A>,
        signals: &mut Vec<EngineSignal>,
        metrics: &quiver_telemetry::ServiceMetrics,
        to_sink: &mpsc::Sender<Published<A>>,
    ) -> bool {
        let Held {
            flight,
            submitted,
            batch,
            mut draft,
        } = held;
        let mut results = std::mem::take(&mut self.results);
        results.reset_for(&flight.batch(engine.models()));
        // Without a runner (no model is used) there is nothing to collect:
        // any request would count as failed.
        if let (Some(runner), Some(submitted)) = (&mut self.runner, submitted) {
            runner.collect(submitted, &mut results);
        }
        engine.land(flight, &results, signals);
        self.results = results;
        if engine.has_faults() {
            crate::publish::log_faults(engine);
        }
        self.publish(engine, signals, &batch.ticks, &mut draft, metrics);
        self.send(batch, draft, metrics, to_sink)
    }

    /// Hands a finished batch to the sink; false when the sink has stopped.
    fn send<A>(
        &self,
        batch: TickBatch<A>,
        draft: Draft,
        metrics: &quiver_telemetry::ServiceMetrics,
        to_sink: &mpsc::Sender<Published<A>>,
    ) -> bool {
        let mut out = draft.out;
        out.dead_letters = batch.rejected;
        let published = Published {
            signals: out,
            ack: batch.ack,
            arrived: batch.arrived,
            ticks: batch.ticks.len() as u64,
        };
        if to_sink.blocking_send(published).is_err() {
            // The sink stopped; it reports why.
            return false;
        }
        metrics
            .queue_depth_sink
            .set((to_sink.max_capacity() - to_sink.capacity()) as f64);
        true
    }

    /// Counts and encodes `signals` (of ticks in `ticks`, at or after the
    /// draft's cursor) into the draft, then clears them.
    fn publish(
        &self,
        engine: &Engine,
        signals: &mut Vec<EngineSignal>,
        ticks: &[quiver_io::live::LiveTick],
        draft: &mut Draft,
        metrics: &quiver_telemetry::ServiceMetrics,
    ) {
        let Draft { out, cursor } = draft;
        for signal in signals.drain(..) {
            // Ticks of a batch need not be in seq order (several partition
            // streams), but signals follow dispatch order: scan forward.
            while *cursor < ticks.len() && ticks[*cursor].seq != signal.seq {
                *cursor += 1;
            }
            let Some(at) = (*cursor < ticks.len()).then_some(*cursor) else {
                tracing::error!(seq = signal.seq, "a signal's tick is not in its batch");
                continue;
            };
            let live = &ticks[at];
            let s = signal.strategy as usize;
            let outside = matches!(&self.session, Some(c) if !c.is_open(live.tick.ts_ns));
            if outside && !self.allow_outside[s] {
                metrics.dropped_outside_session().inc();
                continue;
            }
            let side = match signal.decision.side {
                Side::Buy => 0,
                Side::Sell => 1,
            };
            metrics.signals[s][side].inc();
            self.encode(engine, &signal, live, out);
        }
    }

    /// One JSON line per broker of the signal's strategy, as `quiver replay`
    /// writes them, plus the tick's correlation id.
    fn encode(
        &self,
        engine: &Engine,
        signal: &EngineSignal,
        live: &quiver_io::live::LiveTick,
        out: &mut SignalBatch,
    ) {
        let strategy_id = engine.strategy_id(signal.strategy);
        for (broker_idx, broker) in &self.brokers[signal.strategy as usize] {
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
                signal_id,
                seq: live.seq,
                origin: live.origin.clone(),
                payload: start..end,
            });
        }
    }
}

/// Publishes each batch, then acknowledges it; retries transient failures
/// until the drain deadline once stop is raised.
/// Queued batches the sink publishes and acknowledges in one go, at most.
const MERGE_BATCHES: usize = 16;

async fn sink_stage<A: Clone + Send + 'static, K: SignalSink, C: Acker<Ack = A>>(
    sink: &mut K,
    mut acker: C,
    mut from_engine: mpsc::Receiver<Published<A>>,
    telemetry: &Telemetry,
    stop: Stop,
    drain_timeout: Duration,
    report: &mut RunReport,
) -> Result<(), RuntimeError> {
    let metrics = &telemetry.metrics;
    let mut stopped_at: Option<Instant> = None;
    let mut deadline_passed = |stop: &Stop| {
        if stop.is_stopped() {
            let at = *stopped_at.get_or_insert_with(Instant::now);
            at.elapsed() > drain_timeout
        } else {
            false
        }
    };
    // Arrival time and tick count of each batch merged into one publish.
    let mut arrivals: Vec<(Instant, u64)> = Vec::new();
    while let Some(mut batch) = from_engine.recv().await {
        // Batches already waiting are published and acknowledged together:
        // one round trip each for all of them instead of per batch, which
        // is what lets a runner that fell behind catch up.
        arrivals.clear();
        arrivals.push((batch.arrived, batch.ticks));
        while arrivals.len() < MERGE_BATCHES {
            let Ok(more) = from_engine.try_recv() else {
                break;
            };
            arrivals.push((more.arrived, more.ticks));
            batch.signals.append(more.signals);
            C::merge(&mut batch.ack, more.ack);
        }
        let mut backoff = Backoff::new();
        let outcome = loop {
            match sink.publish(&batch.signals).await {
                Ok(outcome) => break outcome,
                Err(err) if err.is_transient() => {
                    tracing::warn!(%err, "publishing failed; retrying");
                    if deadline_passed(&stop) {
                        return Err(RuntimeError::DrainTimeout(drain_timeout));
                    }
                    backoff.sleep().await;
                }
                Err(err) => return Err(RuntimeError::Sink(err)),
            }
        };
        for (signal, result) in batch.signals.signals.iter().zip(&outcome.outcomes) {
            let b = signal.broker_idx as usize;
            match result {
                Outcome::Published => {
                    report.signals_published += 1;
                    if let Some(c) = metrics.published.get(b) {
                        c.inc();
                    }
                }
                Outcome::Duplicate => {
                    report.duplicates += 1;
                    if let Some(c) = metrics.duplicates.get(b) {
                        c.inc();
                    }
                }
                Outcome::DeadLettered => {
                    report.dead_lettered += 1;
                    metrics.dropped_publish_failed().inc();
                    tracing::warn!(
                        broker = &*signal.broker,
                        signal_id = format!("{:016x}", signal.signal_id),
                        "signal refused by its stream; sent to the dead-letter stream"
                    );
                }
            }
        }
        let mut backoff = Backoff::new();
        loop {
            // The ids are kept until the server confirms: an ack lost in a
            // timeout is sent again (acknowledging twice is harmless).
            match acker.ack(batch.ack.clone()).await {
                Ok(()) => break,
                Err(err) if err.is_transient() => {
                    tracing::warn!(%err, "acknowledging failed; retrying");
                    if deadline_passed(&stop) {
                        return Err(RuntimeError::DrainTimeout(drain_timeout));
                    }
                    backoff.sleep().await;
                }
                Err(err) => return Err(RuntimeError::Ack(err)),
            }
        }
        for &(arrived, ticks) in &arrivals {
            metrics
                .tick_latency
                .observe_ns_n(arrived.elapsed().as_nanos() as u64, ticks);
        }
        metrics.queue_depth_sink.set(from_engine.len() as f64);
    }
    Ok(())
}

/// Copies engine-side counters (per-strategy signals, refusals, panics,
/// states, history fill) into metrics and the `/strategies` snapshot. Counters
/// only move forward, so it keeps what it already exported.
struct StatsSync {
    last: Vec<StrategyStats>,
    last_unrouted: u64,
}

impl StatsSync {
    fn new(strategies: usize) -> Self {
        StatsSync {
            last: vec![StrategyStats::default(); strategies],
            last_unrouted: 0,
        }
    }

    fn sync(&mut self, engine: &Engine, telemetry: &Telemetry, timings: &[Histogram]) {
        let metrics = &telemetry.metrics;
        let n = engine.strategy_count();
        self.last.resize(n, StrategyStats::default());
        let mut rows = Vec::with_capacity(n);
        for s in 0..n {
            let stats = engine.strategy_stats(s as u32);
            let last = &self.last[s];
            for (i, reason) in DropReason::ALL.iter().enumerate() {
                metrics
                    .dropped_by(*reason)
                    .inc_by(stats.dropped[i].saturating_sub(last.dropped[i]));
            }
            if let Some(c) = metrics
                .type_of
                .get(s)
                .and_then(|&t| metrics.panics_by_type.get(t))
            {
                c.inc_by(stats.panics.saturating_sub(last.panics));
            }
            if !metrics.ml_drops.is_empty() {
                let counts = ml_drop_counts(stats);
                let before = ml_drop_counts(last);
                for ((counter, now), then) in metrics.ml_drops.iter().zip(counts).zip(before) {
                    counter.inc_by(now.saturating_sub(then));
                }
            }
            let state = engine.strategy_state(s as u32).as_str();
            metrics.set_state(s, state);
            rows.push(StrategyStatus {
                id: engine.strategy_id(s as u32).to_owned(),
                type_name: engine.strategy_name(s as u32).to_owned(),
                kind: engine.strategy_kind(s as u32).as_str(),
                state,
                instruments: engine.instruments(s as u32).to_vec(),
                brokers: engine.brokers(s as u32).to_vec(),
                evaluations: stats.evaluations,
                signals: stats.signals,
                errors: stats.panics,
                dropped: stats.dropped_total(),
                p99_processing_ms: timings.get(s).and_then(|h| h.quantile_ms(0.99)),
            });
            self.last[s] = stats.clone();
        }
        // Gauges are registered in token order; the engine has its own order.
        for (gauge, &token) in metrics.ring_utilization.iter().zip(&metrics.ring_tokens) {
            if let Some(i) = engine.instrument_index(token) {
                let (held, capacity) = engine.ring_fill(i);
                gauge.set(held as f64 / capacity.max(1) as f64);
            }
        }
        let unrouted = engine.stats().unrouted_ticks;
        metrics
            .ticks_unrouted
            .inc_by(unrouted.saturating_sub(self.last_unrouted));
        self.last_unrouted = unrouted;
        metrics
            .feature_cache_hit_ratio
            .set(feature_cache_hit_ratio(engine));
        telemetry.status.set_strategies(rows);
    }

    /// After the engine thread's own last sync: only refreshes the snapshot.
    fn final_sync(&mut self, engine: &Engine, telemetry: &Telemetry) {
        let _ = (engine, telemetry);
    }
}

/// Why an ML evaluation ended without a prediction (`strategy_drops_total`):
/// features not finite, outputs out of range, then the engine's
/// [`Unavailable`] reasons in their order.
const ML_DROP_REASONS: [&str; 6] = [
    "features_not_finite",
    "output_out_of_range",
    Unavailable::ALL[0].as_str(),
    Unavailable::ALL[1].as_str(),
    Unavailable::ALL[2].as_str(),
    Unavailable::ALL[3].as_str(),
];

/// A strategy's ML drops in [`ML_DROP_REASONS`] order.
fn ml_drop_counts(stats: &StrategyStats) -> [u64; ML_DROP_REASONS.len()] {
    let [a, b, c, d] = stats.unavailable;
    [stats.skipped_features, stats.rejected_outputs, a, b, c, d]
}

/// Copies the inference runtime's per-model counters into the metrics: the
/// deltas since the last call, so the series stay monotone.
#[derive(Default)]
struct ModelSync {
    last: Vec<quiver_infer::ModelStatsSnapshot>,
}

impl ModelSync {
    fn sync(&mut self, runner: &PoolRunner, telemetry: &Telemetry) {
        let metrics = &telemetry.metrics;
        let handles = runner.handles();
        self.last.resize(handles.len(), Default::default());
        for (handle, last) in handles.iter().zip(&mut self.last) {
            let Some(i) = metrics.model_names.iter().position(|n| n == handle.name()) else {
                continue;
            };
            let now = handle.stats().snapshot();
            metrics.model_inferences[i].inc_by(now.inferences.saturating_sub(last.inferences));
            let delta = |now: &quiver_infer::HistogramSnapshot,
                         then: &quiver_infer::HistogramSnapshot| {
                let counts: Vec<u64> = now
                    .counts
                    .iter()
                    .enumerate()
                    .map(|(b, n)| n.saturating_sub(then.counts.get(b).copied().unwrap_or(0)))
                    .collect();
                (counts, now.sum.saturating_sub(then.sum))
            };
            let (counts, sum) = delta(&now.latency_ns, &last.latency_ns);
            metrics.model_latency[i].add_counts(&counts, sum);
            let (counts, sum) = delta(&now.batch_size, &last.batch_size);
            metrics.model_batch_size[i].add_counts(&counts, sum);
            metrics.model_load_seconds[i].set(now.model_load_seconds);
            *last = now;
        }
        if let Some(gauge) = &metrics.inference_queue_depth {
            gauge.set(runner.pool().queue_depth() as f64);
        }
    }
}

/// Exponential back-off between retries: 50 ms doubling to 2 s.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff {
            next: Duration::from_millis(50),
        }
    }

    fn reset(&mut self) {
        self.next = Duration::from_millis(50);
    }

    async fn sleep(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(Duration::from_secs(2));
    }

    /// Sleeps unless stop is raised first; false when stopped.
    async fn wait(&mut self, stop: &mut Stop) -> bool {
        tokio::select! {
            _ = self.sleep() => true,
            _ = stop.stopped() => false,
        }
    }
}

/// Polls the model registry for changes off the hot path: a changed model
/// is loaded and verified on this thread, then swapped in atomically; a
/// failed load keeps the old version serving.
struct ModelWatcher {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ModelWatcher {
    const EVERY: Duration = Duration::from_secs(1);

    fn start(store: Arc<quiver_infer::ModelStore>) -> ModelWatcher {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("quiver-models".to_owned())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    for change in store.poll_changes() {
                        match &change {
                            quiver_infer::Change::LoadFailed { .. }
                            | quiver_infer::Change::RegistryInvalid(_) => {
                                tracing::warn!(
                                    ?change,
                                    "model update refused; the running version keeps serving"
                                )
                            }
                            _ => tracing::info!(?change, "model registry change"),
                        }
                    }
                    std::thread::park_timeout(ModelWatcher::EVERY);
                }
            })
            .map_err(|err| tracing::error!(%err, "cannot start the model watcher"))
            .ok();
        ModelWatcher { stop, thread }
    }
}

impl Drop for ModelWatcher {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
