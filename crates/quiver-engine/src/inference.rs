//! The engine's side of model inference: the requests it collects, the
//! contract of whatever runs them, and the results that come back.
//!
//! The engine stays pure: it never loads or runs a model. Strategies with a
//! model write one feature row per evaluation; [`Engine::flush`] hands every
//! row queued since the last flush to a [`ModelRunner`] in one call, then
//! applies the results in (tick sequence, strategy order). Adapters implement
//! the runner — a micro-batcher in replay, a worker pool with a deadline in
//! live — and may group the rows however they like.
//!
//! [`Engine::flush`]: crate::Engine::flush

use crate::index::ModelIdx;

/// One inference request: a row of `len` features for engine model `model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelRequest {
    /// Index into [`ModelBatch::models`].
    pub model: ModelIdx,
    /// Range of the row in [`ModelBatch::rows`].
    pub start: u32,
    pub len: u32,
}

/// Every request queued since the last flush, in the order their results
/// will be applied.
#[derive(Clone, Copy, Debug)]
pub struct ModelBatch<'a> {
    /// Engine model index → the registry name strategies asked for.
    pub models: &'a [String],
    pub requests: &'a [ModelRequest],
    /// The rows of all requests, back to back.
    pub rows: &'a [f32],
}

impl<'a> ModelBatch<'a> {
    /// The feature row of request `i`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        let r = self.requests[i];
        &self.rows[r.start as usize..(r.start + r.len) as usize]
    }
}

/// Why a request has no result. Each is counted; the strategy decides as it
/// would without a model (HOLD for pure ML).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unavailable {
    /// The model is not loaded or was refused (checksum, load error).
    OutOfService,
    /// Live only: the inference pool's queue was full.
    QueueFull,
    /// Live only: no result within the inference timeout.
    TimedOut,
    /// The runtime failed on the batch, or the runner gave no result.
    Failed,
}

impl Unavailable {
    pub const ALL: [Unavailable; 4] = [
        Unavailable::OutOfService,
        Unavailable::QueueFull,
        Unavailable::TimedOut,
        Unavailable::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Unavailable::OutOfService => "model_unavailable",
            Unavailable::QueueFull => "queue_full",
            Unavailable::TimedOut => "timeout",
            Unavailable::Failed => "inference_failed",
        }
    }

    pub(crate) fn slot(self) -> usize {
        self as usize
    }
}

/// Runs the models of a [`ModelBatch`].
pub trait ModelRunner {
    /// Writes, for every request of `batch`, its outputs or why there are
    /// none, and for every model that served a request the version that did.
    /// `results` arrives reset for `batch`; a request left untouched counts
    /// as [`Unavailable::Failed`].
    fn run(&mut self, batch: &ModelBatch<'_>, results: &mut ModelResults);
}

/// Results of one [`ModelRunner::run`], indexed like the requests. Buffers
/// are reused across flushes.
#[derive(Clone, Debug, Default)]
pub struct ModelResults {
    slots: Vec<Result<(u32, u32), Unavailable>>,
    outputs: Vec<f32>,
    /// Per model: the version that served this batch ("" when none did).
    versions: Vec<String>,
}

impl ModelResults {
    /// Empties the results and sizes them for `batch`: every request
    /// without a result until [`set`](ModelResults::set) or
    /// [`fail`](ModelResults::fail) says otherwise.
    pub fn reset_for(&mut self, batch: &ModelBatch<'_>) {
        let (requests, models) = (batch.requests.len(), batch.models.len());
        self.slots.clear();
        self.slots.resize(requests, Err(Unavailable::Failed));
        self.outputs.clear();
        self.versions.resize(models, String::new());
        for v in &mut self.versions {
            v.clear();
        }
    }

    /// Records the outputs of request `i`.
    pub fn set(&mut self, i: usize, outputs: &[f32]) {
        if let Some(slot) = self.slots.get_mut(i) {
            let start = self.outputs.len() as u32;
            self.outputs.extend_from_slice(outputs);
            *slot = Ok((start, outputs.len() as u32));
        }
    }

    /// Records why request `i` has no result.
    pub fn fail(&mut self, i: usize, why: Unavailable) {
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Err(why);
        }
    }

    /// Records the version of engine model `model` that served this batch.
    pub fn set_version(&mut self, model: ModelIdx, version: &str) {
        if let Some(v) = self.versions.get_mut(model.index()) {
            v.clear();
            v.push_str(version);
        }
    }

    pub fn get(&self, i: usize) -> Result<&[f32], Unavailable> {
        match self.slots.get(i) {
            Some(Ok((start, len))) => Ok(&self.outputs[*start as usize..(*start + *len) as usize]),
            Some(Err(why)) => Err(*why),
            None => Err(Unavailable::Failed),
        }
    }

    pub(crate) fn version(&self, model: ModelIdx) -> &str {
        self.versions.get(model.index()).map_or("", String::as_str)
    }
}

/// Which model version produced a signal: engine model index and the index
/// of the version in [`Engine::model_version`](crate::Engine::model_version).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModelStamp {
    pub model: ModelIdx,
    pub version: u32,
}
