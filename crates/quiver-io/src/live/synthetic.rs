//! A live random-walk generator: the demo source that needs no server.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quiver_core::synthetic::{SyntheticSpec, SyntheticTicks};

use super::{Ack, LiveError, LiveTick, NoAck, NoLag, Stop, TickBatch, TickSource};

/// Emits the seeded random walk of [`SyntheticSpec`] at `rate` ticks per
/// second, stamped with the wall clock (strictly increasing), for ever — or,
/// [`generated`](SyntheticSource::generated), a finite spec on its own
/// timestamps.
///
/// Prices and instruments are deterministic for a seed; timestamps are not,
/// since a live source's ticks happen now.
pub struct SyntheticSource {
    ticks: SyntheticTicks,
    instruments: u32,
    rate: f64,
    /// Keep the generator's own timestamps instead of the wall clock.
    generated_time: bool,
    started: Option<Instant>,
    emitted: u64,
    last_ts: i64,
}

impl SyntheticSource {
    /// `rate` ≤ 0 emits as fast as the engine consumes.
    pub fn new(instruments: u32, seed: u64, rate: f64) -> Self {
        let mut source =
            SyntheticSource::generated(SyntheticSpec::new(instruments, u64::MAX, seed), rate);
        source.generated_time = false;
        source
    }

    /// The ticks of `spec`, timestamps included, paced at `rate` ticks per
    /// second, and then the end: the same ticks as `quiver gen` writes for
    /// `spec`, so a live run on it can be compared with a replay byte for
    /// byte.
    pub fn generated(spec: SyntheticSpec, rate: f64) -> Self {
        SyntheticSource {
            instruments: spec.instruments,
            ticks: spec.iter(),
            rate: if rate.is_finite() && rate > 0.0 {
                rate
            } else {
                0.0
            },
            generated_time: true,
            started: None,
            emitted: 0,
            last_ts: 0,
        }
    }

    fn now_ns(&mut self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.last_ts = now.max(self.last_ts + 1);
        self.last_ts
    }
}

impl TickSource for SyntheticSource {
    type Acker = NoAck;
    type Probe = NoLag;

    fn describe(&self) -> String {
        format!(
            "synthetic random walk over {} instruments at {} ticks/s",
            self.instruments,
            if self.rate == 0.0 {
                "unlimited".to_owned()
            } else {
                self.rate.to_string()
            }
        )
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
        let started = *self.started.get_or_insert_with(Instant::now);
        let max = max.max(1) as u64;
        let count = if self.rate == 0.0 {
            max
        } else {
            loop {
                // Ticks due by now that have not been emitted yet.
                let due = (started.elapsed().as_secs_f64() * self.rate) as u64;
                if due > self.emitted {
                    break (due - self.emitted).min(max);
                }
                let next_at =
                    started + Duration::from_secs_f64((self.emitted + 1) as f64 / self.rate);
                tokio::select! {
                    _ = tokio::time::sleep_until(next_at.into()) => {}
                    _ = stop.stopped() => return Ok(None),
                }
            }
        };
        if stop.is_stopped() {
            return Ok(None);
        }
        let mut ticks = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let Some(mut tick) = self.ticks.next() else {
                break;
            };
            if !self.generated_time {
                tick.ts_ns = self.now_ns();
            }
            ticks.push(LiveTick::new(tick, self.emitted));
            self.emitted += 1;
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
