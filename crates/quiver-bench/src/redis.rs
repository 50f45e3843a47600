//! The live benchmark (`quiver bench-redis`): end-to-end ticks/s and tick
//! XADD → signal visible latency through a real Redis, next to Redis's own
//! ceiling measured in the same run.
//!
//! Two ceilings, both raw command loops with no engine: the tick traffic
//! alone (XADD, XREADGROUP, XACK), and the whole traffic of the workload —
//! the same ticks plus the XADD of every signal the scenario produces, with
//! the same count per tick and the same sizes, read back by the same latency
//! reader. The second is what the runner is measured against: each signal's
//! XADD costs the server about what a tick's does, so the tick traffic alone
//! is no ceiling for a runner that must also publish.
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

use quiver_runtime::{RuntimeError, Service, Settings};

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
    /// Rounds of (ceiling, saturation), alternated so drift on a shared
    /// machine affects both alike.
    pub rounds: usize,
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
    pub cpu: CpuPerTick,
}

/// Where the CPU went during a phase, per tick: this process (runner and
/// load generator together; Linux only) and the Redis server.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuPerTick {
    pub process_us: Option<f64>,
    /// Of `process_us`, the runner's engine thread (dispatch and encoding).
    pub engine_us: Option<f64>,
    pub redis_us: Option<f64>,
}

/// CPU seconds used so far by this process and by the server.
struct CpuMeter {
    process: Option<f64>,
    engine: Option<f64>,
    redis: Option<f64>,
}

impl CpuMeter {
    async fn read(conn: &mut redis::aio::ConnectionManager) -> CpuMeter {
        CpuMeter {
            process: cpu_seconds("/proc/self/stat"),
            engine: engine_cpu_seconds(),
            redis: redis_cpu_seconds(conn).await,
        }
    }

    /// Per tick since `self`, in µs.
    async fn per_tick(&self, conn: &mut redis::aio::ConnectionManager, ticks: usize) -> CpuPerTick {
        let now = CpuMeter::read(conn).await;
        let per = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if ticks > 0 => Some((b - a) * 1e6 / ticks as f64),
            _ => None,
        };
        CpuPerTick {
            process_us: per(self.process, now.process),
            engine_us: per(self.engine, now.engine),
            redis_us: per(self.redis, now.redis),
        }
    }
}

/// utime + stime from a `/proc` stat file (clock ticks of 1/100 s, the
/// Linux default).
fn cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU of the engine threads of this process (none yet counts as 0).
fn engine_cpu_seconds() -> Option<f64> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut total = 0.0;
    for task in tasks.flatten() {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == "quiver-engine" {
            total += cpu_seconds(&dir.join("stat").to_string_lossy()).unwrap_or(0.0);
        }
    }
    Some(total)
}

/// `used_cpu_user + used_cpu_sys` from `INFO cpu`.
async fn redis_cpu_seconds(conn: &mut redis::aio::ConnectionManager) -> Option<f64> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(conn).await.ok()?;
    let field = |name: &str| -> Option<f64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
            .trim()
            .parse()
            .ok()
    };
    Some(field("used_cpu_user")? + field("used_cpu_sys")?)
}

#[derive(Clone, Debug)]
pub struct BenchReport {
    /// Raw XADD (pipelined) + XREADGROUP + XACK loop, no engine: ticks/s.
    pub tick_ceiling_ticks_per_s: f64,
    pub tick_ceiling_cpu: CpuPerTick,
    /// The same loop also adding each tick's signals (same count and sizes
    /// as the runner publishes) before acknowledging, per round: ticks/s.
    pub ceilings: Vec<(f64, CpuPerTick)>,
    pub moderate: PhaseReport,
    /// The unpaced runner, per round.
    pub saturations: Vec<PhaseReport>,
}

impl BenchReport {
    /// Median of the ceilings.
    pub fn ceiling(&self) -> f64 {
        median(self.ceilings.iter().map(|c| c.0))
    }

    /// Median of the saturated runner's ticks/s.
    pub fn saturation(&self) -> f64 {
        median(self.saturations.iter().map(|p| p.ticks_per_s))
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
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
    let saturation_ticks = &ticks[..options.saturation_ticks as usize];
    let (tick_ceiling, tick_ceiling_cpu) =
        ceiling(options, "ceiling-ticks", saturation_ticks, None).await?;
    let moderate = phase(
        options,
        "moderate",
        &ticks[..options.moderate_ticks as usize],
        Some(options.rate),
    )
    .await?;
    let plan = SignalPlan::of(options, saturation_ticks)?;
    let mut ceilings = Vec::new();
    let mut saturations = Vec::new();
    for round in 0..options.rounds.max(1) {
        ceilings.push(
            ceiling(
                options,
                &format!("ceiling-{round}"),
                saturation_ticks,
                Some(&plan),
            )
            .await?,
        );
        saturations.push(
            phase(
                options,
                &format!("saturation-{round}"),
                saturation_ticks,
                None,
            )
            .await?,
        );
        // Each round's streams go, so rounds start from the same server.
        cleanup(options).await?;
    }
    cleanup(options).await?;
    Ok(BenchReport {
        tick_ceiling_ticks_per_s: tick_ceiling,
        tick_ceiling_cpu,
        ceilings,
        moderate,
        saturations,
    })
}

/// The signals the scenario produces, per tick: how many and how long, so
/// the raw loop can add entries of the same count and sizes.
#[derive(Clone)]
struct SignalPlan {
    /// `lengths[starts[t]..starts[t + 1]]`: payload bytes of tick `t`'s signals.
    starts: Vec<u32>,
    lengths: Vec<u32>,
    /// Filler payload, as long as the longest signal.
    filler: Vec<u8>,
}

impl SignalPlan {
    /// Replays `ticks` through the scenario's engine, encoding every signal
    /// as the runner does (one line per broker).
    fn of(options: &BenchOptions, ticks: &[Tick]) -> Result<SignalPlan, BenchError> {
        let mut engine = quiver_engine::Engine::new(options.scenario.entries())
            .map_err(|e| BenchError::Stalled(e.to_string()))?;
        let mut out = quiver_engine::Output::default();
        let mut line = Vec::new();
        let mut plan = SignalPlan {
            starts: Vec::with_capacity(ticks.len() + 1),
            lengths: Vec::new(),
            filler: Vec::new(),
        };
        for (seq, tick) in ticks.iter().enumerate() {
            plan.starts.push(plan.lengths.len() as u32);
            let seq = seq as u64;
            engine.process(quiver_engine::Input::Tick { seq, tick }, &mut out);
            for signal in out.signals.drain(..) {
                for broker in engine.brokers(signal.strategy) {
                    line.clear();
                    let record =
                        quiver_runtime::publish::signal_record(&engine, &signal, broker, None);
                    quiver_io::encode_signal(&record, &mut line)
                        .map_err(|e| BenchError::Stalled(e.to_string()))?;
                    plan.lengths.push(line.len().saturating_sub(1) as u32);
                }
            }
        }
        plan.starts.push(plan.lengths.len() as u32);
        let longest = plan.lengths.iter().copied().max().unwrap_or(0) as usize;
        plan.filler = vec![b'x'; longest];
        Ok(plan)
    }

    fn payloads(&self, tick: usize) -> impl Iterator<Item = &[u8]> {
        let range = match (self.starts.get(tick), self.starts.get(tick + 1)) {
            (Some(&a), Some(&b)) => a as usize..b as usize,
            _ => 0..0,
        };
        self.lengths[range]
            .iter()
            .map(|&n| &self.filler[..n as usize])
    }
}

/// Redis alone: a publisher pipelines XADDs while a consumer reads them with
/// XREADGROUP and acknowledges them, as the runner does, without the engine.
/// With a plan, the consumer also adds each tick's signals, in the same
/// pipeline as the acknowledgement, and a reader follows the signal stream
/// as in the runner phases.
async fn ceiling(
    options: &BenchOptions,
    name: &str,
    ticks: &[Tick],
    plan: Option<&SignalPlan>,
) -> Result<(f64, CpuPerTick), BenchError> {
    let stream = format!("{}.{name}.ticks", options.prefix);
    let signal_stream = format!("{}.{name}.signals.paper", options.prefix);
    let mut admin = connect(&options.url, Duration::from_secs(10)).await?;
    let _: Value = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("g")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut admin)
        .await?;
    let (stop_switch, _) = Stop::new();
    let epoch = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..ticks.len()).map(|_| AtomicU64::new(0)).collect());
    let reader = match plan {
        Some(_) => Some(spawn_reader(options, &signal_stream, &sent, epoch, &stop_switch).await?),
        None => None,
    };
    let meter = CpuMeter::read(&mut admin).await;
    let started = Instant::now();
    let publisher = {
        let mut conn = connect(&options.url, Duration::from_secs(10)).await?;
        let ticks = ticks.to_vec();
        let stream = stream.clone();
        let sent = Arc::clone(&sent);
        tokio::spawn(async move {
            for (chunk_no, chunk) in ticks.chunks(256).enumerate() {
                let mut pipe = redis::pipe();
                for (i, tick) in chunk.iter().enumerate() {
                    pipe.add_command(add_tick_command(&stream, tick, (chunk_no * 256 + i) as u64))
                        .ignore();
                }
                let now = epoch.elapsed().as_nanos() as u64;
                for i in 0..chunk.len() {
                    sent[chunk_no * 256 + i].store(now, Ordering::Relaxed);
                }
                pipe.query_async::<()>(&mut conn).await?;
            }
            Ok::<(), redis::RedisError>(())
        })
    };
    // Reading and writing overlap, as the runner's source and sink stages
    // do: the next XREADGROUP is in flight while a batch's writes are.
    let (to_writer, mut batches) = tokio::sync::mpsc::channel::<Vec<(String, Option<u64>)>>(16);
    let writer = {
        let mut conn = connect(&options.url, Duration::from_secs(10)).await?;
        let stream = stream.clone();
        let plan = plan.cloned();
        tokio::spawn(async move {
            while let Some(entries) = batches.recv().await {
                let mut pipe = redis::pipe();
                if let Some(plan) = &plan {
                    for (_, seq) in &entries {
                        let Some(seq) = seq else { continue };
                        for payload in plan.payloads(*seq as usize) {
                            pipe.cmd("XADD")
                                .arg(&signal_stream)
                                .arg("*")
                                .arg("signal_id")
                                .arg("0123456789abcdef")
                                .arg("data")
                                .arg(payload)
                                .ignore();
                        }
                    }
                }
                let ids: Vec<&str> = entries.iter().map(|(id, _)| id.as_str()).collect();
                pipe.cmd("XACK").arg(&stream).arg("g").arg(&ids).ignore();
                pipe.query_async::<()>(&mut conn).await?;
            }
            Ok::<(), redis::RedisError>(())
        })
    };
    let mut reader_conn = connect(&options.url, Duration::from_secs(10)).await?;
    let mut read = 0usize;
    while read < ticks.len() {
        let reply: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("c")
            .arg("COUNT")
            .arg(512)
            .arg("BLOCK")
            .arg(1000)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(&mut reader_conn)
            .await?;
        let entries = entries_of(&reply);
        if entries.is_empty() && started.elapsed() > Duration::from_secs(120) {
            return Err(BenchError::Stalled(format!(
                "{name}: the raw loop read nothing"
            )));
        }
        read += entries.len();
        if !entries.is_empty() && to_writer.send(entries).await.is_err() {
            break; // the writer failed: its error is reported below
        }
    }
    drop(to_writer);
    writer
        .await
        .map_err(|e| BenchError::Stalled(e.to_string()))??;
    let wall = started.elapsed().as_secs_f64();
    publisher
        .await
        .map_err(|e| BenchError::Stalled(e.to_string()))??;
    let _ = stop_switch.send(true);
    if let Some(reader) = reader {
        reader
            .await
            .map_err(|e| BenchError::Stalled(e.to_string()))??;
    }
    let cpu = meter.per_tick(&mut admin, ticks.len()).await;
    Ok((ticks.len() as f64 / wall, cpu))
}

/// The entries of an XREAD / XREADGROUP reply: each id and its fields.
fn reply_entries(reply: &Value) -> impl Iterator<Item = (&[u8], Option<&Value>)> {
    let streams: &[Value] = match reply {
        Value::Array(streams) => streams,
        _ => &[],
    };
    streams
        .iter()
        .filter_map(|s| match s {
            Value::Array(kv) => match kv.get(1) {
                Some(Value::Array(entries)) => Some(entries.iter()),
                _ => None,
            },
            _ => None,
        })
        .flatten()
        .filter_map(|e| match e {
            Value::Array(parts) => match parts.first() {
                Some(Value::BulkString(id)) => Some((id.as_slice(), parts.get(1))),
                _ => None,
            },
            _ => None,
        })
}

/// Entry ids of an XREADGROUP reply, each with its `seq` field.
fn entries_of(reply: &Value) -> Vec<(String, Option<u64>)> {
    reply_entries(reply)
        .map(|(id, fields)| {
            let seq = match fields {
                Some(Value::Array(fields)) => fields.chunks_exact(2).find_map(|p| match p {
                    [Value::BulkString(k), Value::BulkString(v)] if k == b"seq" => {
                        std::str::from_utf8(v).ok()?.parse().ok()
                    }
                    _ => None,
                }),
                _ => None,
            };
            (String::from_utf8_lossy(id).into_owned(), seq)
        })
        .collect()
}

/// Follows `signal_stream` and records, per signal entry carrying a `seq`
/// (`{"seq":N,...` in its `data`), the time since that tick was sent. Ends
/// once `stop` is raised and a read comes back empty.
async fn spawn_reader(
    options: &BenchOptions,
    signal_stream: &str,
    sent: &Arc<Vec<AtomicU64>>,
    epoch: Instant,
    stop: &tokio::sync::watch::Sender<bool>,
) -> Result<tokio::task::JoinHandle<Result<(Hdr<u64>, u64), BenchError>>, BenchError> {
    let mut conn = connect(&options.url, Duration::from_secs(10)).await?;
    let sent = Arc::clone(sent);
    let mut stop = stop.subscribe();
    let signal_stream = signal_stream.to_owned();
    Ok(tokio::spawn(async move {
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
            for (id, fields) in reply_entries(&reply) {
                last = String::from_utf8_lossy(id).into_owned();
                if let Some(seq) = fields.and_then(seq_of_entry) {
                    if let Some(at) = sent.get(seq as usize) {
                        let at = at.load(Ordering::Relaxed);
                        latency.saturating_record(now.saturating_sub(at).max(1_000));
                        seen += 1;
                    }
                }
            }
            if *stop.borrow_and_update() && matches!(reply, Value::Nil) {
                break;
            }
        }
        Ok::<_, BenchError>((latency, seen))
    }))
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
    let reader = spawn_reader(options, &signal_stream, &sent, epoch, &stop_switch).await?;

    let mut admin = connect(&options.url, Duration::from_secs(10)).await?;
    let meter = CpuMeter::read(&mut admin).await;
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
    let cpu = meter.per_tick(&mut admin, ticks.len()).await;
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
        cpu,
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
