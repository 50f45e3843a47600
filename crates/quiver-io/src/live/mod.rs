//! Live tick sources and signal sinks (feature `live`).
//!
//! The runtime moves ticks from a [`TickSource`] through the engine to a
//! [`SignalSink`] and only then acknowledges them through the source's
//! [`Acker`]. Sources and sinks are traits so a new bus (Kafka, NATS) drops in
//! beside the ones here without touching the runtime: the file replay and
//! synthetic sources and the JSONL sink in this module, and the Redis Streams
//! adapters in [`crate::redis`] (feature `redis`).
//!
//! Every method returns a `Send` future because the runtime drives sources and
//! sinks from tokio tasks. Everything that crosses a stage boundary is owned
//! data, so the stages can run on different threads.

mod file;
mod synthetic;

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use quiver_core::{InstrumentToken, Tick};

pub use file::{JsonlSink, ReplaySource};
pub use quiver_core::partition_of;
pub use synthetic::SyntheticSource;

/// Why a live source or sink failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The bus could not be reached or timed out; retrying later may work.
    #[error("{context}: {message}")]
    Transient {
        context: &'static str,
        message: String,
    },
    /// Retrying will not help (bad configuration, unexpected reply, a file
    /// that cannot be read).
    #[error("{context}: {message}")]
    Fatal {
        context: &'static str,
        message: String,
    },
}

impl LiveError {
    pub fn is_transient(&self) -> bool {
        matches!(self, LiveError::Transient { .. })
    }

    pub fn fatal(context: &'static str, message: impl std::fmt::Display) -> Self {
        LiveError::Fatal {
            context,
            message: message.to_string(),
        }
    }

    pub fn transient(context: &'static str, message: impl std::fmt::Display) -> Self {
        LiveError::Transient {
            context,
            message: message.to_string(),
        }
    }
}

/// One tick as a live source delivers it.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveTick {
    pub tick: Tick,
    /// The tick's sequence number, passed to the engine and printed on its
    /// signals. Sources make it equal to the tick's index in the replayed file
    /// (`quiver publish` writes it into each message), so live and replay
    /// signals are identical.
    pub seq: u64,
    /// Copied onto every signal the tick causes (seed 001).
    pub correlation_id: Option<Arc<str>>,
    /// Where the tick came from, unique per tick and stable across
    /// redeliveries (for Redis `stream/entry-id`); `None` means `seq` alone
    /// identifies the tick (files, the generator). Sinks key their duplicate
    /// check on it, so a tick processed twice after a crash publishes once.
    pub origin: Option<Arc<str>>,
}

impl LiveTick {
    /// A tick identified by its sequence number alone.
    pub fn new(tick: Tick, seq: u64) -> Self {
        LiveTick {
            tick,
            seq,
            correlation_id: None,
            origin: None,
        }
    }
}

/// Something that cannot be processed or published, bound for the
/// dead-letter stream with its reason rather than dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// A short, bounded category (a metric label): `malformed_tick`,
    /// `deleted_entry`, ...
    pub category: &'static str,
    /// The full reason, for people.
    pub reason: String,
    /// Where it came from (see [`LiveTick::origin`]).
    pub origin: String,
    /// The offending payload, as text.
    pub payload: String,
}

/// What acknowledges a batch: per stream of the source (by index), the
/// entry ids read from it. Empty for sources without acknowledgement (files,
/// generators). One type for every source, so no stage depends on which
/// source feeds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ack(pub Vec<(usize, Vec<String>)>);

impl Ack {
    pub fn push(&mut self, stream: usize, id: String) {
        match self.0.iter_mut().find(|(s, _)| *s == stream) {
            Some((_, ids)) => ids.push(id),
            None => self.0.push((stream, vec![id])),
        }
    }

    /// Adds `more`, so several batches are acknowledged in one call once
    /// all of them are published.
    pub fn merge(&mut self, more: Ack) {
        for (stream, ids) in more.0 {
            match self.0.iter_mut().find(|(s, _)| *s == stream) {
                Some((_, have)) => have.extend(ids),
                None => self.0.push((stream, ids)),
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|(_, ids)| ids.is_empty())
    }
}

/// Ticks read together, acknowledged together once all their signals are
/// published.
#[derive(Debug)]
pub struct TickBatch {
    pub ticks: Vec<LiveTick>,
    /// Entries that could not be read as ticks; they are dead-lettered and
    /// acknowledged with the batch.
    pub rejected: Vec<DeadLetter>,
    pub ack: Ack,
    /// When the batch arrived, for the arrival → published latency.
    pub arrived: Instant,
}

/// What to preload on start: for each followed instrument, how many of its
/// most recent ticks the engine's history holds.
pub struct PreloadRequest {
    pub depth: HashMap<InstrumentToken, usize>,
    /// Upper bound on ticks read while looking back.
    pub max_ticks: u64,
    /// Upper bound on the bytes of the entries read while looking back.
    pub max_bytes: u64,
    /// Whether the live path would have dispatched this tick (the session
    /// clock may skip it); only admitted ticks count towards the depth.
    pub admit: Box<dyn Fn(&Tick) -> bool + Send + Sync>,
}

/// Lets sources wait (pacing, blocking reads) without delaying shutdown.
#[derive(Clone, Debug)]
pub struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    /// A stop signal and the switch that raises it.
    pub fn new() -> (tokio::sync::watch::Sender<bool>, Stop) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Stop(rx))
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once stop is raised (or its switch is gone).
    pub async fn stopped(&mut self) {
        let _ = self.0.wait_for(|stopped| *stopped).await;
    }
}

/// How far the consumer is behind its source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceLag {
    /// Entries in the source not yet delivered to this consumer group.
    pub undelivered: Option<u64>,
    /// Entries delivered but not yet acknowledged.
    pub pending: u64,
}

/// A stream of ticks with at-least-once delivery.
pub trait TickSource: Send + 'static {
    type Acker: Acker;
    type Probe: LagProbe;

    /// One line for logs: what is being read.
    fn describe(&self) -> String;

    /// The acknowledger, used by the sink stage after publishing. Sources on a
    /// bus give it its own connection, so acknowledgements never queue behind
    /// a blocking read.
    fn acker(&mut self) -> impl Future<Output = Result<Self::Acker, LiveError>> + Send;

    /// Something the runtime polls to report lag, if the source can tell.
    fn lag_probe(&mut self) -> impl Future<Output = Result<Option<Self::Probe>, LiveError>> + Send;

    /// The ticks processed before this run started, oldest first, at most
    /// `request.depth[instrument]` per instrument, so history can be rebuilt as
    /// an uninterrupted run would have it. Sources without a past return none.
    fn preload(
        &mut self,
        request: &PreloadRequest,
    ) -> impl Future<Output = Result<Vec<Tick>, LiveError>> + Send {
        let _ = request;
        async { Ok(Vec::new()) }
    }

    /// The next batch of at most `max` ticks; `None` when the source is
    /// exhausted or `stop` was raised while waiting. Redelivered (pending)
    /// entries come before new ones.
    fn next_batch(
        &mut self,
        max: usize,
        stop: &mut Stop,
    ) -> impl Future<Output = Result<Option<TickBatch>, LiveError>> + Send;
}

/// Acknowledges batches, in the order they were read.
pub trait Acker: Send + 'static {
    /// Acknowledges `ack`; the runtime keeps it until this succeeds and
    /// sends it again after a timeout (acknowledging twice is harmless).
    fn ack(&mut self, ack: &Ack) -> impl Future<Output = Result<(), LiveError>> + Send;
}

/// Reports a source's lag when polled.
pub trait LagProbe: Send + 'static {
    fn lag(&mut self) -> impl Future<Output = Result<SourceLag, LiveError>> + Send;
}

/// Nothing to acknowledge: files and generators.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAck;

impl Acker for NoAck {
    async fn ack(&mut self, _ack: &Ack) -> Result<(), LiveError> {
        Ok(())
    }
}

/// No lag to report.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLag;

impl LagProbe for NoLag {
    async fn lag(&mut self) -> Result<SourceLag, LiveError> {
        Ok(SourceLag::default())
    }
}

/// One signal line bound for one broker.
#[derive(Clone, Debug)]
pub struct OutSignal {
    pub broker: Arc<str>,
    /// Index of the broker in the runtime's broker list (for metrics).
    pub broker_idx: u32,
    /// The strategy that decided it, by its key: stable across reloads (the
    /// order its id was first seen in).
    pub strategy_idx: u32,
    /// Why this signal must not be published now (its strategy's emission
    /// to this broker is paused): the sink dead-letters it with this reason
    /// instead, so it is kept, not lost.
    pub withheld: Option<Arc<str>>,
    pub signal_id: u64,
    /// The sequence number and [`LiveTick::origin`] of the tick that caused it.
    pub seq: u64,
    pub origin: Option<Arc<str>>,
    /// The signal's JSON (no trailing newline) in [`SignalBatch::buf`].
    pub payload: Range<usize>,
}

/// Everything one tick batch produced, published as a unit.
#[derive(Debug, Default)]
pub struct SignalBatch {
    /// JSON of every signal, back to back.
    pub buf: Vec<u8>,
    pub signals: Vec<OutSignal>,
    pub dead_letters: Vec<DeadLetter>,
}

impl SignalBatch {
    /// Moves `more`'s signals and dead letters after this batch's.
    pub fn append(&mut self, mut more: SignalBatch) {
        let shift = self.buf.len();
        self.buf.append(&mut more.buf);
        self.signals.extend(more.signals.into_iter().map(|mut s| {
            s.payload = s.payload.start + shift..s.payload.end + shift;
            s
        }));
        self.dead_letters.append(&mut more.dead_letters);
    }

    pub fn payload(&self, signal: &OutSignal) -> &[u8] {
        &self.buf[signal.payload.clone()]
    }

    pub fn is_empty(&self) -> bool {
        self.signals.is_empty() && self.dead_letters.is_empty()
    }
}

/// What happened to one signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Published,
    /// Already published (a tick processed again after a crash).
    Duplicate,
    /// Could not be published; written to the dead-letter stream instead.
    DeadLettered,
    /// Not tried ([`OutSignal::withheld`]); written to the dead-letter stream
    /// with the reason.
    Withheld,
}

/// Per-signal outcomes, in [`SignalBatch::signals`] order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishReport {
    pub outcomes: Vec<Outcome>,
    /// Dead letters (from the batch's rejected ticks) written.
    pub dead_letters_written: u64,
    /// Why signals were [`Outcome::DeadLettered`]: one reason per broker
    /// (its `broker_idx`) that refused any.
    pub refusals: Vec<(u32, String)>,
}

/// Where signals go.
pub trait SignalSink: Send + 'static {
    fn describe(&self) -> String;

    /// Publishes a batch. Must be idempotent per (signal id, origin): the
    /// runtime publishes a batch again after a crash or a transient error.
    fn publish(
        &mut self,
        batch: &SignalBatch,
    ) -> impl Future<Output = Result<PublishReport, LiveError>> + Send;

    /// Makes everything published so far durable (or visible).
    fn flush(&mut self) -> impl Future<Output = Result<(), LiveError>> + Send;
}

/// Name of the stream of partition `p`: `base` itself when there is one
/// partition, `base.<p>` otherwise.
pub fn partition_stream(base: &str, p: u32, partitions: u32) -> String {
    if partitions <= 1 {
        base.to_owned()
    } else {
        format!("{base}.{p}")
    }
}

#[cfg(test)]
mod tests {

    fn batch(lines: &[&str], dead: &[&str]) -> SignalBatch {
        let mut out = SignalBatch::default();
        for (i, line) in lines.iter().enumerate() {
            let start = out.buf.len();
            out.buf.extend_from_slice(line.as_bytes());
            out.signals.push(OutSignal {
                broker: Arc::from("paper"),
                broker_idx: 0,
                strategy_idx: 0,
                withheld: None,
                signal_id: i as u64,
                seq: i as u64,
                origin: None,
                payload: start..out.buf.len(),
            });
        }
        out.dead_letters = dead
            .iter()
            .map(|origin| DeadLetter {
                category: "malformed_tick",
                reason: String::new(),
                origin: (*origin).to_owned(),
                payload: String::new(),
            })
            .collect();
        out
    }

    #[test]
    fn appended_batches_keep_every_payload() {
        let mut first = batch(&["{\"a\":1}", "{\"b\":2}"], &["s/1-0"]);
        first.append(batch(&["{\"c\":3}"], &["s/2-0"]));
        let payloads: Vec<&[u8]> = first.signals.iter().map(|s| first.payload(s)).collect();
        assert_eq!(
            payloads,
            [&b"{\"a\":1}"[..], &b"{\"b\":2}"[..], &b"{\"c\":3}"[..]]
        );
        let origins: Vec<&str> = first
            .dead_letters
            .iter()
            .map(|d| d.origin.as_str())
            .collect();
        assert_eq!(origins, ["s/1-0", "s/2-0"]);
    }

    use super::*;

    #[test]
    fn partitions_are_stable_and_cover_every_partition() {
        assert_eq!(partition_of(256265, 1), 0);
        assert_eq!(partition_of(256265, 0), 0);
        // Pinned values: a change here moves instruments between streams.
        let pinned: Vec<u32> = (1001..1009).map(|t| partition_of(t, 4)).collect();
        assert_eq!(pinned, PINNED);
        let mut seen = [0u32; 4];
        for token in 1001..1401 {
            seen[partition_of(token, 4) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        assert_eq!(partition_stream("market.ticks", 0, 1), "market.ticks");
        assert_eq!(partition_stream("market.ticks", 3, 4), "market.ticks.3");
    }

    const PINNED: [u32; 8] = [1, 3, 0, 0, 2, 3, 2, 2];
}
