//! `quiver bench`: the standard scenario, measured.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use quiver_core::Tick;
use quiver_engine::scenario::Scenario;
use quiver_engine::{Engine, EngineSignal, StrategyEntry};
use quiver_strategy::rules::MeanReversion;
use quiver_strategy::StandardValidator;

use crate::pipeline::latency_histogram;
use crate::summary::{latency_line, per_second, thousands};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Generated ticks.
    #[arg(long, default_value_t = Scenario::STANDARD.ticks)]
    ticks: u64,
    #[arg(long, default_value_t = Scenario::STANDARD.strategies)]
    strategies: u32,
    #[arg(long, default_value_t = Scenario::STANDARD.instruments)]
    instruments: u32,
    /// Strategies following each instrument.
    #[arg(long, default_value_t = Scenario::STANDARD.followers)]
    followers: u32,
    #[arg(long, default_value_t = Scenario::STANDARD.seed)]
    seed: u64,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let scenario = Scenario {
        strategies: args.strategies,
        instruments: args.instruments,
        followers: args.followers,
        ticks: args.ticks,
        seed: args.seed,
    };
    eprintln!(
        "bench: {} strategies × {} instruments (~{} strategies per instrument, every built-in type), {} ticks",
        scenario.strategies,
        scenario.instruments,
        scenario.followers,
        thousands(scenario.ticks)
    );
    let ticks: Vec<Tick> = scenario.ticks().iter().collect();
    let rss_before = rss_kib("VmRSS");
    let mut engine = Engine::new(scenario.entries()).context("building the bench engine")?;
    let rss_engine = rss_kib("VmRSS");

    let mut latency = latency_histogram();
    let mut signals: Vec<EngineSignal> = Vec::with_capacity(scenario.strategies as usize);
    let mut signal_count = 0u64;
    let started = Instant::now();
    for (seq, tick) in ticks.iter().enumerate() {
        let t0 = Instant::now();
        engine.on_tick(seq as u64, tick, &mut signals);
        latency.saturating_record(t0.elapsed().as_nanos() as u64);
        signal_count += signals.len() as u64;
        signals.clear();
    }
    let wall = started.elapsed().as_secs_f64();
    let stats = engine.stats();

    println!("ticks                 {}", thousands(stats.ticks));
    println!("wall time             {wall:.3} s");
    println!(
        "ticks/s               {}",
        thousands(per_second(stats.ticks, wall))
    );
    println!(
        "strategy evals/s      {}  ({} evaluations)",
        thousands(per_second(stats.evaluations, wall)),
        thousands(stats.evaluations)
    );
    println!("per-tick dispatch     {}", latency_line(&latency));
    println!("signals               {}", thousands(signal_count));
    println!("strategy panics       {}", stats.panics);
    println!(
        "engine heap           {} KiB (history rings + routing)",
        thousands(engine.heap_bytes() as u64 / 1024)
    );
    println!(
        "shared features       {} maintained, {:.1} updates/tick, hit ratio {:.3}",
        thousands(engine.features_maintained() as u64),
        stats.feature_updates_per_tick(),
        stats.feature_hit_ratio()
    );
    let instruments = engine.instrument_tokens().len().max(1);
    println!(
        "engine bytes          {} per instrument",
        thousands((engine.heap_bytes() / instruments) as u64)
    );
    for lookback in [12, 33] {
        let (new_features, shared_features) = added_strategy_bytes(&scenario, lookback)?;
        println!(
            "per added strategy    mean_reversion({lookback}) on all {} instruments: {} bytes when zscore({lookback}) is new, {} bytes once it is maintained",
            scenario.instruments,
            thousands(new_features as u64),
            thousands(shared_features as u64)
        );
    }
    match (rss_before, rss_engine, rss_kib("VmHWM")) {
        (Some(before), Some(after), Some(peak)) => {
            println!(
                "RSS for the engine    {} KiB ({} strategies)",
                thousands(after.saturating_sub(before)),
                scenario.strategies
            );
            println!("peak RSS              {} KiB", thousands(peak));
        }
        _ => println!("peak RSS              n/a (no /proc/self/status)"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Engine bytes added by one more strategy that follows every instrument:
/// first one whose `zscore(lookback)` is new to the store (a lookback longer
/// than the rings also grows them), then a second identical one that only adds
/// routes onto features already maintained.
fn added_strategy_bytes(scenario: &Scenario, lookback: usize) -> anyhow::Result<(usize, usize)> {
    let tokens: Vec<u64> = scenario.ticks().tokens().collect();
    let extra = |id: &str| StrategyEntry {
        id: id.to_owned(),
        strategy: Box::new(MeanReversion::new(lookback, 2.0, 100)),
        instruments: tokens.clone(),
        brokers: vec!["paper".to_owned()],
        validator: StandardValidator::default(),
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
