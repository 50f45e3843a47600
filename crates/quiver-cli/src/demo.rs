//! `quiver demo`: a synthetic trading day through the bundled example config.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use quiver_core::synthetic::{SyntheticSpec, DEFAULT_START_TS_NS};
use quiver_io::SignalWriter;
use quiver_runtime::backtest::{trades_file, write_report};

use crate::edge::{invalid, Failure, Outcome};
use crate::pipeline::{open_replay, progress_bar, ModelArgs};
use crate::summary::Summary;

/// The bundled config: rules, ML and hybrid strategies over 50 instruments.
pub const DEMO_CONFIG: &str = include_str!("../../../configs/demo.yaml");
pub const DEMO_CONFIG_NAME: &str = "configs/demo.yaml";
/// Where the config's relative `models:` path is resolved from: the
/// checkout's `configs/` (the demo's models live in its `models/`).
const DEMO_CONFIG_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/demo.yaml");
pub const DEFAULT_TICKS: u64 = 500_000;
const DEMO_INSTRUMENTS: u32 = 50;
const DEMO_SEED: u64 = 2026;
/// 09:15 to 15:30: one NSE session.
const SESSION_NS: u64 = 22_500 * 1_000_000_000;

pub fn run(out: Option<&Path>, report_dir: &Path, ticks: u64, models: &ModelArgs) -> Outcome {
    let config = quiver_config::parse_config(DEMO_CONFIG, DEMO_CONFIG_NAME)
        .context("the bundled demo config is invalid")?;
    eprintln!("demo config: {}", config.summary());
    let mut replay = open_replay(Path::new(DEMO_CONFIG_PATH), &config, DEMO_CONFIG, models).map_err(|err| match err {
        Failure::Invalid(message) => invalid(format!(
            "{message}\nthe demo's ML strategies need the models/ directory of a Quiver checkout (or --models REGISTRY)"
        )),
        other => other,
    })?;
    let engine = replay.engine();
    match replay.backend() {
        Some(quiver_infer::Backend::OnnxRuntime) => {
            eprintln!("ML backend: onnxruntime ({})", engine.models().join(", "))
        }
        Some(quiver_infer::Backend::Tract) => eprintln!(
            "ML backend: tract, pure Rust ({}); set ORT_DYLIB_PATH (scripts/fetch_onnxruntime.sh) for ONNX Runtime",
            engine.models().join(", ")
        ),
        None => {}
    }
    let spec = SyntheticSpec {
        start_ts_ns: DEFAULT_START_TS_NS,
        mean_gap_ns: SESSION_NS / ticks.max(1),
        ..SyntheticSpec::new(DEMO_INSTRUMENTS, ticks, DEMO_SEED)
    };
    eprintln!(
        "demo ticks: {} synthetic ticks over {} instruments (seed {}), one 09:15-15:30 session",
        ticks, DEMO_INSTRUMENTS, DEMO_SEED
    );
    let sink: Box<dyn Write> = match out {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(io::sink()),
    };
    let mut writer = SignalWriter::new(sink);
    let mut trades = trades_file(report_dir)
        .with_context(|| format!("creating the report directory {}", report_dir.display()))?;
    let bar = progress_bar(Some(ticks));
    let (run, desk) = replay
        .backtest(
            spec.iter().map(Ok),
            false,
            config.desk.clone(),
            &mut trades,
            Some(&mut writer),
            &mut |n| bar.set_position(n),
        )
        .context("writing demo signals")?;
    bar.finish_and_clear();
    eprint!("{}", Summary::new("demo", &replay, &run));
    if let Some(path) = out {
        eprintln!("signals written to {}", path.display());
    }
    let (report, html) = write_report(&desk, report_dir, "Quiver demo: one synthetic session")
        .with_context(|| format!("writing the report to {}", report_dir.display()))?;
    eprint!(
        "paper trading (configs/demo.yaml's paper:, risk: and costs:)\n{}",
        report.table()
    );
    eprintln!("report: {}", html.display());
    Ok(ExitCode::SUCCESS)
}

/// Where the demo's report goes unless `--report` says: the system's
/// temporary directory, so a demo run leaves the working directory alone.
pub fn default_report_dir() -> PathBuf {
    std::env::temp_dir().join("quiver-demo-report")
}
