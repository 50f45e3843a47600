//! `quiver run --record DIR` (`quiver.record`): every inbound tick, in the
//! order the engine takes them, written as Parquet partitions
//! (`DIR/<instrument>/YYYYMMDD.parquet`, dates in the session's time zone)
//! with its `seq`, so `quiver replay --ticks DIR` replays the session.
//!
//! The engine thread hands each batch's ticks over a channel and goes on;
//! a thread of the recorder's own writes them, and at least every second
//! makes every partition readable up to the last tick it received (a row
//! group and a footer: [`quiver_io::parquet::ParquetTickWriter::checkpoint`]),
//! so a crash loses at most the last second. Shutdown finishes every file.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono_tz::Tz;
use quiver_core::Tick;
use quiver_io::parquet::DatasetWriter;

/// The longest a received tick waits before its partition is readable.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Batches the engine thread may run ahead of the writer by; beyond it,
/// the engine waits rather than the recording drop ticks.
const QUEUE_BATCHES: usize = 1024;

/// The recorder's half on the engine thread.
pub struct Recorder {
    to_writer: Option<mpsc::SyncSender<Vec<(u64, Tick)>>>,
    writer: Option<JoinHandle<std::io::Result<(u64, u64)>>>,
    dir: PathBuf,
}

impl Recorder {
    /// Starts recording into `dir` (created when missing; a partition
    /// already there gets a next part).
    pub fn start(dir: &Path, tz: Tz) -> std::io::Result<Recorder> {
        let mut dataset = DatasetWriter::new(dir, tz, true)?;
        let (to_writer, from_engine) = mpsc::sync_channel::<Vec<(u64, Tick)>>(QUEUE_BATCHES);
        let writer = std::thread::Builder::new()
            .name("quiver-record".to_owned())
            .spawn(move || {
                let mut next_checkpoint = Instant::now() + CHECKPOINT_EVERY;
                loop {
                    let wait = next_checkpoint.saturating_duration_since(Instant::now());
                    match from_engine.recv_timeout(wait) {
                        Ok(batch) => {
                            for (seq, tick) in &batch {
                                dataset.push(tick, *seq)?;
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                    if Instant::now() >= next_checkpoint {
                        dataset.checkpoint()?;
                        next_checkpoint = Instant::now() + CHECKPOINT_EVERY;
                    }
                }
                dataset.finish()
            })?;
        Ok(Recorder {
            to_writer: Some(to_writer),
            writer: Some(writer),
            dir: dir.to_owned(),
        })
    }

    /// Hands over a batch's ticks (as received: before the session gate).
    /// A writer that failed stops the recording; the failure is reported
    /// at [`Recorder::finish`].
    pub fn record(&mut self, ticks: impl Iterator<Item = (u64, Tick)>) {
        if let Some(to_writer) = &self.to_writer {
            let batch: Vec<(u64, Tick)> = ticks.collect();
            if batch.is_empty() {
                return;
            }
            if to_writer.send(batch).is_err() {
                self.to_writer = None;
            }
        }
    }

    /// Finishes every partition; (files, ticks) written.
    pub fn finish(mut self) -> std::io::Result<(u64, u64)> {
        self.to_writer = None;
        match self.writer.take() {
            Some(writer) => writer
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the recording thread panicked"))),
            None => Ok((0, 0)),
        }
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("recording into {}: {e}", self.dir.display()),
            )
        })
    }
}
