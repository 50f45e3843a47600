//! ONNX Runtime backend, through the `ort` crate built with `load-dynamic`:
//! `libonnxruntime.so` is opened at run time from a path the caller gives or
//! `ORT_DYLIB_PATH`, never downloaded at build time.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use ort::environment::Environment;
use ort::session::{RunOptions, Session};
use ort::value::TensorRef;

use crate::deadline::{Interrupt, Watchdog};
use crate::error::{InferError, OrtUnavailable};
use crate::predictor::{row_count, Backend, Predictor};

/// The environment variable naming `libonnxruntime.so`.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// A loaded ONNX Runtime library and its environment, shared by every session.
///
/// The library can be loaded once per process (ONNX Runtime keeps global
/// state), so the first successful [`OrtRuntime::load`] is kept and returned
/// to every later caller, whatever path they name.
pub struct OrtRuntime {
    env: Environment,
    dylib: PathBuf,
}

impl std::fmt::Debug for OrtRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtRuntime")
            .field("dylib", &self.dylib)
            .finish_non_exhaustive()
    }
}

static RUNTIME: OnceLock<Arc<OrtRuntime>> = OnceLock::new();
/// Serialises first loads so two threads do not race to initialise ORT.
static LOADING: Mutex<()> = Mutex::new(());

impl OrtRuntime {
    /// Loads ONNX Runtime from `dylib`, else from `$ORT_DYLIB_PATH`.
    ///
    /// Uses `ort::init_from`, which reports a missing or incompatible library
    /// as an error; ort's implicit loader would panic instead.
    pub fn load(dylib: Option<&Path>) -> Result<Arc<OrtRuntime>, OrtUnavailable> {
        if let Some(runtime) = RUNTIME.get() {
            return Ok(Arc::clone(runtime));
        }
        let _guard = LOADING.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(runtime) = RUNTIME.get() {
            return Ok(Arc::clone(runtime));
        }
        let path = match dylib {
            Some(path) => path.to_owned(),
            None => match std::env::var_os(ORT_DYLIB_ENV) {
                Some(value) if !value.is_empty() => PathBuf::from(value),
                _ => return Err(OrtUnavailable::NotConfigured),
            },
        };
        // ort resolves a relative path against the executable's directory;
        // callers mean the working directory.
        let path = std::path::absolute(&path).unwrap_or(path);
        if !path.is_file() {
            return Err(OrtUnavailable::LoadFailed {
                message: "no such file (scripts/fetch_onnxruntime.sh fetches it)".into(),
                path,
            });
        }
        let failed = |message: String| OrtUnavailable::LoadFailed {
            path: path.clone(),
            message,
        };
        let builder = ort::init_from(&path).map_err(|e| failed(e.to_string()))?;
        let env = builder
            .with_name("quiver")
            .with_telemetry(false)
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let runtime = Arc::new(OrtRuntime {
            env,
            dylib: path.clone(),
        });
        Ok(Arc::clone(RUNTIME.get_or_init(|| runtime)))
    }

    /// The library this process loaded.
    pub fn dylib(&self) -> &Path {
        &self.dylib
    }

    /// One session for `bytes` with one intra-op and one inter-op thread: the
    /// pool's workers are the parallelism, and ORT's own thread pools would
    /// fight them for the same cores.
    pub fn session(
        &self,
        model: &str,
        bytes: &[u8],
        input: &str,
        output: &str,
        n_features: usize,
        n_outputs: usize,
    ) -> Result<OrtPredictor, String> {
        let text = |e: ort::Error<_>| e.to_string();
        let session = Session::builder(&self.env)
            .map_err(|e| e.to_string())?
            .with_intra_threads(1)
            .map_err(text)?
            .with_inter_threads(1)
            .map_err(text)?
            .with_parallel_execution(false)
            .map_err(text)?
            .commit_from_memory(bytes)
            .map_err(|e| e.to_string())?;
        // Every output is computed, not just the one read: a run that a
        // watchdog can stop needs run options shared with its thread, and
        // ort only shares options that select no outputs. The label branch
        // costs little next to the model, and the tensor read is the same.
        let options = RunOptions::new().map_err(|e| e.to_string())?;
        // Refuse a model that could not be stopped rather than run it.
        Watchdog::global()?;
        Ok(OrtPredictor {
            model: model.to_owned(),
            input: input.to_owned(),
            output: output.to_owned(),
            n_features,
            n_outputs,
            session: Mutex::new(session),
            options: Arc::new(Terminate(options)),
        })
    }
}

/// A session's run options, which the watchdog terminates.
struct Terminate(RunOptions);

impl Interrupt for Terminate {
    fn interrupt(&self) {
        // Only fails on a null pointer, which ort never hands out.
        let _ = self.0.terminate();
    }
}

/// One ONNX Runtime session. `Session::run` needs `&mut`, so calls on one
/// model are serialised by a mutex; different models run in parallel.
pub struct OrtPredictor {
    model: String,
    input: String,
    output: String,
    n_features: usize,
    n_outputs: usize,
    session: Mutex<Session>,
    /// Passed to every run of `session`, so the watchdog can stop one.
    options: Arc<Terminate>,
}

impl OrtPredictor {
    fn failed(&self, message: impl std::fmt::Display) -> InferError {
        InferError::Runtime {
            model: self.model.clone(),
            backend: Backend::OnnxRuntime.as_str(),
            message: message.to_string(),
        }
    }
}

impl Predictor for OrtPredictor {
    fn backend(&self) -> Backend {
        Backend::OnnxRuntime
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    fn predict(&self, rows: &[f32], out: &mut [f32]) -> Result<usize, InferError> {
        self.run(rows, out, None)
    }

    fn predict_within(
        &self,
        rows: &[f32],
        out: &mut [f32],
        deadline: Instant,
    ) -> Result<usize, InferError> {
        self.run(rows, out, Some(deadline))
    }
}

impl OrtPredictor {
    fn run(
        &self,
        rows: &[f32],
        out: &mut [f32],
        deadline: Option<Instant>,
    ) -> Result<usize, InferError> {
        let k = row_count(&self.model, self.n_features, self.n_outputs, rows, out)?;
        if k == 0 {
            return Ok(0);
        }
        // A panic inside ORT's bindings while holding the lock leaves the
        // session itself intact; keep serving rather than poisoning the model.
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let input =
            TensorRef::from_array_view(([k, self.n_features], rows)).map_err(|e| self.failed(e))?;
        let watch = match deadline {
            Some(deadline) => {
                let dog = Watchdog::global().map_err(|e| self.failed(e))?;
                let target: Arc<dyn Interrupt> = self.options.clone();
                Some(dog.arm(deadline, target))
            }
            None => None,
        };
        let outputs =
            session.run_with_options(ort::inputs![self.input.as_str() => input], &self.options.0);
        if watch.is_some_and(|w| w.disarm()) {
            // The flag stays raised until lowered: the next run would stop
            // at once.
            let _ = self.options.0.unterminate();
            return Err(InferError::Interrupted {
                model: self.model.clone(),
                backend: Backend::OnnxRuntime.as_str(),
            });
        }
        let outputs = outputs.map_err(|e| self.failed(e))?;
        let value = outputs
            .get(self.output.as_str())
            .ok_or_else(|| self.failed(format!("no output {:?}", self.output)))?;
        let (_, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| self.failed(e))?;
        if data.len() != out.len() {
            return Err(self.failed(format!(
                "output {:?} has {} values for {k} rows, expected {}",
                self.output,
                data.len(),
                out.len()
            )));
        }
        out.copy_from_slice(data);
        Ok(k)
    }
}
