//! The idempotent signal sink.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Script, Value};

use super::{classify, connect};
use crate::live::{LiveError, Outcome, PublishReport, SignalBatch, SignalSink};

/// Where signals and dead letters go, and how long duplicate checks last.
#[derive(Clone, Debug)]
pub struct RedisSinkConfig {
    pub url: String,
    pub response_timeout: Duration,
    /// A broker's stream is this prefix followed by the broker (`signals.`).
    pub signal_stream_prefix: String,
    pub dead_letter_stream: String,
    /// Prefix of the duplicate-check keys (one per tick: the prefix and the
    /// tick's origin, `stream/entry-id`).
    pub dedup_key_prefix: String,
    /// How long a published signal is remembered. A tick processed again
    /// after this long (a runner down for longer) would publish again.
    pub dedup_ttl: Duration,
}

/// Publishes each item — a tick's signals, or one dead letter — unless the
/// item's key exists, atomically (a script runs alone), then remembers the
/// key for the retention window. One key per tick rather than per signal:
/// a tick's signals are published together or not at all, so one check and
/// one write cover them (a tick's signals are deterministic, so "this tick
/// was published" is "each of its signals was"). An entry the target stream
/// refuses (say, the key holds another type) goes to the dead-letter stream
/// with the server's reason instead.
///
/// KEYS: per item, its key then the target stream of each of its entries.
/// ARGV: ttl seconds, the dead-letter stream, then per item its number of
/// entries and, per entry, its number of field pairs and the pairs.
/// Returns per entry 1 (added), 0 (item already published) or 2
/// (dead-lettered).
const PUBLISH_LUA: &str = r"
local ttl = ARGV[1]
local dlq = ARGV[2]
local out = {}
local k = 1
local a = 3
while k <= #KEYS do
  local key = KEYS[k]
  local m = tonumber(ARGV[a])
  a = a + 1
  local seen = redis.call('EXISTS', key) == 1
  for e = 1, m do
    local stream = KEYS[k + e]
    local n = tonumber(ARGV[a])
    if seen then
      out[#out + 1] = 0
    else
      local fields = {}
      for j = 1, 2 * n do fields[j] = ARGV[a + j] end
      local added = redis.pcall('XADD', stream, '*', unpack(fields))
      if type(added) == 'table' and added.err then
        fields[#fields + 1] = 'reason'
        fields[#fields + 1] = 'publish_failed: ' .. added.err
        fields[#fields + 1] = 'stream'
        fields[#fields + 1] = stream
        redis.call('XADD', dlq, '*', unpack(fields))
        out[#out + 1] = 2
      else
        out[#out + 1] = 1
      end
    end
    a = a + 1 + 2 * n
  end
  if not seen then
    redis.call('SET', key, '1', 'EX', ttl)
  end
  k = k + 1 + m
end
return out
";

/// Entries per script call (a tick's entries are never split): keeps each
/// call short, since a script blocks the server while it runs.
const ENTRIES_PER_CALL: usize = 256;

/// Publishes signals to `signals.<broker>` streams through [`PUBLISH_LUA`].
pub struct RedisSignalSink {
    config: RedisSinkConfig,
    conn: ConnectionManager,
    script: Script,
    streams: HashMap<Arc<str>, String>,
    ttl_secs: u64,
}

impl RedisSignalSink {
    pub async fn connect(config: RedisSinkConfig) -> Result<Self, LiveError> {
        let mut conn = connect(&config.url, config.response_timeout).await?;
        let script = Script::new(PUBLISH_LUA);
        script
            .load_async(&mut conn)
            .await
            .map_err(|e| classify("loading the publish script", &e))?;
        Ok(RedisSignalSink {
            ttl_secs: config.dedup_ttl.as_secs().max(1),
            config,
            conn,
            script,
            streams: HashMap::new(),
        })
    }

    fn stream_for(&mut self, broker: &Arc<str>) -> String {
        if let Some(name) = self.streams.get(broker) {
            return name.clone();
        }
        let name = format!("{}{broker}", self.config.signal_stream_prefix);
        self.streams.insert(Arc::clone(broker), name.clone());
        name
    }

    /// One EVALSHA per chunk of items, all in one pipeline. Items are the
    /// runs of consecutive signals of one tick (signals come in tick order),
    /// then the dead letters; results come back per entry, in this order.
    fn build(&mut self, batch: &SignalBatch) -> redis::Pipeline {
        enum Item<'a> {
            /// `signals[start..end]`, all of one tick.
            Tick(usize, usize),
            Dead(&'a crate::live::DeadLetter),
        }
        let mut items: Vec<Item<'_>> = Vec::new();
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
        let entries = |item: &Item<'_>| match item {
            Item::Tick(start, end) => end - start,
            Item::Dead(_) => 1,
        };

        let mut pipe = redis::pipe();
        let mut hex = String::new();
        let mut next = 0;
        while next < items.len() {
            let mut end = next;
            let mut count = 0;
            while end < items.len()
                && (end == next || count + entries(&items[end]) <= ENTRIES_PER_CALL)
            {
                count += entries(&items[end]);
                end += 1;
            }
            let mut keys: Vec<String> = Vec::with_capacity(count + (end - next));
            let mut args: Vec<Vec<u8>> = Vec::with_capacity(2 + (end - next) + count * 5);
            args.push(self.ttl_secs.to_string().into_bytes());
            args.push(self.config.dead_letter_stream.clone().into_bytes());
            for item in &items[next..end] {
                let mut key = self.config.dedup_key_prefix.clone();
                match item {
                    Item::Tick(start, end) => {
                        let first = &batch.signals[*start];
                        match &first.origin {
                            Some(origin) => key.push_str(origin),
                            None => {
                                let _ = write!(key, "seq:{}", first.seq);
                            }
                        }
                        keys.push(key);
                        args.push((end - start).to_string().into_bytes());
                        for signal in &batch.signals[*start..*end] {
                            hex.clear();
                            let _ = write!(hex, "{:016x}", signal.signal_id);
                            keys.push(self.stream_for(&signal.broker));
                            args.push(b"2".to_vec());
                            args.push(b"signal_id".to_vec());
                            args.push(hex.clone().into_bytes());
                            args.push(b"data".to_vec());
                            args.push(batch.payload(signal).to_vec());
                        }
                    }
                    Item::Dead(letter) => {
                        key.push_str("dead:");
                        key.push_str(&letter.origin);
                        keys.push(key);
                        keys.push(self.config.dead_letter_stream.clone());
                        args.push(b"1".to_vec());
                        args.push(b"4".to_vec());
                        args.push(b"reason".to_vec());
                        args.push(format!("{}: {}", letter.category, letter.reason).into_bytes());
                        args.push(b"source".to_vec());
                        args.push(letter.origin.clone().into_bytes());
                        args.push(b"data".to_vec());
                        args.push(letter.payload.clone().into_bytes());
                        args.push(b"kind".to_vec());
                        args.push(b"tick".to_vec());
                    }
                }
            }
            pipe.cmd("EVALSHA")
                .arg(self.script.get_hash())
                .arg(keys.len())
                .arg(&keys)
                .arg(&args);
            next = end;
        }
        pipe
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
        let pipe = self.build(batch);
        let replies: Vec<Value> = match pipe.query_async(&mut self.conn).await {
            Ok(replies) => replies,
            Err(err) if err.code() == Some("NOSCRIPT") => {
                // The server restarted or flushed its scripts: load it again.
                self.script
                    .load_async(&mut self.conn)
                    .await
                    .map_err(|e| classify("loading the publish script", &e))?;
                pipe.query_async(&mut self.conn)
                    .await
                    .map_err(|e| classify("publishing signals", &e))?
            }
            Err(err) => return Err(classify("publishing signals", &err)),
        };
        let mut codes = Vec::with_capacity(batch.signals.len() + batch.dead_letters.len());
        for reply in replies {
            let Value::Array(items) = reply else {
                return Err(LiveError::fatal(
                    "publishing signals",
                    format!("unexpected script reply {reply:?}"),
                ));
            };
            for item in items {
                match item {
                    Value::Int(code) => codes.push(code),
                    other => {
                        return Err(LiveError::fatal(
                            "publishing signals",
                            format!("unexpected script reply item {other:?}"),
                        ))
                    }
                }
            }
        }
        if codes.len() != batch.signals.len() + batch.dead_letters.len() {
            return Err(LiveError::fatal(
                "publishing signals",
                format!(
                    "script answered for {} items, sent {}",
                    codes.len(),
                    batch.signals.len() + batch.dead_letters.len()
                ),
            ));
        }
        let outcomes = codes[..batch.signals.len()]
            .iter()
            .map(|code| match code {
                1 => Outcome::Published,
                2 => Outcome::DeadLettered,
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
        })
    }

    async fn flush(&mut self) -> Result<(), LiveError> {
        // Every publish is acknowledged by the server before it returns.
        Ok(())
    }
}
