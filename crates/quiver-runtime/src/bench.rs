//! The live benchmark (`quiver bench-redis`): end-to-end ticks/s and tick
//! XADD → signal visible latency through a real Redis, next to Redis's own
//! ceiling for the same tick traffic, measured in the same run.
//!
//! Not a test: it measures and reports, it asserts nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram as Hdr;
use quiver_core::Tick;
use quiver_engine::scenario::Scenario;
use quiver_io::live::{partition_stream, Stop};
use quiver_io::redis::{add_tick_command, connect, RedisSignalSink, RedisTickSource};
use redis::Value;

use crate::service::{RuntimeError, Service};
use crate::settings::Settings;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub url: String,
    /// Prefix of every key the bench creates (deleted at the end).
    pub prefix: String,
    pub scenario: Scenario,
    /// The moderate rate, ticks/s.
    pub rate: f64,
    pub moderate_ticks: u64,
    pub saturation_ticks: u64,
}

/// One measured phase.
#[derive(Clone, Debug)]
pub struct PhaseReport {
    pub name: String,
    pub ticks: u64,
    pub signals: u64,
    /// Ticks fully processed (published and acknowledged) per second.
    pub ticks_per_s: f64,
    /// Tick XADD → its signal readable from the broker stream, ms.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Clone, Debug)]
pub struct BenchReport {
    /// Raw XADD (pipelined) + XREADGROUP + XACK loop, no engine: ticks/s.
    pub ceiling_ticks_per_s: f64,
    pub phases: Vec<PhaseReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("{0}")]
    Live(#[from] quiver_io::live::LiveError),
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
    #[error("{0}")]
    Stalled(String),
}

pub async fn run(options: &BenchOptions) -> Result<BenchReport, BenchError> {
    let ticks: Vec<Tick> = Scenario {
        ticks: options.moderate_ticks.max(options.saturation_ticks),
        ..options.scenario
    }
    .ticks()
    .iter()
    .collect();
    let ceiling = ceiling(options, &ticks[..options.saturation_ticks as usize]).await?;
    let moderate = phase(
        options,
        "moderate",
        &ticks[..options.moderate_ticks as usize],
        Some(options.rate),
    )
    .await?;
    let saturation = phase(
        options,
        "saturation",
        &ticks[..options.saturation_ticks as usize],
        None,
    )
    .await?;
    cleanup(options).await?;
    Ok(BenchReport {
        ceiling_ticks_per_s: ceiling,
        phases: vec![moderate, saturation],
    })
}

/// Redis alone: a publisher pipelines XADDs while a consumer reads them with
/// XREADGROUP and acknowledges them, as the runner does, without the engine.
async fn ceiling(options: &BenchOptions, ticks: &[Tick]) -> Result<f64, BenchError> {
    let stream = format!("{}.ceiling.ticks", options.prefix);
    let mut admin = connect(&options.url, Duration::from_secs(10)).await?;
    let _: Value = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("g")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut admin)
        .await?;
    let started = Instant::now();
    let publisher = {
        let mut conn = connect(&options.url, Duration::from_secs(10)).await?;
        let ticks = ticks.to_vec();
        let stream = stream.clone();
        tokio::spawn(async move {
            for (chunk_no, chunk) in ticks.chunks(256).enumerate() {
                let mut pipe = redis::pipe();
                for (i, tick) in chunk.iter().enumerate() {
                    pipe.add_command(add_tick_command(&stream, tick, (chunk_no * 256 + i) as u64))
                        .ignore();
                }
                pipe.query_async::<()>(&mut conn).await?;
            }
            Ok::<(), redis::RedisError>(())
        })
    };
    let mut reader = connect(&options.url, Duration::from_secs(10)).await?;
    let mut read = 0usize;
    while read < ticks.len() {
        let reply: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("c")
            .arg("COUNT")
            .arg(256)
            .arg("BLOCK")
            .arg(1000)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(&mut reader)
            .await?;
        let ids = entry_ids(&reply);
        if ids.is_empty() && started.elapsed() > Duration::from_secs(120) {
            return Err(BenchError::Stalled("ceiling loop read nothing".to_owned()));
        }
        read += ids.len();
        if !ids.is_empty() {
            let _: Value = redis::cmd("XACK")
                .arg(&stream)
                .arg("g")
                .arg(&ids)
                .query_async(&mut reader)
                .await?;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    publisher
        .await
        .map_err(|e| BenchError::Stalled(e.to_string()))??;
    Ok(ticks.len() as f64 / wall)
}

fn entry_ids(reply: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    if let Value::Array(streams) = reply {
        for s in streams {
            if let Value::Array(kv) = s {
                if let Some(Value::Array(entries)) = kv.get(1) {
                    for e in entries {
                        if let Value::Array(parts) = e {
                            if let Some(Value::BulkString(id)) = parts.first() {
                                ids.push(String::from_utf8_lossy(id).into_owned());
                            }
                        }
                    }
                }
            }
        }
    }
    ids
}

/// The runner on the standard scenario: ticks published at `rate` (or as
/// fast as possible), signals read back as they appear.
async fn phase(
    options: &BenchOptions,
    name: &str,
    ticks: &[Tick],
    rate: Option<f64>,
) -> Result<PhaseReport, BenchError> {
    let prefix = format!("{}.{name}", options.prefix);
    let mut settings = Settings::default();
    settings.quiver.redis_url = options.url.clone();
    settings.quiver.redis.stream = format!("{prefix}.ticks");
    settings.quiver.redis.signal_stream_prefix = format!("{prefix}.signals.");
    settings.quiver.redis.dead_letter_stream = format!("{prefix}.dlq");
    settings.quiver.redis.dedup_key_prefix = format!("{prefix}:published:");
    settings.quiver.redis.dedup_ttl_s = 600;
    settings.quiver.redis.block_ms = 50;
    settings.quiver.batch_size = 512;
    settings.quiver.strategy_timing_every = 16;
    let service = Service::from_entries(options.scenario.entries(), settings.clone())?;
    let telemetry = service.telemetry();
    let source = RedisTickSource::connect(settings.redis_source_config()).await?;
    let sink = RedisSignalSink::connect(settings.redis_sink_config()).await?;
    let (stop_switch, stop) = Stop::new();
    let runner = tokio::spawn(service.run(source, sink, stop));

    // Send times, ns since `epoch`, by seq.
    let epoch = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..ticks.len()).map(|_| AtomicU64::new(0)).collect());
    let signal_stream = format!("{prefix}.signals.paper");
    let reader = {
        let mut conn = connect(&options.url, Duration::from_secs(10)).await?;
        let sent = Arc::clone(&sent);
        let mut stop = stop_switch.subscribe();
        tokio::spawn(async move {
            let mut latency = Hdr::<u64>::new_with_bounds(1_000, 120_000_000_000, 3)
                .map_err(|e| BenchError::Stalled(e.to_string()))?;
            let mut last = "0-0".to_owned();
            let mut seen = 0u64;
            loop {
                let reply: Value = redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(1000)
                    .arg("BLOCK")
                    .arg(50)
                    .arg("STREAMS")
                    .arg(&signal_stream)
                    .arg(&last)
                    .query_async(&mut conn)
                    .await?;
                let now = epoch.elapsed().as_nanos() as u64;
                if let Value::Array(streams) = &reply {
                    for s in streams {
                        let Value::Array(kv) = s else { continue };
                        let Some(Value::Array(entries)) = kv.get(1) else {
                            continue;
                        };
                        for e in entries {
                            let Value::Array(parts) = e else { continue };
                            if let Some(Value::BulkString(id)) = parts.first() {
                                last = String::from_utf8_lossy(id).into_owned();
                            }
                            if let Some(seq) = parts.get(1).and_then(seq_of_entry) {
                                if let Some(at) = sent.get(seq as usize) {
                                    let at = at.load(Ordering::Relaxed);
                                    latency.saturating_record(now.saturating_sub(at).max(1_000));
                                    seen += 1;
                                }
                            }
                        }
                    }
                }
                if *stop.borrow_and_update() && matches!(reply, Value::Nil) {
                    break;
                }
            }
            Ok::<_, BenchError>((latency, seen))
        })
    };

    let started = Instant::now();
    let mut conn = connect(&options.url, Duration::from_secs(10)).await?;
    let stream = partition_stream(&settings.quiver.redis.stream, 0, 1);
    let chunk = match rate {
        Some(rate) => ((rate / 1000.0).ceil() as usize).max(1),
        None => 512,
    };
    for (c, part) in ticks.chunks(chunk).enumerate() {
        let mut pipe = redis::pipe();
        for (i, tick) in part.iter().enumerate() {
            pipe.add_command(add_tick_command(&stream, tick, (c * chunk + i) as u64))
                .ignore();
        }
        let now = epoch.elapsed().as_nanos() as u64;
        for i in 0..part.len() {
            sent[c * chunk + i].store(now, Ordering::Relaxed);
        }
        pipe.query_async::<()>(&mut conn).await?;
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(((c + 1) * chunk) as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
    }
    // Done when every tick is dispatched and acknowledged.
    let metrics = &telemetry.metrics;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut probe = connect(&options.url, Duration::from_secs(10)).await?;
    loop {
        let processed = metrics.ticks_processed.get() + metrics.ticks_unrouted.get();
        let pending: Value = redis::cmd("XPENDING")
            .arg(&stream)
            .arg(&settings.quiver.redis.group)
            .query_async(&mut probe)
            .await?;
        let pending = match &pending {
            Value::Array(v) => matches!(v.first(), Some(Value::Int(0))),
            _ => false,
        };
        if processed >= ticks.len() as u64 && pending {
            break;
        }
        if Instant::now() > deadline {
            return Err(BenchError::Stalled(format!(
                "{name}: {processed} of {} ticks processed",
                ticks.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let _ = stop_switch.send(true);
    let report = runner
        .await
        .map_err(|e| BenchError::Stalled(e.to_string()))??;
    let (latency, _seen) = reader
        .await
        .map_err(|e| BenchError::Stalled(e.to_string()))??;
    let ms = |ns: u64| ns as f64 / 1e6;
    Ok(PhaseReport {
        name: match rate {
            Some(rate) => format!("{name} ({rate} ticks/s offered)"),
            None => format!("{name} (unpaced)"),
        },
        ticks: ticks.len() as u64,
        signals: report.signals_published,
        ticks_per_s: ticks.len() as f64 / wall,
        p50_ms: ms(latency.value_at_quantile(0.50)),
        p99_ms: ms(latency.value_at_quantile(0.99)),
        max_ms: ms(latency.max()),
    })
}

/// The `seq` of a signal entry's JSON (`{"seq":N,...`).
fn seq_of_entry(fields: &Value) -> Option<u64> {
    let Value::Array(fields) = fields else {
        return None;
    };
    let data = fields.chunks_exact(2).find_map(|p| match (&p[0], &p[1]) {
        (Value::BulkString(k), Value::BulkString(v)) if k == b"data" => Some(v),
        _ => None,
    })?;
    let rest = data.strip_prefix(b"{\"seq\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// Deletes the bench's keys.
async fn cleanup(options: &BenchOptions) -> Result<(), BenchError> {
    let mut conn = connect(&options.url, Duration::from_secs(30)).await?;
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{}*", options.prefix))
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let _: Value = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut conn)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
