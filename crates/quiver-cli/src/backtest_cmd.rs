//! `quiver backtest`: arguments and printing; [`quiver_runtime::backtest`]
//! and [`quiver_paper`] do the work.

use std::io;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use quiver_io::SignalWriter;
use quiver_runtime::backtest::{trades_file, write_report, REPORT_FILES};

use crate::edge::{invalid, Outcome};
use crate::pipeline::{open_replay, progress_bar, ModelArgs};
use crate::summary::Summary;

pub fn run(
    config_path: &Path,
    ticks_path: &Path,
    select: &crate::tick_files::SelectArgs,
    out_dir: &Path,
    skip_bad_rows: bool,
    model_args: &ModelArgs,
) -> Outcome {
    if out_dir.is_file() {
        return Err(invalid(format!(
            "error: --out {} is a file; the report is a directory of {} files",
            out_dir.display(),
            REPORT_FILES.len()
        )));
    }
    let (config, config_path, text) = crate::db_cmd::load_config_text(config_path)?;
    let mut replay = open_replay(&config_path, &config, &text, model_args)?;
    let ticks = crate::tick_files::open(ticks_path, select)?;
    let mut trades = trades_file(out_dir)
        .with_context(|| format!("creating the report directory {}", out_dir.display()))?;
    let bar = progress_bar(None);
    let (run, desk) = replay
        .backtest(
            ticks,
            skip_bad_rows,
            config.desk.clone(),
            &mut trades,
            None::<&mut SignalWriter<io::Sink>>,
            &mut |n| bar.set_position(n),
        )
        .context("backtesting")?;
    bar.finish_and_clear();
    eprint!("{}", Summary::new("backtest", &replay, &run));
    if let Some(err) = run.stopped_at {
        return Err(invalid(format!(
            "error: {err}\nstopped at the first bad row; --skip-bad-rows skips such rows and counts them"
        )));
    }
    let title = format!(
        "Backtest of {} on {}",
        config_path.display(),
        ticks_path.display()
    );
    let (report, html) = write_report(&desk, out_dir, &title)
        .with_context(|| format!("writing the report to {}", out_dir.display()))?;
    print!("{}", report.table());
    eprintln!(
        "report: {} ({} in {})",
        html.display(),
        REPORT_FILES.join(", "),
        out_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
