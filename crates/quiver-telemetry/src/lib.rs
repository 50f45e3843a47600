//! Quiver's telemetry: metric names and handles, the Prometheus text
//! exposition, and the HTTP endpoints operators and orchestrators poll.
//!
//! The runtime registers every series once at start-up from a [`Catalog`]
//! (strategies, brokers, instruments — all fixed for the life of the process)
//! and keeps the handles; the tick path only adds to atomics. Values the engine
//! keeps itself (per-strategy counts, lifecycle states, history fill) are
//! copied into gauges and counters by the runtime between batches, so the
//! engine stays free of any telemetry dependency.

pub mod http;
pub mod metrics;
pub mod registry;
pub mod status;

use std::sync::Mutex;

pub use metrics::{
    drop_reasons, names, Catalog, MetricDef, ServiceMetrics, StrategyDesc, StrategySeries, METRICS,
};
pub use registry::{Counter, Gauge, Histogram, Registry, RegistryError};
pub use status::{
    ConfigStatus, PausedBroker, ReloadRecord, Status, StrategyStatus, TransitionRecord,
    TRANSITIONS_KEPT,
};

/// Everything the HTTP endpoints read.
pub struct Telemetry {
    pub registry: Registry,
    pub metrics: ServiceMetrics,
    pub status: Status,
    /// Called before each scrape, to refresh values computed on demand.
    before_scrape: Mutex<Option<Box<dyn Fn() + Send>>>,
}

impl Telemetry {
    pub fn new(catalog: &Catalog) -> Result<Self, RegistryError> {
        let registry = Registry::new();
        let metrics = ServiceMetrics::register(&registry, catalog)?;
        Ok(Telemetry {
            registry,
            metrics,
            status: Status::default(),
            before_scrape: Mutex::new(None),
        })
    }

    /// Sets the hook run before each `/metrics` scrape.
    pub fn on_scrape(&self, hook: impl Fn() + Send + 'static) {
        *self.before_scrape.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(hook));
    }

    fn before_scrape(&self) {
        if let Some(hook) = &*self.before_scrape.lock().unwrap_or_else(|p| p.into_inner()) {
            hook();
        }
    }
}
