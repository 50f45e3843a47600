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
    /// Also run the scenario as a backtest (paper fills, risk limits, costs) against the
    /// engine alone, alternately, ROUNDS times each, and report both.
    #[arg(long, value_name = "ROUNDS", num_args = 0..=1, default_missing_value = "3")]
    backtest: Option<usize>,
    /// Instead of the scenario: read these tick sources alone (files, or directories of
    /// Parquet partitions), each ROUNDS times alternated, and report ticks/s read.
    #[arg(long = "read", value_name = "TICKS")]
    read: Vec<std::path::PathBuf>,
    /// Rounds of --read and --shards.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Instead of the engine alone: the scenario through the driver as a replay runs it, with
    /// each of these shard counts (1: one engine), alternately ROUNDS times, e.g. --shards 1,2;
    /// with --backtest, each count also with a paper desk as the consumer.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=256))]
    shards: Vec<u64>,
}

/// `--shards`: ticks/s of each count, and whether they all gave the same
/// signals.
fn shard_runs(scenario: &Scenario, counts: &[u64], rounds: usize, backtest: bool) -> Outcome {
    let counts: Vec<usize> = counts
        .iter()
        .map(|&n| usize::try_from(n).unwrap_or(1))
        .collect();
    let runs = quiver_bench::engine::shards(scenario, &counts, rounds, None)
        .context("building the bench engines")?;
    let base = runs.first().map_or(1.0, |r| r.seconds);
    if backtest {
        let desk = bench_desk();
        let with_desk = quiver_bench::engine::shards(scenario, &counts, rounds, Some(&desk))
            .context("building the bench engines")?;
        for (alone, run) in runs.iter().zip(&with_desk) {
            println!(
                "backtest shards {:>3}   {} ticks/s with the paper desk, {} ticks/s without: {:.1}% ({} fills; median of {})",
                run.shards,
                thousands(per_second(run.ticks, run.seconds)),
                thousands(per_second(alone.ticks, alone.seconds)),
                100.0 * alone.seconds / run.seconds.max(1e-12),
                thousands(run.fills),
                rounds.max(1)
            );
        }
        if with_desk
            .iter()
            .zip(&runs)
            .any(|(a, b)| a.digest != b.digest)
        {
            return Err(anyhow::anyhow!("the desk changed the signals").into());
        }
    }
    for run in &runs {
        println!(
            "shards {:>3}   {} ticks/s, {} evaluations/s, {:.2}× the first; evaluations per shard {}; {} signals, digest {:016x} (median of {})",
            run.shards,
            thousands(per_second(run.ticks, run.seconds)),
            thousands(per_second(run.evaluations, run.seconds)),
            base / run.seconds.max(1e-12),
            run.per_shard
                .iter()
                .map(|&n| thousands(n))
                .collect::<Vec<_>>()
                .join(" / "),
            thousands(run.signals),
            run.digest,
            rounds.max(1)
        );
    }
    if runs
        .windows(2)
        .any(|w| w[0].digest != w[1].digest || w[0].signals != w[1].signals)
    {
        return Err(anyhow::anyhow!("the shard counts gave different signals").into());
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads each source `rounds` times, alternated so the machine's noise
/// falls on all of them alike; the median of each.
fn read_alone(paths: &[std::path::PathBuf], rounds: usize) -> Outcome {
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut ticks = vec![0u64; paths.len()];
    for _ in 0..rounds.max(1) {
        for (i, path) in paths.iter().enumerate() {
            let started = std::time::Instant::now();
            let mut count = 0u64;
            for row in quiver_io::open_ticks(path).map_err(crate::edge::invalid)? {
                row.map_err(crate::edge::invalid)?;
                count += 1;
            }
            seconds[i].push(started.elapsed().as_secs_f64());
            ticks[i] = count;
        }
    }
    for (i, path) in paths.iter().enumerate() {
        seconds[i].sort_by(f64::total_cmp);
        let median = seconds[i][seconds[i].len() / 2];
        println!(
            "read {:<40} {} ticks in {median:.3} s: {} ticks/s ({} MiB on disk; median of {})",
            path.display(),
            thousands(ticks[i]),
            thousands(per_second(ticks[i], median)),
            thousands(disk_bytes(path) >> 20),
            seconds[i].len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn disk_bytes(path: &std::path::Path) -> u64 {
    match std::fs::read_dir(path) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| disk_bytes(&e.path()))
            .sum(),
        Err(_) => std::fs::metadata(path).map_or(0, |m| m.len()),
    }
}

/// The desk `quiver bench --backtest` trades with: every check a backtest
/// can make switched on.
fn bench_desk() -> quiver_paper::DeskSpec {
    use quiver_paper::{CostSpec, DeskSpec, InstrumentCosts, Money, PaperSpec, Rate, RiskSpec};
    let bps = |v: f64| Rate::from_bps(v).unwrap_or(Rate::ZERO);
    DeskSpec {
        paper: PaperSpec {
            slippage: bps(0.5),
            ..PaperSpec::default()
        },
        risk: RiskSpec {
            max_instrument_exposure: Some(Money::from_int(20_000_000)),
            max_strategy_exposure: Some(Money::from_int(5_000_000)),
            max_total_exposure: Some(Money::from_int(200_000_000)),
            max_strategy_drawdown: Some(0.2),
            max_total_drawdown: Some(0.1),
            ..RiskSpec::default()
        },
        costs: CostSpec {
            default: InstrumentCosts {
                spread: bps(2.0),
                taker_fee: bps(1.0),
                maker_fee: bps(0.5),
            },
            edge_bps: Some(20.0),
            min_edge_bps: Some(1.0),
            ..CostSpec::default()
        },
    }
}

pub fn run(args: &BenchArgs) -> Outcome {
    if !args.read.is_empty() {
        return read_alone(&args.read, args.rounds);
    }
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
    if !args.shards.is_empty() {
        return shard_runs(
            &scenario,
            &args.shards,
            args.rounds,
            args.backtest.is_some(),
        );
    }
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
    if let Some(rounds) = args.backtest {
        let bt = quiver_bench::engine::backtest(&scenario, &bench_desk(), rounds)
            .context("building the bench engine")?;
        let alone = per_second(bt.ticks, bt.engine_alone_seconds);
        let with_desk = per_second(bt.ticks, bt.backtest_seconds);
        println!(
            "backtest              {} ticks/s with the paper desk (fills, risk, costs), {} ticks/s the engine alone: {:.1}% ({} signals, {} fills; medians of {} alternated runs)",
            thousands(with_desk),
            thousands(alone),
            100.0 * bt.engine_alone_seconds / bt.backtest_seconds.max(1e-12),
            thousands(bt.signals),
            thousands(bt.fills),
            rounds.max(1)
        );
    }
    Ok(ExitCode::SUCCESS)
}
