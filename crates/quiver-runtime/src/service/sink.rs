//! The sink side: publish each batch, then acknowledge it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use quiver_io::live::{Ack, Acker, Outcome, SignalBatch, SignalSink, Stop};
use quiver_telemetry::Telemetry;
use tokio::sync::mpsc;

use super::backoff::Backoff;
use super::emission::{EmissionChange, EmissionGate};
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

/// Which (strategy, broker) pairs may publish, and the broker names by index.
pub(super) struct Emission {
    pub(super) gate: EmissionGate,
    pub(super) brokers: Vec<Arc<str>>,
}

impl Emission {
    /// Logs each change and shows it in the metrics and `/strategies`.
    fn apply(&self, changes: &[EmissionChange], telemetry: &Telemetry) {
        let now = Instant::now();
        let wall = SystemTime::now();
        for change in changes {
            let (strategy, broker, paused) = match *change {
                EmissionChange::Paused {
                    strategy,
                    broker,
                    length,
                } => {
                    tracing::warn!(
                        strategy,
                        broker = self.brokers.get(broker as usize).map(|b| &**b),
                        pause_ms = length.as_millis() as u64,
                        "a broker keeps refusing the strategy's signals: its emission there is paused, the signals go to the dead-letter stream"
                    );
                    (strategy, broker, true)
                }
                EmissionChange::Resumed { strategy, broker } => {
                    tracing::info!(
                        strategy,
                        broker = self.brokers.get(broker as usize).map(|b| &**b),
                        "the broker accepted the strategy's signals again: emission resumed"
                    );
                    (strategy, broker, false)
                }
            };
            let Some(series) = telemetry.metrics.series(strategy) else {
                continue;
            };
            if let Some(gauge) = series.emission_paused_of(broker as usize) {
                gauge.set(if paused { 1.0 } else { 0.0 });
            }
            telemetry.status.set_paused_brokers(
                &series.id,
                self.gate
                    .paused_brokers(change.strategy(), &self.brokers, now, wall),
            );
        }
    }
}

/// Publishes each batch, then acknowledges it; retries transient failures
/// until the drain deadline once stop is raised. Signals a broker refuses
/// go to the dead-letter stream, and pairs that keep refusing are paused
/// ([`EmissionGate`]).
#[allow(clippy::too_many_arguments)]
pub(super) async fn run<K: SignalSink, C: Acker>(
    sink: &mut K,
    mut acker: C,
    mut from_engine: mpsc::Receiver<Published>,
    telemetry: &Telemetry,
    stop: Stop,
    drain_timeout: Duration,
    emission: &mut Emission,
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
        emission
            .gate
            .admit(&mut batch.signals.signals, Instant::now());
        let mut backoff = Backoff::new();
        let outcome = loop {
            match sink.publish(&batch.signals).await {
                Ok(outcome) => break outcome,
                Err(err) if err.is_transient() => {
                    // Nothing is acknowledged until it is published, so
                    // retrying for as long as it takes loses nothing.
                    metrics.publish_retries.inc();
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
                Outcome::Withheld => {
                    let by_desk = signal
                        .withheld
                        .as_deref()
                        .is_some_and(|why| why.starts_with(super::engine_stage::DESK_WITHHELD));
                    if by_desk {
                        // Counted by its reason when the desk refused it.
                        report.refused_by_desk += 1;
                    } else {
                        report.withheld += 1;
                        metrics.dropped_emission_paused().inc();
                    }
                }
            }
        }
        let changes = emission.gate.record(
            &batch.signals.signals,
            &outcome,
            Instant::now(),
            SystemTime::now(),
        );
        if !changes.is_empty() {
            emission.apply(&changes, telemetry);
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
