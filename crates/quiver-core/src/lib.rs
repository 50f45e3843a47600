//! Quiver's pure data model.
//!
//! Everything here is plain data and arithmetic: no I/O, no async, no clock. The
//! adapters (files, buses, HTTP) and the engine build on these types.

pub mod decision;
pub mod history;
pub mod instrument;
pub mod price;
pub mod rng;
pub mod synthetic;
pub mod tick;

pub use decision::{Decision, MetaValue, Metadata, Reasoning, Side};
pub use history::{History, HistoryRing, RingError};
pub use instrument::{partition_of, InstrumentIdx, InstrumentIndex, InstrumentToken};
pub use price::{Price, PriceError};
pub use tick::Tick;
