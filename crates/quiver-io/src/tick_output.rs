//! A tick file (or partitioned directory) to write, its format chosen by
//! its path: `.csv`, `.jsonl`/`.ndjson`, `.parquet`, or — without an
//! extension — a directory of `<instrument>/YYYYMMDD.parquet` partitions.

use std::fs::File;
use std::io;
use std::path::Path;

use chrono_tz::Tz;
use quiver_core::Tick;

use crate::tick_writer::{TextFormat, TextTickWriter};
use crate::TickFormat;

/// Where converted or generated ticks go.
pub enum TickOutput {
    Text(TextTickWriter<File>),
    #[cfg(feature = "parquet")]
    Parquet(Box<crate::parquet::ParquetTickWriter<File>>),
    #[cfg(feature = "parquet")]
    Dataset(crate::parquet::DatasetWriter),
}

impl TickOutput {
    /// Creates `path` in the format its name says; `quotes` keeps a CSV's
    /// bid/ask columns, `tz` dates a directory's partitions.
    pub fn create(path: &Path, tz: Tz, quotes: bool) -> io::Result<TickOutput> {
        let create = || {
            File::create(path)
                .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", path.display())))
        };
        let format = match path.extension() {
            None => None,
            Some(_) => Some(TickFormat::from_path(path).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{}: unsupported tick file extension (expected .csv, .jsonl, .ndjson, .parquet, or no extension for a directory of Parquet partitions)",
                        path.display()
                    ),
                )
            })?),
        };
        Ok(match format {
            Some(TickFormat::Csv) => TickOutput::Text(TextTickWriter::new(
                create()?,
                if quotes {
                    TextFormat::CsvWithQuotes
                } else {
                    TextFormat::Csv
                },
            )?),
            Some(TickFormat::Jsonl) => {
                TickOutput::Text(TextTickWriter::new(create()?, TextFormat::Jsonl)?)
            }
            #[cfg(feature = "parquet")]
            Some(TickFormat::Parquet) => TickOutput::Parquet(Box::new(
                crate::parquet::ParquetTickWriter::new(create()?, false)?,
            )),
            #[cfg(feature = "parquet")]
            None => {
                let occupied = std::fs::read_dir(path).is_ok_and(|mut entries| {
                    entries
                        .any(|e| e.is_ok_and(|e| !e.file_name().to_string_lossy().starts_with('.')))
                });
                if occupied {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!(
                            "{} is not empty; partitions are written into a new or empty directory",
                            path.display()
                        ),
                    ));
                }
                TickOutput::Dataset(crate::parquet::DatasetWriter::new(path, tz, false)?)
            }
            #[cfg(not(feature = "parquet"))]
            _ => {
                let _ = tz;
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "this build has no Parquet support (quiver-io's `parquet` feature)",
                ));
            }
        })
    }

    pub fn push(&mut self, tick: &Tick) -> io::Result<()> {
        match self {
            TickOutput::Text(w) => w.push(tick),
            #[cfg(feature = "parquet")]
            TickOutput::Parquet(w) => w.push(tick, 0),
            #[cfg(feature = "parquet")]
            TickOutput::Dataset(w) => w.push(tick, 0),
        }
    }

    /// Finishes the output: (files written, ticks written).
    pub fn finish(self) -> io::Result<(u64, u64)> {
        match self {
            TickOutput::Text(w) => w.finish(),
            #[cfg(feature = "parquet")]
            TickOutput::Parquet(w) => {
                let rows = w.rows();
                let mut file = w.finish()?;
                io::Write::flush(&mut file)?;
                Ok((1, rows))
            }
            #[cfg(feature = "parquet")]
            TickOutput::Dataset(w) => w.finish(),
        }
    }
}
