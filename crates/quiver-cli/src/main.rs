//! `quiver`: the command-line edge of the strategy runner.

mod admin_cmd;
mod backtest_cmd;
mod bench;
mod bench_redis;
mod db_cmd;
mod demo;
mod edge;
mod features_cmd;
mod models_cmd;
mod pipeline;
mod publish;
mod run;
mod summary;
mod tick_files;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::edge::{invalid, Outcome};

#[derive(Parser)]
#[command(
    name = "quiver",
    version,
    about = "Quiver: one engine for 100+ trading strategies over one tick stream"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay a tick file through the strategies of a config and write their signals (JSONL).
    Replay {
        /// Strategies file (YAML).
        #[arg(long)]
        config: PathBuf,
        /// Ticks: .csv, .jsonl, .parquet, or a directory of Parquet partitions.
        #[arg(long)]
        ticks: PathBuf,
        #[command(flatten)]
        select: tick_files::SelectArgs,
        /// Signals file; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Skip malformed rows (and report them by reason) instead of stopping at the first.
        #[arg(long)]
        skip_bad_rows: bool,
        /// Simulate load shedding from tick SEQ on: LEVEL is `background` (skip background
        /// strategies), `normal` (skip all but critical ones) or `none`; repeat for a schedule.
        #[arg(long = "shed-at", value_name = "SEQ=LEVEL", value_parser = pipeline::parse_shed_at)]
        shed_at: Vec<(u64, quiver_engine::Shed)>,
        /// Swap in the strategies file FILE just before tick SEQ, as a live reload would
        /// (validated whole, unchanged strategies carried over); repeat for a schedule.
        #[arg(long = "reload-at", value_name = "SEQ=FILE", value_parser = pipeline::parse_reload_at)]
        reload_at: Vec<(u64, PathBuf)>,
        #[command(flatten)]
        models: pipeline::ModelArgs,
    },
    /// Replay a tick file through the strategies, the risk controller, the cost model and the
    /// paper broker of a config (its `paper:`, `risk:` and `costs:` sections), and write a report:
    /// summary.csv/json, trades.csv, equity.csv and report.html with plots.
    Backtest {
        /// Strategies file (YAML), or the store (a postgres:// URL).
        #[arg(long)]
        config: PathBuf,
        /// Ticks: .csv, .jsonl, .parquet, or a directory of Parquet partitions.
        #[arg(long)]
        ticks: PathBuf,
        #[command(flatten)]
        select: tick_files::SelectArgs,
        /// The report's directory (created when missing).
        #[arg(long)]
        out: PathBuf,
        /// Skip malformed rows (and report them by reason) instead of stopping at the first.
        #[arg(long)]
        skip_bad_rows: bool,
        #[command(flatten)]
        models: pipeline::ModelArgs,
    },
    /// Generate a synthetic trading day for the bundled example config, replay it, print the summary.
    Demo {
        /// Also write the demo's signals to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Ticks in the synthetic day.
        #[arg(long, default_value_t = demo::DEFAULT_TICKS)]
        ticks: u64,
        /// The paper-trading report's directory (default: quiver-demo-report in the system's
        /// temporary directory).
        #[arg(long)]
        report: Option<PathBuf>,
        #[command(flatten)]
        models: pipeline::ModelArgs,
    },
    /// The standard benchmark: 100 strategies × 400 instruments over 1,000,000 generated ticks.
    Bench(bench::BenchArgs),
    /// Write deterministic synthetic ticks (seeded random walk per instrument, 0.05 grid) as CSV,
    /// JSON Lines or Parquet.
    Gen {
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        instruments: u32,
        #[arg(long)]
        ticks: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The file; with --format parquet and no extension, a directory of
        /// <instrument>/YYYYMMDD.parquet partitions.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: tick_files::GenFormat,
        /// The time zone partition dates are in (default: the session's).
        #[arg(long, value_name = "TZ")]
        timezone: Option<String>,
    },
    /// Convert ticks between CSV, JSON Lines, Parquet files and directories of Parquet
    /// partitions (prices stay exact).
    Convert(tick_files::ConvertArgs),
    /// Print one instrument's feature values tick by tick as CSV: seq,ts_ns,price,<spec>...
    Features {
        /// Ticks: .csv, .jsonl, .parquet, or a directory of Parquet partitions.
        #[arg(long)]
        ticks: PathBuf,
        #[command(flatten)]
        select: tick_files::SelectArgs,
        /// Instrument token.
        #[arg(long)]
        instrument: u64,
        /// Feature spec, e.g. sma(20), rsi(14), zscore(20); repeat for several.
        #[arg(long = "spec", required = true)]
        specs: Vec<String>,
    },
    /// Run the live service: ticks from a source (synthetic, a paced replay, Redis Streams)
    /// through the strategies to a sink, with /metrics, /health, /ready and /strategies.
    Run(run::RunArgs),
    /// Push a tick file into the Redis tick streams (seq = the tick's index in the file).
    Publish(publish::PublishArgs),
    /// The live service through a real Redis: ticks/s and tick XADD → signal latency at a
    /// moderate rate and at saturation, next to Redis's own ceiling (100 strategies × 400 instruments).
    BenchRedis(bench_redis::BenchRedisArgs),
    /// The model registry: list models, verify checksums and loading, show a model's signature.
    Models(models_cmd::ModelsArgs),
    /// Talk to a running service's admin API: list strategies; pause, resume, stop or reset one.
    Admin(admin_cmd::AdminArgs),
    /// Check a strategies file (or the store, given a postgres:// URL): print every error, or a
    /// one-line summary of what would run.
    Validate {
        #[arg(long)]
        config: PathBuf,
    },
    /// The strategy config store in PostgreSQL: create the schema, import and export
    /// strategies files.
    Db(db_cmd::DbArgs),
}

fn main() -> ExitCode {
    init_logging();
    install_panic_hook();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Replay {
            config,
            ticks,
            select,
            out,
            skip_bad_rows,
            shed_at,
            reload_at,
            models,
        } => pipeline::replay_command(
            &config,
            &ticks,
            &select,
            out.as_deref(),
            skip_bad_rows,
            pipeline::Schedules { shed_at, reload_at },
            &models,
        ),
        Command::Backtest {
            config,
            ticks,
            select,
            out,
            skip_bad_rows,
            models,
        } => backtest_cmd::run(&config, &ticks, &select, &out, skip_bad_rows, &models),
        Command::Demo {
            out,
            ticks,
            report,
            models,
        } => demo::run(
            out.as_deref(),
            &report.unwrap_or_else(demo::default_report_dir),
            ticks,
            &models,
        ),
        Command::Bench(args) => bench::run(&args),
        Command::Gen {
            instruments,
            ticks,
            seed,
            out,
            format,
            timezone,
        } => tick_files::gen(instruments, ticks, seed, &out, format, timezone.as_deref()),
        Command::Convert(args) => tick_files::convert(&args),
        Command::Validate { config } => validate(&config),
        Command::Run(args) => run::run(&args),
        Command::Db(args) => db_cmd::run(&args),
        Command::Publish(args) => publish::run(&args),
        Command::BenchRedis(args) => bench_redis::run(&args),
        Command::Models(args) => models_cmd::run(&args),
        Command::Admin(args) => admin_cmd::run(&args),
        Command::Features {
            ticks,
            select,
            instrument,
            specs,
        } => features_cmd::run(&ticks, &select, instrument, &specs),
    };
    edge::exit(result)
}

fn validate(config: &std::path::Path) -> Outcome {
    let (cfg, config) = db_cmd::load_config(config)?;
    let config = config.as_path();
    // Model names and feature counts are checked against the registry
    // (nothing is loaded).
    let options = quiver_infer::StoreOptions {
        backend: quiver_infer::BackendChoice::Tract,
        ..Default::default()
    };
    quiver_runtime::models::Models::open(config, &cfg, None, options).map_err(invalid)?;
    println!("{}: ok: {}", config.display(), cfg.summary());
    Ok(ExitCode::SUCCESS)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("QUIVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Strategy panics are contained and reported by the engine as faults with their
/// context; the default hook would print each one a second time, without it.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if quiver_engine::in_strategy_call() {
            tracing::debug!(%info, "strategy panic (contained)");
        } else {
            default(info);
        }
    }));
}
