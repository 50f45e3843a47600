//! The sink side: publish each batch, then acknowledge it.

use std::time::{Duration, Instant};

use quiver_io::live::{Ack, Acker, Outcome, SignalBatch, SignalSink, Stop};
use quiver_telemetry::Telemetry;
use tokio::sync::mpsc;

use super::backoff::Backoff;
use super::{RunReport, RuntimeError};

/// Queued batches the sink publishes and acknowledges in one go, at most.
const MERGE_BATCHES: usize = 16;

/// A batch's signals on their way to the sink, with what acknowledges it.
pub(super) struct Published {
    pub(super) signals: SignalBatch,
    pub(super) ack: Ack,
    pub(super) arrived: Instant,
    pub(super) ticks: u64,
}

/// Publishes each batch, then acknowledges it; retries transient failures
/// until the drain deadline once stop is raised.
pub(super) async fn run<K: SignalSink, C: Acker>(
    sink: &mut K,
    mut acker: C,
    mut from_engine: mpsc::Receiver<Published>,
    telemetry: &Telemetry,
    stop: Stop,
    drain_timeout: Duration,
    report: &mut RunReport,
) -> Result<(), RuntimeError> {
    let metrics = &telemetry.metrics;
    let mut stopped_at: Option<Instant> = None;
    let mut deadline_passed = |stop: &Stop| {
        if stop.is_stopped() {
            let at = *stopped_at.get_or_insert_with(Instant::now);
            at.elapsed() > drain_timeout
        } else {
            false
        }
    };
    // Arrival time and tick count of each batch merged into one publish.
    let mut arrivals: Vec<(Instant, u64)> = Vec::new();
    while let Some(mut batch) = from_engine.recv().await {
        // Batches already waiting are published and acknowledged together:
        // one round trip each for all of them instead of per batch, which
        // is what lets a runner that fell behind catch up.
        arrivals.clear();
        arrivals.push((batch.arrived, batch.ticks));
        while arrivals.len() < MERGE_BATCHES {
            let Ok(more) = from_engine.try_recv() else {
                break;
            };
            arrivals.push((more.arrived, more.ticks));
            batch.signals.append(more.signals);
            batch.ack.merge(more.ack);
        }
        let mut backoff = Backoff::new();
        let outcome = loop {
            match sink.publish(&batch.signals).await {
                Ok(outcome) => break outcome,
                Err(err) if err.is_transient() => {
                    tracing::warn!(%err, "publishing failed; retrying");
                    if deadline_passed(&stop) {
                        return Err(RuntimeError::DrainTimeout(drain_timeout));
                    }
                    backoff.sleep().await;
                }
                Err(err) => return Err(RuntimeError::Sink(err)),
            }
        };
        for (signal, result) in batch.signals.signals.iter().zip(&outcome.outcomes) {
            let b = signal.broker_idx as usize;
            match result {
                Outcome::Published => {
                    report.signals_published += 1;
                    if let Some(c) = metrics.published.get(b) {
                        c.inc();
                    }
                }
                Outcome::Duplicate => {
                    report.duplicates += 1;
                    if let Some(c) = metrics.duplicates.get(b) {
                        c.inc();
                    }
                }
                Outcome::DeadLettered => {
                    report.dead_lettered += 1;
                    metrics.dropped_publish_failed().inc();
                    tracing::warn!(
                        broker = &*signal.broker,
                        signal_id = format!("{:016x}", signal.signal_id),
                        "signal refused by its stream; sent to the dead-letter stream"
                    );
                }
            }
        }
        let mut backoff = Backoff::new();
        loop {
            // The ids are kept until the server confirms: an ack lost in a
            // timeout is sent again (acknowledging twice is harmless).
            match acker.ack(&batch.ack).await {
                Ok(()) => break,
                Err(err) if err.is_transient() => {
                    tracing::warn!(%err, "acknowledging failed; retrying");
                    if deadline_passed(&stop) {
                        return Err(RuntimeError::DrainTimeout(drain_timeout));
                    }
                    backoff.sleep().await;
                }
                Err(err) => return Err(RuntimeError::Ack(err)),
            }
        }
        for &(arrived, ticks) in &arrivals {
            metrics
                .tick_latency
                .observe_ns_n(arrived.elapsed().as_nanos() as u64, ticks);
        }
        metrics.queue_depth_sink.set(from_engine.len() as f64);
    }
    Ok(())
}
