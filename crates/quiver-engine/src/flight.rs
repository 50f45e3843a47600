//! Evaluations waiting for a model: queued behind the request, taken out as
//! a [`Flight`] while the model runs, completed in (tick, strategy) order
//! when it lands.

use std::panic::{catch_unwind, AssertUnwindSafe};

use quiver_core::Tick;
use quiver_strategy::{Carry, Completion, Prediction};

use crate::engine::{contain, fail, succeed, validate, Driven, Engine, Verdict, IN_STRATEGY_CALL};
use crate::index::{ModelIdx, StrategyIdx};
use crate::inference::{ModelBatch, ModelRequest, ModelResults, ModelRunner, ModelStamp};
use crate::input::{EngineSignal, Input, Output};
use crate::lifecycle::Failure;

/// Evaluations taken out of the engine ([`Engine::detach`]) while their
/// model requests run, to be handed back as [`Input::Landed`].
#[derive(Default)]
pub struct Flight {
    pub(crate) pending: Vec<Pending>,
    pub(crate) requests: Vec<ModelRequest>,
    pub(crate) rows: Vec<f32>,
}

impl Flight {
    /// The model requests to run for this flight; `models` is
    /// [`Engine::models`].
    pub fn batch<'a>(&'a self, models: &'a [String]) -> ModelBatch<'a> {
        ModelBatch {
            models,
            requests: &self.requests,
            rows: &self.rows,
        }
    }

    /// Model requests in the flight (it may have none: signals that only
    /// waited behind an earlier flight).
    pub fn requests(&self) -> usize {
        self.requests.len()
    }
}

/// An evaluation whose output waits for the next flush, in (tick sequence,
/// strategy order).
pub(crate) enum Pending {
    /// Decided at its tick, queued behind an earlier model request.
    Ready(EngineSignal),
    /// Waiting for the result of request `request`.
    Awaiting {
        seq: u64,
        tick: Tick,
        strategy: StrategyIdx,
        carry: Carry,
        request: u32,
    },
}

impl Engine {
    /// Runs every model request queued since the last flush through
    /// `runner` in one call, then appends, in (tick sequence, strategy
    /// order), every signal those ticks produced: [`Engine::detach`], the
    /// runner, then [`Input::Landed`]. Nothing reaches `out` behind a signal
    /// that waits for a model, so the output order — and, with a runner
    /// whose results do not depend on grouping, the output itself — is the
    /// same whatever the number of ticks between flushes.
    ///
    /// A flight detached earlier must have landed first.
    pub fn flush(&mut self, runner: &mut dyn ModelRunner, out: &mut Output) {
        let Some(flight) = self.detach() else {
            return;
        };
        let mut results = std::mem::take(&mut self.results);
        results.reset_for(&flight.batch(&self.model_names));
        if !flight.requests.is_empty() {
            runner.run(&flight.batch(&self.model_names), &mut results);
        }
        self.process(
            Input::Landed {
                flight,
                results: &results,
            },
            out,
        );
        self.results = results;
    }

    /// Takes every evaluation queued since the last flush, with its model
    /// requests, so they can run elsewhere while the engine goes on
    /// dispatching ticks ([`Flight::batch`] is what to run). Until the
    /// flight lands ([`Input::Landed`]), new signals queue behind it,
    /// keeping the output order. `None` when nothing is queued or a flight
    /// is already out (one at a time).
    pub fn detach(&mut self) -> Option<Flight> {
        if self.pending.is_empty() || self.in_flight {
            return None;
        }
        self.in_flight = true;
        let mut flight = std::mem::take(&mut self.spare);
        std::mem::swap(&mut flight.pending, &mut self.pending);
        std::mem::swap(&mut flight.requests, &mut self.requests);
        std::mem::swap(&mut flight.rows, &mut self.rows);
        Some(flight)
    }

    /// The stamp of `version` of `model` in this engine, interned if new:
    /// the catalog of a sharded run names the stamps its shards made.
    pub fn adopt_model_version(&mut self, model: ModelIdx, version: &str) -> ModelStamp {
        ModelStamp {
            model,
            version: intern(&mut self.model_versions[model.index()], version) as u32,
        }
    }

    pub(crate) fn land(&mut self, mut flight: Flight, results: &ModelResults, out: &mut Output) {
        self.serving.clear();
        for (model, versions) in self.model_versions.iter_mut().enumerate() {
            let version = results.version(ModelIdx::new(model as u32));
            // No version: the model gave no results in this flight.
            let index = if version.is_empty() {
                usize::MAX
            } else {
                intern(versions, version)
            };
            self.serving.push(index as u32);
        }
        for pending in flight.pending.drain(..) {
            let (seq, tick, strategy, carry, request) = match pending {
                Pending::Ready(signal) => {
                    out.signals.push(signal);
                    continue;
                }
                Pending::Awaiting {
                    seq,
                    tick,
                    strategy,
                    carry,
                    request,
                } => (seq, tick, strategy, carry, request),
            };
            let slot = &mut self.slots[strategy.index()];
            let Driven::Model {
                strategy: model_strategy,
                model,
                ..
            } = &mut slot.driven
            else {
                // Replacements wait for pending evaluations to land, so an
                // awaiting evaluation's strategy still has its model.
                continue;
            };
            let model = *model;
            let outputs = results.get(request as usize);
            let prediction = match outputs {
                Ok(values) => Prediction::Outputs(values),
                Err(why) => {
                    slot.stats.unavailable[why.slot()] += 1;
                    Prediction::Unavailable
                }
            };
            let mut completion = Completion::default();
            IN_STRATEGY_CALL.set(true);
            let result = catch_unwind(AssertUnwindSafe(|| {
                completion = model_strategy.complete(&tick, carry, prediction);
            }));
            IN_STRATEGY_CALL.set(false);
            if let Err(payload) = result {
                contain(slot, strategy, seq, &tick, payload, &self.policy, out);
                continue;
            }
            if completion.rejected_output {
                slot.stats.rejected_outputs += 1;
            }
            let at = (seq, tick.ts_ns);
            let Some(decision) = completion.decision else {
                succeed(slot);
                continue;
            };
            let version = self.serving.get(model.index()).copied();
            let signal = EngineSignal {
                seq,
                ts_ns: tick.ts_ns,
                strategy,
                instrument: tick.instrument,
                decision,
                model: match (outputs, version) {
                    (Ok(_), Some(version)) if version != u32::MAX => {
                        Some(ModelStamp { model, version })
                    }
                    _ => None,
                },
            };
            match validate(slot, &signal, tick.price) {
                Verdict::Passed => {
                    succeed(slot);
                    out.signals.push(signal);
                }
                Verdict::Held => succeed(slot),
                Verdict::OutOfRange => {
                    fail(
                        slot,
                        strategy,
                        Failure::InvalidDecision,
                        at,
                        &self.policy,
                        out,
                    );
                }
            }
        }
        flight.requests.clear();
        flight.rows.clear();
        self.spare = flight;
        self.in_flight = false;
    }
}

/// The index of `version` among a model's `versions`, added if new
/// (searched from the newest: a hot swap appends).
fn intern(versions: &mut Vec<String>, version: &str) -> usize {
    match versions.iter().rposition(|v| v == version) {
        Some(index) => index,
        None => {
            versions.push(version.to_owned());
            versions.len() - 1
        }
    }
}
