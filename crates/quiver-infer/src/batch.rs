//! Micro-batching: many inference requests, one backend call per model.
//!
//! Requests are pushed in the order the caller will apply their results (for
//! the engine: tick sequence, then strategy order). [`MicroBatcher::run`]
//! groups them by model, calls each model once per `max_batch_size` rows, and
//! hands back the results in push order. Grouping never reorders what the
//! caller sees, and each row's output depends only on that row, so results
//! are identical whatever the batch size — the property replay relies on.
//!
//! Each row's output depends only on that row in exact arithmetic, but not
//! quite in `f32`: the runtimes pick GEMM/GEMV kernels by row count, so the
//! same row can come out a few ulps different in a call of 1 row than in a
//! call of 7 (measured: ~3e-8 on probabilities, ~1e-5 on a basis-point
//! regression). Where output must be bit-identical whatever the grouping —
//! replay — use [`MicroBatcher::deterministic`]:
//!
//! - on ONNX Runtime it pads: every call has exactly `call_rows` rows (the
//!   tail filled with zero rows whose outputs are discarded), so the kernels,
//!   and the bits, never depend on how many requests shared a batch (tested:
//!   identical bits grouping 1, 7, 64 or 1024 requests);
//! - on tract padding is not enough — a row's bits also depend on its
//!   position in the call (1 ulp on a few rows in a thousand) — so it calls
//!   one row at a time.
//!
//! Buffers are kept between runs: in steady state a run allocates nothing on
//! our side.

use std::sync::Arc;
use std::time::Instant;

use crate::error::InferError;
use crate::model::LoadedModel;
use crate::predictor::{Backend, Predictor};
use crate::store::ModelHandle;

/// Why one request has no result.
#[derive(Clone, Debug, PartialEq)]
pub enum RequestError {
    /// The model index is outside the slice passed to `run`.
    UnknownModel,
    /// The model has no version in service (not loaded or refused).
    ModelUnavailable,
    /// The row's length is not the model's feature count.
    WrongWidth { expected: usize, got: usize },
    /// The backend call serving this request failed.
    Failed(InferError),
}

#[derive(Clone, Copy, Debug)]
struct Request {
    model: u32,
    /// Range of the row in `MicroBatcher::pending`.
    start: u32,
    len: u32,
}

#[derive(Clone, Copy, Debug)]
enum Slot {
    Ok { start: u32, len: u32 },
    Err(u32),
}

/// Results of one [`MicroBatcher::run`], indexed like the requests.
#[derive(Debug, Default)]
pub struct BatchResults {
    slots: Vec<Slot>,
    data: Vec<f32>,
    errors: Vec<RequestError>,
    /// Per model index: the version that served this run (so a caller can
    /// record the model version with the signal).
    used: Vec<Option<Arc<LoadedModel>>>,
}

impl BatchResults {
    pub fn new() -> BatchResults {
        BatchResults::default()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The outputs of request `i` (class probabilities or the regression
    /// value), or why there are none.
    pub fn get(&self, i: usize) -> Result<&[f32], &RequestError> {
        match self.slots.get(i) {
            Some(Slot::Ok { start, len }) => {
                Ok(&self.data[*start as usize..(*start + *len) as usize])
            }
            Some(Slot::Err(e)) => Err(&self.errors[*e as usize]),
            None => Err(&RequestError::UnknownModel),
        }
    }

    /// The model version that served model index `model` in this run.
    pub fn model_used(&self, model: usize) -> Option<&Arc<LoadedModel>> {
        self.used.get(model).and_then(Option::as_ref)
    }

    fn reset(&mut self, requests: usize, models: usize) {
        self.slots.clear();
        self.slots.resize(requests, Slot::Err(0));
        self.data.clear();
        self.errors.clear();
        self.used.clear();
        self.used.resize(models, None);
    }

    fn error(&mut self, i: usize, error: RequestError) {
        self.slots[i] = Slot::Err(self.errors.len() as u32);
        self.errors.push(error);
    }
}

/// Collects requests, then runs one call per model per batch.
#[derive(Debug)]
pub struct MicroBatcher {
    max_batch_size: usize,
    /// Every call has exactly `max_batch_size` rows.
    pad: bool,
    requests: Vec<Request>,
    pending: Vec<f32>,
    /// Scratch, reused across runs.
    members: Vec<u32>,
    rows: Vec<f32>,
    out: Vec<f32>,
}

impl MicroBatcher {
    /// `max_batch_size` rows at most per backend call (at least 1).
    pub fn new(max_batch_size: usize) -> MicroBatcher {
        MicroBatcher {
            max_batch_size: max_batch_size.max(1),
            pad: false,
            requests: Vec::new(),
            pending: Vec::new(),
            members: Vec::new(),
            rows: Vec::new(),
            out: Vec::new(),
        }
    }

    /// A batcher whose every backend call has exactly `call_rows` rows, so
    /// results are bit-identical however requests are grouped (see the
    /// module docs). Costs a full call even for one request.
    pub fn padded(call_rows: usize) -> MicroBatcher {
        MicroBatcher {
            pad: true,
            ..MicroBatcher::new(call_rows)
        }
    }

    /// The batcher whose results are bit-identical however requests are
    /// grouped, on `backend` (see the module docs): padded calls of
    /// `call_rows` on ONNX Runtime, one row per call on tract.
    pub fn deterministic(backend: Backend, call_rows: usize) -> MicroBatcher {
        match backend {
            Backend::OnnxRuntime => MicroBatcher::padded(call_rows),
            Backend::Tract => MicroBatcher::new(1),
        }
    }

    pub fn is_padded(&self) -> bool {
        self.pad
    }

    pub fn max_batch_size(&self) -> usize {
        self.max_batch_size
    }

    /// Queues `row` for model index `model`; returns the request's index in
    /// the next [`BatchResults`].
    pub fn push(&mut self, model: usize, row: &[f32]) -> usize {
        self.requests.push(Request {
            model: u32::try_from(model).unwrap_or(u32::MAX),
            start: self.pending.len() as u32,
            len: row.len() as u32,
        });
        self.pending.extend_from_slice(row);
        self.requests.len() - 1
    }

    pub fn len(&self) -> usize {
        self.requests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Drops every queued request.
    pub fn clear(&mut self) {
        self.requests.clear();
        self.pending.clear();
    }

    /// Runs every queued request against `models` (indexed by the `model`
    /// given to `push`), each model's current version read once for the
    /// whole run, and empties the queue.
    pub fn run(&mut self, models: &[ModelHandle], results: &mut BatchResults) {
        let loaded: Vec<Option<Arc<LoadedModel>>> =
            models.iter().map(ModelHandle::current).collect();
        self.run_on(&loaded, Some(models), results);
    }

    /// As [`MicroBatcher::run`], on fixed model versions (no handles: the
    /// caller already resolved them, e.g. a bench or a pinned replay).
    pub fn run_loaded(&mut self, models: &[Option<Arc<LoadedModel>>], results: &mut BatchResults) {
        self.run_on(models, None, results);
    }

    fn run_on(
        &mut self,
        models: &[Option<Arc<LoadedModel>>],
        handles: Option<&[ModelHandle]>,
        results: &mut BatchResults,
    ) {
        results.reset(self.requests.len(), models.len());
        // Output offsets in request order, so results read in push order.
        let mut offset = 0u32;
        for (i, request) in self.requests.iter().enumerate() {
            let Some(slot) = models.get(request.model as usize) else {
                results.error(i, RequestError::UnknownModel);
                continue;
            };
            let Some(model) = slot else {
                results.error(i, RequestError::ModelUnavailable);
                continue;
            };
            if request.len as usize != model.n_features() {
                results.error(
                    i,
                    RequestError::WrongWidth {
                        expected: model.n_features(),
                        got: request.len as usize,
                    },
                );
                continue;
            }
            let len = model.n_outputs() as u32;
            results.slots[i] = Slot::Ok { start: offset, len };
            offset += len;
        }
        results.data.resize(offset as usize, 0.0);

        for (index, slot) in models.iter().enumerate() {
            let Some(model) = slot else { continue };
            self.members.clear();
            self.members.extend(
                self.requests
                    .iter()
                    .enumerate()
                    .filter(|(i, r)| {
                        r.model as usize == index && matches!(results.slots[*i], Slot::Ok { .. })
                    })
                    .map(|(i, _)| i as u32),
            );
            if self.members.is_empty() {
                continue;
            }
            results.used[index] = Some(Arc::clone(model));
            let (width_in, width_out) = (model.n_features(), model.n_outputs());
            let members = std::mem::take(&mut self.members);
            for chunk in members.chunks(self.max_batch_size) {
                self.rows.clear();
                for &i in chunk {
                    let r = self.requests[i as usize];
                    self.rows.extend_from_slice(
                        &self.pending[r.start as usize..(r.start + r.len) as usize],
                    );
                }
                let call_rows = if self.pad {
                    self.max_batch_size
                } else {
                    chunk.len()
                };
                self.rows.resize(call_rows * width_in, 0.0);
                self.out.clear();
                self.out.resize(call_rows * width_out, 0.0);
                let started = Instant::now();
                let outcome = model.predict(&self.rows, &mut self.out);
                if let Some(handle) = handles.map(|h| &h[index]) {
                    // Refused without running: not a call.
                    if !matches!(outcome, Err(InferError::OutOfService { .. })) {
                        handle.stats().record_batch(
                            chunk.len(),
                            started.elapsed(),
                            outcome.is_ok(),
                        );
                    }
                    if outcome.as_ref().is_err_and(InferError::is_deadline) {
                        handle.retire(model);
                    }
                }
                match outcome {
                    Ok(_) => {
                        for (k, &i) in chunk.iter().enumerate() {
                            if let Slot::Ok { start, len } = results.slots[i as usize] {
                                results.data[start as usize..(start + len) as usize]
                                    .copy_from_slice(&self.out[k * width_out..(k + 1) * width_out]);
                            }
                        }
                    }
                    // The same answer as for a model never loaded: the
                    // strategy cannot tell a retired version from a refused one.
                    Err(InferError::OutOfService { .. }) => {
                        for &i in chunk {
                            results.error(i as usize, RequestError::ModelUnavailable);
                        }
                    }
                    Err(err) => {
                        for &i in chunk {
                            results.error(i as usize, RequestError::Failed(err.clone()));
                        }
                    }
                }
            }
            self.members = members;
        }
        self.clear();
    }
}
