//! `quiver bench-redis`: the live service through a real Redis, measured.

use std::process::ExitCode;

use anyhow::Context;
use quiver_bench::redis::{self as bench, BenchOptions};
use quiver_engine::scenario::Scenario;

use crate::edge::Outcome;

#[derive(clap::Args)]
pub struct BenchRedisArgs {
    /// Redis URL (use a scratch server: the bench writes and then deletes `quiver-bench.*` keys).
    #[arg(long)]
    redis: String,
    /// The moderate rate, ticks/s.
    #[arg(long, default_value_t = 20_000.0)]
    rate: f64,
    /// Ticks published at the moderate rate.
    #[arg(long, default_value_t = 200_000)]
    moderate_ticks: u64,
    /// Ticks published unpaced (saturation) and through the raw Redis loop.
    #[arg(long, default_value_t = 300_000)]
    saturation_ticks: u64,
    /// Rounds of (ceiling, saturation); medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

pub fn run(args: &BenchRedisArgs) -> Outcome {
    let scenario = Scenario::STANDARD;
    eprintln!(
        "bench-redis: {} strategies × {} instruments, {} at {} ticks/s, {} unpaced, on {}",
        scenario.strategies,
        scenario.instruments,
        args.moderate_ticks,
        args.rate,
        args.saturation_ticks,
        args.redis
    );
    let options = BenchOptions {
        url: args.redis.clone(),
        prefix: format!("quiver-bench.{}", std::process::id()),
        scenario,
        rate: args.rate,
        moderate_ticks: args.moderate_ticks,
        saturation_ticks: args.saturation_ticks,
        rounds: args.rounds,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime
        .block_on(bench::run(&options))
        .context("running the benchmark")?;
    let range = |values: &mut dyn Iterator<Item = f64>| {
        let values: Vec<f64> = values.collect();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(0.0, f64::max);
        format!("{min:.0}–{max:.0}")
    };
    let ceiling = report.ceiling();
    let saturation = report.saturation();
    println!(
        "redis ceiling, tick traffic only (XADD + XREADGROUP + XACK)     {:>8.0} ticks/s",
        report.tick_ceiling_ticks_per_s
    );
    println!(
        "redis ceiling, ticks + their signals (raw loop, no engine)      {:>8.0} ticks/s  (median of {}: {})",
        ceiling,
        report.ceilings.len(),
        range(&mut report.ceilings.iter().map(|c| c.0))
    );
    let moderate = &report.moderate;
    println!(
        "{:<63} {:>8.0} ticks/s  XADD→signal p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} ticks, {} signals)",
        moderate.name,
        moderate.ticks_per_s,
        moderate.p50_ms,
        moderate.p99_ms,
        moderate.max_ms,
        moderate.ticks,
        moderate.signals
    );
    println!(
        "{:<63} {:>8.0} ticks/s  (median of {}: {}) = {:.0}% of the ticks + signals ceiling",
        "saturation (unpaced)",
        saturation,
        report.saturations.len(),
        range(&mut report.saturations.iter().map(|p| p.ticks_per_s)),
        100.0 * saturation / ceiling
    );
    let us = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    println!("CPU per tick, µs (this process: runner + load generator + reader; redis-server):");
    println!(
        "  tick-only ceiling {:>43}  process {:>5}  redis {:>5}",
        "",
        us(report.tick_ceiling_cpu.process_us),
        us(report.tick_ceiling_cpu.redis_us)
    );
    for (round, (rate, cpu)) in report.ceilings.iter().enumerate() {
        println!(
            "  ceiling-{round:<52} {:>8.0} ticks/s  process {:>5}  redis {:>5}",
            rate,
            us(cpu.process_us),
            us(cpu.redis_us)
        );
    }
    for phase in std::iter::once(moderate).chain(&report.saturations) {
        println!(
            "  {:<60} {:>8.0} ticks/s  process {:>5} (engine thread {:>4})  redis {:>5}  XADD→signal p50 {:.2} ms  p99 {:.2} ms",
            phase.name,
            phase.ticks_per_s,
            us(phase.cpu.process_us),
            us(phase.cpu.engine_us),
            us(phase.cpu.redis_us),
            phase.p50_ms,
            phase.p99_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}
