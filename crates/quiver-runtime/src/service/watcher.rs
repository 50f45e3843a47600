//! Model hot swap: the registry polled off the hot path.

use std::sync::Arc;
use std::time::Duration;

/// Polls the model registry for changes off the hot path: a changed model
/// is loaded and verified on this thread, then swapped in atomically; a
/// failed load keeps the old version serving.
pub(super) struct ModelWatcher {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ModelWatcher {
    const EVERY: Duration = Duration::from_secs(1);

    pub(super) fn start(store: Arc<quiver_infer::ModelStore>) -> ModelWatcher {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("quiver-models".to_owned())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    for change in store.poll_changes() {
                        match &change {
                            quiver_infer::Change::LoadFailed { .. }
                            | quiver_infer::Change::RegistryInvalid(_) => {
                                tracing::warn!(
                                    ?change,
                                    "model update refused; the running version keeps serving"
                                )
                            }
                            _ => tracing::info!(?change, "model registry change"),
                        }
                    }
                    std::thread::park_timeout(ModelWatcher::EVERY);
                }
            })
            .map_err(|err| tracing::error!(%err, "cannot start the model watcher"))
            .ok();
        ModelWatcher { stop, thread }
    }
}

impl Drop for ModelWatcher {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
