//! Errors of tick files, and the tally of rows a run chose to skip.
//!
//! Errors are split by blast radius: an [`OpenError`] means the file cannot be
//! read at all (wrong format, broken header), a [`RowError`] condemns one row
//! and reading goes on, so the caller can choose between stopping at the first
//! bad row and skipping (and counting) bad rows.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::Arc;

use quiver_core::{InstrumentToken, Price, PriceError};

/// Column/field names of a tick, in canonical order.
pub(crate) const FIELDS: [&str; 6] = ["ts_ns", "instrument", "price", "volume", "bid", "ask"];
/// How many leading entries of [`FIELDS`] every row must have.
pub(crate) const REQUIRED_FIELDS: usize = 4;
const EXPECTED_LIST: &str = "ts_ns, instrument, price, volume, bid, ask";

/// Why a tick file could not be opened; nothing was read from it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("{file}: unsupported tick file extension (expected .csv, .jsonl, .ndjson, .parquet or a directory of Parquet partitions)")]
    UnsupportedFormat { file: String },
    /// Not a Parquet file this reader can read (no footer, bad metadata).
    #[error("{file}: not a readable Parquet file: {message}")]
    Parquet { file: String, message: String },
    /// A Parquet file whose columns are not a tick's.
    #[error("{file}: {message}")]
    Columns { file: String, message: String },
    /// A directory that is not `<instrument>/YYYYMMDD.parquet` partitions.
    #[error("{file}: {message}")]
    Layout { file: String, message: String },
    #[error("{file}: cannot open: {error}")]
    Open { file: String, error: io::Error },
    #[error("{file}: read error: {error}")]
    Read { file: String, error: io::Error },
    #[error("{file}:1: empty file, expected a header row ({EXPECTED_LIST})")]
    MissingHeader { file: String },
    #[error("{file}:{line}: missing column {column:?}")]
    MissingColumn {
        file: String,
        line: u64,
        column: &'static str,
    },
    #[error("{file}:{line}: unknown column {column:?} (expected {EXPECTED_LIST})")]
    UnknownColumn {
        file: String,
        line: u64,
        column: String,
    },
    #[error("{file}:{line}: duplicate column {column:?}")]
    DuplicateColumn {
        file: String,
        line: u64,
        column: String,
    },
}

/// One bad row: where it is and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {kind}")]
pub struct RowError {
    file: Arc<str>,
    line: u64,
    kind: RowErrorKind,
}

/// What is wrong with a row.
///
/// `text` fields hold the offending value as it appeared, already quoted
/// (a CSV cell is shown as a quoted string, a JSON value as its raw JSON text),
/// so messages show exactly what the file contained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RowErrorKind {
    #[error("ts_ns: {text} is not an integer")]
    BadTimestamp { text: String },
    #[error("instrument: {text} is not an unsigned integer")]
    BadInstrument { text: String },
    /// `field` is `price`, `bid` or `ask`.
    #[error("{field}: {error}")]
    BadPrice {
        field: &'static str,
        error: PriceError,
    },
    /// `field` is `price`, `bid` or `ask`.
    #[error("{field}: must be > 0, got {value}")]
    NonPositivePrice { field: &'static str, value: Price },
    #[error("volume: {text} is not an unsigned integer")]
    BadVolume { text: String },
    #[error("volume: must be <= {max} (2^53, kept exactly), got {volume}", max = quiver_core::Tick::MAX_VOLUME)]
    VolumeOutOfRange { volume: u64 },
    #[error(
        "ts_ns: {ts_ns} is before {previous}, the previous timestamp of instrument {instrument}"
    )]
    TimestampBackwards {
        ts_ns: i64,
        previous: i64,
        instrument: InstrumentToken,
    },
    #[error("expected {expected} fields, found {found}")]
    WrongFieldCount { expected: u64, found: u64 },
    #[error("unknown field {name:?} (expected {EXPECTED_LIST})")]
    UnknownField { name: String },
    #[error("duplicate field {name:?}")]
    DuplicateField { name: &'static str },
    #[error("missing field {name:?}")]
    MissingField { name: &'static str },
    #[error("invalid JSON: {message}")]
    BadJson { message: String },
    /// A line (JSON Lines) or stream entry too long to be a tick; reading
    /// goes on with the next one.
    #[error("longer than {limit} bytes, which no tick is")]
    RowTooLong { limit: usize },
    /// A CSV row that runs on past the limit: an unclosed quote or binary
    /// junk. Records cannot be told apart after it, so the reader stops.
    #[error("a row longer than {limit} bytes starts here (an unclosed quote?); the rest of the file cannot be split into rows")]
    Unterminated { limit: usize },
    /// A row of a partition file that does not belong there (another
    /// instrument, or a time off the file's date).
    #[error("{message}")]
    OutsidePartition { message: String },
    /// The source failed; the reader yields nothing after this.
    #[error("read error: {error}")]
    Io { error: io::Error },
}

impl RowErrorKind {
    /// A stable snake_case tag, for counting and for machine-readable reports.
    pub fn reason(&self) -> &'static str {
        match self {
            RowErrorKind::BadTimestamp { .. } => "bad_timestamp",
            RowErrorKind::BadInstrument { .. } => "bad_instrument",
            RowErrorKind::BadPrice { .. } => "bad_price",
            RowErrorKind::NonPositivePrice { .. } => "non_positive_price",
            RowErrorKind::BadVolume { .. } => "bad_volume",
            RowErrorKind::VolumeOutOfRange { .. } => "volume_out_of_range",
            RowErrorKind::TimestampBackwards { .. } => "timestamp_backwards",
            RowErrorKind::WrongFieldCount { .. } => "wrong_field_count",
            RowErrorKind::UnknownField { .. } => "unknown_field",
            RowErrorKind::DuplicateField { .. } => "duplicate_field",
            RowErrorKind::MissingField { .. } => "missing_field",
            RowErrorKind::BadJson { .. } => "bad_json",
            RowErrorKind::RowTooLong { .. } | RowErrorKind::Unterminated { .. } => "row_too_long",
            RowErrorKind::OutsidePartition { .. } => "outside_partition",
            RowErrorKind::Io { .. } => "io_error",
        }
    }

    /// The field the error is about; `None` when it concerns the whole row.
    pub fn field(&self) -> Option<&str> {
        match self {
            RowErrorKind::BadTimestamp { .. } | RowErrorKind::TimestampBackwards { .. } => {
                Some("ts_ns")
            }
            RowErrorKind::BadInstrument { .. } => Some("instrument"),
            RowErrorKind::BadPrice { field, .. } | RowErrorKind::NonPositivePrice { field, .. } => {
                Some(field)
            }
            RowErrorKind::BadVolume { .. } | RowErrorKind::VolumeOutOfRange { .. } => {
                Some("volume")
            }
            RowErrorKind::UnknownField { name } => Some(name),
            RowErrorKind::DuplicateField { name } | RowErrorKind::MissingField { name } => {
                Some(name)
            }
            RowErrorKind::WrongFieldCount { .. }
            | RowErrorKind::BadJson { .. }
            | RowErrorKind::RowTooLong { .. }
            | RowErrorKind::Unterminated { .. }
            | RowErrorKind::OutsidePartition { .. }
            | RowErrorKind::Io { .. } => None,
        }
    }

    /// True when no further rows can follow this one.
    pub fn ends_reading(&self) -> bool {
        matches!(
            self,
            RowErrorKind::Io { .. } | RowErrorKind::Unterminated { .. }
        )
    }
}

impl RowError {
    pub(crate) fn new(file: Arc<str>, line: u64, kind: RowErrorKind) -> Self {
        RowError { file, line, kind }
    }

    /// The file's display name, as given when it was opened.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// 1-based physical line where the row starts.
    pub fn line(&self) -> u64 {
        self.line
    }

    pub fn kind(&self) -> &RowErrorKind {
        &self.kind
    }

    /// See [`RowErrorKind::reason`].
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// See [`RowErrorKind::field`].
    pub fn field(&self) -> Option<&str> {
        self.kind.field()
    }

    /// True when the source itself failed, so no further rows can follow.
    pub fn is_io(&self) -> bool {
        matches!(self.kind, RowErrorKind::Io { .. })
    }

    /// See [`RowErrorKind::ends_reading`]: an I/O failure, or input that can
    /// no longer be split into rows.
    pub fn ends_reading(&self) -> bool {
        self.kind.ends_reading()
    }
}

/// Rows skipped in a run, counted by [`RowErrorKind::reason`].
///
/// Keyed by the static reason tag, so recording a row never allocates after
/// the first row of each kind, and the report's order is stable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipReport {
    by_reason: BTreeMap<&'static str, u64>,
}

impl SkipReport {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record(&mut self, error: &RowError) {
        *self.by_reason.entry(error.reason()).or_insert(0) += 1;
    }

    /// Rows skipped over all reasons.
    pub fn total(&self) -> u64 {
        self.by_reason.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_reason.is_empty()
    }

    /// Counts by reason, in reason order.
    pub fn by_reason(&self) -> &BTreeMap<&'static str, u64> {
        &self.by_reason
    }
}

impl fmt::Display for SkipReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        let rows = if total == 1 { "row" } else { "rows" };
        write!(f, "skipped {total} bad {rows}")?;
        for (i, (reason, count)) in self.by_reason.iter().enumerate() {
            let sep = if i == 0 { ": " } else { ", " };
            write!(f, "{sep}{reason} {count}")?;
        }
        Ok(())
    }
}
