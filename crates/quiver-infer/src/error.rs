//! Error types. Every message names what it is about (file, model, field,
//! operator) so an operator can act on it without reading code.

use std::path::PathBuf;
use std::time::Duration;

use crate::deadline::millis;

/// Why an inference call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InferError {
    /// The caller's buffers do not fit the model's signature.
    #[error("model {model}: {message}")]
    Shape { model: String, message: String },
    /// The runtime failed while running the model.
    #[error("model {model}: {backend} inference failed: {message}")]
    Runtime {
        model: String,
        backend: &'static str,
        message: String,
    },
    /// The backend stopped the call at its deadline (the watchdog raised
    /// its terminate flag). [`crate::LoadedModel`] reports it as
    /// [`InferError::DeadlineExceeded`].
    #[error("model {model}: {backend} stopped the call at its deadline")]
    Interrupted {
        model: String,
        backend: &'static str,
    },
    /// The call ran past its deadline; the model version is out of service.
    #[error(
        "model {model}: {backend} inference exceeded its deadline of {} ({}); \
         the model is out of service",
        millis(*.deadline),
        overrun(*.interrupted, *.elapsed)
    )]
    DeadlineExceeded {
        model: String,
        backend: &'static str,
        deadline: Duration,
        /// From the call to its return (or its interruption).
        elapsed: Duration,
        /// The backend stopped the call (ONNX Runtime); otherwise it ran to
        /// its end, late (tract cannot be interrupted).
        interrupted: bool,
    },
    /// An earlier call of this model version exceeded its deadline; nothing
    /// was run.
    #[error(
        "model {model}: out of service since a call exceeded its deadline of {}",
        millis(*.deadline)
    )]
    OutOfService { model: String, deadline: Duration },
}

impl InferError {
    /// Whether the model's version is out of service after this error.
    pub fn is_deadline(&self) -> bool {
        matches!(
            self,
            InferError::DeadlineExceeded { .. } | InferError::OutOfService { .. }
        )
    }
}

fn overrun(interrupted: bool, elapsed: Duration) -> String {
    let ms = elapsed.as_secs_f64() * 1e3;
    if interrupted {
        format!("stopped after {ms:.1} ms")
    } else {
        format!("it returned after {ms:.1} ms: this backend cannot interrupt a call")
    }
}

/// Why ONNX Runtime is not available to this process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrtUnavailable {
    #[error(
        "ONNX Runtime not configured: set ORT_DYLIB_PATH to libonnxruntime.so \
         (scripts/fetch_onnxruntime.sh fetches it)"
    )]
    NotConfigured,
    #[error("ONNX Runtime library {path}: {message}")]
    LoadFailed { path: PathBuf, message: String },
}

/// Why one model could not be loaded. The model stays out of service (or, on a
/// reload, keeps its previous version); other models are unaffected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    #[error("model {model}: cannot read {path}: {message}")]
    Read {
        model: String,
        path: PathBuf,
        message: String,
    },
    #[error(
        "model {model}: sha256 mismatch for {path}: registry says {expected}, file has {actual}; \
         refusing to load it"
    )]
    Checksum {
        model: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("model {model}: {path} is not a valid ONNX model: {message}")]
    Malformed {
        model: String,
        path: PathBuf,
        message: String,
    },
    /// The registry's declared signature does not match the model file.
    #[error("model {model}: {message}")]
    Signature { model: String, message: String },
    /// The chosen backend cannot run an operator of the model.
    #[error("model {model}: operator {operator} is not supported by {backend}: {hint}")]
    UnsupportedOperator {
        model: String,
        operator: String,
        backend: &'static str,
        hint: String,
    },
    #[error("model {model}: {backend} could not load it: {message}")]
    Backend {
        model: String,
        backend: &'static str,
        message: String,
    },
    /// The warm-up call ran past the model's deadline.
    #[error(
        "model {model}: {backend} warm-up inference exceeded its deadline of {} ({}); \
         refusing to load it",
        millis(*.deadline),
        overrun(*.interrupted, *.elapsed)
    )]
    WarmUpDeadline {
        model: String,
        backend: &'static str,
        deadline: Duration,
        elapsed: Duration,
        interrupted: bool,
    },
    #[error("model {model}: the registry asks for ONNX Runtime, which is unavailable: {reason}")]
    OrtUnavailable {
        model: String,
        reason: OrtUnavailable,
    },
    #[error("model {model}: not in the registry")]
    Unknown { model: String },
    #[error("model {model}: marked inactive in the registry")]
    Inactive { model: String },
}

/// One problem in a registry file, positioned like config errors:
/// `models.yaml:12: models[1] (name "mlp").sha256: must be 64 hex digits`.
pub type RegistryIssue = quiver_config::yaml::Issue;

/// Why a registry file was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error(transparent)]
    Syntax(#[from] quiver_config::yaml::SyntaxError),
    /// Every problem found, in file order.
    #[error("{}", quiver_config::yaml::IssueLines(issues))]
    Invalid {
        path: PathBuf,
        issues: Vec<RegistryIssue>,
    },
}
