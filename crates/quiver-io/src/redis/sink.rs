//! The idempotent signal sink.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};

use super::classify;
use super::codec::text;
use crate::live::{
    DeadLetter, LiveError, OutSignal, Outcome, PublishReport, SignalBatch, SignalSink,
};
use crate::signal::hex16;

/// Where signals and dead letters go, and how long duplicate checks last.
#[derive(Clone, Debug)]
pub struct RedisSinkConfig {
    pub url: String,
    pub response_timeout: Duration,
    /// A broker's stream is this prefix followed by the broker (`signals.`).
    pub signal_stream_prefix: String,
    pub dead_letter_stream: String,
    /// Prefix of the duplicate-check keys: hashes `<prefix><stream>@<second>`
    /// whose fields are the entry ids of that second's published ticks, and
    /// one fence `<prefix>fence:<stream>` per tick stream.
    pub dedup_key_prefix: String,
    /// How long a published signal is remembered. A tick processed again
    /// after this long (a runner down for longer) would publish again.
    pub dedup_ttl: Duration,
}

/// Most entries in one transaction (a tick's entries are never split): a
/// transaction blocks the server while it runs, so each is kept short.
const ENTRIES_PER_TX: usize = 4096;

/// How often a transaction is retried when a fence moved under it (another
/// consumer published ticks of the same stream meanwhile) before the batch is
/// handed back as a transient failure.
const WATCH_RETRIES: usize = 8;

/// Publishes signals to `signals.<broker>` streams, idempotently per tick.
///
/// Each chunk of items (a tick's signals, or one dead letter) takes two round
/// trips on one connection:
///
/// 1. `WATCH` the fence of every tick stream the chunk's ticks came from,
///    `HMGET` the ticks' markers (a field per tick, in a hash per second of
///    stream time), and `TYPE` every target stream;
/// 2. `MULTI`, then the `XADD`s of each item whose marker was absent, one
///    `HSET` of their markers and an `EXPIRE` (the retention window) per
///    hash, an `INCR` of each fence, then `EXEC`.
///
/// The transaction is atomic, so a tick's signals and its marker are written
/// all or none (a client that dies before `EXEC` leaves nothing behind). Every
/// publisher of a tick stream's ticks moves that stream's fence in its
/// transaction, so if another one published between our check and our
/// `EXEC` (two consumers holding the same entry, one of them about to lose
/// it to `XAUTOCLAIM`), `EXEC` fails and the chunk is checked again. One
/// fence per tick stream rather than a `WATCH` per key: the server's cost of
/// `WATCH` grows with the square of the keys one client watches, and the
/// partitions' owners (one consumer each) never contend on a fence. One marker
/// per tick rather than per signal: a tick's signals are deterministic, so
/// "this tick was published" is "each of its signals was". A target that is
/// not a stream (say, the key holds a string) is found by the `TYPE` check
/// and its entries go to the dead-letter stream with the reason, in the same
/// transaction.
///
/// Native commands in a transaction cost the server what the same commands
/// cost outside one, where a script pays for every argument twice (into the
/// interpreter and back) on top of interpreting itself.
pub struct RedisSignalSink {
    config: RedisSinkConfig,
    client: redis::Client,
    /// Dropped after any error, so a `WATCH` and its `EXEC` always travel on
    /// the same connection (a reconnect in between would silently lose the
    /// watch).
    conn: Option<MultiplexedConnection>,
    ttl_secs: u64,
}

/// A unit of publishing: all of one tick's signals, or one dead letter.
enum Item<'a> {
    /// `signals[start..end]`, all of one tick.
    Tick(usize, usize),
    Dead(&'a DeadLetter),
}

impl Item<'_> {
    fn entries(&self) -> usize {
        match self {
            Item::Tick(start, end) => end - start,
            Item::Dead(_) => 1,
        }
    }
}

/// The tick stream an origin (`stream/entry-id`) names; `""` for items
/// without one, which share a fence.
fn stream_of(origin: Option<&str>) -> &str {
    origin
        .and_then(|o| o.rsplit_once('/'))
        .map_or("", |(stream, _)| stream)
}

/// Per entry, in batch order: 1 published, 0 duplicate, 2 dead-lettered,
/// 3 withheld (dead-lettered without being tried).
type Code = u8;

/// The dead-letter category of a signal its stream refused.
const PUBLISH_FAILED: &str = "publish_failed";
/// The dead-letter category of a signal withheld by the runtime.
const EMISSION_PAUSED: &str = "emission_paused";

/// Notes `reason` as why `broker` refused, once per broker.
fn note_refusal(refusals: &mut Vec<(u32, String)>, broker: u32, reason: &dyn std::fmt::Display) {
    if !refusals.iter().any(|(b, _)| *b == broker) {
        refusals.push((broker, reason.to_string()));
    }
}

impl RedisSignalSink {
    pub async fn connect(config: RedisSinkConfig) -> Result<Self, LiveError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| LiveError::fatal("redis url", e))?;
        let mut sink = RedisSignalSink {
            ttl_secs: config.dedup_ttl.as_secs().max(1),
            config,
            client,
            conn: None,
        };
        sink.connection().await?;
        Ok(sink)
    }

    async fn connection(&mut self) -> Result<MultiplexedConnection, LiveError> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(Some(self.config.response_timeout))
            .set_connection_timeout(Some(Duration::from_secs(5)));
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| classify("connecting to redis", &e))?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `pipe`; any failure drops the connection.
    async fn query(
        &mut self,
        pipe: &redis::Pipeline,
        context: &'static str,
    ) -> Result<Vec<Value>, LiveError> {
        let mut conn = self.connection().await?;
        match pipe.query_async::<Vec<Value>>(&mut conn).await {
            Ok(replies) => Ok(replies),
            Err(err) => {
                self.conn = None;
                Err(classify(context, &err))
            }
        }
    }

    /// Adds to `pipe` the dead letter of a signal its stream refused: the
    /// signal's own fields plus why and where.
    fn dead_letter_signal(
        &self,
        pipe: &mut redis::Pipeline,
        category: &str,
        reason: &dyn std::fmt::Display,
        stream: &str,
        batch: &SignalBatch,
        signal: &OutSignal,
    ) {
        pipe.cmd("XADD")
            .arg(&self.config.dead_letter_stream)
            .arg("*")
            .arg("reason")
            .arg(format!("{category}: {reason}"))
            .arg("stream")
            .arg(stream)
            .arg("signal_id")
            .arg(&hex16(signal.signal_id)[..])
            .arg("data")
            .arg(batch.payload(signal));
    }

    /// The runs of consecutive signals of one tick (signals come in tick
    /// order), then the dead letters.
    fn items(batch: &SignalBatch) -> Vec<Item<'_>> {
        let mut items = Vec::new();
        let mut start = 0;
        for (i, signal) in batch.signals.iter().enumerate().skip(1) {
            let first = &batch.signals[start];
            if signal.seq != first.seq || signal.origin != first.origin {
                items.push(Item::Tick(start, i));
                start = i;
            }
        }
        if start < batch.signals.len() {
            items.push(Item::Tick(start, batch.signals.len()));
        }
        items.extend(batch.dead_letters.iter().map(Item::Dead));
        items
    }

    /// Where an item is remembered once published: a field of a hash that
    /// holds the ticks of one second of one stream (by entry id), so one
    /// `HSET` and one `EXPIRE` per chunk remember all its ticks, at about
    /// two thirds of the server memory of a key per tick (about 85 bytes a
    /// tick instead of 130).
    fn marker_of(&self, batch: &SignalBatch, item: &Item<'_>) -> (String, String) {
        let (origin, dead) = match item {
            Item::Tick(start, _) => (batch.signals[*start].origin.as_deref(), ""),
            Item::Dead(letter) => (Some(letter.origin.as_str()), "dead:"),
        };
        let prefix = &self.config.dedup_key_prefix;
        match origin {
            Some(origin) => match origin.rsplit_once('/') {
                Some((stream, id)) => {
                    let second = id
                        .split_once('-')
                        .and_then(|(ms, _)| ms.parse::<u64>().ok())
                        .map_or(0, |ms| ms / 1000);
                    (format!("{prefix}{stream}@{second}"), format!("{dead}{id}"))
                }
                None => (format!("{prefix}@"), format!("{dead}{origin}")),
            },
            // Ticks from a source without origins (files, the generator):
            // by sequence number, 65,536 to a hash.
            None => {
                let seq = match item {
                    Item::Tick(start, _) => batch.signals[*start].seq,
                    Item::Dead(_) => 0,
                };
                (format!("{prefix}seq@{}", seq >> 16), format!("{dead}{seq}"))
            }
        }
    }

    /// Publishes one chunk of items, appending one code per entry to `codes`.
    async fn publish_chunk(
        &mut self,
        batch: &SignalBatch,
        items: &[Item<'_>],
        codes: &mut Vec<Code>,
        refusals: &mut Vec<(u32, String)>,
    ) -> Result<(), LiveError> {
        // Each item's marker: its hash (index into `buckets`) and field.
        let mut buckets: Vec<String> = Vec::new();
        let mut markers: Vec<(usize, String)> = Vec::with_capacity(items.len());
        for item in items {
            let (bucket, field) = self.marker_of(batch, item);
            let at = match buckets.iter().position(|b| *b == bucket) {
                Some(at) => at,
                None => {
                    buckets.push(bucket);
                    buckets.len() - 1
                }
            };
            markers.push((at, field));
        }
        let mut tick_streams: Vec<&str> = Vec::new();
        for item in items {
            let origin = match item {
                Item::Tick(start, _) => batch.signals[*start].origin.as_deref(),
                Item::Dead(letter) => Some(letter.origin.as_str()),
            };
            let stream = stream_of(origin);
            if !tick_streams.contains(&stream) {
                tick_streams.push(stream);
            }
        }
        let fences: Vec<String> = tick_streams
            .iter()
            .map(|stream| format!("{}fence:{stream}", self.config.dedup_key_prefix))
            .collect();
        // The streams written to (the dead-letter stream first), and each
        // entry's, in entry order, as an index into them.
        let mut names: Vec<String> = vec![self.config.dead_letter_stream.clone()];
        let mut brokers: Vec<&Arc<str>> = Vec::new();
        let mut targets: Vec<usize> = Vec::with_capacity(batch.signals.len());
        // Each entry's signal (`None` for a dead letter), in entry order.
        let mut entry_signals: Vec<Option<&OutSignal>> = Vec::with_capacity(batch.signals.len());
        for item in items {
            match item {
                Item::Tick(start, end) => {
                    for signal in &batch.signals[*start..*end] {
                        entry_signals.push(Some(signal));
                        let at = match brokers.iter().position(|b| **b == signal.broker) {
                            Some(at) => at,
                            None => {
                                brokers.push(&signal.broker);
                                names.push(format!(
                                    "{}{}",
                                    self.config.signal_stream_prefix, signal.broker
                                ));
                                brokers.len() - 1
                            }
                        };
                        targets.push(at + 1);
                    }
                }
                Item::Dead(_) => {
                    targets.push(0);
                    entry_signals.push(None);
                }
            }
        }

        for _ in 0..WATCH_RETRIES {
            let mut check = redis::pipe();
            check.cmd("WATCH").arg(&fences).ignore();
            for (b, bucket) in buckets.iter().enumerate() {
                let fields = markers.iter().filter(|(at, _)| *at == b).map(|(_, f)| f);
                check
                    .cmd("HMGET")
                    .arg(bucket)
                    .arg(fields.collect::<Vec<_>>());
            }
            for name in &names {
                check.cmd("TYPE").arg(name);
            }
            let replies = self.query(&check, "checking published ticks").await?;
            if replies.len() != buckets.len() + names.len() {
                return Err(LiveError::fatal(
                    "checking published ticks",
                    format!("unexpected reply {replies:?}"),
                ));
            }
            let (found, types) = replies.split_at(buckets.len());
            // Fields come back per bucket in the order they were asked.
            let mut next_in: Vec<usize> = vec![0; buckets.len()];
            let mut seen: Vec<bool> = Vec::with_capacity(markers.len());
            for (at, _) in &markers {
                let Value::Array(values) = &found[*at] else {
                    return Err(LiveError::fatal(
                        "checking published ticks",
                        format!("unexpected reply {:?}", found[*at]),
                    ));
                };
                let Some(value) = values.get(next_in[*at]) else {
                    return Err(LiveError::fatal(
                        "checking published ticks",
                        "fewer answers than fields asked",
                    ));
                };
                next_in[*at] += 1;
                seen.push(!matches!(value, Value::Nil));
            }
            // Per stream, why it cannot take an entry (a key of another type).
            let refused: Vec<Option<String>> = types
                .iter()
                .map(|kind| match text(kind) {
                    Some("stream" | "none") => None,
                    kind => Some(format!(
                        "WRONGTYPE the key holds a {} rather than a stream",
                        kind.unwrap_or("value of an unknown type")
                    )),
                })
                .collect();
            if refused.len() != names.len() {
                return Err(LiveError::fatal(
                    "checking published ticks",
                    format!("unexpected reply {replies:?}"),
                ));
            }
            if seen.iter().all(|&s| s) {
                let mut unwatch = redis::pipe();
                unwatch.cmd("UNWATCH").ignore();
                self.query(&unwatch, "checking published ticks").await?;
                codes.extend(
                    items
                        .iter()
                        .flat_map(|item| std::iter::repeat_n(0, item.entries())),
                );
                return Ok(());
            }
            if refused[0].is_some() {
                return Err(LiveError::fatal(
                    "publishing signals",
                    format!(
                        "the dead-letter stream {} is not a stream",
                        self.config.dead_letter_stream
                    ),
                ));
            }

            let mut tx = redis::pipe();
            tx.atomic().ignore_errors();
            let mut planned: Vec<Code> = Vec::with_capacity(targets.len());
            let mut entry = 0;
            // Per bucket, the fields of the items published now.
            let mut remember: Vec<Vec<&str>> = vec![Vec::new(); buckets.len()];
            for ((item, (at, field)), &seen) in items.iter().zip(&markers).zip(&seen) {
                let n = item.entries();
                if seen {
                    planned.extend(std::iter::repeat_n(0, n));
                    entry += n;
                    continue;
                }
                match item {
                    Item::Tick(start, end) => {
                        for signal in &batch.signals[*start..*end] {
                            let stream = names[targets[entry]].as_str();
                            if let Some(reason) = &signal.withheld {
                                planned.push(3);
                                self.dead_letter_signal(
                                    &mut tx,
                                    EMISSION_PAUSED,
                                    reason,
                                    stream,
                                    batch,
                                    signal,
                                );
                                entry += 1;
                                continue;
                            }
                            match &refused[targets[entry]] {
                                None => {
                                    planned.push(1);
                                    tx.cmd("XADD")
                                        .arg(stream)
                                        .arg("*")
                                        .arg("signal_id")
                                        .arg(&hex16(signal.signal_id)[..])
                                        .arg("data")
                                        .arg(batch.payload(signal));
                                }
                                Some(reason) => {
                                    planned.push(2);
                                    note_refusal(refusals, signal.broker_idx, reason);
                                    self.dead_letter_signal(
                                        &mut tx,
                                        PUBLISH_FAILED,
                                        reason,
                                        stream,
                                        batch,
                                        signal,
                                    );
                                }
                            }
                            entry += 1;
                        }
                    }
                    Item::Dead(letter) => {
                        planned.push(1);
                        tx.cmd("XADD")
                            .arg(&self.config.dead_letter_stream)
                            .arg("*")
                            .arg("reason")
                            .arg(format!("{}: {}", letter.category, letter.reason))
                            .arg("source")
                            .arg(&letter.origin)
                            .arg("data")
                            .arg(&letter.payload)
                            .arg("kind")
                            .arg("tick");
                        entry += 1;
                    }
                }
                remember[*at].push(field);
            }
            for (bucket, fields) in buckets.iter().zip(&remember) {
                if fields.is_empty() {
                    continue;
                }
                let hset = tx.cmd("HSET").arg(bucket);
                for field in fields {
                    hset.arg(*field).arg(1);
                }
                hset.ignore();
                // Refreshed at every write, so each field lives at least
                // the retention window.
                tx.cmd("EXPIRE").arg(bucket).arg(self.ttl_secs).ignore();
            }
            for fence in &fences {
                tx.cmd("INCR").arg(fence).ignore();
            }
            let mut conn = self.connection().await?;
            let reply = match tx.query_async::<Value>(&mut conn).await {
                Ok(reply) => reply,
                Err(err) => {
                    self.conn = None;
                    return Err(classify("publishing signals", &err));
                }
            };
            let results = match reply {
                // A fence moved: another consumer published ticks of the
                // same stream meanwhile, maybe some of these. Check again.
                Value::Nil => continue,
                Value::Array(results) => results,
                other => {
                    return Err(LiveError::fatal(
                        "publishing signals",
                        format!("unexpected transaction reply {other:?}"),
                    ))
                }
            };
            let written = planned.iter().filter(|&&c| c != 0).count();
            if results.len() != written {
                return Err(LiveError::fatal(
                    "publishing signals",
                    format!(
                        "the transaction answered for {} entries, sent {written}",
                        results.len()
                    ),
                ));
            }
            // An entry refused after the check (its stream changed type in
            // between) cannot be undone: it is dead-lettered on its own.
            let mut results = results.into_iter();
            for ((code, &target), signal) in planned.iter_mut().zip(&targets).zip(&entry_signals) {
                if *code == 0 {
                    continue;
                }
                if let Some(Value::ServerError(err)) = results.next() {
                    if *code == 3 {
                        // The dead-letter stream itself refused.
                        return Err(LiveError::fatal(
                            "publishing signals",
                            format!("the dead-letter stream refused an entry: {err}"),
                        ));
                    }
                    let target = &names[target];
                    tracing::warn!(stream = target, %err, "an entry was refused after its check");
                    let mut dead = redis::pipe();
                    match signal {
                        Some(signal) => {
                            note_refusal(refusals, signal.broker_idx, &err);
                            self.dead_letter_signal(
                                &mut dead,
                                PUBLISH_FAILED,
                                &err,
                                target,
                                batch,
                                signal,
                            )
                        }
                        None => {
                            dead.cmd("XADD")
                                .arg(&self.config.dead_letter_stream)
                                .arg("*")
                                .arg("reason")
                                .arg(format!("publish_failed: {err}"))
                                .arg("stream")
                                .arg(target);
                        }
                    }
                    dead.ignore();
                    self.query(&dead, "dead-lettering a refused entry").await?;
                    *code = 2;
                }
            }
            codes.extend(planned);
            return Ok(());
        }
        Err(LiveError::transient(
            "publishing signals",
            format!("other consumers kept publishing under the check ({WATCH_RETRIES} tries)"),
        ))
    }
}

impl SignalSink for RedisSignalSink {
    fn describe(&self) -> String {
        format!(
            "redis streams {}<broker> (dead letters to {})",
            self.config.signal_stream_prefix, self.config.dead_letter_stream
        )
    }

    async fn publish(&mut self, batch: &SignalBatch) -> Result<PublishReport, LiveError> {
        if batch.is_empty() {
            return Ok(PublishReport::default());
        }
        let items = Self::items(batch);
        let mut codes: Vec<Code> =
            Vec::with_capacity(batch.signals.len() + batch.dead_letters.len());
        let mut refusals = Vec::new();
        let mut next = 0;
        while next < items.len() {
            let mut end = next;
            let mut count = 0;
            while end < items.len()
                && (end == next || count + items[end].entries() <= ENTRIES_PER_TX)
            {
                count += items[end].entries();
                end += 1;
            }
            self.publish_chunk(batch, &items[next..end], &mut codes, &mut refusals)
                .await?;
            next = end;
        }
        let outcomes = codes[..batch.signals.len()]
            .iter()
            .map(|code| match code {
                1 => Outcome::Published,
                2 => Outcome::DeadLettered,
                3 => Outcome::Withheld,
                _ => Outcome::Duplicate,
            })
            .collect();
        let dead_letters_written = codes[batch.signals.len()..]
            .iter()
            .filter(|&&c| c != 0)
            .count() as u64;
        Ok(PublishReport {
            outcomes,
            dead_letters_written,
            refusals,
        })
    }

    async fn flush(&mut self) -> Result<(), LiveError> {
        // Every publish is acknowledged by the server before it returns.
        Ok(())
    }
}
