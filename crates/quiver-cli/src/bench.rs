//! `quiver bench`: the standard scenario, measured by
//! [`quiver_bench::engine`], printed.

use std::process::ExitCode;

use anyhow::Context;
use quiver_engine::scenario::Scenario;

use crate::edge::Outcome;
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

pub fn run(args: &BenchArgs) -> Outcome {
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
    let bench = quiver_bench::engine::run(&scenario).context("building the bench engine")?;
    let (stats, wall) = (&bench.stats, bench.wall_seconds);
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
    println!("per-tick dispatch     {}", latency_line(&bench.latency));
    println!("signals               {}", thousands(bench.signals));
    println!("strategy panics       {}", stats.panics);
    println!(
        "engine heap           {} KiB (history rings + routing)",
        thousands(bench.heap_bytes as u64 / 1024)
    );
    println!(
        "shared features       {} maintained, {:.1} updates/tick, hit ratio {:.3}",
        thousands(bench.features_maintained as u64),
        stats.feature_updates_per_tick(),
        stats.feature_hit_ratio()
    );
    println!(
        "engine bytes          {} per instrument",
        thousands((bench.heap_bytes / bench.instruments.max(1)) as u64)
    );
    let reload = &bench.reload;
    println!(
        "reload                build {:.1} ms off the hot path; swap {} µs with every strategy carried, {} µs with one new strategy whose feature replays the kept history on every instrument",
        reload.build.as_secs_f64() * 1e3,
        reload.swap_all_carried.as_micros(),
        reload.swap_new_feature.as_micros()
    );
    for &(lookback, new_features, shared_features) in &bench.added_strategy_bytes {
        println!(
            "per added strategy    mean_reversion({lookback}) on all {} instruments: {} bytes when zscore({lookback}) is new, {} bytes once it is maintained",
            scenario.instruments,
            thousands(new_features as u64),
            thousands(shared_features as u64)
        );
    }
    match bench.rss_kib {
        Some((before, after, peak)) => {
            println!(
                "RSS for the engine    {} KiB ({} strategies)",
                thousands(after.saturating_sub(before)),
                scenario.strategies
            );
            println!("peak RSS              {} KiB", thousands(peak));
        }
        None => println!("peak RSS              n/a (no /proc/self/status)"),
    }
    Ok(ExitCode::SUCCESS)
}
