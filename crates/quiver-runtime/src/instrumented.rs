//! A strategy wrapper that adds what the runtime needs around each call
//! without touching the engine: timing, a tracing span, and the service's
//! warm-up floor.

use std::sync::Arc;
use std::time::Instant;

use quiver_core::{Decision, InstrumentToken, Tick};
use quiver_strategy::{
    AsStrategy, Carry, Completion, FeatureSpec, Logic, ModelStrategy, ModelUse, Prediction, Step,
    Strategy, StrategyKind, TickContext,
};
use quiver_telemetry::Histogram;

/// Wraps one configured strategy; `S` is its rules half alone
/// (`Box<dyn Strategy>`) or with its model half (`Box<dyn ModelStrategy>`).
///
/// The engine calls it exactly as it would call the strategy: name, kind,
/// declared features, instruments and decisions are the inner strategy's
/// (every method of [`Strategy`] and [`ModelStrategy`] must be forwarded
/// here). Only `required_history` may differ, raised to
/// `STRATEGY__WARMUP_TICKS` when that is larger (the engine then gates and
/// sizes history by it).
pub struct Instrumented<S> {
    inner: S,
    id: Arc<str>,
    kind: &'static str,
    required: usize,
    timing: Option<Timing>,
}

struct Timing {
    /// Time one call in `every`.
    every: u32,
    countdown: u32,
    by_type: Histogram,
    own: Histogram,
}

impl<S: AsStrategy> Instrumented<S> {
    /// `timing`: (one in `every` calls, the type's histogram, the strategy's).
    pub fn new(
        inner: S,
        id: &str,
        warmup_ticks: usize,
        timing: Option<(u32, Histogram, Histogram)>,
    ) -> Self {
        let strategy = inner.as_strategy();
        Instrumented {
            required: strategy.required_history().max(warmup_ticks),
            kind: strategy.kind().as_str(),
            inner,
            id: Arc::from(id),
            timing: timing.and_then(|(every, by_type, own)| {
                (every > 0).then_some(Timing {
                    every,
                    countdown: 0,
                    by_type,
                    own,
                })
            }),
        }
    }
}

/// Wraps `logic` in [`Instrumented`], keeping its halves.
pub fn instrument(
    logic: Logic,
    id: &str,
    warmup_ticks: usize,
    timing: Option<(u32, Histogram, Histogram)>,
) -> Logic {
    match logic {
        Logic::Rules(s) => Logic::Rules(Box::new(Instrumented::new(s, id, warmup_ticks, timing))),
        Logic::Model(s) => Logic::Model(Box::new(Instrumented::new(s, id, warmup_ticks, timing))),
    }
}

impl<S: AsStrategy> Strategy for Instrumented<S> {
    fn name(&self) -> &str {
        self.inner.as_strategy().name()
    }

    fn kind(&self) -> StrategyKind {
        self.inner.as_strategy().kind()
    }

    fn required_history(&self) -> usize {
        self.required
    }

    fn features(&self) -> Vec<FeatureSpec> {
        self.inner.as_strategy().features()
    }

    fn supports_instrument(&self, token: InstrumentToken) -> bool {
        self.inner.as_strategy().supports_instrument(token)
    }

    #[inline]
    fn on_tick(&mut self, tick: &Tick, ctx: TickContext<'_>) -> Option<Decision> {
        self.timed(tick, |inner| inner.as_strategy_mut().on_tick(tick, ctx))
    }

    fn reset(&mut self) {
        self.inner.as_strategy_mut().reset();
    }
}

impl ModelStrategy for Instrumented<Box<dyn ModelStrategy>> {
    fn model(&self) -> &ModelUse {
        self.inner.model()
    }

    /// Timed like `on_tick`: the feature extraction and rules part; the
    /// inference itself is timed per batch by the model's own histogram.
    #[inline]
    fn prepare(&mut self, tick: &Tick, ctx: TickContext<'_>, row: &mut [f32]) -> Step {
        self.timed(tick, |inner| inner.prepare(tick, ctx, row))
    }

    fn complete(&mut self, tick: &Tick, carry: Carry, prediction: Prediction<'_>) -> Completion {
        self.inner.complete(tick, carry, prediction)
    }
}

impl<S> Instrumented<S> {
    /// Runs `call` on the inner strategy inside a `strategy` span, timing
    /// one call in `every`.
    #[inline]
    fn timed<T>(&mut self, tick: &Tick, call: impl FnOnce(&mut S) -> T) -> T {
        // A child of the driver's per-tick span; free unless debug tracing is on.
        let _span = tracing::debug_span!(
            "strategy",
            strategy = &*self.id,
            instrument = tick.instrument,
            kind = self.kind
        )
        .entered();
        let inner = &mut self.inner;
        match &mut self.timing {
            Some(t) if t.countdown == 0 => {
                t.countdown = t.every - 1;
                let started = Instant::now();
                let out = call(inner);
                let ns = started.elapsed().as_nanos() as u64;
                t.by_type.observe_ns(ns);
                t.own.observe_ns(ns);
                out
            }
            Some(t) => {
                t.countdown -= 1;
                call(inner)
            }
            None => call(inner),
        }
    }
}
