//! Streaming tick readers for CSV and JSON Lines files.
//!
//! Both formats go through the same checks (exact prices, positive prices,
//! per-instrument time order) so a run's behaviour does not depend on how its
//! ticks were stored. Rows are parsed from reused buffers: the happy path does
//! not allocate per row.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use quiver_core::Tick;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::selection::TickSelection;
use crate::tick_check::{self, quoted, RowFields, TimeOrder, MAX_ROW_BYTES, PRICE};
use crate::tick_error::{OpenError, RowError, RowErrorKind, FIELDS, REQUIRED_FIELDS};

/// Big enough that a read syscall moves many rows at once.
const READ_BUFFER_BYTES: usize = 1 << 16;

/// On-disk layout of a tick file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickFormat {
    /// Header row naming the columns, then one tick per row.
    Csv,
    /// One JSON object per line (`.jsonl` / `.ndjson`).
    Jsonl,
    /// A Parquet file (`.parquet`), or a directory of
    /// `<instrument>/YYYYMMDD.parquet` partitions.
    Parquet,
}

impl TickFormat {
    /// The format implied by a file's extension (case-insensitive).
    pub fn from_path(path: &Path) -> Option<TickFormat> {
        let ext = path.extension()?.to_str()?;
        if ext.eq_ignore_ascii_case("csv") {
            Some(TickFormat::Csv)
        } else if ext.eq_ignore_ascii_case("jsonl") || ext.eq_ignore_ascii_case("ndjson") {
            Some(TickFormat::Jsonl)
        } else if ext.eq_ignore_ascii_case("parquet") {
            Some(TickFormat::Parquet)
        } else {
            None
        }
    }
}

/// Opens a tick file, choosing the format from its extension.
///
/// The header of a CSV file is checked here, so a file with the wrong columns
/// fails before any tick is processed.
pub fn open_ticks(path: &Path) -> Result<TickReader, OpenError> {
    open_ticks_selected(path, &TickSelection::default())
}

/// [`open_ticks`] keeping only what `selection` keeps; a directory is read
/// as Parquet partitions (dates in `selection.tz`), merged in time order.
pub fn open_ticks_selected(
    path: &Path,
    selection: &TickSelection,
) -> Result<TickReader, OpenError> {
    let file = path.display().to_string();
    let format = if path.is_dir() {
        TickFormat::Parquet
    } else {
        match TickFormat::from_path(path) {
            Some(format) => format,
            None => return Err(OpenError::UnsupportedFormat { file }),
        }
    };
    let mut reader = match format {
        TickFormat::Parquet => parquet_source(path, selection)?,
        _ => match File::open(path) {
            Ok(handle) => TickReader::from_reader(&file, format, handle)?,
            Err(error) => return Err(OpenError::Open { file, error }),
        },
    };
    // A Parquet source drops what the selection leaves out as it reads
    // (whole partitions and row groups first); a text file's rows are
    // dropped here.
    if format != TickFormat::Parquet && !selection.is_everything() {
        reader.selection = Some((selection.clone(), selection.ts_range()));
    }
    Ok(reader)
}

#[cfg(feature = "parquet")]
fn parquet_source(path: &Path, selection: &TickSelection) -> Result<TickReader, OpenError> {
    let source = if path.is_dir() {
        Source::Dataset(Box::new(crate::parquet::Dataset::open(path, selection)?))
    } else {
        Source::Parquet(Box::new(crate::parquet::ParquetTicks::open(
            path,
            Some(selection),
        )?))
    };
    Ok(TickReader::with_source(
        &path.display().to_string(),
        TickFormat::Parquet,
        source,
    ))
}

#[cfg(not(feature = "parquet"))]
fn parquet_source(path: &Path, _: &TickSelection) -> Result<TickReader, OpenError> {
    Err(OpenError::Parquet {
        file: path.display().to_string(),
        message: "this build has no Parquet support (quiver-io's `parquet` feature)".to_owned(),
    })
}

/// Streams ticks from a file or any byte source.
///
/// Yields one item per row: a tick, or the reason the row is bad. Reading
/// continues after a bad row, except after an I/O error, which ends the stream.
pub struct TickReader {
    name: Arc<str>,
    format: TickFormat,
    source: Source,
    order: TimeOrder,
    selection: Option<(TickSelection, (i64, i64))>,
    done: bool,
}

enum Source {
    Csv(Box<CsvSource>),
    Jsonl(JsonlSource),
    #[cfg(feature = "parquet")]
    Parquet(Box<crate::parquet::ParquetTicks>),
    #[cfg(feature = "parquet")]
    Dataset(Box<crate::parquet::Dataset>),
}

/// A row that parsed, before the per-instrument time-order check.
type Parsed = Result<(u64, Tick), (u64, RowErrorKind)>;

impl TickReader {
    /// Reads ticks from `reader` (a file, stdin, an in-memory buffer).
    ///
    /// `name` is only used in messages. `reader` need not be buffered.
    pub fn from_reader(
        name: &str,
        format: TickFormat,
        reader: impl Read + Send + 'static,
    ) -> Result<TickReader, OpenError> {
        let reader: Box<dyn Read + Send> = Box::new(reader);
        let source = match format {
            TickFormat::Csv => Source::Csv(Box::new(CsvSource::new(name, reader)?)),
            TickFormat::Jsonl => Source::Jsonl(JsonlSource {
                reader: BufReader::with_capacity(READ_BUFFER_BYTES, reader),
                line: Vec::new(),
                line_no: 0,
            }),
            // Parquet needs random access (its footer is at the end): a
            // file, not a stream.
            TickFormat::Parquet => {
                return Err(OpenError::Parquet {
                    file: name.to_owned(),
                    message: "Parquet is read from a file or directory, not a stream".to_owned(),
                })
            }
        };
        Ok(Self::with_source(name, format, source))
    }

    fn with_source(name: &str, format: TickFormat, source: Source) -> TickReader {
        TickReader {
            name: Arc::from(name),
            format,
            source,
            order: TimeOrder::default(),
            selection: None,
            done: false,
        }
    }

    /// The display name used in error messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn format(&self) -> TickFormat {
        self.format
    }

    fn check_order(&mut self, line: u64, tick: Tick) -> Result<Tick, RowError> {
        match self.order.admit(&tick) {
            Ok(()) => Ok(tick),
            Err(kind) => Err(RowError::new(self.name.clone(), line, kind)),
        }
    }
}

impl TickReader {
    fn next_parsed(&mut self) -> Option<Result<Tick, RowError>> {
        let parsed = match &mut self.source {
            Source::Csv(source) => source.next_row(),
            Source::Jsonl(source) => source.next_row(),
            #[cfg(feature = "parquet")]
            Source::Parquet(source) => source
                .next_row()
                .map(|row| row.map(|(line, tick, _)| (line, tick))),
            #[cfg(feature = "parquet")]
            Source::Dataset(source) => {
                return match source.next_row()? {
                    Ok((file, line, tick)) => match self.order.admit(&tick) {
                        Ok(()) => Some(Ok(tick)),
                        Err(kind) => Some(Err(RowError::new(
                            source.file_name(file).clone(),
                            line,
                            kind,
                        ))),
                    },
                    Err((file, line, kind)) => {
                        self.done = kind.ends_reading();
                        Some(Err(RowError::new(file, line, kind)))
                    }
                };
            }
        };
        let Some(parsed) = parsed else {
            self.done = true;
            return None;
        };
        Some(match parsed {
            Ok((line, tick)) => self.check_order(line, tick),
            Err((line, kind)) => {
                self.done = kind.ends_reading();
                Err(RowError::new(self.name.clone(), line, kind))
            }
        })
    }
}

impl Iterator for TickReader {
    type Item = Result<Tick, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let item = self.next_parsed();
            if item.is_none() {
                self.done = true;
            }
            if let (Some(Ok(tick)), Some((selection, range))) = (&item, &self.selection) {
                if !selection.keeps(tick.ts_ns, tick.instrument, *range) {
                    continue;
                }
            }
            return item;
        }
    }
}

impl fmt::Debug for TickReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TickReader")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("instruments_seen", &self.order.instruments())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// CSV

struct CsvSource {
    reader: csv::Reader<LineTracker>,
    record: csv::ByteRecord,
    /// Record index of each field in [`FIELDS`] order; `None` only for bid/ask.
    columns: [Option<usize>; 6],
}

impl CsvSource {
    fn new(name: &str, reader: Box<dyn Read + Send>) -> Result<CsvSource, OpenError> {
        let mut reader = csv::ReaderBuilder::new()
            // The header is read as an ordinary record so its line is known and
            // every later row is held to its width.
            .has_headers(false)
            .buffer_capacity(READ_BUFFER_BYTES)
            .from_reader(LineTracker::new(reader));
        let mut record = csv::ByteRecord::new();
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => {
                return Err(OpenError::MissingHeader {
                    file: name.to_owned(),
                })
            }
            Err(error) => {
                return Err(OpenError::Read {
                    file: name.to_owned(),
                    error: csv_io_error(error),
                })
            }
        }
        let line = record_line(&mut reader, record.position());
        let columns = header_columns(name, line, &record)?;
        Ok(CsvSource {
            reader,
            record,
            columns,
        })
    }

    fn next_row(&mut self) -> Option<Parsed> {
        let before = self.reader.position().clone();
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                let line = record_line(&mut self.reader, self.record.position());
                Some(
                    self.parse_record()
                        .map(|tick| (line, tick))
                        .map_err(|kind| (line, kind)),
                )
            }
            Err(error) => Some(Err(match error.into_kind() {
                csv::ErrorKind::UnequalLengths {
                    pos,
                    expected_len,
                    len,
                } => (
                    record_line(&mut self.reader, pos.as_ref().or(Some(&before))),
                    RowErrorKind::WrongFieldCount {
                        expected: expected_len,
                        found: len,
                    },
                ),
                kind => {
                    let error = kind_to_io(kind);
                    let kind = if error.get_ref().is_some_and(|e| e.is::<RecordTooLong>()) {
                        RowErrorKind::Unterminated {
                            limit: MAX_ROW_BYTES,
                        }
                    } else {
                        RowErrorKind::Io { error }
                    };
                    (record_line(&mut self.reader, Some(&before)), kind)
                }
            })),
        }
    }

    fn parse_record(&self) -> Result<Tick, RowErrorKind> {
        tick_check::tick_of(&CsvRow {
            record: &self.record,
            columns: &self.columns,
        })
    }
}

struct CsvRow<'a> {
    record: &'a csv::ByteRecord,
    columns: &'a [Option<usize>; 6],
}

impl RowFields for CsvRow<'_> {
    fn text(&self, field: usize) -> Option<Cow<'_, [u8]>> {
        self.columns[field]
            .and_then(|index| self.record.get(index))
            .map(Cow::Borrowed)
    }

    fn shown(&self, field: usize) -> String {
        quoted(self.text(field).as_deref().unwrap_or_default())
    }
}

/// The physical line a record starts on.
///
/// csv's own positions are not that: a record's position is where the parser
/// resumed, which lies before any skipped blank lines and, with CRLF endings,
/// before the previous record's `\n`.
fn record_line(reader: &mut csv::Reader<LineTracker>, position: Option<&csv::Position>) -> u64 {
    let position = position.unwrap_or_else(|| reader.position());
    let fallback = position.line();
    let start = position.byte();
    reader.get_mut().line_at_or_after(start).unwrap_or(fallback)
}

/// Passes bytes to the CSV parser, noting where each non-blank line starts.
///
/// A record starts at the first such line at or after the offset where the
/// parser resumed, because only line breaks can lie in between. The queue
/// only holds lines the parser has buffered but not yet parsed, so it stays
/// bounded by the read buffer.
struct LineTracker {
    inner: Box<dyn Read + Send>,
    /// Bytes passed through so far.
    offset: u64,
    /// 1-based line of the byte at `offset`.
    line: u64,
    /// Whether the byte at `offset` follows a line break (or is the first).
    at_line_start: bool,
    /// `(offset, line)` of line starts not yet asked about.
    starts: VecDeque<(u64, u64)>,
    /// Where the last record the parser finished started: reading further
    /// than [`MAX_ROW_BYTES`] (plus what the parser buffers) past it means
    /// the current record is too long to be a tick.
    record_start: u64,
}

/// The error [`LineTracker`] reads fail with once a record runs on too long.
#[derive(Debug)]
struct RecordTooLong;

impl fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a row longer than {MAX_ROW_BYTES} bytes")
    }
}

impl std::error::Error for RecordTooLong {}

impl LineTracker {
    fn new(inner: Box<dyn Read + Send>) -> Self {
        LineTracker {
            inner,
            offset: 0,
            line: 1,
            at_line_start: true,
            starts: VecDeque::new(),
            record_start: 0,
        }
    }

    /// The line of the first content byte at or after `offset`, where a
    /// record started.
    fn line_at_or_after(&mut self, offset: u64) -> Option<u64> {
        self.record_start = self.record_start.max(offset);
        while let Some(&(start, line)) = self.starts.front() {
            if start >= offset {
                return Some(line);
            }
            self.starts.pop_front();
        }
        None
    }
}

impl Read for LineTracker {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let window = (MAX_ROW_BYTES + READ_BUFFER_BYTES) as u64;
        if self.offset.saturating_sub(self.record_start) > window {
            return Err(io::Error::new(io::ErrorKind::InvalidData, RecordTooLong));
        }
        let n = self.inner.read(buf)?;
        let data = &buf[..n];
        let mut i = 0;
        while i < n {
            if !self.at_line_start {
                // Inside a line: skip to the next break, a word at a time while
                // no byte of the word can be one.
                while i + 8 <= n && !may_hold_line_break(&data[i..i + 8]) {
                    i += 8;
                }
                while i < n && data[i] != b'\n' && data[i] != b'\r' {
                    i += 1;
                }
                if i == n {
                    break;
                }
                self.at_line_start = true;
            }
            match data[i] {
                b'\n' => self.line += 1,
                // A lone `\r` ends a record too, though not a physical line.
                b'\r' => {}
                _ => {
                    self.starts.push_back((self.offset + i as u64, self.line));
                    self.at_line_start = false;
                }
            }
            i += 1;
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// Whether any of 8 bytes is below 0x0E, which `\n` (0x0A) and `\r` (0x0D)
/// are and printable text is not (the "haszero/hasless" bit trick).
fn may_hold_line_break(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    let word = u64::from_ne_bytes(word);
    word.wrapping_sub(ONES * 0x0E) & !word & HIGHS != 0
}

fn header_columns(
    name: &str,
    line: u64,
    header: &csv::ByteRecord,
) -> Result<[Option<usize>; 6], OpenError> {
    let mut columns = [None; 6];
    for (index, raw) in header.iter().enumerate() {
        let column = String::from_utf8_lossy(raw);
        let column = column.trim();
        let Some(field) = FIELDS.iter().position(|&f| f == column) else {
            return Err(OpenError::UnknownColumn {
                file: name.to_owned(),
                line,
                column: column.to_owned(),
            });
        };
        if columns[field].replace(index).is_some() {
            return Err(OpenError::DuplicateColumn {
                file: name.to_owned(),
                line,
                column: column.to_owned(),
            });
        }
    }
    if let Some(missing) = (0..REQUIRED_FIELDS).find(|&field| columns[field].is_none()) {
        return Err(OpenError::MissingColumn {
            file: name.to_owned(),
            line,
            column: FIELDS[missing],
        });
    }
    Ok(columns)
}

/// Byte records only fail on I/O (length mismatches are handled by the
/// caller), but the kind is non-exhaustive, so anything else is reported as
/// invalid data rather than dropped.
fn kind_to_io(kind: csv::ErrorKind) -> io::Error {
    match kind {
        csv::ErrorKind::Io(error) => error,
        other => io::Error::new(io::ErrorKind::InvalidData, format!("{other:?}")),
    }
}

fn csv_io_error(error: csv::Error) -> io::Error {
    kind_to_io(error.into_kind())
}

// ---------------------------------------------------------------------------
// JSON Lines

struct JsonlSource {
    reader: BufReader<Box<dyn Read + Send>>,
    line: Vec<u8>,
    line_no: u64,
}

impl JsonlSource {
    fn next_row(&mut self) -> Option<Parsed> {
        loop {
            self.line.clear();
            let whole = match read_line_bounded(&mut self.reader, &mut self.line, MAX_ROW_BYTES) {
                Ok(None) => return None,
                Ok(Some(whole)) => whole,
                Err(error) => return Some(Err((self.line_no + 1, RowErrorKind::Io { error }))),
            };
            self.line_no += 1;
            if !whole {
                let kind = RowErrorKind::RowTooLong {
                    limit: MAX_ROW_BYTES,
                };
                return Some(Err((self.line_no, kind)));
            }
            let text = self.line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let line = self.line_no;
            return Some(
                parse_json_row(text)
                    .map(|t| (line, t))
                    .map_err(|k| (line, k)),
            );
        }
    }
}

/// Reads one line into `line`, keeping at most `limit` bytes of it: the rest
/// of a longer line is read past without being kept. `None` at the end of
/// the input; otherwise whether the line was kept whole.
fn read_line_bounded(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Option<bool>> {
    let mut read_any = false;
    let mut whole = true;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if buf.is_empty() {
            return Ok(read_any.then_some(whole));
        }
        read_any = true;
        let (chunk, ends) = match buf.iter().position(|&b| b == b'\n') {
            Some(at) => (&buf[..=at], true),
            None => (buf, false),
        };
        if whole && line.len() + chunk.len() <= limit {
            line.extend_from_slice(chunk);
        } else {
            whole = false;
        }
        let used = chunk.len();
        reader.consume(used);
        if ends {
            return Ok(Some(whole));
        }
    }
}

/// The fields of one JSON row as raw text, so prices can be parsed exactly.
#[derive(Default)]
struct RawRow<'a> {
    values: [Option<&'a RawValue>; 6],
    /// First unknown key; reported after the whole line is known to be JSON.
    unknown: Option<String>,
    duplicate: Option<&'static str>,
}

enum Key {
    Known(usize),
    Unknown(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match FIELDS.iter().position(|&f| f == key) {
                    Some(field) => Key::Known(field),
                    None => Key::Unknown(key.to_owned()),
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for RawRow<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawRow<'de>, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = RawRow<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a tick object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRow<'de>, A::Error> {
                let mut row = RawRow::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Known(field) => {
                            let value: &'de RawValue = map.next_value()?;
                            if row.values[field].replace(value).is_some() {
                                row.duplicate.get_or_insert(FIELDS[field]);
                            }
                        }
                        Key::Unknown(name) => {
                            map.next_value::<IgnoredAny>()?;
                            row.unknown.get_or_insert(name);
                        }
                    }
                }
                Ok(row)
            }
        }
        deserializer.deserialize_map(RowVisitor)
    }
}

fn parse_json_row(line: &[u8]) -> Result<Tick, RowErrorKind> {
    let text = std::str::from_utf8(line).map_err(|_| RowErrorKind::BadJson {
        message: "line is not valid UTF-8".to_owned(),
    })?;
    let row: RawRow<'_> = serde_json::from_str(text).map_err(|error| RowErrorKind::BadJson {
        message: json_message(&error),
    })?;
    if let Some(name) = row.unknown {
        return Err(RowErrorKind::UnknownField { name });
    }
    if let Some(name) = row.duplicate {
        return Err(RowErrorKind::DuplicateField { name });
    }
    tick_check::tick_of(&row)
}

impl RowFields for RawRow<'_> {
    /// Integers are read from the value's own text (a quoted integer is not
    /// one); prices from a number's digits or a string's contents, never via
    /// `f64`, which cannot hold most decimals exactly. `null` is no quote.
    fn text(&self, field: usize) -> Option<Cow<'_, [u8]>> {
        let raw = self.values[field]?.get();
        if field < PRICE || field == tick_check::VOLUME {
            return Some(Cow::Borrowed(raw.as_bytes()));
        }
        if raw == "null" && field != PRICE {
            return None;
        }
        Some(
            match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
                Some(inner) if !inner.contains('\\') => Cow::Borrowed(inner.as_bytes()),
                // Escapes in a price are odd but legal JSON; decode them properly.
                Some(_) => match serde_json::from_str::<String>(raw) {
                    Ok(decoded) => Cow::Owned(decoded.into_bytes()),
                    Err(_) => Cow::Borrowed(raw.as_bytes()),
                },
                None => Cow::Borrowed(raw.as_bytes()),
            },
        )
    }

    fn shown(&self, field: usize) -> String {
        self.values[field]
            .map(|raw| raw.get().to_owned())
            .unwrap_or_default()
    }
}

/// serde_json's message without its position suffix: the line is always 1
/// here and would contradict the file line in the row error.
fn json_message(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match full.strip_suffix(&suffix) {
        // Column 0 means serde_json knows no position (a type error).
        Some(message) if error.column() == 0 => message.to_owned(),
        Some(message) => format!("{message} (column {})", error.column()),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn line_break_detection_is_exact_for_every_byte() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut word = [b'7'; 8];
                word[at] = b;
                assert_eq!(may_hold_line_break(&word), b < 0x0E, "{b:#x} at {at}");
            }
        }
    }

    proptest! {
        #[test]
        fn line_tracking_survives_any_read_sizes(
            lines in proptest::collection::vec("[a-z]{0,12}", 1..40),
            crlf in any::<bool>(),
            chunk in 1usize..20,
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let text: String = lines.iter().map(|l| format!("{l}{eol}")).collect();
            let mut tracker = LineTracker::new(Box::new(io::Cursor::new(text.clone().into_bytes())));
            let mut sink = vec![0; chunk];
            while tracker.read(&mut sink).unwrap() > 0 {}
            let mut offset = 0u64;
            for (i, line) in lines.iter().enumerate() {
                if !line.is_empty() {
                    prop_assert_eq!(tracker.line_at_or_after(offset), Some(i as u64 + 1));
                }
                offset += (line.len() + eol.len()) as u64;
            }
            prop_assert_eq!(tracker.line_at_or_after(offset), None);
        }
    }
}
