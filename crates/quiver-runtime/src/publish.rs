//! What leaves the engine after a tick, handled once for replay and live: the
//! published record of each signal (one per broker of its strategy, with its
//! deterministic id), so both write identical lines, and the log of contained
//! strategy panics and lifecycle changes.

use quiver_engine::{Engine, EngineSignal, Output, StrategyState};
use quiver_io::SignalRecord;

/// The record of `signal` for `broker` (one of its strategy's brokers).
pub fn signal_record<'a>(
    engine: &'a Engine,
    signal: &'a EngineSignal,
    broker: &'a str,
    correlation_id: Option<&'a str>,
) -> SignalRecord<'a> {
    let strategy_id = engine.strategy_id(signal.strategy);
    let d = &signal.decision;
    SignalRecord {
        seq: signal.seq,
        ts_ns: signal.ts_ns,
        signal_id: quiver_io::signal_id(
            strategy_id,
            signal.instrument,
            d.side,
            broker,
            signal.ts_ns,
        ),
        strategy_id,
        instrument: signal.instrument,
        broker,
        side: d.side,
        confidence: d.confidence,
        quantity: d.quantity,
        price: d.price,
        reasoning: &d.reasoning,
        metadata: &d.metadata,
        model: signal.model.map(|stamp| quiver_io::ModelTag {
            name: engine.model_name(stamp),
            version: engine.model_version(stamp),
            feature_hash: engine.feature_hash(signal.strategy),
        }),
        correlation_id,
    }
}

/// Logs what came out of the engine besides signals: contained strategy
/// panics, lifecycle changes and refused controls.
pub fn log_events(engine: &Engine, out: &Output) {
    for rebuilt in &out.rebuilds {
        tracing::info!(
            carried = rebuilt.carried,
            fresh = rebuilt.fresh,
            features_replayed = rebuilt.features_replayed,
            "strategy set swapped in"
        );
        if rebuilt.rings_grown > 0 {
            tracing::info!(
                "{} history rings grew for the new strategies (the deepest now holds {} ticks)",
                rebuilt.rings_grown,
                rebuilt.deepest_ring
            );
        }
    }
    for fault in &out.faults {
        tracing::warn!(
            strategy = engine.strategy_id(fault.strategy),
            instrument = fault.instrument,
            seq = fault.seq,
            state = engine.strategy_state(fault.strategy).as_str(),
            "strategy panicked: {}",
            fault.message
        );
    }
    for change in &out.transitions {
        let id = engine.strategy_id(change.strategy);
        let (from, to, cause) = (
            change.from.as_str(),
            change.to.as_str(),
            change.cause.as_str(),
        );
        match change.to {
            StrategyState::Quarantined | StrategyState::Stopped => {
                tracing::warn!(
                    strategy = id,
                    from,
                    to,
                    cause,
                    seq = change.seq,
                    "strategy {to}"
                )
            }
            _ => tracing::info!(
                strategy = id,
                from,
                to,
                cause,
                seq = change.seq,
                "strategy {to}"
            ),
        }
    }
    for refusal in &out.refused {
        tracing::warn!("control refused: {refusal}");
    }
}
