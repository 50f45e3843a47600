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
use quiver_io::{RowError, SignalWriter, SkipReport};

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

/// Engine entries for every enabled row of a validated config, in file order.
pub use quiver_runtime::service::engine_entries as entries;

/// Replays `ticks` through `engine`, writing every signal to `out`.
///
/// Bad rows stop the replay (reported in [`ReplayRun::stopped_at`]) unless
/// `skip_bad_rows`, in which case they are counted by reason and skipped.
pub fn replay<W: Write>(
    engine: &mut Engine,
    ticks: impl Iterator<Item = Result<Tick, RowError>>,
    skip_bad_rows: bool,
    out: &mut SignalWriter<W>,
    progress: &ProgressBar,
) -> io::Result<ReplayRun> {
    let mut run = ReplayRun {
        ticks: 0,
        lines: 0,
        skipped: SkipReport::new(),
        wall: Duration::ZERO,
        latency: latency_histogram(),
        stopped_at: None,
    };
    let mut signals: Vec<EngineSignal> = Vec::with_capacity(engine.strategy_count());
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
        let elapsed = t0.elapsed().as_nanos() as u64;
        run.latency.saturating_record(elapsed);
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
    out.flush()?;
    run.wall = started.elapsed();
    progress.finish_and_clear();
    Ok(run)
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
    let mut engine = Engine::new(entries(&config)).context("building the engine")?;
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
        &mut engine,
        ticks,
        skip_bad_rows,
        &mut writer,
        &progress_bar(None),
    )
    .context("writing signals")?;
    eprint!("{}", Summary::new("replay", &engine, &run));
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
