//! `quiver bench`: the standard scenario through the engine alone, measured.

use std::time::Instant;

use hdrhistogram::Histogram;
use quiver_core::Tick;
use quiver_engine::scenario::Scenario;
use quiver_engine::{Engine, EngineError, EngineStats, Input, Output, StrategyEntry};
use quiver_strategy::rules::MeanReversion;
use quiver_strategy::{Logic, StandardValidator};

/// What one run of the scenario measured.
pub struct EngineBench {
    pub stats: EngineStats,
    pub wall_seconds: f64,
    /// Per-tick dispatch time, nanoseconds.
    pub latency: Histogram<u64>,
    pub signals: u64,
    pub heap_bytes: usize,
    pub features_maintained: usize,
    pub instruments: usize,
    /// Per lookback: engine bytes added by one more strategy following every
    /// instrument when its `zscore(lookback)` is new, and once it is
    /// maintained.
    pub added_strategy_bytes: Vec<(usize, usize, usize)>,
    /// KiB: RSS before the engine was built, after, and the peak.
    pub rss_kib: Option<(u64, u64, u64)>,
    pub reload: ReloadCost,
}

/// What a reload of the scenario's set costs once its ticks have run.
pub struct ReloadCost {
    /// Building the new engine, off the hot path.
    pub build: std::time::Duration,
    /// The swap between two ticks, every strategy carried over.
    pub swap_all_carried: std::time::Duration,
    /// The swap when one strategy is new and brings a feature none had on
    /// every instrument (which then replays the kept history).
    pub swap_new_feature: std::time::Duration,
}

/// Generates the scenario's ticks, builds its engine and dispatches every
/// tick through [`Engine::process`], timing each.
pub fn run(scenario: &Scenario) -> Result<EngineBench, EngineError> {
    let ticks: Vec<Tick> = scenario.ticks().iter().collect();
    let rss_before = rss_kib("VmRSS");
    let mut engine = Engine::new(scenario.entries())?;
    let rss_engine = rss_kib("VmRSS");
    let mut latency = latency_histogram();
    let mut out = Output::with_capacity(scenario.strategies as usize);
    let mut signals = 0u64;
    let started = Instant::now();
    for (seq, tick) in ticks.iter().enumerate() {
        let t0 = Instant::now();
        let seq = seq as u64;
        engine.process(Input::Tick { seq, tick }, &mut out);
        latency.saturating_record(t0.elapsed().as_nanos() as u64);
        signals += out.signals.len() as u64;
        out.signals.clear();
    }
    let wall_seconds = started.elapsed().as_secs_f64();
    // What the run measured, before a reload changes the engine.
    let (stats, heap_bytes) = (engine.stats(), engine.heap_bytes());
    let features_maintained = engine.features_maintained();
    let instruments = engine.instrument_tokens().len();
    let peak = rss_kib("VmHWM");
    let reload = reload_cost(scenario, &mut engine, &ticks)?;
    let mut added_strategy_bytes = Vec::new();
    for lookback in [12, 33] {
        let (new, shared) = added_bytes(scenario, lookback)?;
        added_strategy_bytes.push((lookback, new, shared));
    }
    Ok(EngineBench {
        stats,
        wall_seconds,
        latency,
        signals,
        heap_bytes,
        features_maintained,
        instruments,
        added_strategy_bytes,
        rss_kib: match (rss_before, rss_engine, peak) {
            (Some(before), Some(after), Some(peak)) => Some((before, after, peak)),
            _ => None,
        },
        reload,
    })
}

/// The standard scenario as a backtest: [`run`]'s loop, each tick and then
/// its signals handed to a paper desk (fills, risk, costs), against the same
/// loop without the desk, alternately `rounds` times; the medians.
pub struct BacktestBench {
    pub engine_alone_seconds: f64,
    pub backtest_seconds: f64,
    pub ticks: u64,
    pub signals: u64,
    pub fills: u64,
}

pub fn backtest(
    scenario: &Scenario,
    spec: &quiver_paper::DeskSpec,
    rounds: usize,
) -> Result<BacktestBench, EngineError> {
    let ticks: Vec<Tick> = scenario.ticks().iter().collect();
    let mut alone = Vec::with_capacity(rounds);
    let mut with_desk = Vec::with_capacity(rounds);
    let (mut signals, mut fills) = (0, 0);
    for _ in 0..rounds.max(1) {
        let mut engine = Engine::new(scenario.entries())?;
        let started = Instant::now();
        dispatch(&mut engine, &ticks, None);
        alone.push(started.elapsed().as_secs_f64());
        let mut engine = Engine::new(scenario.entries())?;
        let ids = engine
            .strategies()
            .map(|s| engine.strategy_id(s).to_owned())
            .collect::<Vec<_>>();
        let mut desk = quiver_paper::Desk::new(spec.clone(), ids);
        let started = Instant::now();
        (signals, fills) = dispatch(&mut engine, &ticks, Some(&mut desk));
        desk.finish();
        with_desk.push(started.elapsed().as_secs_f64());
    }
    Ok(BacktestBench {
        engine_alone_seconds: median(&mut alone),
        backtest_seconds: median(&mut with_desk),
        ticks: ticks.len() as u64,
        signals,
        fills,
    })
}

/// Every tick through the engine (and its signals to `desk`, whose fills
/// are taken away as a backtest streams them); the signals and the fills.
fn dispatch(
    engine: &mut Engine,
    ticks: &[Tick],
    mut desk: Option<&mut quiver_paper::Desk>,
) -> (u64, u64) {
    let mut out = Output::with_capacity(engine.strategy_count());
    let (mut signals, mut fills) = (0u64, 0u64);
    let mut taken = Vec::new();
    for (seq, tick) in ticks.iter().enumerate() {
        let seq = seq as u64;
        engine.process(Input::Tick { seq, tick }, &mut out);
        if let Some(desk) = desk.as_deref_mut() {
            desk.on_tick(seq, tick);
            for s in &out.signals {
                order(desk, s);
            }
            desk.take_fills(&mut taken);
            fills += taken.len() as u64;
            taken.clear();
        }
        signals += out.signals.len() as u64;
        out.signals.clear();
    }
    (signals, fills)
}

/// One shard count of [`shards`]: the median wall time of its rounds, and
/// what came out (the same for every count, or the merge is wrong).
pub struct ShardRun {
    pub shards: usize,
    pub seconds: f64,
    pub ticks: u64,
    pub evaluations: u64,
    /// Evaluations each shard made: how evenly the hash split the work.
    pub per_shard: Vec<u64>,
    pub signals: u64,
    /// Fills of the paper desk, when there was one.
    pub fills: u64,
    /// A multiply-rotate hash of every signal's (seq, strategy, side,
    /// quantity, price), in output order.
    pub digest: u64,
}

/// The scenario through the driver as a replay runs it (one tick a batch),
/// with one engine (`1`) or [`quiver_driver::Sharded`] over each count in
/// `counts`, alternately `rounds` times; with `desk`, the consumer is a
/// backtest's (each tick, then its signals, to a paper desk of that spec).
pub fn shards(
    scenario: &Scenario,
    counts: &[usize],
    rounds: usize,
    desk: Option<&quiver_paper::DeskSpec>,
) -> Result<Vec<ShardRun>, EngineError> {
    use quiver_driver::{Cadence, Driver, NoInference, Sharded};
    let ticks: Vec<Tick> = scenario.ticks().iter().collect();
    let mut runs: Vec<ShardRun> = counts
        .iter()
        .map(|&shards| ShardRun {
            shards,
            seconds: 0.0,
            ticks: ticks.len() as u64,
            evaluations: 0,
            per_shard: Vec::new(),
            signals: 0,
            fills: 0,
            digest: 0,
        })
        .collect();
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
    for _ in 0..rounds.max(1) {
        for (run, seconds) in runs.iter_mut().zip(&mut seconds) {
            let mut feed = SliceFeed {
                ticks: &ticks,
                next: 0,
            };
            let ids: Vec<String> = scenario.entries().into_iter().map(|e| e.id).collect();
            let mut tally = Tally {
                desk: desk.map(|spec| (quiver_paper::Desk::new(spec.clone(), ids), Vec::new())),
                ..Tally::default()
            };
            let started = Instant::now();
            let per_shard = if run.shards <= 1 {
                let engine = Engine::new(scenario.entries())?;
                let mut driver = Driver::new(engine, NoInference, Cadence::EveryRequests(1));
                driver.run(&mut feed, &mut tally);
                vec![driver.engine().stats().evaluations]
            } else {
                let mut sharded = Sharded::build(
                    run.shards,
                    1,
                    || Ok::<_, EngineError>(scenario.entries()),
                    |_| {},
                    |_| NoInference,
                )?;
                sharded.run(&mut feed, &mut tally);
                sharded.engines().map(|e| e.stats().evaluations).collect()
            };
            seconds.push(started.elapsed().as_secs_f64());
            run.evaluations = per_shard.iter().sum();
            run.per_shard = per_shard;
            run.signals = tally.signals;
            run.fills = tally.fills;
            run.digest = tally.digest;
        }
    }
    for (run, seconds) in runs.iter_mut().zip(&mut seconds) {
        run.seconds = median(seconds);
    }
    Ok(runs)
}

/// Pre-generated ticks, one a batch.
struct SliceFeed<'t> {
    ticks: &'t [Tick],
    next: usize,
}

struct OneTick<'t>(u64, &'t Tick);

impl quiver_driver::Batch for OneTick<'_> {
    fn ticks(&self) -> impl Iterator<Item = (u64, &Tick)> {
        std::iter::once((self.0, self.1))
    }
}

impl<'t> quiver_driver::Feed for SliceFeed<'t> {
    type Batch = OneTick<'t>;

    fn next(&mut self, _wait: bool) -> quiver_driver::Next<OneTick<'t>> {
        match self.ticks.get(self.next) {
            Some(tick) => {
                self.next += 1;
                quiver_driver::Next::Batch(OneTick(self.next as u64 - 1, tick))
            }
            None => quiver_driver::Next::End,
        }
    }
}

/// Counts the signals and hashes them in order; with a desk, hands it each
/// tick and then its signals, as a backtest does.
struct Tally {
    signals: u64,
    digest: u64,
    desk: Option<(quiver_paper::Desk, Vec<quiver_paper::Fill>)>,
    fills: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            signals: 0,
            digest: 0xcbf2_9ce4_8422_2325,
            desk: None,
            fills: 0,
        }
    }
}

impl<'t> quiver_driver::Consumer<OneTick<'t>> for Tally {
    fn complete(
        &mut self,
        _engine: &Engine,
        batches: std::vec::Drain<'_, OneTick<'t>>,
        out: &mut Output,
    ) -> std::ops::ControlFlow<()> {
        if let Some((desk, taken)) = &mut self.desk {
            let mut signals = out.signals.iter().peekable();
            for OneTick(seq, tick) in batches {
                desk.on_tick(seq, tick);
                while let Some(s) = signals.next_if(|s| s.seq == seq) {
                    order(desk, s);
                }
            }
            desk.take_fills(taken);
            self.fills += taken.len() as u64;
            taken.clear();
        }
        for s in &out.signals {
            let side = matches!(s.decision.side, quiver_core::Side::Buy) as u64;
            for word in [
                s.seq,
                u64::from(s.strategy.index() as u32),
                side,
                s.decision.quantity,
                s.decision.price.units() as u64,
            ] {
                self.digest = (self.digest ^ word)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .rotate_left(29);
            }
        }
        self.signals += out.signals.len() as u64;
        std::ops::ControlFlow::Continue(())
    }
}

/// A signal to the desk: an order for its strategy's account.
fn order(desk: &mut quiver_paper::Desk, s: &quiver_engine::EngineSignal) {
    desk.on_signal(
        s.strategy.index() as u32,
        s.seq,
        s.ts_ns,
        s.instrument,
        &s.decision,
    );
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Times two rebuilds of `engine` (which ran the scenario's ticks): the same
/// set with every strategy carried, then that set plus one strategy whose
/// feature is new on every instrument. One more tick after each, as a
/// reload leaves the engine serving.
fn reload_cost(
    scenario: &Scenario,
    engine: &mut Engine,
    ticks: &[Tick],
) -> Result<ReloadCost, EngineError> {
    use quiver_engine::Control;
    let mut out = Output::with_capacity(scenario.strategies as usize);
    let ids: Vec<String> = scenario.entries().into_iter().map(|e| e.id).collect();
    let started = Instant::now();
    let next = Engine::new(scenario.entries())?;
    let build = started.elapsed();
    let started = Instant::now();
    engine.process(
        Input::Control(Control::Rebuild {
            engine: Box::new(next),
            carried: ids.clone(),
        }),
        &mut out,
    );
    let swap_all_carried = started.elapsed();
    let seq = ticks.len() as u64;
    if let Some(tick) = ticks.first() {
        engine.process(Input::Tick { seq, tick }, &mut out);
    }
    let tokens: Vec<u64> = scenario.ticks().tokens().collect();
    let mut entries = scenario.entries();
    entries.push(StrategyEntry {
        id: "reloaded-new".to_owned(),
        logic: Logic::Rules(Box::new(MeanReversion::new(57, 2.0, 100))),
        instruments: tokens,
        brokers: vec!["paper".to_owned()],
        validator: StandardValidator::default(),
        guards: quiver_strategy::GuardSpec::default(),
        schedule: quiver_engine::Schedule::default(),
    });
    let next = Engine::new(entries)?;
    let started = Instant::now();
    engine.process(
        Input::Control(Control::Rebuild {
            engine: Box::new(next),
            carried: ids,
        }),
        &mut out,
    );
    let swap_new_feature = started.elapsed();
    Ok(ReloadCost {
        build,
        swap_all_carried,
        swap_new_feature,
    })
}

/// Engine bytes added by one more strategy that follows every instrument:
/// first one whose `zscore(lookback)` is new to the store (a lookback longer
/// than the rings also grows them), then a second identical one that only adds
/// routes onto features already maintained.
fn added_bytes(scenario: &Scenario, lookback: usize) -> Result<(usize, usize), EngineError> {
    let tokens: Vec<u64> = scenario.ticks().tokens().collect();
    let extra = |id: &str| StrategyEntry {
        id: id.to_owned(),
        logic: Logic::Rules(Box::new(MeanReversion::new(lookback, 2.0, 100))),
        instruments: tokens.clone(),
        brokers: vec!["paper".to_owned()],
        validator: StandardValidator::default(),
        guards: quiver_strategy::GuardSpec::default(),
        schedule: quiver_engine::Schedule::default(),
    };
    let base = Engine::new(scenario.entries())?.heap_bytes();
    let mut entries = scenario.entries();
    entries.push(extra("added-1"));
    let one = Engine::new(entries)?.heap_bytes();
    let mut entries = scenario.entries();
    entries.push(extra("added-1"));
    entries.push(extra("added-2"));
    let two = Engine::new(entries)?.heap_bytes();
    Ok((one.saturating_sub(base), two.saturating_sub(one)))
}

/// 1 ns .. 60 s at 3 significant digits.
fn latency_histogram() -> Histogram<u64> {
    quiver_runtime::replay::latency_histogram()
}

/// A `Vm*` line of /proc/self/status, in KiB.
fn rss_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
