//! `quiver bench`: the standard scenario, measured.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use quiver_core::Tick;
use quiver_engine::scenario::Scenario;
use quiver_engine::{Engine, EngineSignal};

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
