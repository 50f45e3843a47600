//! ML inference for quiver: the model registry, ONNX models behind one
//! [`Predictor`] trait, micro-batching and the live-mode inference pool.
//!
//! An adapter crate: it reads model files and owns the runtimes, so it stays
//! out of the pure core. It is synchronous (std threads, no async runtime).
//!
//! - [`registry`]: the registry file (name, path, sha256, version, framework,
//!   input signature, output semantics, regime, active), validated with
//!   `file:line: path: message` errors.
//! - Two backends: ONNX Runtime ([`OrtRuntime`], the default whenever
//!   `libonnxruntime.so` loads) and tract ([`TractPredictor`], pure Rust,
//!   the fallback; it refuses tree ensembles at load, naming the operator).
//! - [`Loader`] verifies the sha256 of the exact bytes it loads, checks the
//!   declared signature against the graph and warms the model up: a model
//!   that cannot run is refused at load, never at the first tick.
//! - [`ModelStore`] / [`ModelHandle`]: lazy or eager loading, lock-free reads
//!   on the hot path, atomic hot swap with rollback on a failed load.
//! - [`MicroBatcher`]: one backend call per model per batch, results in
//!   request order (replay). [`InferencePool`]: bounded queue + workers that
//!   never block the caller (live).
//! - [`deadline`]: every backend call has a deadline, in every mode; ONNX
//!   Runtime calls past it are stopped by one watchdog thread, tract calls
//!   are timed; a model over it is out of service until reloaded.
//! - [`stats`]: counters for the metrics endpoint.
//!
//! Classes come from the argmax of the probabilities and the registry's
//! class list ([`ModelSpec::class_of`]), never from a model's label output.

pub mod batch;
pub mod deadline;
pub mod error;
pub mod graph;
pub mod model;
pub mod ort_backend;
pub mod pool;
pub mod predictor;
pub mod registry;
pub mod stats;
pub mod store;
pub mod tract_backend;

pub use batch::{BatchResults, MicroBatcher, RequestError};
pub use deadline::{Interrupt, Watchdog, DEFAULT_DEADLINE, MAX_DEADLINE};
pub use error::{InferError, LoadError, OrtUnavailable, RegistryError, RegistryIssue};
pub use graph::{ModelGraph, TensorInfo};
pub use model::{sha256_hex, LoadedModel, Loader};
pub use ort_backend::{OrtPredictor, OrtRuntime, ORT_DYLIB_ENV};
pub use pool::{
    DropReason, InferencePool, Outcome, PoolConfig, PoolResult, PoolStatsSnapshot, Ticket, Values,
};
pub use predictor::{Backend, BackendChoice, Predictor};
pub use registry::{argmax_class, Dtype, Framework, ModelSpec, OutputSpec, Registry};
pub use stats::{HistogramSnapshot, ModelStats, ModelStatsSnapshot};
pub use store::{Change, LoadPolicy, ModelHandle, ModelStatus, ModelStore, StoreOptions};
pub use tract_backend::TractPredictor;
