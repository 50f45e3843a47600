//! The consumer-group tick source.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quiver_core::{InstrumentToken, Tick};
use redis::aio::ConnectionManager;
use redis::Value;

use super::codec::{byte_len, pairs_of, parse_tick_pairs, rejected, text, EntryError};
use super::{classify, connect};
use crate::live::{
    partition_of, Ack, Acker, DeadLetter, LagProbe, LiveError, PreloadRequest, SourceLag, Stop,
    TickBatch, TickSource,
};
use crate::tick_check::TimeOrder;

/// Where and how to read ticks.
#[derive(Clone, Debug)]
pub struct RedisSourceConfig {
    pub url: String,
    /// One stream per partition, in partition order.
    pub streams: Vec<String>,
    pub group: String,
    pub consumer: String,
    /// How long one `XREADGROUP` waits for new entries. Also bounds how long
    /// shutdown waits for the read in progress.
    pub block: Duration,
    /// Must exceed `block`.
    pub response_timeout: Duration,
    /// Entries pending this long for another consumer are taken over on start.
    pub claim_min_idle: Duration,
    /// Where a newly created group starts (`0`: the whole stream; `$`: only
    /// entries added from now on).
    pub start_id: String,
}

enum Phase {
    /// Take over entries left pending by dead consumers (ids only).
    Claim {
        stream: usize,
        cursor: String,
    },
    /// Re-read what is pending for this consumer, oldest first: entries a
    /// previous run of it read but never acknowledged.
    OwnPending {
        stream: usize,
        after: String,
    },
    New,
}

/// Reads ticks with `XREADGROUP` from one stream per partition.
pub struct RedisTickSource {
    config: RedisSourceConfig,
    conn: ConnectionManager,
    phase: Phase,
    /// `stream/` prefix of every origin, per stream.
    origin_prefix: Vec<String>,
    /// The file reader's per-instrument time order. Within one stream the
    /// group delivers entries in id order in every phase (own pending
    /// entries, claimed ones included, are re-read oldest first), so this
    /// is the order a replay of the stream sees.
    order: TimeOrder,
    /// How many entries to ask for at once, sized from the entries lately seen.
    sizer: ReplySizer,
}

/// Sizes replies so one holds about [`REPLY_BYTES`]: a stream of junk entries
/// of a megabyte each is read a few at a time instead of a batch at a time.
/// The estimate starts at a megabyte (nothing is known of the stream yet),
/// jumps to the largest entry of a reply and halves with each reply after
/// it, so ordinary ticks reach full batches within a few replies.
struct ReplySizer {
    entry_bytes: usize,
}

/// About how many bytes one reply may hold.
const REPLY_BYTES: usize = 16 << 20;

impl ReplySizer {
    fn new() -> Self {
        ReplySizer {
            entry_bytes: 1 << 20,
        }
    }

    fn count(&self, max: usize) -> usize {
        (REPLY_BYTES / self.entry_bytes.max(1)).clamp(1, max.max(1))
    }

    fn observe(&mut self, largest: usize) {
        self.entry_bytes = largest.max(self.entry_bytes / 2).max(64);
    }
}

/// The bytes of an entry's fields.
fn entry_bytes(entry: &Value) -> usize {
    let Value::Array(parts) = entry else { return 0 };
    match parts.get(1) {
        Some(Value::Array(fields)) => fields.iter().map(byte_len).fold(0, usize::saturating_add),
        Some(Value::Map(map)) => map
            .iter()
            .map(|(k, v)| byte_len(k).saturating_add(byte_len(v)))
            .fold(0, usize::saturating_add),
        _ => 0,
    }
}

impl RedisTickSource {
    /// Connects and creates the consumer group on every stream if missing.
    pub async fn connect(config: RedisSourceConfig) -> Result<Self, LiveError> {
        if config.response_timeout <= config.block {
            return Err(LiveError::fatal(
                "redis source",
                format!(
                    "response timeout ({:?}) must exceed the XREADGROUP block time ({:?})",
                    config.response_timeout, config.block
                ),
            ));
        }
        if config.streams.is_empty() {
            return Err(LiveError::fatal("redis source", "no stream to read"));
        }
        let mut conn = connect(&config.url, config.response_timeout).await?;
        for stream in &config.streams {
            let created: Result<Value, _> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(stream)
                .arg(&config.group)
                .arg(&config.start_id)
                .arg("MKSTREAM")
                .query_async(&mut conn)
                .await;
            match created {
                Ok(_) => tracing::info!(stream, group = config.group, "created consumer group"),
                Err(err) if err.code() == Some("BUSYGROUP") => {}
                Err(err) => return Err(classify("creating the consumer group", &err)),
            }
        }
        let origin_prefix = config.streams.iter().map(|s| format!("{s}/")).collect();
        Ok(RedisTickSource {
            phase: Phase::Claim {
                stream: 0,
                cursor: "0-0".to_owned(),
            },
            config,
            conn,
            origin_prefix,
            order: TimeOrder::default(),
            sizer: ReplySizer::new(),
        })
    }

    /// Turns `[[id, [field, value, ...] | nil], ...]` from `stream` into a batch.
    fn batch_of(&mut self, stream: usize, entries: &[Value], batch: &mut TickBatch) {
        let mut largest = 0;
        for entry in entries {
            let Value::Array(parts) = entry else { continue };
            let Some(id) = parts.first().and_then(text) else {
                continue;
            };
            largest = largest.max(entry_bytes(entry));
            let origin: Arc<str> = Arc::from(format!("{}{id}", self.origin_prefix[stream]));
            let fields = parts.get(1);
            let parsed = match fields {
                Some(Value::Array(fields)) => super::codec::parse_tick_fields(id, fields, &origin),
                Some(Value::Map(map)) => {
                    parse_tick_pairs(id, map.iter().map(|(k, v)| (k, v)), &origin)
                }
                // A pending entry whose data was trimmed or deleted.
                _ => {
                    batch.rejected.push(DeadLetter {
                        category: "deleted_entry",
                        reason: "the entry was deleted from the stream before it was processed"
                            .to_owned(),
                        origin: origin.to_string(),
                        payload: String::new(),
                    });
                    batch.ack.push(stream, id.to_owned());
                    continue;
                }
            };
            let admitted = parsed.and_then(|live| match self.order.admit(&live.tick) {
                Ok(()) => Ok(live),
                Err(kind) => Err(EntryError::Field(kind)),
            });
            match admitted {
                Ok(live) => batch.ticks.push(live),
                Err(error) => batch.rejected.push(match fields {
                    Some(Value::Map(map)) => {
                        rejected(&origin, map.iter().map(|(k, v)| (k, v)), &error)
                    }
                    Some(Value::Array(fields)) => rejected(&origin, pairs_of(fields), &error),
                    _ => rejected(&origin, std::iter::empty(), &error),
                }),
            }
            batch.ack.push(stream, id.to_owned());
        }
        if !entries.is_empty() {
            self.sizer.observe(largest);
        }
    }

    fn empty_batch() -> TickBatch {
        TickBatch {
            ticks: Vec::new(),
            rejected: Vec::new(),
            ack: Ack::default(),
            arrived: Instant::now(),
        }
    }

    async fn query(&mut self, cmd: &redis::Cmd, context: &'static str) -> Result<Value, LiveError> {
        cmd.query_async(&mut self.conn)
            .await
            .map_err(|e| classify(context, &e))
    }

    /// Where history for `stream` ends: just before the oldest entry still
    /// pending in the group (it will be processed again), or at the group's
    /// last delivered entry. `None` when nothing was processed yet.
    async fn history_end(&mut self, stream: &str) -> Result<Option<String>, LiveError> {
        let mut pending = redis::cmd("XPENDING");
        pending.arg(stream).arg(&self.config.group);
        if let Value::Array(summary) = self.query(&pending, "XPENDING").await? {
            let count = match summary.first() {
                Some(Value::Int(n)) => *n,
                _ => 0,
            };
            if count > 0 {
                if let Some(min) = summary.get(1).and_then(text) {
                    return Ok(Some(format!("({min}")));
                }
            }
        }
        let mut info = redis::cmd("XINFO");
        info.arg("GROUPS").arg(stream);
        let groups = self.query(&info, "XINFO GROUPS").await?;
        let last = field_of_group(&groups, &self.config.group, "last-delivered-id")
            .and_then(|v| text(v).map(str::to_owned));
        Ok(last.filter(|id| id != "0-0"))
    }
}

/// `field` of `group` in an `XINFO GROUPS` reply (RESP2 flat or RESP3 map).
fn field_of_group<'a>(groups: &'a Value, group: &str, field: &str) -> Option<&'a Value> {
    let Value::Array(groups) = groups else {
        return None;
    };
    groups.iter().find_map(|g| {
        let pairs: Vec<(&Value, &Value)> = match g {
            Value::Array(flat) => flat.chunks_exact(2).map(|p| (&p[0], &p[1])).collect(),
            Value::Map(map) => map.iter().map(|(k, v)| (k, v)).collect(),
            _ => return None,
        };
        let name = pairs.iter().find(|(k, _)| text(k) == Some("name"))?.1;
        if text(name) != Some(group) {
            return None;
        }
        pairs
            .iter()
            .find(|(k, _)| text(k) == Some(field))
            .map(|(_, v)| *v)
    })
}

/// The entries of a `XREADGROUP` reply, per stream name.
fn streams_of(reply: &Value) -> Vec<(&str, &[Value])> {
    match reply {
        Value::Array(streams) => streams
            .iter()
            .filter_map(|s| match s {
                Value::Array(kv) if kv.len() == 2 => match (&kv[0], &kv[1]) {
                    (name, Value::Array(entries)) => Some((text(name)?, entries.as_slice())),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        Value::Map(map) => map
            .iter()
            .filter_map(|(name, entries)| match entries {
                Value::Array(entries) => Some((text(name)?, entries.as_slice())),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

const PRELOAD_CHUNK: usize = 5_000;

impl TickSource for RedisTickSource {
    type Acker = RedisAcker;
    type Probe = RedisLagProbe;

    fn describe(&self) -> String {
        format!(
            "redis streams {} (group {}, consumer {})",
            self.config.streams.join(", "),
            self.config.group,
            self.config.consumer
        )
    }

    async fn acker(&mut self) -> Result<RedisAcker, LiveError> {
        Ok(RedisAcker {
            conn: connect(&self.config.url, self.config.response_timeout).await?,
            streams: self.config.streams.clone(),
            group: self.config.group.clone(),
        })
    }

    async fn lag_probe(&mut self) -> Result<Option<RedisLagProbe>, LiveError> {
        Ok(Some(RedisLagProbe {
            conn: connect(&self.config.url, self.config.response_timeout).await?,
            streams: self.config.streams.clone(),
            group: self.config.group.clone(),
        }))
    }

    async fn preload(&mut self, request: &PreloadRequest) -> Result<Vec<Tick>, LiveError> {
        let partitions = self.config.streams.len() as u32;
        let mut all = Vec::new();
        let mut read_total = 0u64;
        let mut bytes_total = 0u64;
        let mut sizer = ReplySizer::new();
        for p in 0..self.config.streams.len() {
            let stream = self.config.streams[p].clone();
            let mut remaining: HashMap<InstrumentToken, usize> = request
                .depth
                .iter()
                .filter(|(&token, &depth)| depth > 0 && partition_of(token, partitions) == p as u32)
                .map(|(&token, &depth)| (token, depth))
                .collect();
            let Some(mut end) = self.history_end(&stream).await? else {
                continue;
            };
            let mut collected = Vec::new();
            let within_bounds =
                |read: u64, bytes: u64| read < request.max_ticks && bytes < request.max_bytes;
            while !remaining.is_empty() && within_bounds(read_total, bytes_total) {
                let chunk = sizer.count(PRELOAD_CHUNK);
                let mut range = redis::cmd("XREVRANGE");
                range
                    .arg(&stream)
                    .arg(&end)
                    .arg("-")
                    .arg("COUNT")
                    .arg(chunk);
                let Value::Array(entries) = self.query(&range, "XREVRANGE").await? else {
                    break;
                };
                if entries.is_empty() {
                    break;
                }
                let origin: Arc<str> = Arc::from(stream.as_str());
                let mut largest = 0;
                for entry in &entries {
                    let Value::Array(parts) = entry else { continue };
                    let Some(id) = parts.first().and_then(text) else {
                        continue;
                    };
                    end = format!("({id}");
                    read_total += 1;
                    let size = entry_bytes(entry);
                    largest = largest.max(size);
                    bytes_total = bytes_total.saturating_add(size as u64);
                    let Some(Value::Array(fields)) = parts.get(1) else {
                        continue;
                    };
                    // Entries the live path would refuse are no history.
                    let Ok(live) = super::codec::parse_tick_fields(id, fields, &origin) else {
                        continue;
                    };
                    if !(request.admit)(&live.tick) {
                        continue;
                    }
                    if let Some(left) = remaining.get_mut(&live.tick.instrument) {
                        collected.push(live.tick);
                        *left -= 1;
                        if *left == 0 {
                            remaining.remove(&live.tick.instrument);
                        }
                    }
                }
                sizer.observe(largest);
                if entries.len() < chunk {
                    break;
                }
            }
            if !within_bounds(read_total, bytes_total) && !remaining.is_empty() {
                tracing::warn!(
                    stream,
                    instruments = remaining.len(),
                    max_ticks = request.max_ticks,
                    max_bytes = request.max_bytes,
                    "history preload stopped at its limit; some instruments start with less history than an uninterrupted run"
                );
            }
            collected.reverse();
            all.extend(collected);
        }
        // What the previous run accepted is what the next tick is held to.
        for tick in &all {
            self.order.seed(tick);
        }
        Ok(all)
    }

    async fn next_batch(
        &mut self,
        max: usize,
        stop: &mut Stop,
    ) -> Result<Option<TickBatch>, LiveError> {
        let max = max.max(1);
        loop {
            if stop.is_stopped() {
                return Ok(None);
            }
            match &mut self.phase {
                Phase::Claim { stream, cursor } => {
                    let s = *stream;
                    if s >= self.config.streams.len() {
                        self.phase = Phase::OwnPending {
                            stream: 0,
                            after: "0".to_owned(),
                        };
                        continue;
                    }
                    let mut claim = redis::cmd("XAUTOCLAIM");
                    claim
                        .arg(&self.config.streams[s])
                        .arg(&self.config.group)
                        .arg(&self.config.consumer)
                        .arg(self.config.claim_min_idle.as_millis() as u64)
                        .arg(cursor.as_str())
                        .arg("COUNT")
                        .arg(1000)
                        .arg("JUSTID");
                    let reply = self.query(&claim, "XAUTOCLAIM").await?;
                    let (next, claimed) = match &reply {
                        Value::Array(parts) => (
                            parts.first().and_then(text).unwrap_or("0-0").to_owned(),
                            match parts.get(1) {
                                Some(Value::Array(ids)) => ids.len(),
                                _ => 0,
                            },
                        ),
                        _ => ("0-0".to_owned(), 0),
                    };
                    if claimed > 0 {
                        tracing::info!(
                            stream = self.config.streams[s],
                            claimed,
                            "took over entries pending for a dead consumer"
                        );
                    }
                    self.phase = if next == "0-0" {
                        Phase::Claim {
                            stream: s + 1,
                            cursor: "0-0".to_owned(),
                        }
                    } else {
                        Phase::Claim {
                            stream: s,
                            cursor: next,
                        }
                    };
                }
                Phase::OwnPending { stream, after } => {
                    let s = *stream;
                    if s >= self.config.streams.len() {
                        self.phase = Phase::New;
                        continue;
                    }
                    let mut read = redis::cmd("XREADGROUP");
                    read.arg("GROUP")
                        .arg(&self.config.group)
                        .arg(&self.config.consumer)
                        .arg("COUNT")
                        .arg(self.sizer.count(max))
                        .arg("STREAMS")
                        .arg(&self.config.streams[s])
                        .arg(after.as_str());
                    let reply = self.query(&read, "XREADGROUP (pending)").await?;
                    let mut batch = Self::empty_batch();
                    let mut last = None;
                    for (_, entries) in streams_of(&reply) {
                        self.batch_of(s, entries, &mut batch);
                        last = entries.last().and_then(|e| match e {
                            Value::Array(parts) => parts.first().and_then(text).map(str::to_owned),
                            _ => None,
                        });
                    }
                    match last {
                        Some(id) => {
                            tracing::info!(
                                stream = self.config.streams[s],
                                entries = batch.ticks.len() + batch.rejected.len(),
                                "re-processing entries left pending by a previous run"
                            );
                            self.phase = Phase::OwnPending {
                                stream: s,
                                after: id,
                            };
                            return Ok(Some(batch));
                        }
                        None => {
                            self.phase = Phase::OwnPending {
                                stream: s + 1,
                                after: "0".to_owned(),
                            }
                        }
                    }
                }
                Phase::New => {
                    let mut read = redis::cmd("XREADGROUP");
                    read.arg("GROUP")
                        .arg(&self.config.group)
                        .arg(&self.config.consumer)
                        .arg("COUNT")
                        .arg(self.sizer.count(max))
                        .arg("BLOCK")
                        .arg(self.config.block.as_millis() as u64)
                        .arg("STREAMS");
                    for stream in &self.config.streams {
                        read.arg(stream);
                    }
                    for _ in &self.config.streams {
                        read.arg(">");
                    }
                    let reply = self.query(&read, "XREADGROUP").await?;
                    let mut batch = Self::empty_batch();
                    for (name, entries) in streams_of(&reply) {
                        if let Some(s) = self.config.streams.iter().position(|x| x == name) {
                            self.batch_of(s, entries, &mut batch);
                        }
                    }
                    if !batch.ack.0.is_empty() {
                        return Ok(Some(batch));
                    }
                }
            }
        }
    }
}

/// Acknowledges entries on its own connection.
pub struct RedisAcker {
    conn: ConnectionManager,
    streams: Vec<String>,
    group: String,
}

impl Acker for RedisAcker {
    async fn ack(&mut self, ack: &Ack) -> Result<(), LiveError> {
        if ack.0.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (stream, ids) in &ack.0 {
            let Some(name) = self.streams.get(*stream) else {
                continue;
            };
            pipe.cmd("XACK")
                .arg(name)
                .arg(&self.group)
                .arg(ids)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn)
            .await
            .map_err(|e| classify("XACK", &e))
    }
}

/// Polls `XINFO GROUPS` for the group's lag and pending count.
pub struct RedisLagProbe {
    conn: ConnectionManager,
    streams: Vec<String>,
    group: String,
}

impl LagProbe for RedisLagProbe {
    async fn lag(&mut self) -> Result<SourceLag, LiveError> {
        let mut total = SourceLag {
            undelivered: Some(0),
            pending: 0,
        };
        for stream in &self.streams {
            let groups: Value = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(stream)
                .query_async(&mut self.conn)
                .await
                .map_err(|e| classify("XINFO GROUPS", &e))?;
            let int = |field| match field_of_group(&groups, &self.group, field) {
                Some(Value::Int(n)) => Some((*n).max(0) as u64),
                _ => None,
            };
            total.pending += int("pending").unwrap_or(0);
            total.undelivered = match (total.undelivered, int("lag")) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
        }
        Ok(total)
    }
}
