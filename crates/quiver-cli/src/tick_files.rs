//! Tick files at the command line: which ticks a run reads (`--from`,
//! `--to`, `--instruments`, `--timezone`), `quiver convert` between
//! formats, and `quiver gen`'s output.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use chrono::NaiveDate;
use chrono_tz::Tz;
use quiver_io::{TickOutput, TickReader, TickSelection};

use crate::edge::{invalid, Failure, Outcome};

/// The ticks of `--ticks` a run keeps.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct SelectArgs {
    /// Only ticks on or after this date (YYYY-MM-DD in --timezone); a directory of Parquet
    /// partitions opens only the partitions from it on.
    #[arg(long, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// Only ticks on or before this date (YYYY-MM-DD in --timezone).
    #[arg(long, value_name = "DATE")]
    pub to: Option<NaiveDate>,
    /// Only these instrument tokens (comma-separated, or repeat the flag).
    #[arg(long = "instruments", value_name = "TOKENS", value_delimiter = ',')]
    pub instruments: Vec<u64>,
    /// The time zone of --from/--to and of the partition dates written (default: the
    /// session's, quiver.session.timezone's default).
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
}

/// The session's default zone: partitions are dated in exchange time.
pub fn default_timezone() -> String {
    quiver_runtime::settings::SessionSettings::default().timezone
}

pub fn parse_timezone(text: Option<&str>) -> Result<Tz, Failure> {
    let text = text.map_or_else(default_timezone, str::to_owned);
    text.parse::<Tz>().map_err(|_| {
        invalid(format!(
            "error: --timezone {text:?} is not an IANA time zone"
        ))
    })
}

impl SelectArgs {
    pub fn selection(&self) -> Result<TickSelection, Failure> {
        let tz = parse_timezone(self.timezone.as_deref())?;
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from > to {
                return Err(invalid(format!(
                    "error: --from {from} is after --to {to}; the range would be empty"
                )));
            }
        }
        Ok(TickSelection {
            from: self.from,
            to: self.to,
            instruments: (!self.instruments.is_empty()).then(|| self.instruments.clone()),
            tz,
        })
    }
}

/// Opens `--ticks` keeping what `select` keeps.
pub fn open(path: &Path, select: &SelectArgs) -> Result<TickReader, Failure> {
    let selection = select.selection()?;
    quiver_io::open_ticks_selected(path, &selection).map_err(invalid)
}

#[derive(clap::Args)]
pub struct ConvertArgs {
    /// The ticks to convert: .csv, .jsonl, .parquet, or a directory of Parquet partitions.
    #[arg(long)]
    pub ticks: PathBuf,
    /// Where to write them: .csv, .jsonl, .parquet, or a path without an extension for a
    /// directory of `<instrument>/YYYYMMDD.parquet` partitions (dates in --timezone).
    #[arg(long)]
    pub out: PathBuf,
    /// Skip malformed rows (and report them by reason) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
    #[command(flatten)]
    pub select: SelectArgs,
}

pub fn convert(args: &ConvertArgs) -> Outcome {
    if crate::pipeline::same_file(&args.out, &args.ticks) || args.out == args.ticks {
        return Err(invalid(format!(
            "error: --out {} is the input; refusing to overwrite it",
            args.out.display()
        )));
    }
    let tz = parse_timezone(args.select.timezone.as_deref())?;
    let reader = open(&args.ticks, &args.select)?;
    let started = Instant::now();
    let mut out = TickOutput::create(&args.out, tz, true).map_err(invalid)?;
    let mut skipped = quiver_io::SkipReport::new();
    for row in reader {
        match row {
            Ok(tick) => out
                .push(&tick)
                .with_context(|| format!("writing {}", args.out.display()))?,
            Err(err) if args.skip_bad_rows && !err.ends_reading() => skipped.record(&err),
            Err(err) => {
                return Err(invalid(format!(
                    "error: {err}\n{} is incomplete{}",
                    args.out.display(),
                    if err.ends_reading() {
                        ""
                    } else {
                        "; --skip-bad-rows skips such rows and counts them"
                    }
                )))
            }
        }
    }
    let (files, ticks) = out
        .finish()
        .with_context(|| format!("finishing {}", args.out.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "converted {ticks} ticks from {} to {} ({files} file{}) in {seconds:.2} s{}",
        args.ticks.display(),
        args.out.display(),
        if files == 1 { "" } else { "s" },
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; skipped {} bad rows", skipped.total())
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `quiver gen`'s output formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GenFormat {
    #[default]
    Csv,
    Jsonl,
    /// One .parquet file, or (when --out has no extension) a partitioned directory.
    Parquet,
}

pub fn gen(
    instruments: u32,
    ticks: u64,
    seed: u64,
    out: &Path,
    format: GenFormat,
    timezone: Option<&str>,
) -> Outcome {
    let spec = quiver_core::synthetic::SyntheticSpec::new(instruments, ticks, seed);
    let tz = parse_timezone(timezone)?;
    let written = match format {
        GenFormat::Csv => {
            let file = std::fs::File::create(out)
                .with_context(|| format!("creating {}", out.display()))?;
            quiver_io::write_ticks_csv(spec.iter(), std::io::BufWriter::new(file))
                .with_context(|| format!("writing {}", out.display()))?
        }
        GenFormat::Jsonl | GenFormat::Parquet => {
            let extension = out.extension().and_then(|e| e.to_str());
            let fits = match format {
                GenFormat::Jsonl => matches!(extension, Some("jsonl" | "ndjson")),
                _ => matches!(extension, Some("parquet") | None),
            };
            if !fits {
                return Err(invalid(format!(
                    "error: --out {} does not name a {} output (use {})",
                    out.display(),
                    if format == GenFormat::Jsonl {
                        "JSON Lines"
                    } else {
                        "Parquet"
                    },
                    if format == GenFormat::Jsonl {
                        ".jsonl or .ndjson"
                    } else {
                        ".parquet, or no extension for a directory of partitions"
                    }
                )));
            }
            let mut writer = TickOutput::create(out, tz, false).map_err(invalid)?;
            for tick in spec.iter() {
                writer
                    .push(&tick)
                    .with_context(|| format!("writing {}", out.display()))?;
            }
            writer
                .finish()
                .with_context(|| format!("finishing {}", out.display()))?
                .1
        }
    };
    eprintln!(
        "wrote {written} ticks for {instruments} instruments (seed {seed}) to {}",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
