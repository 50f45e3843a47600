//! The models of a registry file, their handles and hot swap.
//!
//! Strategies hold a [`ModelHandle`]; the hot path reads its current version
//! with one atomic load (no lock). A reload builds the new version completely
//! — checksum, session, warm-up — on the caller's thread (the runtime calls
//! [`ModelStore::poll_changes`] off the tick loop) and then swaps it in with
//! one atomic store. A batch that already holds the old version finishes on
//! it; the next batch sees the new one. A failed load never touches the
//! handle, so the old version keeps running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;

use crate::error::{InferError, LoadError, RegistryError};
use crate::model::{LoadedModel, Loader};
use crate::predictor::{Backend, BackendChoice};
use crate::registry::{ModelSpec, Registry};
use crate::stats::ModelStats;

/// A model's slot: its current version (if any) and its counters.
///
/// Cheap to clone (one `Arc`); every clone sees the same swaps.
#[derive(Clone, Debug)]
pub struct ModelHandle {
    inner: Arc<HandleInner>,
}

#[derive(Debug)]
struct HandleInner {
    name: String,
    current: ArcSwapOption<LoadedModel>,
    swaps: AtomicU64,
    stats: ModelStats,
    /// The deadline error of the last version retired.
    retired: Mutex<Option<InferError>>,
}

impl ModelHandle {
    /// An empty handle: no version until [`ModelHandle::replace`].
    pub fn new(name: &str) -> ModelHandle {
        ModelHandle {
            inner: Arc::new(HandleInner {
                name: name.to_owned(),
                current: ArcSwapOption::empty(),
                swaps: AtomicU64::new(0),
                stats: ModelStats::default(),
                retired: Mutex::new(None),
            }),
        }
    }

    /// A handle already holding `model`.
    pub fn with_model(model: LoadedModel) -> ModelHandle {
        let handle = ModelHandle::new(model.name());
        handle.replace(Arc::new(model));
        handle
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The version in service now; `None` while the model is out of service
    /// (never loaded, or its only load failed). Lock-free.
    pub fn current(&self) -> Option<Arc<LoadedModel>> {
        self.inner.current.load_full()
    }

    pub fn is_loaded(&self) -> bool {
        self.inner.current.load().is_some()
    }

    /// Atomically puts `model` in service; returns the version it replaced.
    pub fn replace(&self, model: Arc<LoadedModel>) -> Option<Arc<LoadedModel>> {
        *self.inner.retired.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.inner.stats.record_load(model.load_time);
        self.inner.swaps.fetch_add(1, Ordering::Relaxed);
        self.inner.current.swap(Some(model))
    }

    /// Takes the model out of service (removed or deactivated in the registry).
    pub fn clear(&self) -> Option<Arc<LoadedModel>> {
        self.inner.current.swap(None)
    }

    /// Takes `model` out of service after one of its calls exceeded its
    /// deadline ([`LoadedModel::overdue`]), counted once per version. Only
    /// if it is still the version in service: a version swapped in since
    /// stays. The model comes back with the next successful load (a changed
    /// file or registry entry, see [`ModelStore::poll_changes`]).
    pub fn retire(&self, model: &Arc<LoadedModel>) {
        let current = Some(Arc::clone(model));
        let previous = self.inner.current.compare_and_swap(&current, None);
        let was_current = previous.as_ref().is_some_and(|p| Arc::ptr_eq(p, model));
        if was_current {
            self.inner.stats.record_deadline_exceeded();
            *self.inner.retired.lock().unwrap_or_else(|p| p.into_inner()) =
                model.overdue().cloned();
        }
    }

    /// Why the model is out of service, when a call of its last version
    /// exceeded its deadline and nothing replaced it since.
    pub fn fault(&self) -> Option<InferError> {
        if self.is_loaded() {
            return None;
        }
        self.inner
            .retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Loads `spec` with `loader` and swaps it in only if that succeeded; on
    /// failure the current version (if any) stays in service.
    pub fn reload(&self, loader: &Loader, spec: &ModelSpec) -> Result<Arc<LoadedModel>, LoadError> {
        match loader.load(spec) {
            Ok(model) => {
                let model = Arc::new(model);
                self.replace(Arc::clone(&model));
                Ok(model)
            }
            Err(err) => {
                self.inner.stats.record_load_failure();
                if matches!(err, LoadError::WarmUpDeadline { .. }) {
                    self.inner.stats.record_deadline_exceeded();
                }
                Err(err)
            }
        }
    }

    /// Versions put in service so far (first load included).
    pub fn swaps(&self) -> u64 {
        self.inner.swaps.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> &ModelStats {
        &self.inner.stats
    }

    /// Whether two handles are the same slot.
    pub fn same(&self, other: &ModelHandle) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// When the models of a registry are loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadPolicy {
    /// On first [`ModelStore::acquire`]: a process only pays for the models
    /// its strategies use.
    #[default]
    Lazy,
    /// Every active model at [`ModelStore::open`]: failures show at start-up.
    Eager,
}

/// How a [`ModelStore`] loads its models.
#[derive(Clone, Debug, Default)]
pub struct StoreOptions {
    pub load: LoadPolicy,
    pub backend: BackendChoice,
    /// `libonnxruntime.so`; default `$ORT_DYLIB_PATH`.
    pub ort_dylib: Option<PathBuf>,
    /// Deadline of every call of a model whose registry entry sets no
    /// `deadline_ms`; default [`crate::deadline::DEFAULT_DEADLINE`].
    pub deadline: Option<Duration>,
    /// The registry is the `models:` list of a strategies file (which also
    /// holds `strategies:`), not a file of its own.
    pub embedded: bool,
}

/// What [`ModelStore::poll_changes`] found and did.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A new registry entry.
    Added {
        name: String,
    },
    /// A model put in service for the first time.
    Loaded {
        name: String,
        version: String,
    },
    /// A new version swapped in.
    Reloaded {
        name: String,
        from_version: String,
        to_version: String,
    },
    /// A load failed; `kept_version` is still in service (if any).
    LoadFailed {
        name: String,
        error: LoadError,
        kept_version: Option<String>,
    },
    /// Out of service: the entry was removed or marked inactive.
    Removed {
        name: String,
    },
    Deactivated {
        name: String,
    },
    /// The registry file changed but is invalid; nothing was changed.
    RegistryInvalid(RegistryError),
}

/// One model's state, for `quiver models` and the admin endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelStatus {
    pub spec: ModelSpec,
    /// Version in service, if any.
    pub loaded_version: Option<String>,
    pub backend: Option<Backend>,
    pub load_seconds: Option<f64>,
    /// The last load error, while the model is not in service with the
    /// registry's current entry.
    pub error: Option<LoadError>,
    /// Why the model was taken out of service while serving (a call over
    /// its deadline), until a new version is loaded.
    pub fault: Option<InferError>,
}

/// A file's identity for change detection (size + mtime; the checksum
/// confirms a real change before anything is reloaded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

struct Entry {
    spec: ModelSpec,
    handle: ModelHandle,
    file: Option<Stamp>,
    /// Asked for by a strategy (lazy) or loaded at start (eager): changes to
    /// this model are loaded as they appear.
    wanted: bool,
    error: Option<LoadError>,
}

struct State {
    registry: Option<Stamp>,
    entries: BTreeMap<String, Entry>,
}

/// The models of one registry file.
pub struct ModelStore {
    registry_path: PathBuf,
    loader: Loader,
    policy: LoadPolicy,
    embedded: bool,
    state: Mutex<State>,
}

impl std::fmt::Debug for ModelStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelStore")
            .field("registry", &self.registry_path)
            .field("backend", &self.loader.backend())
            .finish_non_exhaustive()
    }
}

impl ModelStore {
    /// Reads the registry (refused whole if invalid) and, under
    /// [`LoadPolicy::Eager`], loads every active model. A model that fails to
    /// load does not fail the store: it stays out of service with its error
    /// in [`ModelStore::status`], and the others run.
    pub fn open(registry: &Path, options: StoreOptions) -> Result<ModelStore, RegistryError> {
        let mut loader = Loader::new(options.backend, options.ort_dylib.as_deref());
        if let Some(deadline) = options.deadline {
            loader = loader.with_deadline(deadline);
        }
        ModelStore::build(registry, loader, options.load, options.embedded)
    }

    /// As [`ModelStore::open`], with a loader the caller built (tests, or
    /// several registries sharing one backend decision).
    pub fn with_loader(
        registry: &Path,
        loader: Loader,
        policy: LoadPolicy,
    ) -> Result<ModelStore, RegistryError> {
        ModelStore::build(registry, loader, policy, false)
    }

    fn build(
        registry: &Path,
        loader: Loader,
        policy: LoadPolicy,
        embedded: bool,
    ) -> Result<ModelStore, RegistryError> {
        let registry_stamp = stamp(registry);
        let parsed = Registry::read(registry, embedded)?;
        let mut entries = BTreeMap::new();
        for spec in parsed.models {
            let entry = Entry {
                file: stamp(&spec.path),
                handle: ModelHandle::new(&spec.name),
                wanted: policy == LoadPolicy::Eager && spec.active,
                error: None,
                spec,
            };
            entries.insert(entry.spec.name.clone(), entry);
        }
        let store = ModelStore {
            registry_path: registry.to_owned(),
            loader,
            policy,
            embedded,
            state: Mutex::new(State {
                registry: registry_stamp,
                entries,
            }),
        };
        if policy == LoadPolicy::Eager {
            let mut state = store.lock();
            for entry in state.entries.values_mut().filter(|e| e.wanted) {
                load_entry(&store.loader, entry);
            }
        }
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Loading never panics by design; if it somehow did, the map itself is
        // still consistent (entries are replaced whole), so keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn registry_path(&self) -> &Path {
        &self.registry_path
    }

    pub fn loader(&self) -> &Loader {
        &self.loader
    }

    pub fn policy(&self) -> LoadPolicy {
        self.policy
    }

    /// Model names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.lock().entries.keys().cloned().collect()
    }

    pub fn spec(&self, name: &str) -> Option<ModelSpec> {
        self.lock().entries.get(name).map(|e| e.spec.clone())
    }

    /// The handle of `name` without loading anything.
    pub fn handle(&self, name: &str) -> Option<ModelHandle> {
        self.lock().entries.get(name).map(|e| e.handle.clone())
    }

    /// The handle of `name`, loading the model first if it is not in service
    /// (the lazy load). Call it when wiring strategies, not per tick.
    ///
    /// On `Err` the model is out of service; the store keeps watching it, so
    /// a corrected file is loaded by a later [`ModelStore::poll_changes`] and
    /// a handle taken from [`ModelStore::handle`] then comes back to life.
    pub fn acquire(&self, name: &str) -> Result<ModelHandle, LoadError> {
        let mut state = self.lock();
        let entry = state
            .entries
            .get_mut(name)
            .ok_or_else(|| LoadError::Unknown {
                model: name.to_owned(),
            })?;
        if !entry.spec.active {
            return Err(LoadError::Inactive {
                model: name.to_owned(),
            });
        }
        entry.wanted = true;
        if !entry.handle.is_loaded() {
            if let Some(err) = entry
                .error
                .clone()
                .filter(|_| self.policy == LoadPolicy::Eager)
            {
                return Err(err);
            }
            load_entry(&self.loader, entry);
            if let Some(err) = &entry.error {
                return Err(err.clone());
            }
        }
        Ok(entry.handle.clone())
    }

    /// Every model's state, sorted by name.
    pub fn status(&self) -> Vec<ModelStatus> {
        self.lock()
            .entries
            .values()
            .map(|e| {
                let current = e.handle.current();
                ModelStatus {
                    spec: e.spec.clone(),
                    loaded_version: current.as_ref().map(|m| m.version().to_owned()),
                    backend: current.as_ref().map(|m| m.backend),
                    load_seconds: current.as_ref().map(|m| m.load_seconds()),
                    error: e.error.clone(),
                    fault: e.handle.fault(),
                }
            })
            .collect()
    }

    /// Looks for changes to the registry file and to the model files, and
    /// loads what changed: an edited entry or a rewritten file is verified
    /// and loaded, then swapped in; a failed load keeps the old version.
    /// Nothing is retried until something changes again. Meant to be called
    /// periodically from a thread that is not the tick loop.
    pub fn poll_changes(&self) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut state = self.lock();
        let registry_now = stamp(&self.registry_path);
        let mut dirty: Vec<String> = Vec::new();
        if registry_now != state.registry {
            state.registry = registry_now;
            match Registry::read(&self.registry_path, self.embedded) {
                Err(err) => changes.push(Change::RegistryInvalid(err)),
                Ok(parsed) => {
                    let mut next: BTreeMap<String, ModelSpec> = parsed
                        .models
                        .into_iter()
                        .map(|m| (m.name.clone(), m))
                        .collect();
                    let removed: Vec<String> = state
                        .entries
                        .keys()
                        .filter(|name| !next.contains_key(*name))
                        .cloned()
                        .collect();
                    for name in removed {
                        if let Some(entry) = state.entries.remove(&name) {
                            entry.handle.clear();
                        }
                        changes.push(Change::Removed { name });
                    }
                    for (name, spec) in std::mem::take(&mut next) {
                        match state.entries.get_mut(&name) {
                            Some(entry) if entry.spec == spec => {}
                            Some(entry) => {
                                let reactivated = spec.active && !entry.spec.active;
                                entry.spec = spec;
                                if !entry.spec.active {
                                    entry.handle.clear();
                                    changes.push(Change::Deactivated { name: name.clone() });
                                } else {
                                    if reactivated && self.policy == LoadPolicy::Eager {
                                        entry.wanted = true;
                                    }
                                    dirty.push(name);
                                }
                            }
                            None => {
                                let wanted = self.policy == LoadPolicy::Eager && spec.active;
                                state.entries.insert(
                                    name.clone(),
                                    Entry {
                                        file: stamp(&spec.path),
                                        handle: ModelHandle::new(&name),
                                        wanted,
                                        error: None,
                                        spec,
                                    },
                                );
                                changes.push(Change::Added { name: name.clone() });
                                if wanted {
                                    dirty.push(name);
                                }
                            }
                        }
                    }
                }
            }
        }
        for (name, entry) in state.entries.iter_mut() {
            let now = stamp(&entry.spec.path);
            if now != entry.file {
                entry.file = now;
                if !dirty.contains(name) {
                    dirty.push(name.clone());
                }
            }
        }
        dirty.sort();
        for name in dirty {
            let Some(entry) = state.entries.get_mut(&name) else {
                continue;
            };
            if !entry.spec.active || !(entry.wanted || entry.handle.is_loaded()) {
                continue;
            }
            let before = entry.handle.current();
            // Same bytes and same entry: a touched file, nothing to do.
            if let Some(old) = &before {
                if old.spec == entry.spec
                    && quiver_config::files::read_regular(
                        &entry.spec.path,
                        quiver_config::files::MODEL_FILE_LIMIT,
                    )
                    .map(|bytes| crate::model::sha256_hex(&bytes) == old.sha256)
                    .unwrap_or(false)
                {
                    continue;
                }
            }
            load_entry(&self.loader, entry);
            let after = entry.handle.current();
            match (&entry.error, before, after) {
                (Some(error), kept, _) => changes.push(Change::LoadFailed {
                    name: name.clone(),
                    error: error.clone(),
                    kept_version: kept.map(|m| m.version().to_owned()),
                }),
                (None, Some(old), Some(new)) => changes.push(Change::Reloaded {
                    name: name.clone(),
                    from_version: old.version().to_owned(),
                    to_version: new.version().to_owned(),
                }),
                (None, None, Some(new)) => changes.push(Change::Loaded {
                    name: name.clone(),
                    version: new.version().to_owned(),
                }),
                (None, _, None) => {}
            }
        }
        changes
    }
}

/// Loads `entry`'s spec into its handle, recording the error on failure.
fn load_entry(loader: &Loader, entry: &mut Entry) {
    match entry.handle.reload(loader, &entry.spec) {
        Ok(_) => entry.error = None,
        Err(err) => entry.error = Some(err),
    }
}
