//! Quiver's live service: the runtime that wires a tick source, the engine and
//! a signal sink together (`quiver run`).
//!
//! ```text
//!  source task ──(bounded queue)──► engine thread ──(bounded queue)──► sink task
//!  XREADGROUP / file / generator     Engine::on_tick, encode            publish, then ack
//! ```
//!
//! The engine stays pure and synchronous on its own thread; the source and
//! sink are async (tokio). Queues are bounded, so when the engine falls behind
//! the source stops reading and the lag shows in the bus and in
//! `market_tick_source_lag`, instead of in memory. A batch is acknowledged
//! only after everything it caused is published; with an idempotent sink that
//! makes a crash at any moment harmless (see `quiver_io::redis`).

pub mod backtest;
pub mod http;
mod instrumented;
pub mod models;
pub mod publish;
pub mod record;
pub mod reload;
pub mod replay;
pub mod service;
pub mod session;
pub mod settings;

pub use instrumented::{instrument, Instrumented};
pub use service::wiring::{AnySink, AnySource, WiringError};
pub use service::{RunReport, RuntimeError, Service};
pub use session::SessionClock;
pub use settings::{
    Flag, Origin, SettingProblem, Settings, SettingsError, SettingsIssue, SinkKind, SourceKind,
};
