//! Loading one model: checksum, signature, backend, warm-up — everything that
//! can refuse a model happens here, at load, never at the first tick.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::deadline::{call_within, DEFAULT_DEADLINE};
use crate::error::{InferError, LoadError, OrtUnavailable};
use crate::graph::{bare_operator, ElemType, ModelGraph, TRACT_REFUSED};
use crate::ort_backend::OrtRuntime;
use crate::predictor::{Backend, BackendChoice, Predictor};
use crate::registry::ModelSpec;
use crate::tract_backend::TractPredictor;

/// What a model refused by tract should do instead.
pub const INSTALL_ORT_HINT: &str = "run it on ONNX Runtime: `scripts/fetch_onnxruntime.sh` \
     fetches libonnxruntime.so; point ORT_DYLIB_PATH at the path it prints";

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut text = String::with_capacity(64);
    for byte in digest.iter() {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// A model verified, loaded and warmed up on one backend.
pub struct LoadedModel {
    pub spec: ModelSpec,
    pub backend: Backend,
    /// SHA-256 of the bytes that were loaded (equal to `spec.sha256`).
    pub sha256: String,
    pub graph: ModelGraph,
    /// Name of the output tensor read.
    pub output: String,
    /// Read, verify, build and warm-up time (`model_load_seconds`).
    pub load_time: Duration,
    /// Every call's deadline: the registry's `deadline_ms`, else the
    /// loader's (see [`crate::deadline`]).
    pub deadline: Duration,
    /// The call that exceeded `deadline`, once one has: this version is out
    /// of service for good.
    overdue: OnceLock<InferError>,
    predictor: Box<dyn Predictor>,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("name", &self.spec.name)
            .field("version", &self.spec.version)
            .field("backend", &self.backend)
            .field("load_time", &self.load_time)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl LoadedModel {
    /// Wraps a predictor that did not come from an ONNX file (a test double,
    /// or a model built in code), so it can sit in a [`crate::ModelHandle`]
    /// and go through the batcher and the pool like any other. Its
    /// signature must match `spec` (feature count and output width).
    pub fn from_predictor(
        spec: ModelSpec,
        predictor: Box<dyn Predictor>,
    ) -> Result<LoadedModel, LoadError> {
        if predictor.n_features() != spec.n_features || predictor.n_outputs() != spec.output.width()
        {
            return Err(LoadError::Signature {
                model: spec.name.clone(),
                message: format!(
                    "predictor takes {} features and writes {} values, the spec says {} and {}",
                    predictor.n_features(),
                    predictor.n_outputs(),
                    spec.n_features,
                    spec.output.width()
                ),
            });
        }
        Ok(LoadedModel {
            backend: predictor.backend(),
            sha256: spec.sha256.clone(),
            graph: ModelGraph::default(),
            output: String::new(),
            load_time: Duration::ZERO,
            deadline: spec.deadline.unwrap_or(DEFAULT_DEADLINE),
            overdue: OnceLock::new(),
            spec,
            predictor,
        })
    }

    /// The same model with every call held to `deadline` instead.
    pub fn with_deadline(mut self, deadline: Duration) -> LoadedModel {
        self.deadline = deadline;
        self
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn version(&self) -> &str {
        &self.spec.version
    }

    /// The backend's predictor itself, with no deadline: benches and tests
    /// that measure the backend. Serving goes through [`LoadedModel`]'s own
    /// [`Predictor::predict`].
    pub fn predictor(&self) -> &dyn Predictor {
        self.predictor.as_ref()
    }

    /// Why this version is out of service: the call that exceeded its
    /// deadline ([`InferError::DeadlineExceeded`]). `None` while in service.
    pub fn overdue(&self) -> Option<&InferError> {
        self.overdue.get()
    }

    fn out_of_service(&self) -> InferError {
        InferError::OutOfService {
            model: self.spec.name.clone(),
            deadline: self.deadline,
        }
    }

    pub fn load_seconds(&self) -> f64 {
        self.load_time.as_secs_f64()
    }
}

impl Predictor for LoadedModel {
    fn backend(&self) -> Backend {
        self.backend
    }

    fn n_features(&self) -> usize {
        self.predictor.n_features()
    }

    fn n_outputs(&self) -> usize {
        self.predictor.n_outputs()
    }

    /// Runs the backend within [`LoadedModel::deadline`]. The first call
    /// over it takes this version out of service, named in the log; later
    /// calls are refused with [`InferError::OutOfService`] without running.
    fn predict(&self, rows: &[f32], out: &mut [f32]) -> Result<usize, InferError> {
        if self.overdue.get().is_some() {
            return Err(self.out_of_service());
        }
        let result = call_within(
            self.predictor.as_ref(),
            &self.spec.name,
            self.deadline,
            rows,
            out,
        );
        if let Err(err @ InferError::DeadlineExceeded { elapsed, .. }) = &result {
            if self.overdue.set(err.clone()).is_err() {
                // Another call got there first and was already reported.
                return Err(self.out_of_service());
            }
            tracing::error!(
                model = %self.spec.name,
                version = %self.spec.version,
                backend = %self.backend,
                deadline_ms = self.deadline.as_secs_f64() * 1e3,
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                "model taken out of service: {err}"
            );
        }
        result
    }
}

/// Turns registry entries into [`LoadedModel`]s on one backend.
///
/// Built once per process: it decides between ONNX Runtime and tract, so
/// every model of a run uses the same backend.
#[derive(Clone, Debug)]
pub struct Loader {
    choice: BackendChoice,
    ort: Option<Arc<OrtRuntime>>,
    ort_error: Option<OrtUnavailable>,
    /// Deadline of every call of a model whose registry entry gives none.
    deadline: Duration,
}

impl Loader {
    /// A loader for `choice`. For `Auto` and `OnnxRuntime` it loads ONNX
    /// Runtime from `ort_dylib` or `$ORT_DYLIB_PATH`; under `Auto` a missing
    /// library means tract, under `OnnxRuntime` it makes every load fail
    /// with the reason.
    pub fn new(choice: BackendChoice, ort_dylib: Option<&Path>) -> Loader {
        let (ort, ort_error) = match choice {
            BackendChoice::Tract => (None, None),
            BackendChoice::Auto | BackendChoice::OnnxRuntime => match OrtRuntime::load(ort_dylib) {
                Ok(runtime) => (Some(runtime), None),
                Err(err) => (None, Some(err)),
            },
        };
        Loader {
            choice,
            ort,
            ort_error,
            deadline: DEFAULT_DEADLINE,
        }
    }

    /// The same loader with `deadline` for every call (warm-up included) of
    /// models whose registry entry sets no `deadline_ms`; the default is
    /// [`DEFAULT_DEADLINE`].
    pub fn with_deadline(mut self, deadline: Duration) -> Loader {
        self.deadline = deadline;
        self
    }

    /// The deadline of models whose registry entry sets none.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The backend models will run on; `None` when ONNX Runtime was required
    /// and is unavailable.
    pub fn backend(&self) -> Option<Backend> {
        match (self.choice, &self.ort) {
            (BackendChoice::Tract, _) => Some(Backend::Tract),
            (_, Some(_)) => Some(Backend::OnnxRuntime),
            (BackendChoice::Auto, None) => Some(Backend::Tract),
            (BackendChoice::OnnxRuntime, None) => None,
        }
    }

    /// Why ONNX Runtime is not in use, when it was tried and failed.
    pub fn ort_unavailable(&self) -> Option<&OrtUnavailable> {
        self.ort_error.as_ref()
    }

    /// The ONNX Runtime library in use.
    pub fn ort_dylib(&self) -> Option<PathBuf> {
        self.ort.as_ref().map(|r| r.dylib().to_owned())
    }

    /// Reads `spec.path` and loads it (see [`Loader::load_bytes`]).
    pub fn load(&self, spec: &ModelSpec) -> Result<LoadedModel, LoadError> {
        let started = Instant::now();
        let limit = quiver_config::files::MODEL_FILE_LIMIT;
        let bytes =
            quiver_config::files::read_regular(&spec.path, limit).map_err(|e| LoadError::Read {
                model: spec.name.clone(),
                path: spec.path.clone(),
                message: e.to_string(),
            })?;
        self.load_bytes_since(spec, &bytes, started)
    }

    /// Verifies `bytes` against the registry's sha256 before anything parses
    /// them, checks the declared signature against the graph, builds the
    /// backend's session and runs one warm-up row, so that whatever would
    /// fail at the first tick fails here instead. The checksum is taken over
    /// the very bytes that are loaded: the file cannot change in between.
    pub fn load_bytes(&self, spec: &ModelSpec, bytes: &[u8]) -> Result<LoadedModel, LoadError> {
        self.load_bytes_since(spec, bytes, Instant::now())
    }

    fn load_bytes_since(
        &self,
        spec: &ModelSpec,
        bytes: &[u8],
        started: Instant,
    ) -> Result<LoadedModel, LoadError> {
        let model = spec.name.clone();
        let actual = sha256_hex(bytes);
        if actual != spec.sha256 {
            return Err(LoadError::Checksum {
                model,
                path: spec.path.clone(),
                expected: spec.sha256.clone(),
                actual,
            });
        }
        let graph = ModelGraph::parse(bytes).map_err(|message| LoadError::Malformed {
            model: model.clone(),
            path: spec.path.clone(),
            message,
        })?;
        let signature = |message: String| LoadError::Signature {
            model: model.clone(),
            message,
        };
        let input = match graph.inputs.as_slice() {
            [input] => input,
            inputs => {
                return Err(signature(format!(
                    "expected one input tensor, the model has {}",
                    inputs.len()
                )))
            }
        };
        if input.elem != Some(ElemType::F32) {
            return Err(signature(format!(
                "input {:?} is {}, the registry declares f32",
                input.name,
                input.render()
            )));
        }
        if let Some(Some(width)) = input.shape.as_ref().and_then(|s| s.last()) {
            if *width as usize != spec.n_features || input.shape.as_ref().map(Vec::len) != Some(2) {
                return Err(signature(format!(
                    "input {:?} is {}, the registry declares {} features",
                    input.name,
                    input.render(),
                    spec.n_features
                )));
            }
        }
        let (_, output) = graph
            .select_output(spec.output.tensor())
            .map_err(&signature)?;
        let width = spec.output.width();
        if output.elem != Some(ElemType::F32) {
            return Err(signature(format!(
                "output {:?} is {}, expected f32 {}",
                output.name,
                output.render(),
                if spec.output.is_classifier() {
                    "probabilities"
                } else {
                    "values"
                }
            )));
        }
        if let Some(Some(last)) = output.shape.as_ref().and_then(|s| s.last()) {
            let rank = output.shape.as_ref().map_or(0, Vec::len);
            if *last as usize != width || !(1..=2).contains(&rank) {
                return Err(signature(format!(
                    "output {:?} is {}, the registry declares {width} value(s) per row",
                    output.name,
                    output.render()
                )));
            }
        }
        let input_name = input.name.clone();
        let output_name = output.name.clone();

        let backend = match (self.choice, &self.ort) {
            (BackendChoice::Tract, _) | (BackendChoice::Auto, None) => Backend::Tract,
            (_, Some(_)) => Backend::OnnxRuntime,
            (BackendChoice::OnnxRuntime, None) => {
                return Err(LoadError::OrtUnavailable {
                    model,
                    reason: self
                        .ort_error
                        .clone()
                        .unwrap_or(OrtUnavailable::NotConfigured),
                })
            }
        };
        let built: Result<Box<dyn Predictor>, String> = match (backend, &self.ort) {
            (Backend::OnnxRuntime, Some(runtime)) => runtime
                .session(
                    &model,
                    bytes,
                    &input_name,
                    &output_name,
                    spec.n_features,
                    width,
                )
                .map(|p| Box::new(p) as Box<dyn Predictor>),
            _ => {
                check_tract_operators(&model, &graph, &output_name)?;
                TractPredictor::new(&model, bytes, &output_name, spec.n_features, width)
                    .map(|p| Box::new(p) as Box<dyn Predictor>)
            }
        };
        let predictor = built.map_err(|message| LoadError::Backend {
            model: model.clone(),
            backend: backend.as_str(),
            message,
        })?;
        let deadline = spec.deadline.unwrap_or(self.deadline);
        let zeros = vec![0.0f32; spec.n_features];
        let mut out = vec![0.0f32; width];
        match call_within(predictor.as_ref(), &model, deadline, &zeros, &mut out) {
            Ok(_) => {}
            Err(InferError::DeadlineExceeded {
                elapsed,
                interrupted,
                ..
            }) => {
                return Err(LoadError::WarmUpDeadline {
                    model,
                    backend: backend.as_str(),
                    deadline,
                    elapsed,
                    interrupted,
                })
            }
            Err(e) => {
                return Err(LoadError::Backend {
                    model,
                    backend: backend.as_str(),
                    message: format!("warm-up inference failed: {e}"),
                })
            }
        }
        Ok(LoadedModel {
            spec: spec.clone(),
            backend,
            sha256: actual,
            graph,
            output: output_name,
            load_time: started.elapsed(),
            deadline,
            overdue: OnceLock::new(),
            predictor,
        })
    }
}

/// Refuses, naming the operator, a model whose `output` needs an operator
/// tract lacks or is not trusted with (tree ensembles, ZipMap).
fn check_tract_operators(model: &str, graph: &ModelGraph, output: &str) -> Result<(), LoadError> {
    let ops = graph.operators_for(output);
    if let Some(op) = ops
        .iter()
        .find(|op| TRACT_REFUSED.contains(&bare_operator(op)))
    {
        let bare = bare_operator(op);
        let why = if bare == "ZipMap" {
            "tract does not implement ZipMap (export classifiers with zipmap=False)"
        } else {
            "tract runs tree ensembles ~100x slower than ONNX Runtime and mislabels some"
        };
        return Err(LoadError::UnsupportedOperator {
            model: model.to_owned(),
            operator: op.clone(),
            backend: Backend::Tract.as_str(),
            hint: format!("{why}; {INSTALL_ORT_HINT}"),
        });
    }
    let register = tract_onnx::onnx().op_register;
    if let Some(op) = ops
        .iter()
        .find(|op| !register.0.contains_key(bare_operator(op)))
    {
        return Err(LoadError::UnsupportedOperator {
            model: model.to_owned(),
            operator: op.clone(),
            backend: Backend::Tract.as_str(),
            hint: format!("tract has no implementation; {INSTALL_ORT_HINT}"),
        });
    }
    Ok(())
}
