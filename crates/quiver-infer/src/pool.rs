//! The live-mode inference pool: a bounded queue in front of worker threads
//! that micro-batch what they find in it.
//!
//! The tick loop must never wait on a model. [`InferencePool::submit`] only
//! ever does a non-blocking send: a full queue is an immediate, typed refusal
//! (the caller turns the decision into HOLD and counts it). A request still
//! queued when its deadline passes is answered [`DropReason::TimedOut`]
//! without being run; one whose inference finished after its deadline is
//! answered `TimedOut` too, so a late result can never be mistaken for a
//! timely one. Results come back on a channel the caller drains without
//! blocking ([`InferencePool::try_recv`]), tagged with the caller's `tag`
//! (e.g. tick sequence and strategy index) so it can apply them in order.
//!
//! Each backend call a worker makes is also held to its model's own deadline
//! ([`crate::deadline`]): a call over it is answered [`DropReason::Failed`]
//! and the model retired, later requests for it [`DropReason::ModelUnavailable`],
//! so a model that never returns holds a worker only until its deadline (on
//! ONNX Runtime; tract calls run to their end).
//!
//! Replay does not use the pool: it batches synchronously with
//! [`MicroBatcher`] and never times out, which keeps it deterministic.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender, TrySendError};

use crate::batch::{BatchResults, MicroBatcher, RequestError};
use crate::store::ModelHandle;

/// Pool sizing (the seeds' `STRATEGY__*` settings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Worker threads (`STRATEGY__MAX_ML_WORKERS`), at least 1.
    pub workers: usize,
    /// Requests queued at most (`STRATEGY__ML_POOL_QUEUE_SIZE`), at least 1.
    pub queue_size: usize,
    /// Rows per backend call at most (`STRATEGY__MAX_BATCH_SIZE`).
    pub max_batch_size: usize,
    /// How long a worker holding a partial batch waits for more requests
    /// (`STRATEGY__BATCH_WINDOW_MS`). Zero: take what is queued and go.
    pub batch_window: Duration,
    /// From submit to result (`STRATEGY__INFERENCE_TIMEOUT_SECONDS`).
    pub timeout: Duration,
    /// Run batches with [`MicroBatcher::deterministic`] on this backend
    /// (calls of exactly `max_batch_size` rows), so a result's bits do not
    /// depend on how requests happened to be grouped — the same bits as a
    /// replay with that many call rows.
    pub deterministic: Option<crate::predictor::Backend>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            workers: 1,
            queue_size: 1024,
            max_batch_size: 64,
            batch_window: Duration::from_millis(2),
            timeout: Duration::from_millis(100),
            deterministic: None,
        }
    }
}

/// Why a request produced no inference result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// The queue was full at submit.
    QueueFull,
    /// The deadline passed before the result was ready.
    TimedOut,
    /// The model has no version in service.
    ModelUnavailable,
    /// The model index is unknown, or the row has the wrong width.
    BadRequest,
    /// The backend failed (or panicked) on the batch.
    Failed,
    /// The pool is shutting down.
    ShuttingDown,
}

impl DropReason {
    pub const ALL: [DropReason; 6] = [
        DropReason::QueueFull,
        DropReason::TimedOut,
        DropReason::ModelUnavailable,
        DropReason::BadRequest,
        DropReason::Failed,
        DropReason::ShuttingDown,
    ];

    /// The bounded `reason` label of `inference_dropped_total`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::TimedOut => "timed_out",
            DropReason::ModelUnavailable => "model_unavailable",
            DropReason::BadRequest => "bad_request",
            DropReason::Failed => "failed",
            DropReason::ShuttingDown => "shutting_down",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// A short `f32` vector stored inline up to 16 values, so requests and
/// results of typical models cross the queue without a heap allocation.
#[derive(Clone, Debug, PartialEq)]
pub struct Values {
    len: usize,
    inline: [f32; Values::INLINE],
    heap: Option<Box<[f32]>>,
}

impl Values {
    pub const INLINE: usize = 16;

    pub fn from_slice(values: &[f32]) -> Values {
        let mut v = Values {
            len: values.len(),
            inline: [0.0; Values::INLINE],
            heap: None,
        };
        if values.len() <= Values::INLINE {
            v.inline[..values.len()].copy_from_slice(values);
        } else {
            v.heap = Some(values.into());
        }
        v
    }

    pub fn as_slice(&self) -> &[f32] {
        match &self.heap {
            Some(heap) => heap,
            None => &self.inline[..self.len],
        }
    }
}

/// What came of one submitted request.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The model's outputs for the row, from model `version`.
    Done {
        outputs: Values,
        version: Arc<str>,
    },
    Dropped(DropReason),
}

/// One answer, for the request submitted with `tag`.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolResult {
    pub tag: u64,
    pub model: usize,
    pub outcome: Outcome,
}

/// An accepted request: its result arrives by `deadline`, or as `TimedOut`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub tag: u64,
    pub deadline: Instant,
}

struct Job {
    tag: u64,
    model: usize,
    row: Values,
    submitted: Instant,
    deadline: Instant,
}

/// Pool counters; the telemetry crate reads [`PoolStats::snapshot`].
#[derive(Debug, Default)]
pub(crate) struct PoolStats {
    submitted: AtomicU64,
    completed: AtomicU64,
    batches: AtomicU64,
    dropped: [AtomicU64; 6],
}

impl PoolStats {
    fn drop_one(&self, reason: DropReason) {
        self.dropped[reason.index()].fetch_add(1, Ordering::Relaxed);
    }
}

/// [`PoolStats`] at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStatsSnapshot {
    /// Requests accepted into the queue.
    pub submitted: u64,
    /// Requests answered with outputs.
    pub completed: u64,
    /// Batches the workers ran (all models of one batch count once).
    pub batches: u64,
    /// Requests waiting in the queue now.
    pub queue_depth: usize,
    /// By reason, in [`DropReason::ALL`] order.
    pub dropped: Vec<(DropReason, u64)>,
}

impl PoolStatsSnapshot {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }
}

/// A bounded pool of inference workers over a fixed set of model handles
/// (hot swaps are picked up: workers read each handle's current version per
/// batch).
pub struct InferencePool {
    config: PoolConfig,
    jobs: Option<Sender<Job>>,
    results: Receiver<PoolResult>,
    workers: Vec<JoinHandle<()>>,
    stats: Arc<PoolStats>,
    models: usize,
}

impl std::fmt::Debug for InferencePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferencePool")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl InferencePool {
    /// Starts `config.workers` threads serving `models` (model index `i` of
    /// [`InferencePool::submit`] is `models[i]`).
    pub fn new(config: PoolConfig, models: Vec<ModelHandle>) -> std::io::Result<InferencePool> {
        let config = PoolConfig {
            workers: config.workers.max(1),
            queue_size: config.queue_size.max(1),
            max_batch_size: config.max_batch_size.max(1),
            ..config
        };
        let (jobs_tx, jobs_rx) = bounded::<Job>(config.queue_size);
        let (results_tx, results_rx) = unbounded::<PoolResult>();
        let stats = Arc::new(PoolStats::default());
        let models = Arc::new(models);
        let mut workers = Vec::with_capacity(config.workers);
        for n in 0..config.workers {
            let worker = Worker {
                jobs: jobs_rx.clone(),
                results: results_tx.clone(),
                models: Arc::clone(&models),
                stats: Arc::clone(&stats),
                max_batch_size: config.max_batch_size,
                window: config.batch_window,
                deterministic: config.deterministic,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("quiver-infer-{n}"))
                .spawn(move || worker.run());
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(err) => {
                    drop(jobs_tx);
                    for handle in workers {
                        let _ = handle.join();
                    }
                    return Err(err);
                }
            }
        }
        Ok(InferencePool {
            config,
            jobs: Some(jobs_tx),
            results: results_rx,
            workers,
            stats,
            models: models.len(),
        })
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Queues `row` for model index `model`. Never blocks: a full queue or a
    /// bad request is refused at once, counted, and returned as the reason.
    pub fn submit(&self, model: usize, row: &[f32], tag: u64) -> Result<Ticket, DropReason> {
        self.submit_at(model, row, tag, Instant::now())
    }

    /// As [`InferencePool::submit`], with the submit time given (the time
    /// the tick arrived, so queueing before submit counts too).
    pub fn submit_at(
        &self,
        model: usize,
        row: &[f32],
        tag: u64,
        now: Instant,
    ) -> Result<Ticket, DropReason> {
        let refuse = |reason: DropReason| {
            self.stats.drop_one(reason);
            Err(reason)
        };
        if model >= self.models {
            return refuse(DropReason::BadRequest);
        }
        let Some(jobs) = &self.jobs else {
            return refuse(DropReason::ShuttingDown);
        };
        let deadline = now + self.config.timeout;
        let job = Job {
            tag,
            model,
            row: Values::from_slice(row),
            submitted: now,
            deadline,
        };
        match jobs.try_send(job) {
            Ok(()) => {
                self.stats.submitted.fetch_add(1, Ordering::Relaxed);
                Ok(Ticket { tag, deadline })
            }
            Err(TrySendError::Full(_)) => refuse(DropReason::QueueFull),
            Err(TrySendError::Disconnected(_)) => refuse(DropReason::ShuttingDown),
        }
    }

    /// The next result, if one is ready. Never blocks.
    pub fn try_recv(&self) -> Option<PoolResult> {
        self.results.try_recv().ok()
    }

    /// Appends every ready result to `out`; returns how many. Never blocks.
    pub fn drain_into(&self, out: &mut Vec<PoolResult>) -> usize {
        let before = out.len();
        out.extend(self.results.try_iter());
        out.len() - before
    }

    /// Waits up to `timeout` for a result (for callers that may wait: tests,
    /// a drain at shutdown). `None` on timeout.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<PoolResult> {
        self.results.recv_timeout(timeout).ok()
    }

    /// Requests waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.jobs.as_ref().map_or(0, Sender::len)
    }

    pub fn stats(&self) -> PoolStatsSnapshot {
        PoolStatsSnapshot {
            submitted: self.stats.submitted.load(Ordering::Relaxed),
            completed: self.stats.completed.load(Ordering::Relaxed),
            batches: self.stats.batches.load(Ordering::Relaxed),
            queue_depth: self.queue_depth(),
            dropped: DropReason::ALL
                .iter()
                .map(|r| (*r, self.stats.dropped[r.index()].load(Ordering::Relaxed)))
                .collect(),
        }
    }

    /// Stops accepting requests, lets the workers answer what is queued, and
    /// joins them. Results stay readable afterwards.
    pub fn shutdown(&mut self) {
        self.jobs = None;
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for InferencePool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Worker {
    jobs: Receiver<Job>,
    results: Sender<PoolResult>,
    models: Arc<Vec<ModelHandle>>,
    stats: Arc<PoolStats>,
    max_batch_size: usize,
    window: Duration,
    deterministic: Option<crate::predictor::Backend>,
}

impl Worker {
    fn run(self) {
        let mut batcher = match self.deterministic {
            Some(backend) => MicroBatcher::deterministic(backend, self.max_batch_size),
            None => MicroBatcher::new(self.max_batch_size),
        };
        let mut results = BatchResults::new();
        let mut batch: Vec<Job> = Vec::with_capacity(self.max_batch_size);
        let mut live: Vec<Job> = Vec::with_capacity(self.max_batch_size);
        // Blocks only this worker, and ends when the pool drops the sender.
        while let Ok(first) = self.jobs.recv() {
            let window_end = first.submitted + self.window;
            batch.push(first);
            while batch.len() < self.max_batch_size {
                if let Ok(job) = self.jobs.try_recv() {
                    batch.push(job);
                    continue;
                }
                // Nothing queued: wait for more only inside the window.
                match self.jobs.recv_deadline(window_end) {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.serve(&mut batch, &mut live, &mut batcher, &mut results);
        }
    }

    /// Answers one gathered batch. `live` is scratch, kept across batches so
    /// a steady stream does not allocate here.
    fn serve(
        &self,
        batch: &mut Vec<Job>,
        live: &mut Vec<Job>,
        batcher: &mut MicroBatcher,
        results: &mut BatchResults,
    ) {
        let now = Instant::now();
        live.clear();
        for job in batch.drain(..) {
            if now > job.deadline {
                self.answer(job.tag, job.model, Outcome::Dropped(DropReason::TimedOut));
            } else {
                live.push(job);
            }
        }
        if live.is_empty() {
            return;
        }
        for job in live.iter() {
            batcher.push(job.model, job.row.as_slice());
        }
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        let ran = catch_unwind(AssertUnwindSafe(|| batcher.run(&self.models, results)));
        let finished = Instant::now();
        for (i, job) in live.drain(..).enumerate() {
            let outcome = match (&ran, results.get(i)) {
                (Err(_), _) => Outcome::Dropped(DropReason::Failed),
                _ if finished > job.deadline => Outcome::Dropped(DropReason::TimedOut),
                (Ok(()), Ok(outputs)) => Outcome::Done {
                    outputs: Values::from_slice(outputs),
                    version: results
                        .model_used(job.model)
                        .map(|m| Arc::from(m.version()))
                        .unwrap_or_else(|| Arc::from("")),
                },
                (Ok(()), Err(RequestError::ModelUnavailable)) => {
                    Outcome::Dropped(DropReason::ModelUnavailable)
                }
                (Ok(()), Err(RequestError::UnknownModel | RequestError::WrongWidth { .. })) => {
                    Outcome::Dropped(DropReason::BadRequest)
                }
                (Ok(()), Err(RequestError::Failed(_))) => Outcome::Dropped(DropReason::Failed),
            };
            self.answer(job.tag, job.model, outcome);
        }
        if ran.is_err() {
            // The batcher's queue may be half-consumed after a panic.
            batcher.clear();
        }
    }

    fn answer(&self, tag: u64, model: usize, outcome: Outcome) {
        match &outcome {
            Outcome::Done { .. } => {
                self.stats.completed.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Dropped(reason) => self.stats.drop_one(*reason),
        }
        // The pool owns the receiver; if it is gone nobody wants the result.
        let _ = self.results.send(PoolResult {
            tag,
            model,
            outcome,
        });
    }
}
