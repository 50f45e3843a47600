//! Models in a run: the registry a strategies file names, the catalog its
//! strategies are built against, and the two runners of the engine's model
//! requests — [`BatchRunner`] (replay: micro-batched, bit-deterministic) and
//! [`PoolRunner`] (live: a bounded worker pool with a deadline).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use quiver_config::{Config, ModelsSource};
use quiver_engine::{ModelBatch, ModelIdx, ModelResults, ModelRunner, StrategyEntry, Unavailable};
use quiver_infer::{
    BatchResults, DropReason, InferencePool, MicroBatcher, ModelHandle, ModelSpec, ModelStore,
    Outcome, OutputSpec, PoolConfig, RequestError, StoreOptions,
};
use quiver_strategy::{ModelInfo, ModelOutput};

/// Why the models of a config could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ModelSetupError {
    #[error(transparent)]
    Registry(#[from] quiver_infer::RegistryError),
    /// Rows naming unknown models or not fitting them, one
    /// `file:line: path: message` per line.
    #[error("{0}")]
    Strategies(String),
    #[error("cannot start the inference pool: {0}")]
    Pool(std::io::Error),
}

/// Where the registry of `config` (read from `config_path`) is: `registry`
/// when given (a command-line override), else the file's `models:` section.
/// Returns the path and whether it is the strategies file itself.
pub fn registry_location(
    config_path: &Path,
    config: &Config,
    registry: Option<&Path>,
) -> Option<(PathBuf, bool)> {
    if let Some(path) = registry {
        return Some((path.to_owned(), false));
    }
    match config.models.as_ref()? {
        ModelsSource::File { path, .. } => {
            let dir = config_path.parent().unwrap_or_else(|| Path::new(""));
            Some((dir.join(path), false))
        }
        ModelsSource::Inline { .. } => Some((config_path.to_owned(), true)),
    }
}

/// A registry file that cannot be read, named where the strategies file's
/// `models:` points at it (a `--models` flag or setting names it already).
fn locate_registry_error(
    err: quiver_infer::RegistryError,
    config_path: &Path,
    config: &Config,
    registry: Option<&Path>,
) -> ModelSetupError {
    match (&err, registry, &config.models) {
        (
            quiver_infer::RegistryError::Io { path, message },
            None,
            Some(ModelsSource::File { line, .. }),
        ) => ModelSetupError::Strategies(format!(
            "{}:{line}: models: registry {}: {message}",
            config_path.display(),
            path.display()
        )),
        _ => ModelSetupError::Registry(err),
    }
}

/// A registry entry as strategies see it.
pub fn model_info(spec: &ModelSpec) -> ModelInfo {
    ModelInfo {
        name: spec.name.clone(),
        n_features: spec.n_features,
        output: match &spec.output {
            OutputSpec::Classifier { classes, .. } => ModelOutput::Classifier {
                classes: classes.clone(),
            },
            OutputSpec::Regressor { threshold, .. } => ModelOutput::Regressor {
                threshold: *threshold,
            },
        },
    }
}

/// The models of a run: the store (absent without a registry) and the
/// catalog strategies are built against.
#[derive(Clone)]
pub struct Models {
    pub store: Option<Arc<ModelStore>>,
    pub catalog: Vec<ModelInfo>,
}

impl Models {
    /// No registry: only strategies without a model can be built.
    pub fn none() -> Models {
        Models {
            store: None,
            catalog: Vec::new(),
        }
    }

    /// Opens the registry of `config` (see [`registry_location`]) and checks
    /// every row, disabled ones included, against it: a row naming an
    /// unknown model, or listing a different number of features than its
    /// model takes, rejects the file whole. Models load lazily unless
    /// `options` say otherwise; one that fails to load does not fail this
    /// call (its strategies hold until it is fixed).
    pub fn open(
        config_path: &Path,
        config: &Config,
        registry: Option<&Path>,
        mut options: StoreOptions,
    ) -> Result<Models, ModelSetupError> {
        let models = match registry_location(config_path, config, registry) {
            Some((path, embedded)) => {
                options.embedded = embedded;
                let store = ModelStore::open(&path, options)
                    .map_err(|err| locate_registry_error(err, config_path, config, registry))?;
                let catalog = store
                    .names()
                    .iter()
                    .filter_map(|name| store.spec(name))
                    .map(|spec| model_info(&spec))
                    .collect();
                Models {
                    store: Some(Arc::new(store)),
                    catalog,
                }
            }
            None => Models::none(),
        };
        models.check(config_path, config)?;
        Ok(models)
    }

    pub(crate) fn check(&self, config_path: &Path, config: &Config) -> Result<(), ModelSetupError> {
        let file = config_path.display();
        let mut issues = Vec::new();
        let mut files_checked = std::collections::HashSet::new();
        for row in &config.strategies {
            if let Err(err) = row.spec.build(&self.catalog) {
                let (line, path) = row
                    .models
                    .first()
                    .map_or((row.line, row.id.clone()), |m| (m.line, m.path.clone()));
                issues.push(format!("{file}:{line}: {path}: {err}"));
            }
            // A model file that cannot be read at all is a mistake in the
            // registry, named where its `path:` is written; one that reads
            // but does not load is the store's to hold out of service.
            let Some(store) = &self.store else { continue };
            for used in &row.models {
                let Some(spec) = store.spec(&used.name) else {
                    continue;
                };
                if !files_checked.insert(used.name.clone()) {
                    continue;
                }
                let limit = quiver_config::files::MODEL_FILE_LIMIT;
                if let Err(err) = quiver_config::files::check_regular(&spec.path, limit) {
                    issues.push(format!(
                        "{}:{}: {}: model file {}: {err} (model {:?}, used at {file}:{}: {})",
                        store.registry_path().display(),
                        spec.path_line,
                        spec.path_field,
                        spec.path.display(),
                        used.name,
                        used.line,
                        used.path,
                    ));
                }
            }
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ModelSetupError::Strategies(issues.join("\n")))
        }
    }

    /// Engine entries for every enabled row, in file order: the one way
    /// replay and live build their strategies.
    pub fn engine_entries(&self, config: &Config) -> Result<Vec<StrategyEntry>, ModelSetupError> {
        config
            .enabled()
            .map(|row| {
                let logic = row
                    .spec
                    .build(&self.catalog)
                    .map_err(|e| ModelSetupError::Strategies(format!("{}: {e}", row.id)))?;
                Ok(StrategyEntry {
                    id: row.id.clone(),
                    logic,
                    instruments: row.instruments.clone(),
                    brokers: row.brokers.clone(),
                    validator: row.validator,
                    guards: row.guards,
                    schedule: row.schedule,
                })
            })
            .collect()
    }

    /// Handles of the engine's models (by engine model index), loading each
    /// now. A model that fails to load is logged and left out of service:
    /// its strategies hold, every other strategy runs.
    pub fn handles(&self, engine_models: &[String]) -> Vec<ModelHandle> {
        engine_models
            .iter()
            .map(|name| {
                let Some(store) = &self.store else {
                    return ModelHandle::new(name);
                };
                match store.acquire(name) {
                    Ok(handle) => handle,
                    Err(err) => {
                        tracing::error!(model = %name, "model out of service: {err}");
                        store.handle(name).unwrap_or_else(|| ModelHandle::new(name))
                    }
                }
            })
            .collect()
    }

    /// The backend models run on (ONNX Runtime when its library loaded).
    pub fn backend(&self) -> Option<quiver_infer::Backend> {
        self.store.as_ref().and_then(|s| s.loader().backend())
    }
}

fn unavailable(error: &RequestError) -> Unavailable {
    match error {
        RequestError::UnknownModel | RequestError::ModelUnavailable => Unavailable::OutOfService,
        RequestError::WrongWidth { .. } | RequestError::Failed(_) => Unavailable::Failed,
    }
}

/// Replay's runner: every request of a flush through a [`MicroBatcher`], one
/// backend call per model per `call_rows` rows. Built with
/// [`MicroBatcher::deterministic`], its results are bit-identical however
/// many ticks share a flush.
pub struct BatchRunner {
    handles: Vec<ModelHandle>,
    batcher: MicroBatcher,
    results: BatchResults,
}

impl BatchRunner {
    /// `handles` by engine model index.
    pub fn new(handles: Vec<ModelHandle>, batcher: MicroBatcher) -> BatchRunner {
        BatchRunner {
            handles,
            batcher,
            results: BatchResults::new(),
        }
    }
}

impl BatchRunner {
    /// The models it runs, by engine model index.
    pub fn handles(&self) -> &[ModelHandle] {
        &self.handles
    }
}

impl ModelRunner for BatchRunner {
    fn run(&mut self, batch: &ModelBatch<'_>, results: &mut ModelResults) {
        for (i, request) in batch.requests.iter().enumerate() {
            self.batcher.push(request.model.index(), batch.row(i));
        }
        self.batcher.run(&self.handles, &mut self.results);
        for i in 0..batch.requests.len() {
            match self.results.get(i) {
                Ok(outputs) => results.set(i, outputs),
                Err(error) => results.fail(i, unavailable(error)),
            }
        }
        for model in 0..self.handles.len() {
            if let Some(used) = self.results.model_used(model) {
                results.set_version(ModelIdx::new(model as u32), used.version());
            }
        }
    }
}

/// Live's runner: the requests of a flight go to a bounded
/// [`InferencePool`] off the dispatch thread ([`PoolRunner::submit`]
/// returns at once) and are collected later, up to the pool's deadline
/// ([`PoolRunner::collect`]). A full queue or a missed deadline turns that
/// evaluation into HOLD and is counted ([`Unavailable::QueueFull`],
/// [`Unavailable::TimedOut`]).
pub struct PoolRunner {
    pool: InferencePool,
    handles: Vec<ModelHandle>,
    received: Vec<bool>,
    /// Tag of this flush's first request: tags never repeat, so a late
    /// answer to an earlier flush is recognised and ignored.
    base: u64,
}

impl PoolRunner {
    /// `handles` by engine model index.
    pub fn new(
        config: PoolConfig,
        handles: Vec<ModelHandle>,
    ) -> Result<PoolRunner, ModelSetupError> {
        Ok(PoolRunner {
            pool: InferencePool::new(config, handles.clone()).map_err(ModelSetupError::Pool)?,
            handles,
            received: Vec::new(),
            base: 0,
        })
    }

    pub fn pool(&self) -> &InferencePool {
        &self.pool
    }

    /// The models it runs, by engine model index (their stats live here).
    pub fn handles(&self) -> &[ModelHandle] {
        &self.handles
    }
}

fn dropped(reason: DropReason) -> Unavailable {
    match reason {
        DropReason::QueueFull => Unavailable::QueueFull,
        DropReason::TimedOut => Unavailable::TimedOut,
        DropReason::ModelUnavailable => Unavailable::OutOfService,
        DropReason::BadRequest | DropReason::Failed | DropReason::ShuttingDown => {
            Unavailable::Failed
        }
    }
}

/// Requests of one flight submitted to the pool, waiting for
/// [`PoolRunner::collect`].
#[derive(Debug)]
pub struct Submitted {
    /// Tag of the first request (tags never repeat across flights, so late
    /// answers to an earlier flight are recognised and ignored).
    base: u64,
    n: usize,
    /// Requests the pool refused at once (full queue, unknown model).
    refused: Vec<(usize, Unavailable)>,
    /// The latest deadline among the accepted requests.
    deadline: Option<Instant>,
    accepted: usize,
}

impl PoolRunner {
    /// Hands every request of `batch` to the pool and returns at once.
    pub fn submit(&mut self, batch: &ModelBatch<'_>) -> Submitted {
        let n = batch.requests.len();
        let mut submitted = Submitted {
            base: self.base,
            n,
            refused: Vec::new(),
            deadline: None,
            accepted: 0,
        };
        self.base += n as u64;
        for (i, request) in batch.requests.iter().enumerate() {
            let tag = submitted.base + i as u64;
            match self.pool.submit(request.model.index(), batch.row(i), tag) {
                Ok(ticket) => {
                    submitted.accepted += 1;
                    submitted.deadline = Some(
                        submitted
                            .deadline
                            .map_or(ticket.deadline, |d| d.max(ticket.deadline)),
                    );
                }
                Err(reason) => submitted.refused.push((i, dropped(reason))),
            }
        }
        submitted
    }

    /// Writes the answers to `submitted` into `results` (reset for its
    /// batch), waiting for them at most until the last request's deadline;
    /// what is not back by then is [`Unavailable::TimedOut`].
    pub fn collect(&mut self, submitted: Submitted, results: &mut ModelResults) {
        let n = submitted.n;
        self.received.clear();
        self.received.resize(n, false);
        for &(i, why) in &submitted.refused {
            results.fail(i, why);
            self.received[i] = true;
        }
        let mut outstanding = submitted.accepted;
        while outstanding > 0 {
            let now = Instant::now();
            let Some(left) = submitted
                .deadline
                .and_then(|d| d.checked_duration_since(now))
            else {
                break;
            };
            let Some(answer) = self.pool.recv_timeout(left) else {
                break;
            };
            let Some(i) = answer
                .tag
                .checked_sub(submitted.base)
                .map(|i| i as usize)
                .filter(|&i| i < n && !self.received[i])
            else {
                continue; // a late answer to an earlier flight
            };
            self.received[i] = true;
            outstanding -= 1;
            match answer.outcome {
                Outcome::Done { outputs, version } => {
                    results.set(i, outputs.as_slice());
                    results.set_version(ModelIdx::new(answer.model as u32), &version);
                }
                Outcome::Dropped(reason) => results.fail(i, dropped(reason)),
            }
        }
        for (i, got) in self.received.iter().enumerate() {
            if !got {
                results.fail(i, Unavailable::TimedOut);
            }
        }
    }
}

impl ModelRunner for PoolRunner {
    fn run(&mut self, batch: &ModelBatch<'_>, results: &mut ModelResults) {
        let submitted = self.submit(batch);
        self.collect(submitted, results);
    }
}

/// Live's way of running a flight: submitted at once, collected while the
/// driver has dispatched the next batch.
impl quiver_driver::Inference for PoolRunner {
    type Ticket = Submitted;

    fn submit(&mut self, batch: &ModelBatch<'_>) -> Submitted {
        PoolRunner::submit(self, batch)
    }

    fn collect(&mut self, ticket: Submitted, _batch: &ModelBatch<'_>, results: &mut ModelResults) {
        PoolRunner::collect(self, ticket, results);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_engine::ModelRequest;
    use quiver_infer::{BackendChoice, LoadPolicy};
    use std::time::Duration;

    fn mlp() -> ModelHandle {
        let registry = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/registry.yaml");
        let store = ModelStore::open(
            &registry,
            StoreOptions {
                backend: BackendChoice::Tract,
                load: LoadPolicy::Lazy,
                ..Default::default()
            },
        )
        .unwrap();
        store.acquire("ml_momentum_mlp").unwrap()
    }

    /// `n` requests of one 9-feature row for model 0.
    fn requests(n: usize) -> (Vec<String>, Vec<ModelRequest>, Vec<f32>) {
        let row = [100.0, 100.5, 55.0, 0.001, 0.002, -0.003, 0.001, 0.1, 101.0];
        let requests = (0..n)
            .map(|i| ModelRequest {
                model: ModelIdx::new(0),
                start: (i * 9) as u32,
                len: 9,
            })
            .collect();
        let rows = (0..n).flat_map(|_| row).collect();
        (vec!["ml_momentum_mlp".to_owned()], requests, rows)
    }

    fn run(config: PoolConfig, n: usize) -> Vec<Result<Vec<f32>, Unavailable>> {
        let mut runner = PoolRunner::new(config, vec![mlp()]).unwrap();
        let (models, requests, rows) = requests(n);
        let batch = ModelBatch {
            models: &models,
            requests: &requests,
            rows: &rows,
        };
        let mut results = ModelResults::default();
        results.reset_for(&batch);
        runner.run(&batch, &mut results);
        (0..n)
            .map(|i| results.get(i).map(<[f32]>::to_vec))
            .collect()
    }

    #[test]
    fn the_pool_answers_every_request_within_its_deadline() {
        // Deterministic batching (as the service runs it): the same row gives
        // the same bits wherever it sits in a batch.
        let config = PoolConfig {
            timeout: Duration::from_secs(30),
            deterministic: Some(quiver_infer::Backend::Tract),
            ..PoolConfig::default()
        };
        let out = run(config, 40);
        assert!(out.iter().all(|r| r.as_ref().is_ok_and(|p| p.len() == 3)));
        assert!(
            out.windows(2).all(|w| w[0] == w[1]),
            "same row, same result"
        );
    }

    #[test]
    fn a_full_queue_and_a_missed_deadline_are_holds_with_their_reason() {
        let full = PoolConfig {
            queue_size: 4,
            workers: 1,
            timeout: Duration::from_secs(30),
            ..PoolConfig::default()
        };
        let out = run(full, 200);
        let refused = out
            .iter()
            .filter(|r| **r == Err(Unavailable::QueueFull))
            .count();
        assert!(refused > 0, "{out:?}");
        assert!(out
            .iter()
            .all(|r| r.is_ok() || *r == Err(Unavailable::QueueFull)));

        let late = PoolConfig {
            timeout: Duration::ZERO,
            ..PoolConfig::default()
        };
        let out = run(late, 10);
        assert!(
            out.iter().all(|r| *r == Err(Unavailable::TimedOut)),
            "{out:?}"
        );
    }
}

/// The engine's policy for a strategies file's `lifecycle:` section, the
/// same for replay and live.
pub fn lifecycle_policy(lifecycle: &quiver_config::Lifecycle) -> quiver_engine::LifecyclePolicy {
    let ns = |ms: u64| i64::try_from(ms.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
    quiver_engine::LifecyclePolicy {
        quarantine_after: lifecycle.quarantine_after,
        backoff_base_ns: ns(lifecycle.backoff_base_ms),
        backoff_cap_ns: ns(lifecycle.backoff_cap_ms),
    }
}

#[cfg(test)]
mod lifecycle_tests {
    #[test]
    fn the_files_default_lifecycle_is_the_engines() {
        assert_eq!(
            super::lifecycle_policy(&quiver_config::Lifecycle::default()),
            quiver_engine::LifecyclePolicy::default()
        );
    }
}
