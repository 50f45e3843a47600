//! The shared feature store: indicators computed once per instrument per tick.
//!
//! A hundred strategies reading `zscore(20)` of an instrument must not compute
//! it a hundred times. Strategies declare the [`FeatureSpec`]s they read; the
//! engine keeps one [`InstrumentFeatures`] per instrument with the distinct
//! specs its followers declared, updates it once per tick right after the
//! tick is appended to the shared history ring, and hands each strategy a
//! [`FeatureView`] that maps the strategy's own feature indices to the shared
//! slots. Every update is O(1) and allocation-free.
//!
//! Pure: no I/O, no clock.

pub mod exact;
mod spec;
mod state;
mod store;

pub use spec::{FeatureSpec, SpecError, MAX_WINDOW};
pub use state::{rsi_from_sums, RECOMPUTE_EVERY};
pub use store::{FeatureView, InstrumentFeatures};
