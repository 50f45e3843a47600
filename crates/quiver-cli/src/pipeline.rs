//! The replay pipeline: ticks → engine → validated signals → one JSONL line per
//! (signal, broker). `quiver replay` and `quiver demo` share it.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use quiver_core::Tick;
use quiver_engine::{Engine, EngineSignal};
use quiver_infer::{Backend, BackendChoice, MicroBatcher, StoreOptions};
use quiver_io::{RowError, SignalWriter, SkipReport};
use quiver_runtime::models::{BatchRunner, Models};

use crate::summary::Summary;
use crate::EXIT_INVALID_INPUT;

/// What a finished (or stopped) replay measured.
pub struct ReplayRun {
    pub ticks: u64,
    pub lines: u64,
    pub skipped: SkipReport,
    pub wall: Duration,
    /// Per-tick dispatch latency, nanoseconds.
    pub latency: Histogram<u64>,
    /// The first bad row, when the replay stopped at it.
    pub stopped_at: Option<RowError>,
}

/// Rows per model call in replay unless `--call-rows` says otherwise. Fixed,
/// whatever `--batch-size`: ONNX Runtime's kernels depend on a call's row
/// count, so padding every call to the same size keeps results bit-identical
/// however requests are grouped.
pub const CALL_ROWS: u64 = 64;

/// How a replay runs its ML strategies' models.
#[derive(clap::Args, Clone, Debug)]
pub struct ModelArgs {
    /// Model registry; default: the config's `models:` section.
    #[arg(long = "models")]
    pub registry: Option<std::path::PathBuf>,
    /// Inference backend: auto (ONNX Runtime when its library loads, else tract), onnxruntime, tract.
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Model requests collected (over consecutive ticks) before one batched inference.
    /// Any value gives the same signals.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
    /// Rows per model call on ONNX Runtime (every call padded to it; tract runs row by row).
    /// Signals are identical across --batch-size values only at the same --call-rows.
    #[arg(long, default_value_t = CALL_ROWS, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub call_rows: u64,
}

/// An engine and the runner of its models, built from a validated config.
pub struct Setup {
    pub engine: Engine,
    pub runner: BatchRunner,
    /// The backend models run on, when any strategy uses one.
    pub backend: Option<Backend>,
    pub batch_size: usize,
}

/// Builds the engine of `config` (read from `config_path`) and loads the
/// models its strategies use. `Err` carries the message for the user: an
/// invalid registry or a strategy naming an unknown model (exit code 2).
pub fn setup(
    config_path: &Path,
    config: &quiver_config::Config,
    args: &ModelArgs,
) -> anyhow::Result<Result<Setup, String>> {
    let Some(backend) = BackendChoice::parse(&args.backend) else {
        return Ok(Err(format!(
            "error: --backend {:?}: expected one of {}",
            args.backend,
            BackendChoice::NAMES.join(", ")
        )));
    };
    let options = StoreOptions {
        backend,
        ..Default::default()
    };
    let models = match Models::open(config_path, config, args.registry.as_deref(), options) {
        Ok(models) => models,
        Err(err) => return Ok(Err(err.to_string())),
    };
    let engine = Engine::new(models.engine_entries(config)?).context("building the engine")?;
    let used = engine.models();
    let backend = (!used.is_empty()).then(|| models.backend().unwrap_or(Backend::Tract));
    let runner = BatchRunner::new(
        models.handles(used),
        MicroBatcher::deterministic(
            backend.unwrap_or(Backend::Tract),
            usize::try_from(args.call_rows).unwrap_or(64),
        ),
    );
    Ok(Ok(Setup {
        engine,
        runner,
        backend,
        batch_size: usize::try_from(args.batch_size).unwrap_or(usize::MAX),
    }))
}

/// Replays `ticks` through the engine of `setup`, writing every signal to
/// `out`. Model requests are run once `setup.batch_size` of them are pending
/// (and at the end); the latency recorded for a tick runs from its dispatch
/// to the moment its signals are out, inference included.
///
/// Bad rows stop the replay (reported in [`ReplayRun::stopped_at`]) unless
/// `skip_bad_rows`, in which case they are counted by reason and skipped.
pub fn replay<W: Write>(
    setup: &mut Setup,
    ticks: impl Iterator<Item = Result<Tick, RowError>>,
    skip_bad_rows: bool,
    out: &mut SignalWriter<W>,
    progress: &ProgressBar,
) -> io::Result<ReplayRun> {
    let Setup {
        engine,
        runner,
        batch_size,
        ..
    } = setup;
    let mut run = ReplayRun {
        ticks: 0,
        lines: 0,
        skipped: SkipReport::new(),
        wall: Duration::ZERO,
        latency: latency_histogram(),
        stopped_at: None,
    };
    let mut signals: Vec<EngineSignal> = Vec::with_capacity(engine.strategy_count());
    // Dispatch start of each tick whose signals wait for the next flush.
    let mut waiting: Vec<Instant> = Vec::new();
    let started = Instant::now();
    for item in ticks {
        let tick = match item {
            Ok(tick) => tick,
            Err(err) if err.is_io() => {
                return Err(io::Error::other(err.to_string()));
            }
            Err(err) if skip_bad_rows => {
                tracing::debug!(%err, "skipping bad row");
                run.skipped.record(&err);
                continue;
            }
            Err(err) => {
                run.stopped_at = Some(err);
                break;
            }
        };
        let seq = run.ticks;
        let t0 = Instant::now();
        engine.on_tick(seq, &tick, &mut signals);
        if engine.has_pending() {
            waiting.push(t0);
            if engine.pending_requests() >= *batch_size {
                engine.flush(runner, &mut signals);
                record_waiting(&mut run.latency, &mut waiting);
            }
        } else {
            run.latency
                .saturating_record(t0.elapsed().as_nanos() as u64);
        }
        run.ticks += 1;
        if engine.has_faults() {
            quiver_runtime::publish::log_faults(engine);
        }
        for signal in signals.drain(..) {
            run.lines += write_signal(engine, &signal, out)?;
        }
        if run.ticks.is_multiple_of(65_536) {
            progress.set_position(run.ticks);
        }
    }
    engine.flush(runner, &mut signals);
    record_waiting(&mut run.latency, &mut waiting);
    if engine.has_faults() {
        quiver_runtime::publish::log_faults(engine);
    }
    for signal in signals.drain(..) {
        run.lines += write_signal(engine, &signal, out)?;
    }
    out.flush()?;
    run.wall = started.elapsed();
    progress.finish_and_clear();
    Ok(run)
}

fn record_waiting(latency: &mut Histogram<u64>, waiting: &mut Vec<Instant>) {
    let now = Instant::now();
    for t0 in waiting.drain(..) {
        latency.saturating_record(now.duration_since(t0).as_nanos() as u64);
    }
}

/// Writes one line per broker of the signal's strategy; returns lines written.
fn write_signal<W: Write>(
    engine: &Engine,
    signal: &EngineSignal,
    out: &mut SignalWriter<W>,
) -> io::Result<u64> {
    let brokers = engine.brokers(signal.strategy);
    for broker in brokers {
        out.write(&quiver_runtime::publish::signal_record(
            engine, signal, broker, None,
        ))?;
    }
    Ok(brokers.len() as u64)
}

pub fn latency_histogram() -> Histogram<u64> {
    // 1 ns .. 60 s at 3 significant digits; creation cannot fail for these bounds.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant figures is valid"))
    })
}

/// A progress bar on an interactive terminal only, never in pipes or CI logs.
pub fn progress_bar(total: Option<u64>) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match total {
        Some(n) => {
            let bar = ProgressBar::new(n);
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} ticks ({per_sec}, eta {eta})")
            {
                bar.set_style(style);
            }
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {pos} ticks ({per_sec})") {
                bar.set_style(style);
            }
            bar
        }
    }
}

/// Whether two paths name one existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `quiver replay`.
pub fn replay_command(
    config_path: &Path,
    ticks_path: &Path,
    out: Option<&Path>,
    skip_bad_rows: bool,
    model_args: &ModelArgs,
) -> anyhow::Result<ExitCode> {
    if let Some(out) = out {
        for input in [ticks_path, config_path] {
            if same_file(out, input) {
                eprintln!(
                    "error: --out {} is an input of this replay; refusing to overwrite it",
                    out.display()
                );
                return Ok(ExitCode::from(EXIT_INVALID_INPUT));
            }
        }
    }
    let config = match quiver_config::load_config(config_path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return Ok(ExitCode::from(EXIT_INVALID_INPUT));
        }
    };
    let mut setup = match setup(config_path, &config, model_args)? {
        Ok(setup) => setup,
        Err(message) => {
            eprintln!("{message}");
            return Ok(ExitCode::from(EXIT_INVALID_INPUT));
        }
    };
    let ticks = match quiver_io::open_ticks(ticks_path) {
        Ok(reader) => reader,
        Err(err) => {
            eprintln!("{err}");
            return Ok(ExitCode::from(EXIT_INVALID_INPUT));
        }
    };
    let sink: Box<dyn Write> = match out {
        Some(path) => Box::new(BufWriter::with_capacity(
            1 << 16,
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 16, io::stdout().lock())),
    };
    let mut writer = SignalWriter::new(sink);
    let run = replay(
        &mut setup,
        ticks,
        skip_bad_rows,
        &mut writer,
        &progress_bar(None),
    )
    .context("writing signals")?;
    eprint!("{}", Summary::new("replay", &setup, &run));
    match run.stopped_at {
        Some(err) => {
            eprintln!("error: {err}");
            eprintln!(
                "stopped at the first bad row; --skip-bad-rows skips such rows and counts them"
            );
            Ok(ExitCode::from(EXIT_INVALID_INPUT))
        }
        None => Ok(ExitCode::SUCCESS),
    }
}
