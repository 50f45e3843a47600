//! Quiver's file adapters: tick files in, signal files out.
//!
//! This is the edge where bytes become [`quiver_core`] types and back. It owns
//! everything format-specific (CSV headers, JSON escaping, line numbers), so
//! the engine and strategies never see text. Readers are blocking iterators,
//! not async streams: replay runs are bound by the engine, not by the disk, and
//! a plain iterator is the cheapest thing to feed it from.
//!
//! Bad input is data, not a crash: a malformed row is a [`RowError`] the
//! caller may stop on or count in a [`SkipReport`], and prices are parsed
//! exactly from their text, never through `f64`.
//!
//! With the `parquet` feature, [`parquet`] reads and writes ticks as Parquet
//! files and partitioned directories.
//!
//! With the `live` feature, [`live`] adds the async source and sink traits of
//! the live service with a file replay source, a synthetic generator and a
//! JSONL sink; with `redis`, [`redis`] adds the Redis Streams adapters.

#[cfg(feature = "live")]
pub mod live;
#[cfg(feature = "parquet")]
pub mod parquet;
#[cfg(feature = "redis")]
pub mod redis;
mod selection;
mod signal;
pub mod signal_id;
mod tick_check;
mod tick_error;
mod tick_output;
mod tick_reader;
mod tick_writer;

pub use selection::{date_of, day_start, TickSelection};
pub use signal::{encode_signal, ModelTag, SignalRecord, SignalWriter};
pub use signal_id::signal_id;
pub use tick_check::MAX_ROW_BYTES;
pub use tick_error::{OpenError, RowError, RowErrorKind, SkipReport};
pub use tick_output::TickOutput;
pub use tick_reader::{open_ticks, open_ticks_selected, TickFormat, TickReader};
pub use tick_writer::{write_ticks_csv, write_ticks_csv_with_quotes, TextFormat, TextTickWriter};
