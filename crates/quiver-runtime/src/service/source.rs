//! The source side: history rebuilt before the first batch, then a task
//! that reads batches into the engine's queue, and the lag probe.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use quiver_core::{InstrumentToken, Tick};
use quiver_engine::{Engine, Input, Output};
use quiver_io::live::{LagProbe, PreloadRequest, Stop, TickBatch, TickSource};
use quiver_telemetry::Telemetry;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::backoff::Backoff;
use super::{Gate, RuntimeError};
use crate::settings::Settings;

/// What the source task (and an operator's command) sends the engine thread.
pub(super) enum ToEngine {
    Batch(TickBatch),
    /// Look at the controls now, even if no batch comes.
    Wake,
}

/// Rebuilds history as an uninterrupted run would have it: the source's
/// past ticks, as deep as each instrument's [`Engine::preload_depth`], in
/// through [`Input::WarmUp`]. Returns how many ticks were preloaded.
pub(super) async fn preload<S: TickSource>(
    source: &mut S,
    engine: &mut Engine,
    gate: &Gate,
    settings: &Settings,
) -> Result<u64, RuntimeError> {
    let depth: HashMap<InstrumentToken, usize> = engine
        .instrument_tokens()
        .iter()
        .filter_map(|&t| Some((t, engine.preload_depth(engine.instrument_index(t)?))))
        .collect();
    let gate = gate.clone();
    let request = PreloadRequest {
        depth,
        max_ticks: settings.quiver.redis.preload_max_ticks,
        max_bytes: settings.quiver.redis.preload_max_bytes,
        admit: Box::new(move |t: &Tick| gate.admits(t)),
    };
    let preload = source
        .preload(&request)
        .await
        .map_err(RuntimeError::Source)?;
    let mut out = Output::default();
    for tick in &preload {
        engine.process(Input::WarmUp(tick), &mut out);
    }
    if !preload.is_empty() {
        tracing::info!(
            ticks = preload.len(),
            "history preloaded from the tick stream"
        );
    }
    Ok(preload.len() as u64)
}

/// Reads batch after batch into `to_engine` until the source ends, stop is
/// raised or the engine stops; transient errors are retried with back-off.
pub(super) fn spawn<S: TickSource>(
    mut source: S,
    to_engine: mpsc::Sender<ToEngine>,
    telemetry: Arc<Telemetry>,
    mut stop: Stop,
    batch_size: usize,
) -> JoinHandle<Result<(), RuntimeError>> {
    tokio::spawn(async move {
        let mut backoff = Backoff::new();
        loop {
            match source.next_batch(batch_size, &mut stop).await {
                Ok(Some(batch)) => {
                    backoff.reset();
                    telemetry.status.set_source_connected(true);
                    if to_engine.send(ToEngine::Batch(batch)).await.is_err() {
                        break; // the engine stopped: its error is reported there
                    }
                    telemetry
                        .metrics
                        .queue_depth_engine
                        .set((to_engine.max_capacity() - to_engine.capacity()) as f64);
                }
                Ok(None) => break,
                Err(err) if err.is_transient() => {
                    telemetry.status.set_source_connected(false);
                    tracing::warn!(%err, "tick source unavailable; retrying");
                    if !backoff.wait(&mut stop).await {
                        break;
                    }
                }
                Err(err) => return Err(RuntimeError::Source(err)),
            }
        }
        Ok(())
    })
}

/// Polls the source's lag every second into the metrics.
pub(super) fn spawn_lag_probe<P: LagProbe>(
    mut probe: P,
    telemetry: &Arc<Telemetry>,
    stop: &Stop,
) -> JoinHandle<()> {
    let telemetry = Arc::clone(telemetry);
    let mut stop = stop.clone();
    tokio::spawn(async move {
        loop {
            match probe.lag().await {
                Ok(lag) => {
                    if let Some(undelivered) = lag.undelivered {
                        telemetry.metrics.source_lag.set(undelivered as f64);
                    }
                    telemetry.metrics.pending_entries.set(lag.pending as f64);
                }
                Err(err) => tracing::debug!(%err, "lag probe failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.stopped() => break,
            }
        }
    })
}
