//! Pushing a tick file into the tick streams (`quiver publish`).

use std::time::{Duration, Instant};

use quiver_core::Tick;
use redis::aio::ConnectionManager;

use super::classify;
use crate::live::{partition_of, partition_stream, LiveError};
use crate::RowError;

/// How to publish.
#[derive(Clone, Debug)]
pub struct PublishOptions {
    /// Base stream name (`market.ticks`).
    pub stream: String,
    pub partitions: u32,
    /// Ticks per second; `None` publishes as fast as the server takes them.
    pub rate: Option<f64>,
    /// Entries per pipelined round trip when not rate-limited.
    pub chunk: usize,
}

/// What was published.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishProgress {
    pub ticks: u64,
}

/// The `XADD` of one tick: the canonical fields, exact price text, and `seq`.
pub fn add_tick_command(stream: &str, tick: &Tick, seq: u64) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream)
        .arg("*")
        .arg("ts_ns")
        .arg(tick.ts_ns)
        .arg("instrument")
        .arg(tick.instrument)
        .arg("price")
        .arg(tick.price.to_string())
        .arg("volume")
        .arg(tick.volume);
    if let Some(bid) = tick.bid {
        cmd.arg("bid").arg(bid.to_string());
    }
    if let Some(ask) = tick.ask {
        cmd.arg("ask").arg(ask.to_string());
    }
    cmd.arg("seq").arg(seq);
    cmd
}

/// Publishes `ticks` in order, each to its instrument's partition stream,
/// with `seq` = the tick's 0-based index among the ticks read (bad rows stop
/// the publication with their file:line message, as `quiver replay` stops).
pub async fn publish_ticks(
    conn: &mut ConnectionManager,
    ticks: impl Iterator<Item = Result<Tick, RowError>>,
    options: &PublishOptions,
) -> Result<PublishProgress, LiveError> {
    let partitions = options.partitions.max(1);
    let streams: Vec<String> = (0..partitions)
        .map(|p| partition_stream(&options.stream, p, partitions))
        .collect();
    let rate = options.rate.filter(|r| r.is_finite() && *r > 0.0);
    // Rate-limited publication sends what is due every millisecond or so.
    let chunk = match rate {
        Some(rate) => ((rate / 1000.0).ceil() as usize).clamp(1, options.chunk.max(1)),
        None => options.chunk.max(1),
    };
    let started = Instant::now();
    let mut progress = PublishProgress::default();
    let mut pipe = redis::pipe();
    let mut in_pipe = 0usize;
    for tick in ticks {
        let tick = tick.map_err(|e| LiveError::fatal("reading ticks", e))?;
        let stream = &streams[partition_of(tick.instrument, partitions) as usize];
        pipe.add_command(add_tick_command(stream, &tick, progress.ticks))
            .ignore();
        in_pipe += 1;
        progress.ticks += 1;
        if in_pipe >= chunk {
            send(conn, &mut pipe).await?;
            in_pipe = 0;
            if let Some(rate) = rate {
                let due = started + Duration::from_secs_f64(progress.ticks as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
            }
        }
    }
    if in_pipe > 0 {
        send(conn, &mut pipe).await?;
    }
    Ok(progress)
}

async fn send(conn: &mut ConnectionManager, pipe: &mut redis::Pipeline) -> Result<(), LiveError> {
    pipe.query_async::<()>(conn)
        .await
        .map_err(|e| classify("XADD", &e))?;
    pipe.clear();
    Ok(())
}
