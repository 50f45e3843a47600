//! Ticks as Parquet: one file ([`ParquetTickWriter`], [`ParquetTicks`]) or
//! a directory laid out as `DIR/<instrument>/YYYYMMDD.parquet`
//! ([`DatasetWriter`], [`Dataset`]), the date in a given time zone.
//!
//! The columns are the CSV's: `ts_ns` (INT64, TIMESTAMP(NANOS)),
//! `instrument` and `volume` (INT64, unsigned), `price` and the optional
//! `bid`/`ask` as exact decimals (INT64 DECIMAL(18, 8): the integer of
//! 10⁻⁸ units, the scale in the schema). A recording adds `seq`, the order
//! the live run processed its ticks in. Row groups carry min/max
//! statistics, so a reader skips those outside the time range asked for.
//!
//! Reading checks each row as the text formats do (prices > 0, volume within
//! range, per-instrument time order in [`crate::TickReader`]); the checks a
//! typed column makes unnecessary (an integer is an integer) are not
//! repeated.

mod dataset;
mod reader;
mod writer;

use std::sync::Arc;

use parquet::schema::parser::parse_message_type;
use parquet::schema::types::Type;

pub use dataset::{Dataset, DatasetWriter};
pub use reader::ParquetTicks;
pub use writer::{CheckpointFile, ParquetTickWriter};

pub use crate::selection::{date_of, day_start, TickSelection};

/// Rows per row group when writing: about 3.5 MiB of decoded columns, small
/// enough to stream, large enough that per-group overhead is noise.
pub const ROW_GROUP_ROWS: usize = 1 << 16;

/// The schema of a tick file; `recorded` adds the `seq` column.
fn schema(recorded: bool) -> Arc<Type> {
    let seq = if recorded {
        "required int64 seq (INTEGER(64,false));"
    } else {
        ""
    };
    let text = format!(
        "message tick {{
            required int64 ts_ns (TIMESTAMP(NANOS,true));
            required int64 instrument (INTEGER(64,false));
            required int64 price (DECIMAL(18,8));
            required int64 volume (INTEGER(64,false));
            optional int64 bid (DECIMAL(18,8));
            optional int64 ask (DECIMAL(18,8));
            {seq}
        }}"
    );
    // The text is a constant of this module, covered by every test that
    // writes a file.
    #[allow(clippy::expect_used)]
    Arc::new(parse_message_type(&text).expect("the tick schema parses"))
}
