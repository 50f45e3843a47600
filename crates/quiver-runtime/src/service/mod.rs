//! The live service: source task → engine thread → sink task.
//!
//! Each stage has a module of its own: [`build`] (the engine and its
//! telemetry from a config), [`source`] (restart preload and the reading
//! task), [`engine_stage`] (the driver's feed, inference and consumer on the
//! engine thread), [`sink`] (publish, then acknowledge), [`stats`] (engine
//! and model counters into metrics), [`watcher`] (model hot swap) and
//! [`wiring`] (which source and sink the settings name). [`Service::run`]
//! only connects them.

mod backoff;
mod build;
mod emission;
mod engine_stage;
mod reloads;
mod sink;
mod source;
mod stats;
mod strategy_set;
mod watcher;
pub mod wiring;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use quiver_core::{InstrumentToken, Tick};
use quiver_driver::{ControlHandle, ControlReceiver};
use quiver_engine::{Engine, EngineError};
use quiver_io::live::{LiveError, SignalSink, Stop, TickSource};
use quiver_telemetry::Telemetry;
use tokio::sync::mpsc;

use crate::models::{ModelSetupError, PoolRunner};
use crate::session::SessionClock;
use crate::settings::Settings;

pub use emission::{EmissionChange, EmissionGate, EmissionPolicy};
pub use reloads::{ConfigSource, ReloadHandle, ReloadOutcome};
pub use stats::feature_cache_hit_ratio;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("strategy {id:?} declares {required} ticks of history, above STRATEGY__HISTORY_STORE_SIZE ({limit})")]
    HistoryTooLong {
        id: String,
        required: usize,
        limit: usize,
    },
    #[error("building the engine: {0}")]
    Engine(#[from] EngineError),
    #[error("registering metrics: {0}")]
    Metrics(#[from] quiver_telemetry::RegistryError),
    #[error("settings: {0}")]
    Settings(String),
    #[error("tick source: {0}")]
    Source(LiveError),
    #[error("signal sink: {0}")]
    Sink(LiveError),
    #[error("acknowledging ticks: {0}")]
    Ack(LiveError),
    #[error("could not publish and acknowledge in-flight ticks within the drain timeout ({0:?}); they stay pending and are processed again on the next start")]
    DrainTimeout(Duration),
    #[error("the engine thread stopped unexpectedly")]
    EngineThread,
    #[error("{0}")]
    Models(#[from] ModelSetupError),
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Ticks appended to history before the first batch (restart preload).
    pub preloaded: u64,
    /// Ticks dispatched to the engine.
    pub ticks: u64,
    pub outside_session: u64,
    pub signals_published: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
    /// Signals dead-lettered untried: their emission was paused.
    pub withheld: u64,
    /// Signals (one per broker) dead-lettered untried: the paper desk's
    /// risk controller or cost model refused them.
    pub refused_by_desk: u64,
    /// Evaluations skipped while the engine was behind (load shedding).
    pub shed: u64,
}

/// Which ticks the live path dispatches: inside the session, or outside it
/// for instruments with a follower that trades outside it.
#[derive(Clone)]
struct Gate {
    session: Option<SessionClock>,
    outside_instruments: Arc<HashMap<InstrumentToken, bool>>,
}

impl Gate {
    fn is_open(&self, ts_ns: i64) -> bool {
        self.session.as_ref().is_none_or(|c| c.is_open(ts_ns))
    }

    fn admits(&self, tick: &Tick) -> bool {
        self.is_open(tick.ts_ns)
            || self
                .outside_instruments
                .get(&tick.instrument)
                .copied()
                .unwrap_or(false)
    }
}

/// An engine with its telemetry, ready to run.
pub struct Service {
    engine: Engine,
    telemetry: Arc<Telemetry>,
    settings: Settings,
    gate: Gate,
    /// The strategies beside the engine: series, session opt-ins, brokers.
    set: strategy_set::LiveSet,
    /// Runs the engine's model requests; `None` without ML strategies.
    runner: Option<PoolRunner>,
    models: Option<Arc<quiver_infer::ModelStore>>,
    control: (ControlHandle, ControlReceiver),
    reloads: Option<reloads::Reloads>,
    /// The strategies file's paper desk, run when `quiver.paper_report`
    /// names a directory.
    desk: quiver_paper::DeskSpec,
}

impl Service {
    pub fn telemetry(&self) -> Arc<Telemetry> {
        Arc::clone(&self.telemetry)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Sends operators' commands (pause, resume, stop, reset, replace) to
    /// the running engine; they apply between two batches.
    pub fn control(&self) -> ControlHandle {
        self.control.0.clone()
    }

    /// Reloads the strategy set from `source` while running, on SIGHUP,
    /// `POST /reload`, a change of the file (every
    /// `quiver.config_watch_ms`) or a notification of the store. `config`
    /// (read as `text`) and `models` are what the service was built from.
    pub fn with_reloads(
        mut self,
        source: ConfigSource,
        config: &quiver_config::Config,
        text: &str,
        models: &crate::models::Models,
    ) -> Self {
        let reloader = crate::reload::Reloader::new(
            models.clone(),
            config.clone(),
            self.engine.models().to_vec(),
            crate::reload::version_of(text),
        );
        self.telemetry.status.update_config(|status| {
            status.source = source.describe();
            status.version = reloader.version().to_owned();
        });
        self.reloads = Some(reloads::Reloads::new(source, reloader));
        self
    }

    /// Asks the running service to reload, when it reloads at all.
    pub fn reload_handle(&self) -> Option<ReloadHandle> {
        self.reloads.as_ref().map(|r| r.handle.clone())
    }

    /// Runs until the source is exhausted or `stop` is raised, then drains:
    /// every tick read is dispatched, its signals published and the tick
    /// acknowledged before this returns.
    pub async fn run<S: TickSource, K: SignalSink>(
        self,
        mut source: S,
        mut sink: K,
        stop: Stop,
    ) -> Result<RunReport, RuntimeError> {
        let Service {
            mut engine,
            telemetry,
            settings,
            gate,
            set,
            runner,
            models,
            control: (control_handle, control),
            reloads,
            desk: desk_spec,
        } = self;
        let _watcher = models.map(watcher::ModelWatcher::start);
        tracing::info!(
            source = source.describe(),
            sink = sink.describe(),
            "starting"
        );
        let mut report = RunReport {
            preloaded: source::preload(&mut source, &mut engine, &gate, &settings).await?,
            ..RunReport::default()
        };
        let acker = source.acker().await.map_err(RuntimeError::Source)?;
        let probe = source.lag_probe().await.map_err(RuntimeError::Source)?;
        telemetry.status.set_source_connected(true);

        let capacity = settings.quiver.queue_capacity;
        let (to_engine, from_source) = mpsc::channel(capacity);
        let (to_sink, from_engine) = mpsc::channel(capacity);
        // Weak: the queue must close when the source task ends, or the
        // engine thread would wait for a batch forever.
        let waker = to_engine.downgrade();
        control.wake_with(move || {
            // A full queue wakes the engine anyway.
            if let Some(to_engine) = waker.upgrade() {
                let _ = to_engine.try_send(source::ToEngine::Wake);
            }
        });
        let source_task = source::spawn(
            source,
            to_engine,
            Arc::clone(&telemetry),
            stop.clone(),
            settings.quiver.batch_size,
        );
        let broker_names: Vec<Arc<str>> = telemetry
            .metrics
            .broker_names
            .iter()
            .map(|b| Arc::from(b.as_str()))
            .collect();
        let mut emission = sink::Emission {
            gate: EmissionGate::new(
                EmissionPolicy::from_settings(&settings.quiver.publish),
                set.series.len(),
                broker_names.len(),
            ),
            brokers: broker_names,
        };
        let next_set: engine_stage::NextSet = Default::default();
        let mut reload_tasks = Vec::new();
        if let Some(reloads) = reloads {
            let handle = reloads.handle.clone();
            match &reloads.source {
                ConfigSource::File(path) if settings.quiver.config_watch_ms > 0 => {
                    let every = Duration::from_millis(settings.quiver.config_watch_ms);
                    reload_tasks.push(tokio::spawn(reloads::watch_file(
                        path.clone(),
                        every,
                        handle.clone(),
                    )));
                }
                ConfigSource::Store(url) => {
                    reload_tasks.push(tokio::spawn(reloads::listen_store(
                        url.clone(),
                        handle.clone(),
                        Arc::clone(&telemetry),
                    )));
                }
                ConfigSource::File(_) => {}
            }
            reload_tasks.push(tokio::spawn(reloads::on_sighup(handle)));
            reload_tasks.push(tokio::spawn(reloads::run(
                reloads,
                control_handle.clone(),
                Arc::clone(&next_set),
                Arc::clone(&telemetry),
                settings.clone(),
            )));
        }
        drop(control_handle);
        let paper = match settings.quiver.paper_report.as_str() {
            "" => None,
            dir => {
                let dir = std::path::PathBuf::from(dir);
                let trades = crate::backtest::trades_file(&dir).map_err(|err| {
                    RuntimeError::Settings(format!("quiver.paper_report: {}: {err}", dir.display()))
                })?;
                Some(engine_stage::Paper {
                    desk: desk_spec,
                    trades,
                    dir,
                })
            }
        };
        let recorder = match settings.quiver.record.as_str() {
            "" => None,
            dir => {
                let tz: chrono_tz::Tz = settings.quiver.session.timezone.parse().map_err(|_| {
                    RuntimeError::Settings(format!(
                        "quiver.session.timezone: {:?} is not an IANA time zone",
                        settings.quiver.session.timezone
                    ))
                })?;
                Some(
                    crate::record::Recorder::start(std::path::Path::new(dir), tz).map_err(
                        |err| RuntimeError::Settings(format!("quiver.record: {dir}: {err}")),
                    )?,
                )
            }
        };
        let stage = engine_stage::EngineStage {
            gate,
            set,
            next_set,
            runner,
            control,
            load_shedding: settings.quiver.load_shedding,
            paper,
            recorder,
        };
        let engine_thread = stage.spawn(engine, from_source, to_sink, Arc::clone(&telemetry))?;
        let probe_task = probe.map(|probe| source::spawn_lag_probe(probe, &telemetry, &stop));

        let drain_timeout = Duration::from_millis(settings.quiver.drain_timeout_ms);
        let sink_result = sink::run(
            &mut sink,
            acker,
            from_engine,
            &telemetry,
            stop.clone(),
            drain_timeout,
            &mut emission,
            &mut report,
        )
        .await;
        telemetry.status.set_draining();
        let flushed = sink.flush().await.map_err(RuntimeError::Sink);

        let source_result = source_task.await.unwrap_or(Err(RuntimeError::EngineThread));
        let engine_result = engine_thread
            .await
            .map_err(|_| RuntimeError::EngineThread)?;
        if let Some(task) = probe_task {
            task.abort();
        }
        for task in reload_tasks {
            task.abort();
        }
        report.ticks = telemetry.metrics.ticks_processed.get();
        report.outside_session = telemetry.metrics.ticks_outside_session.get();
        report.shed = telemetry.metrics.shed.get();
        source_result?;
        engine_result?;
        sink_result?;
        flushed?;
        Ok(report)
    }
}
