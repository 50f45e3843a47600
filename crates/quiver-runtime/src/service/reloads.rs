//! Hot reload in the live service: triggers (SIGHUP, `POST /reload`, the
//! strategies file changing, PostgreSQL `NOTIFY`) become one queue, and one
//! task takes them in turn: read the whole set → validate and diff it
//! ([`Reloader::prepare`]) → build its strategies and engine here, off the
//! hot path → hand the engine to the engine thread through the control
//! channel, which swaps it in between two batches. An invalid set is refused
//! whole and the running one keeps serving; every outcome is counted
//! (`config_reload_total{result}`) and shown at `/config`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quiver_driver::{ControlHandle, Request};
use quiver_telemetry::{ReloadRecord, Telemetry};
use tokio::sync::{mpsc, oneshot};

use super::engine_stage::NextSet;
use super::strategy_set;
use crate::reload::Reloader;
use crate::settings::Settings;

/// Where the strategy set is read from.
#[derive(Clone, Debug)]
pub enum ConfigSource {
    File(PathBuf),
    /// A `postgres://` URL (the store of `quiver db`).
    Store(String),
}

impl ConfigSource {
    pub fn describe(&self) -> String {
        match self {
            ConfigSource::File(path) => path.display().to_string(),
            ConfigSource::Store(url) => quiver_store::redact(url),
        }
    }
}

/// What a reload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// Swapped in: what changed, and the version now serving.
    Applied { diff: String, version: String },
    /// The same set as serving: nothing to do.
    Unchanged { version: String },
    /// Refused whole, the running set still serving: why.
    Refused(String),
}

impl ReloadOutcome {
    pub fn result(&self) -> &'static str {
        match self {
            ReloadOutcome::Applied { .. } => "applied",
            ReloadOutcome::Unchanged { .. } => "unchanged",
            ReloadOutcome::Refused(_) => "refused",
        }
    }
}

/// A request for a reload; the reply says what it did.
pub(super) struct Trigger {
    why: &'static str,
    reply: Option<oneshot::Sender<ReloadOutcome>>,
    /// A check nobody asked for (the store listener catching up): when
    /// it finds the set unchanged, nothing is recorded.
    quiet: bool,
}

/// Asks the running service to reload (the admin API's `POST /reload`).
#[derive(Clone)]
pub struct ReloadHandle {
    triggers: mpsc::Sender<Trigger>,
}

impl ReloadHandle {
    /// Reloads now and says what it did; `None` when the service is gone.
    pub async fn reload(&self, why: &'static str) -> Option<ReloadOutcome> {
        self.ask(why, false).await
    }

    /// Asks for a reload without waiting for it (signals, watchers).
    pub(super) fn nudge(&self, why: &'static str) {
        let _ = self.triggers.try_send(Trigger {
            why,
            reply: None,
            quiet: false,
        });
    }

    /// A check that reloads only if the set changed, once it is done: an
    /// unchanged set is neither counted nor shown (the store listener
    /// catching up on what it may have missed while not listening).
    async fn check(&self, why: &'static str) -> Option<ReloadOutcome> {
        self.ask(why, true).await
    }

    async fn ask(&self, why: &'static str, quiet: bool) -> Option<ReloadOutcome> {
        let (reply, answer) = oneshot::channel();
        self.triggers
            .send(Trigger {
                why,
                reply: Some(reply),
                quiet,
            })
            .await
            .ok()?;
        answer.await.ok()
    }
}

/// What the reload task needs.
pub(super) struct Reloads {
    pub(super) source: ConfigSource,
    pub(super) reloader: Reloader,
    pub(super) triggers: mpsc::Receiver<Trigger>,
    pub(super) handle: ReloadHandle,
}

impl Reloads {
    pub(super) fn new(source: ConfigSource, reloader: Reloader) -> Reloads {
        // Triggers that arrive while one runs wait here; more than a few
        // ask for the same thing, so the rest are dropped.
        let (tx, triggers) = mpsc::channel(8);
        Reloads {
            source,
            reloader,
            triggers,
            handle: ReloadHandle { triggers: tx },
        }
    }
}

/// How long a reload waits for the engine thread to take the new set.
const SWAP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs reloads one at a time until the triggers close.
pub(super) async fn run(
    mut reloads: Reloads,
    control: ControlHandle,
    next_set: NextSet,
    telemetry: std::sync::Arc<Telemetry>,
    settings: Settings,
) {
    while let Some(first) = reloads.triggers.recv().await {
        let mut replies: Vec<_> = first.reply.into_iter().collect();
        let why = first.why;
        let mut quiet = first.quiet;
        // Triggers queued meanwhile are answered by this same reload.
        while let Ok(more) = reloads.triggers.try_recv() {
            replies.extend(more.reply);
            quiet &= more.quiet;
        }
        let outcome = reload_once(&mut reloads, &control, &next_set, &telemetry, &settings).await;
        if quiet && matches!(outcome, ReloadOutcome::Unchanged { .. }) {
            tracing::debug!(why, "{} is unchanged", reloads.source.describe());
            for reply in replies {
                let _ = reply.send(outcome.clone());
            }
            continue;
        }
        match &outcome {
            ReloadOutcome::Applied { diff, version } => {
                tracing::info!(
                    why,
                    version,
                    "reloaded {}: {diff}",
                    reloads.source.describe()
                )
            }
            ReloadOutcome::Unchanged { .. } => {
                tracing::info!(why, "reload: {} is unchanged", reloads.source.describe())
            }
            ReloadOutcome::Refused(reason) => tracing::error!(
                why,
                "reload refused, the running set keeps serving: {reason}"
            ),
        }
        record(&telemetry, &outcome);
        for reply in replies {
            let _ = reply.send(outcome.clone());
        }
    }
}

fn record(telemetry: &Telemetry, outcome: &ReloadOutcome) {
    let metrics = &telemetry.metrics;
    let i = match outcome {
        ReloadOutcome::Applied { .. } => 0,
        ReloadOutcome::Unchanged { .. } => 1,
        ReloadOutcome::Refused(_) => 2,
    };
    metrics.config_reloads[i].inc();
    let at_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    telemetry.status.update_config(|config| {
        let detail = match outcome {
            ReloadOutcome::Applied { diff, version } => {
                config.version.clone_from(version);
                config.reloads_applied += 1;
                diff.clone()
            }
            ReloadOutcome::Unchanged { .. } => {
                config.reloads_unchanged += 1;
                "unchanged".to_owned()
            }
            ReloadOutcome::Refused(reason) => {
                config.reloads_refused += 1;
                reason.clone()
            }
        };
        config.last_reload = Some(ReloadRecord {
            result: outcome.result(),
            detail,
            at_unix_ms,
        });
    });
}

async fn reload_once(
    reloads: &mut Reloads,
    control: &ControlHandle,
    next_set: &NextSet,
    telemetry: &Telemetry,
    settings: &Settings,
) -> ReloadOutcome {
    let (text, file, path) = match read(&reloads.source).await {
        Ok(read) => read,
        Err(reason) => return ReloadOutcome::Refused(reason),
    };
    let prepared = match reloads.reloader.prepare(&text, &file, &path) {
        Ok(prepared) => prepared,
        Err(reason) => return ReloadOutcome::Refused(reason),
    };
    if prepared.version == reloads.reloader.version() {
        return ReloadOutcome::Unchanged {
            version: prepared.version,
        };
    }
    let warmup = settings.strategy.warmup_ticks;
    if let Err(err) = prepared.config.check_history_budget(warmup) {
        return ReloadOutcome::Refused(format!("{file}: {err}"));
    }
    let (entries, set) = match strategy_set::prepare(prepared.entries, settings, telemetry) {
        Ok(prepared) => prepared,
        Err(err) => return ReloadOutcome::Refused(format!("{file}: {err}")),
    };
    let mut engine = match strategy_set::engine(entries) {
        Ok(engine) => engine,
        Err(err) => return ReloadOutcome::Refused(format!("{file}: {err}")),
    };
    engine.set_lifecycle(crate::models::lifecycle_policy(&prepared.config.lifecycle));
    *next_set.lock().unwrap_or_else(|p| p.into_inner()) = Some(set);
    let request = Request::Rebuild {
        engine: Box::new(engine),
        carried: prepared.diff.unchanged.clone(),
    };
    let Ok(answer) = control.send(request) else {
        return ReloadOutcome::Refused("the engine has stopped".to_owned());
    };
    let reply = tokio::task::spawn_blocking(move || answer.recv_timeout(SWAP_TIMEOUT)).await;
    match reply {
        Ok(Ok(Ok(_))) => {
            let diff = prepared.diff.to_string();
            let version = prepared.version.clone();
            reloads.reloader.applied(prepared.config, prepared.version);
            ReloadOutcome::Applied { diff, version }
        }
        Ok(Ok(Err(err))) => {
            next_set.lock().unwrap_or_else(|p| p.into_inner()).take();
            ReloadOutcome::Refused(format!("{file}: {err}"))
        }
        _ => ReloadOutcome::Refused(format!(
            "the engine did not take the new set within {SWAP_TIMEOUT:?}"
        )),
    }
}

/// The set's text, how messages name it, and the path its relative model
/// paths are resolved against.
async fn read(source: &ConfigSource) -> Result<(String, String, PathBuf), String> {
    match source {
        ConfigSource::File(path) => {
            let file = path.display().to_string();
            let text = quiver_config::files::read_regular_text(
                path,
                quiver_config::files::CONFIG_FILE_LIMIT,
            )
            .map_err(|err| format!("{file}: {err}"))?;
            Ok((text, file, path.clone()))
        }
        ConfigSource::Store(url) => {
            let store = quiver_store::ConfigStore::connect(url)
                .await
                .map_err(|err| err.to_string())?;
            let loaded = store.load().await.map_err(|err| err.to_string())?;
            Ok((
                loaded.text,
                quiver_store::TABLE.to_owned(),
                PathBuf::from(quiver_store::TABLE),
            ))
        }
    }
}

/// Reloads on SIGHUP.
pub(super) async fn on_sighup(handle: ReloadHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler; reload through POST /reload");
        return;
    };
    while hup.recv().await.is_some() {
        handle.nudge("SIGHUP");
    }
}

/// Reloads when the file changes: polled every `every`, and only once it
/// has stayed the same for one more poll (an editor writing it in steps).
pub(super) async fn watch_file(path: PathBuf, every: Duration, handle: ReloadHandle) {
    let stamp = |path: &PathBuf| {
        std::fs::metadata(path)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut serving = stamp(&path);
    let mut seen = serving;
    loop {
        tokio::time::sleep(every).await;
        let now = stamp(&path);
        if now != seen {
            seen = now;
            continue;
        }
        if now != serving && now.is_some() {
            serving = now;
            handle.nudge("file changed");
        }
    }
}

/// Reloads when the store notifies a change (its trigger on the tables).
pub(super) async fn listen_store(
    url: String,
    handle: ReloadHandle,
    telemetry: std::sync::Arc<Telemetry>,
) {
    use std::future::poll_fn;
    let listening = |on: bool| telemetry.status.update_config(|c| c.listening = Some(on));
    listening(false);
    let mut reconnecting = false;
    loop {
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
                        match message {
                            Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                                let _ = tx.send(());
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                let listen = format!("LISTEN {}", quiver_store::NOTIFY_CHANNEL);
                if let Err(err) = client.batch_execute(&listen).await {
                    tracing::warn!(%err, "cannot LISTEN for strategy changes; retrying");
                } else {
                    // Changes made while no one listened (before the
                    // first LISTEN, or while reconnecting) notified no one.
                    if reconnecting {
                        tracing::info!("listening for strategy changes again");
                    }
                    handle.check("store listener connected").await;
                    listening(true);
                    while rx.recv().await.is_some() {
                        // One statement notifies once per table: let a
                        // transaction's notifications arrive, then reload once.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        while rx.try_recv().is_ok() {}
                        handle.nudge("store changed");
                    }
                }
                driver.abort();
                listening(false);
                tracing::warn!("lost the store's change notifications; reconnecting");
            }
            Err(err) => {
                tracing::warn!(%err, "cannot reach the store to listen for changes; retrying")
            }
        }
        reconnecting = true;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
