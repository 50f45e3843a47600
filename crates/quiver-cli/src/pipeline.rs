//! `quiver replay`: arguments, then [`quiver_runtime::replay`] does the work.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use quiver_infer::BackendChoice;
use quiver_io::SignalWriter;
use quiver_runtime::replay::{Replay, ReplayOptions, ShardCount, CALL_ROWS};

use crate::edge::{invalid, Outcome};
use crate::summary::Summary;

/// An inference backend, as `--backend` names it.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum BackendArg {
    /// ONNX Runtime when its library loads, else tract.
    Auto,
    /// ONNX Runtime only.
    #[value(alias = "ort")]
    Onnxruntime,
    /// tract, pure Rust (tree ensembles are refused).
    Tract,
}

impl From<BackendArg> for BackendChoice {
    fn from(arg: BackendArg) -> BackendChoice {
        match arg {
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Onnxruntime => BackendChoice::OnnxRuntime,
            BackendArg::Tract => BackendChoice::Tract,
        }
    }
}

/// How a replay runs: its engines and its ML strategies' models.
#[derive(clap::Args, Clone, Debug)]
pub struct ModelArgs {
    /// Engines the instruments are split over, each on a thread of its own; default: one per
    /// core (one when a strategy limits rates or exposure over all its instruments, or with
    /// --reload-at). Any count gives the same signals.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub shards: Option<u64>,
    /// Model registry; default: the config's `models:` section.
    #[arg(long = "models")]
    pub registry: Option<std::path::PathBuf>,
    /// Inference backend.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    /// Model requests collected (over consecutive ticks) before one batched inference.
    /// Any value gives the same signals.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
    /// Rows per model call on ONNX Runtime (every call padded to it; tract runs row by row).
    /// Signals are identical across --batch-size values only at the same --call-rows.
    #[arg(long, default_value_t = CALL_ROWS as u64, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub call_rows: u64,
    /// Deadline of every model call, in milliseconds, for models whose registry entry sets no
    /// deadline_ms. A model over it is out of service for the rest of the run.
    #[arg(long, default_value_t = DEFAULT_DEADLINE_MS, value_parser = clap::value_parser!(u64).range(1..=MAX_DEADLINE_MS))]
    pub inference_deadline_ms: u64,
}

/// [`quiver_infer::DEFAULT_DEADLINE`] in milliseconds.
pub const DEFAULT_DEADLINE_MS: u64 = quiver_infer::DEFAULT_DEADLINE.as_millis() as u64;
/// [`quiver_infer::MAX_DEADLINE`] in milliseconds.
pub const MAX_DEADLINE_MS: u64 = quiver_infer::MAX_DEADLINE.as_millis() as u64;

impl ModelArgs {
    pub fn options(&self) -> ReplayOptions {
        ReplayOptions {
            registry: self.registry.clone(),
            backend: self.backend.into(),
            batch_size: usize::try_from(self.batch_size).unwrap_or(usize::MAX),
            call_rows: usize::try_from(self.call_rows).unwrap_or(CALL_ROWS),
            deadline: std::time::Duration::from_millis(self.inference_deadline_ms),
            shards: match self.shards {
                Some(n) => ShardCount::Exactly(usize::try_from(n).unwrap_or(1)),
                None => ShardCount::cores(),
            },
        }
    }
}

/// What a replay applies at given ticks.
pub struct Schedules {
    pub shed_at: Vec<(u64, quiver_engine::Shed)>,
    pub reload_at: Vec<(u64, PathBuf)>,
}

/// `SEQ=VALUE` of a schedule flag: the tick number and the value's text;
/// `form` is the flag's form with an example, for the message.
fn split_at_seq<'t>(text: &'t str, form: &str) -> Result<(u64, &'t str), String> {
    let (seq, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected {form}"))?;
    let seq = seq
        .trim()
        .parse()
        .map_err(|_| format!("{seq:?} is not a tick sequence number"))?;
    Ok((seq, value))
}

/// `--reload-at SEQ=FILE`.
pub fn parse_reload_at(text: &str) -> Result<(u64, PathBuf), String> {
    let (seq, file) = split_at_seq(text, "SEQ=FILE, e.g. 1000=strategies.yaml")?;
    if file.is_empty() {
        return Err(format!("{text:?}: no file after '='"));
    }
    Ok((seq, PathBuf::from(file)))
}

/// `--shed-at SEQ=LEVEL`: from tick SEQ on, shed `none`, `background` or
/// `normal` (all but critical).
pub fn parse_shed_at(text: &str) -> Result<(u64, quiver_engine::Shed), String> {
    use quiver_engine::Shed;
    let (seq, level) = split_at_seq(text, "SEQ=LEVEL, e.g. 1000=background")?;
    let level = match level.trim() {
        "none" => Shed::Nothing,
        "background" => Shed::Background,
        "normal" => Shed::AllButCritical,
        other => {
            return Err(format!(
                "{other:?} is not a shed level (expected none, background or normal)"
            ))
        }
    };
    Ok((seq, level))
}

/// A progress bar on an interactive terminal only, never in pipes or CI logs.
pub fn progress_bar(total: Option<u64>) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match total {
        Some(n) => (
            ProgressBar::new(n),
            "{bar:40} {pos}/{len} ticks ({per_sec}, eta {eta})",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} {pos} ticks ({per_sec})",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// Whether two paths name one existing file.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `quiver replay`.
pub fn replay_command(
    config_path: &Path,
    ticks_path: &Path,
    select: &crate::tick_files::SelectArgs,
    out: Option<&Path>,
    skip_bad_rows: bool,
    schedules: Schedules,
    model_args: &ModelArgs,
) -> Outcome {
    if let Some(out) = out {
        for input in [ticks_path, config_path] {
            if same_file(out, input) {
                return Err(invalid(format!(
                    "error: --out {} is an input of this replay; refusing to overwrite it",
                    out.display()
                )));
            }
        }
    }
    let (config, config_path, text) = crate::db_cmd::load_config_text(config_path)?;
    let config_path = config_path.as_path();
    let mut model_args = model_args.clone();
    if !schedules.reload_at.is_empty() && model_args.shards.is_none() {
        // Swapping sets is one engine's job.
        model_args.shards = Some(1);
    }
    let mut replay = open_replay(config_path, &config, &text, &model_args)?;
    replay.shed_at(schedules.shed_at);
    replay
        .reload_at(schedules.reload_at)
        .map_err(|err| invalid(format!("error: {err}")))?;
    let ticks = crate::tick_files::open(ticks_path, select)?;
    let sink: Box<dyn Write> = match out {
        Some(path) => Box::new(BufWriter::with_capacity(
            1 << 16,
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 16, io::stdout().lock())),
    };
    let mut writer = SignalWriter::new(sink);
    let bar = progress_bar(None);
    let run = replay
        .run(ticks, skip_bad_rows, &mut writer, &mut |n| {
            bar.set_position(n)
        })
        .context("writing signals")?;
    bar.finish_and_clear();
    eprint!("{}", Summary::new("replay", &replay, &run));
    match run.stopped_at {
        Some(err) => Err(invalid(format!(
            "error: {err}\nstopped at the first bad row; --skip-bad-rows skips such rows and counts them"
        ))),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// The replay of `config`; an invalid registry or a strategy naming an
/// unknown model is the user's input.
pub fn open_replay(
    config_path: &Path,
    config: &quiver_config::Config,
    text: &str,
    model_args: &ModelArgs,
) -> Result<Replay, crate::edge::Failure> {
    use quiver_runtime::replay::ReplayError;
    Replay::open(config_path, config, text, &model_args.options()).map_err(|err| match err {
        ReplayError::Models(err) => invalid(err),
        ReplayError::Shards(why) => invalid(format!("error: {why}")),
        err @ ReplayError::Engine(_) => anyhow::Error::new(err).into(),
    })
}
