//! Replay: a tick file (or any stream of ticks) through the driver with the
//! deterministic batch runner, every signal written as one JSONL line per
//! broker. `quiver replay` and `quiver demo` run it; a backtest is the same
//! replay with another consumer.

use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use quiver_core::Tick;
use quiver_driver::{
    Batch, Cadence, Consumer, ControlHandle, Driver, Feed, Finish, InLine, Next, Sharded,
};
use quiver_engine::{Engine, EngineError, Output, Shed};
use quiver_infer::{Backend, BackendChoice, InferError, MicroBatcher, StoreOptions};
use quiver_io::{RowError, SignalWriter, SkipReport};

use crate::models::{BatchRunner, ModelSetupError, Models};
use crate::reload::{version_of, ConfigDiff, Reloader};

/// Rows per model call in replay unless told otherwise. Fixed, whatever the
/// batch size: ONNX Runtime's kernels depend on a call's row count, so
/// padding every call to the same size keeps results bit-identical however
/// requests are grouped.
pub const CALL_ROWS: usize = 64;

/// Ticks a sharded replay hands its shards at a time.
pub use quiver_driver::ROUND_TICKS;

mod totals;
pub use totals::{StrategyTotals, Totals};

/// How a replay runs its ML strategies' models.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Model registry; `None`: the config's `models:` section.
    pub registry: Option<PathBuf>,
    pub backend: BackendChoice,
    /// Model requests collected (over consecutive ticks) before one batched
    /// inference. Any value gives the same signals.
    pub batch_size: usize,
    /// Rows per model call on ONNX Runtime (every call padded to it; tract
    /// runs row by row).
    pub call_rows: usize,
    /// Deadline of every model call whose registry entry sets no
    /// `deadline_ms`. A model over it is out of service for the rest of the
    /// replay (its strategies HOLD, named in the log and the summary), so a
    /// replay is deterministic as long as no call comes near it.
    pub deadline: Duration,
    /// Engines the instruments are split over, each on its own thread
    /// (`quiver_core::partition_of`); any count gives the same signals.
    pub shards: ShardCount,
}

/// How many engines a replay splits its instruments over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardCount {
    /// This many; a set that cannot be split is refused.
    Exactly(usize),
    /// This many (the machine's cores, by default), or one when the set
    /// cannot be split.
    UpTo(usize),
}

impl ShardCount {
    /// One shard per core the process may use.
    pub fn cores() -> ShardCount {
        ShardCount::UpTo(std::thread::available_parallelism().map_or(1, usize::from))
    }
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            registry: None,
            backend: BackendChoice::Auto,
            batch_size: 256,
            call_rows: CALL_ROWS,
            deadline: quiver_infer::DEFAULT_DEADLINE,
            shards: ShardCount::Exactly(1),
        }
    }
}

/// Why a replay could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// An invalid registry or a strategy naming an unknown model: the
    /// user's input (`file:line` messages).
    #[error("{0}")]
    Models(#[from] ModelSetupError),
    #[error("building the engine: {0}")]
    Engine(#[from] EngineError),
    /// A set that cannot be split over shards as asked.
    #[error("{0}")]
    Shards(String),
}

/// What a finished (or stopped) replay measured.
pub struct ReplayRun {
    pub ticks: u64,
    pub lines: u64,
    pub skipped: SkipReport,
    pub wall: Duration,
    /// Per-tick latency, nanoseconds: from dispatch to the moment the tick's
    /// signals are out, inference included.
    pub latency: Histogram<u64>,
    /// The first bad row, when the replay stopped at it.
    pub stopped_at: Option<RowError>,
    /// What each scheduled reload did, in order.
    pub reloads: Vec<ReloadOutcome>,
}

/// One scheduled reload: applied (what changed, the version now serving) or
/// refused (why; the set before it kept serving).
#[derive(Clone, Debug)]
pub struct ReloadOutcome {
    pub seq: u64,
    pub path: PathBuf,
    pub result: Result<(ConfigDiff, String), String>,
}

/// The engine of a config and the runner of its models, ready to replay.
pub struct Replay {
    runner: Runner,
    backend: Option<Backend>,
    reloader: Reloader,
    control: ControlHandle,
    /// Strategies files to swap in before the tick of each seq (sorted).
    reload_at: Vec<(u64, PathBuf)>,
    /// Simulated load shedding: from each seq on, the level given (sorted by
    /// seq). Empty: a replay evaluates everything.
    shed_at: Vec<(u64, Shed)>,
}

impl Replay {
    /// Builds the engine of `config` (read from `config_path` as `text`,
    /// whose hash is the version serving) and loads the models its
    /// strategies use.
    pub fn open(
        config_path: &Path,
        config: &quiver_config::Config,
        text: &str,
        options: &ReplayOptions,
    ) -> Result<Replay, ReplayError> {
        let store = StoreOptions {
            backend: options.backend,
            deadline: Some(options.deadline),
            ..Default::default()
        };
        let models = Models::open(config_path, config, options.registry.as_deref(), store)?;
        let policy = crate::models::lifecycle_policy(&config.lifecycle);
        // Every engine of a set uses the same models, in the same order.
        let backend_of = |engine: &Engine| {
            (!engine.models().is_empty()).then(|| models.backend().unwrap_or(Backend::Tract))
        };
        let inference = |engine: &Engine| {
            InLine(BatchRunner::new(
                models.handles(engine.models()),
                MicroBatcher::deterministic(
                    backend_of(engine).unwrap_or(Backend::Tract),
                    options.call_rows,
                ),
            ))
        };
        let (control, receiver) = quiver_driver::control_channel();
        let shards = match options.shards {
            ShardCount::Exactly(n) if n > 1 => {
                shardable(config)?;
                n
            }
            ShardCount::UpTo(n) if n > 1 => match shardable(config) {
                Ok(()) => n,
                Err(why) => {
                    tracing::info!("one shard: {why}");
                    1
                }
            },
            _ => 1,
        };
        let (runner, used, backend) = if shards > 1 {
            let sharded = Sharded::build(
                shards,
                options.batch_size,
                || models.engine_entries(config).map_err(ReplayError::from),
                |engine| engine.set_lifecycle(policy),
                inference,
            )?;
            let catalog = sharded.catalog();
            let (used, backend) = (catalog.models().to_vec(), backend_of(catalog));
            (Runner::Sharded(Box::new(sharded)), used, backend)
        } else {
            let mut engine = Engine::new(models.engine_entries(config)?)?;
            engine.set_lifecycle(policy);
            let (used, backend) = (engine.models().to_vec(), backend_of(&engine));
            let inference = inference(&engine);
            let cadence = Cadence::EveryRequests(options.batch_size.max(1));
            let driver = Driver::new(engine, inference, cadence).with_control(receiver);
            (Runner::One(Box::new(driver)), used, backend)
        };
        let reloader = Reloader::new(models, config.clone(), used, version_of(text));
        Ok(Replay {
            runner,
            backend,
            reloader,
            control,
            reload_at: Vec::new(),
            shed_at: Vec::new(),
        })
    }

    /// Swaps in the strategies file of each entry just before its tick (a
    /// deterministic stand-in for a reload trigger): validated, diffed and
    /// built as a live reload is, refused whole when invalid. One engine
    /// only: a sharded replay refuses a schedule.
    pub fn reload_at(&mut self, mut schedule: Vec<(u64, PathBuf)>) -> Result<(), ReplayError> {
        if self.shards() > 1 && !schedule.is_empty() {
            return Err(ReplayError::Shards(format!(
                "a replay over {} shards cannot swap strategy sets (--reload-at); run it with \
                 --shards 1",
                self.shards()
            )));
        }
        schedule.sort_by_key(|(seq, _)| *seq);
        self.reload_at = schedule;
        Ok(())
    }

    /// Simulates load shedding: from tick `seq` on, the engine skips what
    /// `level` skips, until the next entry. Ticks, not batches, so the
    /// signals stay the same whatever the batch sizes.
    pub fn shed_at(&mut self, mut schedule: Vec<(u64, Shed)>) {
        schedule.sort_by_key(|&(seq, _)| seq);
        self.shed_at = schedule;
    }

    /// The engine, or with shards the catalog that names the strategies
    /// (the shards' counters are in [`Replay::totals`]).
    pub fn engine(&self) -> &Engine {
        match &self.runner {
            Runner::One(driver) => driver.engine(),
            Runner::Sharded(sharded) => sharded.catalog(),
        }
    }

    /// Engines the instruments are split over.
    pub fn shards(&self) -> usize {
        match &self.runner {
            Runner::One(_) => 1,
            Runner::Sharded(sharded) => sharded.shard_count(),
        }
    }

    /// What the engine (every shard together) counted and holds.
    pub fn totals(&self) -> Totals {
        let engines: Vec<&Engine> = match &self.runner {
            Runner::One(driver) => vec![driver.engine()],
            Runner::Sharded(sharded) => sharded.engines().collect(),
        };
        Totals::of(self.engine(), &engines)
    }

    /// The backend models run on, when any strategy uses one.
    pub fn backend(&self) -> Option<Backend> {
        self.backend
    }

    /// The models taken out of service while replaying (a call over its
    /// deadline), with why.
    pub fn out_of_service(&self) -> Vec<(String, InferError)> {
        let runner = match &self.runner {
            Runner::One(driver) => &driver.inference().0,
            Runner::Sharded(sharded) => match sharded.inferences().next() {
                Some(inference) => &inference.0,
                None => return Vec::new(),
            },
        };
        runner
            .handles()
            .iter()
            .filter_map(|h| h.fault().map(|fault| (h.name().to_owned(), fault)))
            .collect()
    }

    /// Replays `ticks`, writing every signal to `out`; `progress` is told
    /// the ticks dispatched every 65,536 ticks. Bad rows stop the replay
    /// (reported in [`ReplayRun::stopped_at`]) unless `skip_bad_rows`, in
    /// which case they are counted by reason and skipped.
    pub fn run<W: Write>(
        &mut self,
        ticks: impl Iterator<Item = Result<Tick, RowError>>,
        skip_bad_rows: bool,
        out: &mut SignalWriter<W>,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<ReplayRun> {
        let mut consumer = LineWriter::new(out);
        let mut run = self.drive(ticks, skip_bad_rows, &mut consumer, progress)?;
        run.latency = std::mem::replace(&mut consumer.latency, latency_histogram());
        run.lines = consumer.end()?;
        Ok(run)
    }

    /// Replays `ticks` through a paper desk of `spec` (see
    /// [`crate::backtest`]), one account per strategy: every signal is an
    /// order for its strategy's account, filled against later ticks, each
    /// fill a line of `trades`
    /// (CSV); with `signals`, the signals are also written there, as
    /// [`Replay::run`] writes them.
    pub fn backtest<W: Write>(
        &mut self,
        ticks: impl Iterator<Item = Result<Tick, RowError>>,
        skip_bad_rows: bool,
        spec: quiver_paper::DeskSpec,
        trades: &mut dyn Write,
        signals: Option<&mut SignalWriter<W>>,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<(ReplayRun, quiver_paper::Desk)> {
        let lines = signals.map(LineWriter::new);
        let mut consumer = crate::backtest::DeskFeeder::new(spec, self.engine(), lines, trades);
        let mut run = self.drive(ticks, skip_bad_rows, &mut consumer, progress)?;
        let (desk, latency, lines) = consumer.finish()?;
        run.latency = latency;
        run.lines = lines;
        Ok((run, desk))
    }

    /// Runs the driver over `ticks` with `consumer`; the run's `lines` and
    /// `latency` are the consumer's to fill in.
    fn drive<C: Consumer<OneTick>>(
        &mut self,
        ticks: impl Iterator<Item = Result<Tick, RowError>>,
        skip_bad_rows: bool,
        consumer: &mut C,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<ReplayRun> {
        let mut feed = RowFeed {
            rows: ticks,
            skip_bad_rows,
            shed_at: &self.shed_at,
            reloads: Reloads {
                reloader: &mut self.reloader,
                control: &self.control,
                schedule: &self.reload_at,
                held: None,
                awaiting: None,
                outcomes: Vec::new(),
            },
            seq: 0,
            skipped: SkipReport::new(),
            stopped_at: None,
            failed: None,
            progress,
        };
        let started = Instant::now();
        let finish = match &mut self.runner {
            Runner::One(driver) => driver.run(&mut feed, consumer),
            Runner::Sharded(sharded) => sharded.run(&mut feed, consumer),
        };
        if let Some(err) = feed.failed {
            return Err(err);
        }
        debug_assert!(finish == Finish::Exhausted || finish == Finish::Stopped);
        Ok(ReplayRun {
            ticks: feed.seq,
            lines: 0,
            skipped: feed.skipped,
            wall: started.elapsed(),
            latency: latency_histogram(),
            stopped_at: feed.stopped_at,
            reloads: {
                let mut outcomes = feed.reloads.outcomes;
                outcomes.extend(
                    feed.reloads
                        .schedule
                        .iter()
                        .map(|(seq, path)| ReloadOutcome {
                            seq: *seq,
                            path: path.clone(),
                            result: Err(format!("the ticks ended before tick {seq}")),
                        }),
                );
                outcomes
            },
        })
    }
}

/// One engine, or one per shard of the instruments.
enum Runner {
    One(Box<Driver<InLine<BatchRunner>>>),
    Sharded(Box<Sharded<InLine<BatchRunner>>>),
}

/// Refuses a set whose strategies keep state across instruments that the
/// engine checks per signal: the rate limits and the exposure cap count
/// over every instrument of a strategy, and a shard sees only its own.
fn shardable(config: &quiver_config::Config) -> Result<(), ReplayError> {
    for row in config.enabled() {
        let guards = &row.guards;
        let across = if !guards.rates.is_off() {
            Some("rate_limit")
        } else if guards.max_exposure.is_some() {
            Some("exposure_cap")
        } else {
            None
        };
        if let Some(what) = across {
            return Err(ReplayError::Shards(format!(
                "strategy {:?} has a {what} validator, which counts over all its instruments \
                 while a shard sees only its own; run it with --shards 1",
                row.id
            )));
        }
    }
    Ok(())
}

/// One tick, dispatched alone: replay's latency is per tick.
pub struct OneTick {
    seq: u64,
    tick: Tick,
    dispatched: Instant,
    /// A simulated shed level that starts at this tick.
    shed: Option<Shed>,
}

impl OneTick {
    pub(crate) fn tick(&self) -> (u64, &Tick) {
        (self.seq, &self.tick)
    }

    pub(crate) fn dispatched(&self) -> Instant {
        self.dispatched
    }
}

impl Batch for OneTick {
    fn ticks(&self) -> impl Iterator<Item = (u64, &Tick)> {
        std::iter::once((self.seq, &self.tick))
    }

    fn shed(&self) -> Option<Shed> {
        self.shed
    }
}

/// Rows of a tick file; seq = the tick's index among the good rows.
struct RowFeed<'p, I> {
    rows: I,
    skip_bad_rows: bool,
    /// The simulated shed levels not yet reached.
    shed_at: &'p [(u64, Shed)],
    reloads: Reloads<'p>,
    seq: u64,
    skipped: SkipReport,
    stopped_at: Option<RowError>,
    failed: Option<io::Error>,
    progress: &'p mut dyn FnMut(u64),
}

impl<I: Iterator<Item = Result<Tick, RowError>>> Feed for RowFeed<'_, I> {
    type Batch = OneTick;

    fn next(&mut self, _wait: bool) -> Next<OneTick> {
        match self.reloads.resume() {
            Some(Ok(batch)) => return Next::Batch(batch),
            Some(Err(())) => return Next::Idle,
            None => {}
        }
        loop {
            let tick = match self.rows.next() {
                None => return Next::End,
                Some(Ok(tick)) => tick,
                Some(Err(err)) if err.is_io() => {
                    self.failed = Some(io::Error::other(err.to_string()));
                    return Next::End;
                }
                // Input that cannot be split into rows any more is bad input,
                // not a bad row to skip: nothing after it would be read.
                Some(Err(err)) if self.skip_bad_rows && !err.ends_reading() => {
                    tracing::debug!(%err, "skipping bad row");
                    self.skipped.record(&err);
                    continue;
                }
                Some(Err(err)) => {
                    self.stopped_at = Some(err);
                    return Next::End;
                }
            };
            let seq = self.seq;
            self.seq += 1;
            if self.seq.is_multiple_of(65_536) {
                (self.progress)(self.seq);
            }
            let mut shed = None;
            while let Some((&(from, level), rest)) = self.shed_at.split_first() {
                if from > seq {
                    break;
                }
                shed = Some(level);
                self.shed_at = rest;
            }
            let batch = OneTick {
                seq,
                tick,
                dispatched: Instant::now(),
                shed,
            };
            return match self.reloads.before(batch) {
                Ok(batch) => Next::Batch(batch),
                // The driver applies the rebuild, then asks again.
                Err(()) => Next::Idle,
            };
        }
    }
}

/// The reload schedule as the feed meets it.
struct Reloads<'p> {
    reloader: &'p mut Reloader,
    control: &'p ControlHandle,
    /// Reloads not yet reached.
    schedule: &'p [(u64, PathBuf)],
    /// The tick a rebuild waits in front of.
    held: Option<OneTick>,
    /// The rebuild sent, with what it becomes once applied.
    awaiting: Option<Awaiting>,
    outcomes: Vec<ReloadOutcome>,
}

struct Awaiting {
    reply: std::sync::mpsc::Receiver<quiver_driver::Reply>,
    config: quiver_config::Config,
    diff: ConfigDiff,
    version: String,
    seq: u64,
    path: PathBuf,
}

impl Reloads<'_> {
    /// The tick `batch`, or `Err` when a rebuild was sent to be applied
    /// before it (the tick is held until [`Reloads::resume`]). Reloads due
    /// at one tick apply one after another, each planned against the last.
    fn before(&mut self, batch: OneTick) -> Result<OneTick, ()> {
        while let Some(((seq, path), rest)) = self.schedule.split_first() {
            if *seq > batch.seq {
                break;
            }
            self.schedule = rest;
            let refused = |why: String| ReloadOutcome {
                seq: batch.seq,
                path: path.clone(),
                result: Err(why),
            };
            let plan = match self.reloader.plan(path) {
                Ok(plan) => plan,
                Err(why) => {
                    tracing::warn!(seq = batch.seq, file = %path.display(), "reload refused: {why}");
                    self.outcomes.push(refused(why));
                    continue;
                }
            };
            let request = quiver_driver::Request::Rebuild {
                carried: plan.carried(),
                engine: Box::new(plan.engine),
            };
            match self.control.send(request) {
                Ok(reply) => {
                    self.awaiting = Some(Awaiting {
                        reply,
                        config: plan.config,
                        diff: plan.diff,
                        version: plan.version,
                        seq: batch.seq,
                        path: path.clone(),
                    });
                    self.held = Some(batch);
                    return Err(());
                }
                Err(_) => self
                    .outcomes
                    .push(refused("the engine has stopped".to_owned())),
            }
        }
        Ok(batch)
    }

    /// After a rebuild was applied: records its outcome, then gives back
    /// the held tick (or holds it for the next reload due at it).
    fn resume(&mut self) -> Option<Result<OneTick, ()>> {
        let awaiting = self.awaiting.take()?;
        let result = match awaiting.reply.try_recv() {
            Ok(Ok(_)) => {
                tracing::info!(
                    seq = awaiting.seq,
                    file = %awaiting.path.display(),
                    version = awaiting.version,
                    "reloaded: {}",
                    awaiting.diff
                );
                self.reloader
                    .applied(awaiting.config, awaiting.version.clone());
                Ok((awaiting.diff, awaiting.version))
            }
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err("the engine did not apply the reload".to_owned()),
        };
        if let Err(why) = &result {
            tracing::warn!(seq = awaiting.seq, file = %awaiting.path.display(), "reload refused: {why}");
        }
        self.outcomes.push(ReloadOutcome {
            seq: awaiting.seq,
            path: awaiting.path,
            result,
        });
        let held = self.held.take()?;
        Some(self.before(held))
    }
}

/// Writes each signal as one line per broker of its strategy.
pub(crate) struct LineWriter<'w, W: Write> {
    out: &'w mut SignalWriter<W>,
    lines: u64,
    latency: Histogram<u64>,
    failed: Option<io::Error>,
}

impl<W: Write> Consumer<OneTick> for LineWriter<'_, W> {
    fn complete(
        &mut self,
        engine: &Engine,
        batches: std::vec::Drain<'_, OneTick>,
        out: &mut Output,
    ) -> ControlFlow<()> {
        let now = Instant::now();
        for batch in batches {
            self.latency
                .saturating_record(now.duration_since(batch.dispatched).as_nanos() as u64);
        }
        crate::publish::log_events(engine, out);
        self.write(engine, out)
    }
}

impl<W: Write> LineWriter<'_, W> {
    pub(crate) fn new(out: &mut SignalWriter<W>) -> LineWriter<'_, W> {
        LineWriter {
            out,
            lines: 0,
            latency: latency_histogram(),
            failed: None,
        }
    }

    /// Writes `out`'s signals, one line per broker.
    pub(crate) fn write(&mut self, engine: &Engine, out: &Output) -> ControlFlow<()> {
        for signal in &out.signals {
            let brokers = engine.brokers(signal.strategy);
            for broker in brokers {
                let record = crate::publish::signal_record(engine, signal, broker, None);
                if let Err(err) = self.out.write(&record) {
                    self.failed = Some(err);
                    return ControlFlow::Break(());
                }
            }
            self.lines += brokers.len() as u64;
        }
        ControlFlow::Continue(())
    }

    /// Lines written, and the first write that failed.
    pub(crate) fn end(self) -> io::Result<u64> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        self.out.flush()?;
        Ok(self.lines)
    }
}

/// 1 ns .. 60 s at 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    // Creation cannot fail for these bounds.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant figures is valid"))
    })
}
