//! A tick file replayed live, on its own timestamps, and signals as JSON Lines.

use std::io::Write;
use std::time::{Duration, Instant};

use quiver_core::Tick;

use super::{
    Ack, LiveError, LiveTick, NoAck, NoLag, Outcome, PublishReport, SignalBatch, SignalSink, Stop,
    TickBatch, TickSource,
};
use crate::TickReader;

/// Replays a tick file at `speed` times its own pace (`0` = as fast as the
/// engine goes). `seq` is the index of the tick in the file, as in
/// `quiver replay`, so the signals are identical.
///
/// The reader is a blocking iterator over a buffered file: reads are short
/// and the runtime has threads to spare, so it is not moved to a blocking pool.
pub struct ReplaySource {
    reader: TickReader,
    speed: f64,
    next_seq: u64,
    peeked: Option<Tick>,
    /// Wall time and tick time of the first tick: the pacing origin.
    origin: Option<(Instant, i64)>,
    done: bool,
}

impl ReplaySource {
    pub fn new(reader: TickReader, speed: f64) -> Self {
        ReplaySource {
            reader,
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                0.0
            },
            next_seq: 0,
            peeked: None,
            origin: None,
            done: false,
        }
    }

    /// The next tick; a bad row ends the replay with its file:line message,
    /// as `quiver replay` does.
    fn peek(&mut self) -> Result<Option<Tick>, LiveError> {
        if self.peeked.is_none() && !self.done {
            match self.reader.next() {
                Some(Ok(tick)) => self.peeked = Some(tick),
                Some(Err(err)) => {
                    self.done = true;
                    return Err(LiveError::fatal("replay", err));
                }
                None => self.done = true,
            }
        }
        Ok(self.peeked)
    }

    /// When `tick` is due, or `None` when pacing is off.
    fn due(&mut self, tick: &Tick) -> Option<Instant> {
        if self.speed == 0.0 {
            return None;
        }
        let (wall, ts0) = *self.origin.get_or_insert((Instant::now(), tick.ts_ns));
        let offset_ns = (tick.ts_ns.saturating_sub(ts0)).max(0) as f64 / self.speed;
        Some(wall + Duration::from_nanos(offset_ns as u64))
    }
}

impl TickSource for ReplaySource {
    type Acker = NoAck;
    type Probe = NoLag;

    fn describe(&self) -> String {
        if self.speed == 0.0 {
            format!("replay of {} (unpaced)", self.reader.name())
        } else {
            format!("replay of {} at {}x", self.reader.name(), self.speed)
        }
    }

    async fn acker(&mut self) -> Result<NoAck, LiveError> {
        Ok(NoAck)
    }

    async fn lag_probe(&mut self) -> Result<Option<NoLag>, LiveError> {
        Ok(None)
    }

    async fn next_batch(
        &mut self,
        max: usize,
        stop: &mut Stop,
    ) -> Result<Option<TickBatch>, LiveError> {
        let mut ticks = Vec::with_capacity(max.min(1024));
        while ticks.len() < max.max(1) {
            if stop.is_stopped() {
                break;
            }
            let Some(tick) = self.peek()? else { break };
            if let Some(due) = self.due(&tick) {
                if due > Instant::now() {
                    if !ticks.is_empty() {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep_until(due.into()) => {}
                        _ = stop.stopped() => break,
                    }
                }
            }
            self.peeked = None;
            ticks.push(LiveTick::new(tick, self.next_seq));
            self.next_seq += 1;
        }
        if ticks.is_empty() {
            return Ok(None);
        }
        Ok(Some(TickBatch {
            ticks,
            rejected: Vec::new(),
            ack: Ack::default(),
            arrived: Instant::now(),
        }))
    }
}

/// Writes each signal as one JSON line (the `quiver replay` format) to a file
/// or standard output, flushing after every batch so a reader of the pipe
/// sees signals as they happen. Dead letters are logged, since a line-per-
/// signal file has no place for them.
pub struct JsonlSink {
    name: String,
    out: std::io::BufWriter<Box<dyn Write + Send>>,
}

impl JsonlSink {
    pub fn new(name: impl Into<String>, out: Box<dyn Write + Send>) -> Self {
        JsonlSink {
            name: name.into(),
            out: std::io::BufWriter::with_capacity(1 << 16, out),
        }
    }

    pub fn stdout() -> Self {
        JsonlSink::new("standard output", Box::new(std::io::stdout()))
    }
}

impl SignalSink for JsonlSink {
    fn describe(&self) -> String {
        format!("JSON lines to {}", self.name)
    }

    async fn publish(&mut self, batch: &SignalBatch) -> Result<PublishReport, LiveError> {
        let io = |e: std::io::Error| LiveError::fatal("writing signals", e);
        let mut outcomes = Vec::with_capacity(batch.signals.len());
        for signal in &batch.signals {
            if let Some(reason) = &signal.withheld {
                // A file has no dead-letter stream: the log keeps it.
                tracing::warn!(
                    payload = %String::from_utf8_lossy(batch.payload(signal)),
                    "dead letter: {reason}"
                );
                outcomes.push(Outcome::Withheld);
                continue;
            }
            self.out.write_all(batch.payload(signal)).map_err(io)?;
            self.out.write_all(b"\n").map_err(io)?;
            outcomes.push(Outcome::Published);
        }
        self.out.flush().map_err(io)?;
        for letter in &batch.dead_letters {
            tracing::warn!(
                category = letter.category,
                origin = %letter.origin,
                payload = %letter.payload,
                "dead letter: {}",
                letter.reason
            );
        }
        Ok(PublishReport {
            outcomes,
            dead_letters_written: batch.dead_letters.len() as u64,
            refusals: Vec::new(),
        })
    }

    async fn flush(&mut self) -> Result<(), LiveError> {
        self.out
            .flush()
            .map_err(|e| LiveError::fatal("flushing signals", e))
    }
}
