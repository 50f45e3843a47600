//! Reading one Parquet tick file, batch by batch, skipping the row groups
//! a selection leaves out.

use std::fs::File;
use std::io;

use parquet::basic::{LogicalType, TimeUnit, Type as PhysicalType};
use parquet::column::reader::{get_typed_column_reader, ColumnReaderImpl};
use parquet::data_type::{FixedLenByteArray, FixedLenByteArrayType, Int32Type, Int64Type};
use parquet::file::reader::{FileReader, RowGroupReader};
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnDescriptor;
use quiver_core::price::PRICE_DECIMALS;
use quiver_core::{InstrumentToken, Price, PriceError, Tick};

use super::TickSelection;
use crate::tick_check;
use crate::tick_error::{OpenError, RowErrorKind};

/// Rows decoded per column at a time: what a file holds in memory beside
/// its current pages.
const BATCH_ROWS: usize = 4096;

/// Column names in [`crate::tick_error::FIELDS`] order, then `seq`.
const COLUMNS: [&str; 7] = [
    "ts_ns",
    "instrument",
    "price",
    "volume",
    "bid",
    "ask",
    "seq",
];
const TS: usize = 0;
const INSTRUMENT: usize = 1;
const PRICE: usize = 2;
const VOLUME: usize = 3;
const BID: usize = 4;
const ASK: usize = 5;
const SEQ: usize = 6;

/// A row read: (row number, tick, seq), or the row number and what is wrong.
pub(crate) type FileRow = Result<(u64, Tick, u64), (u64, RowErrorKind)>;

/// The ticks of one Parquet file, in file order.
pub struct ParquetTicks {
    name: String,
    reader: SerializedFileReader<File>,
    /// Leaf index of each of [`COLUMNS`] (`seq` only in recordings).
    leaves: [Option<usize>; 7],
    /// What each column's values are multiplied by to be ns / 10⁻⁸ units.
    scale: [i64; 7],
    groups: Vec<usize>,
    next_group: usize,
    cursors: Vec<Option<Cursor>>,
    batch: Batch,
    /// 1-based number of the next row in the file.
    row: u64,
    /// Rows before the current group, for row numbers after skipped groups.
    group_first_row: Vec<u64>,
    selection: Option<(TickSelection, (i64, i64))>,
    partition: Option<Partition>,
    done: bool,
}

/// What a file of a dataset must hold: its directory's instrument, ticks
/// of its date.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Partition {
    pub instrument: InstrumentToken,
    pub range: (i64, i64),
}

enum Cursor {
    I64(ColumnReaderImpl<Int64Type>),
    I32(ColumnReaderImpl<Int32Type>),
    Fixed(ColumnReaderImpl<FixedLenByteArrayType>),
}

#[derive(Default)]
struct Batch {
    values: [Vec<i64>; 7],
    levels: [Vec<i16>; 7],
    /// Next value of each column (optional columns skip nulls).
    at: [usize; 7],
    /// Next row of the batch, and its rows.
    row: usize,
    rows: usize,
    i32s: Vec<i32>,
    fixed: Vec<FixedLenByteArray>,
}

fn parquet_error(file: &str, error: impl std::fmt::Display) -> OpenError {
    OpenError::Parquet {
        file: file.to_owned(),
        message: error.to_string(),
    }
}

impl ParquetTicks {
    /// Opens `path`, checks its columns and picks the row groups `selection`
    /// may need.
    pub fn open(
        path: &std::path::Path,
        selection: Option<&TickSelection>,
    ) -> Result<Self, OpenError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|error| OpenError::Open {
            file: name.clone(),
            error,
        })?;
        Self::from_file(name, file, selection, None)
    }

    pub(crate) fn from_file(
        name: String,
        file: File,
        selection: Option<&TickSelection>,
        partition: Option<Partition>,
    ) -> Result<Self, OpenError> {
        let reader = SerializedFileReader::new(file).map_err(|e| parquet_error(&name, e))?;
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        let mut leaves = [None; 7];
        let mut scale = [1; 7];
        for (leaf, column) in schema.columns().iter().enumerate() {
            let Some(c) = COLUMNS.iter().position(|n| *n == column.name()) else {
                return Err(OpenError::Columns {
                    file: name,
                    message: format!(
                        "unknown column {:?} (expected {})",
                        column.name(),
                        COLUMNS.join(", ")
                    ),
                });
            };
            if column.path().parts().len() != 1 || column.max_rep_level() != 0 {
                return Err(columns_error(&name, c, "is nested or repeated"));
            }
            if leaves[c].is_some() {
                return Err(columns_error(&name, c, "appears twice"));
            }
            let optional = column.max_def_level() > 0;
            if optional && !matches!(c, BID | ASK) {
                return Err(columns_error(
                    &name,
                    c,
                    "is optional; only bid and ask may be",
                ));
            }
            scale[c] = column_scale(&name, c, column)?;
            leaves[c] = Some(leaf);
        }
        for (c, leaf) in leaves.iter().enumerate().take(VOLUME + 1) {
            if leaf.is_none() {
                return Err(OpenError::MissingColumn {
                    file: name,
                    line: 0,
                    column: COLUMNS[c],
                });
            }
        }
        let selection = selection
            .filter(|s| !s.is_everything())
            .map(|s| (s.clone(), s.ts_range()));
        let metadata = reader.metadata();
        let mut group_first_row = Vec::with_capacity(metadata.num_row_groups());
        let mut first = 1;
        let mut groups = Vec::new();
        for (g, group) in metadata.row_groups().iter().enumerate() {
            group_first_row.push(first);
            first += group.num_rows().max(0) as u64;
            let keep = match &selection {
                None => true,
                Some((selection, range)) => {
                    let ts = leaves[TS].and_then(|l| i64_range(group.column(l).statistics()));
                    let instrument =
                        leaves[INSTRUMENT].and_then(|l| i64_range(group.column(l).statistics()));
                    let ts_overlaps = ts.is_none_or(|(min, max)| {
                        max.saturating_mul(scale[TS]) >= range.0
                            && min.saturating_mul(scale[TS]) < range.1
                    });
                    let instrument_kept = match instrument {
                        Some((min, max)) if min == max => {
                            selection.keeps_instrument(min as InstrumentToken)
                        }
                        _ => true,
                    };
                    ts_overlaps && instrument_kept
                }
            };
            if keep {
                groups.push(g);
            }
        }
        Ok(ParquetTicks {
            name,
            reader,
            leaves,
            scale,
            groups,
            next_group: 0,
            cursors: Vec::new(),
            batch: Batch::default(),
            row: 1,
            group_first_row,
            selection,
            partition,
            done: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The time zone the writer dated the file in, when it said.
    pub fn timezone(&self) -> Option<chrono_tz::Tz> {
        self.reader
            .metadata()
            .file_metadata()
            .key_value_metadata()?
            .iter()
            .find(|kv| kv.key == super::writer::TIMEZONE_KEY)?
            .value
            .as_deref()?
            .parse()
            .ok()
    }

    /// Row groups to be read (those the selection may need).
    pub fn row_groups(&self) -> usize {
        self.groups.len()
    }

    /// Whether the file carries `seq` (a recording).
    pub fn recorded(&self) -> bool {
        self.leaves[SEQ].is_some()
    }

    /// The smallest `seq` of the row groups to be read, from their
    /// statistics.
    pub(crate) fn first_seq(&self) -> Option<u64> {
        let leaf = self.leaves[SEQ]?;
        let metadata = self.reader.metadata();
        self.groups
            .iter()
            .filter_map(|&g| i64_range(metadata.row_group(g).column(leaf).statistics()))
            .map(|(min, _)| min as u64)
            .min()
    }

    /// The largest `seq` in the file, from its statistics.
    pub(crate) fn last_seq(&self) -> Option<u64> {
        let leaf = self.leaves[SEQ]?;
        self.reader
            .metadata()
            .row_groups()
            .iter()
            .filter_map(|g| i64_range(g.column(leaf).statistics()))
            .map(|(_, max)| max as u64)
            .max()
    }

    /// The next tick with its row number and `seq` (0 when not recorded).
    pub(crate) fn next_row(&mut self) -> Option<FileRow> {
        loop {
            if self.done {
                return None;
            }
            if self.batch.row == self.batch.rows {
                match self.fill() {
                    Ok(true) => {}
                    Ok(false) => {
                        self.done = true;
                        return None;
                    }
                    Err(error) => {
                        self.done = true;
                        return Some(Err((self.row, RowErrorKind::Io { error })));
                    }
                }
            }
            let row = self.row;
            self.row += 1;
            let parsed = self.take_row();
            self.batch.row += 1;
            match parsed {
                Ok((tick, seq)) => {
                    if let Some((selection, range)) = &self.selection {
                        if !selection.keeps(tick.ts_ns, tick.instrument, *range) {
                            continue;
                        }
                    }
                    if let Some(p) = self.partition {
                        if let Err(kind) = p.check(&tick) {
                            return Some(Err((row, kind)));
                        }
                    }
                    return Some(Ok((row, tick, seq)));
                }
                Err(kind) => return Some(Err((row, kind))),
            }
        }
    }

    /// Decodes the next batch; `false` when every selected group is read.
    fn fill(&mut self) -> io::Result<bool> {
        loop {
            if !self.cursors.is_empty() {
                let rows = self.read_batch()?;
                if rows > 0 {
                    return Ok(true);
                }
                self.cursors.clear();
            }
            let Some(&g) = self.groups.get(self.next_group) else {
                return Ok(false);
            };
            self.next_group += 1;
            self.row = self.group_first_row[g];
            let group = self.reader.get_row_group(g).map_err(io::Error::other)?;
            self.cursors = self
                .leaves
                .iter()
                .map(|leaf| leaf.map(|l| cursor(&*group, l)).transpose())
                .collect::<io::Result<_>>()?;
        }
    }

    fn read_batch(&mut self) -> io::Result<usize> {
        let b = &mut self.batch;
        let mut rows = None;
        for (c, cursor) in self.cursors.iter_mut().enumerate() {
            let Some(cursor) = cursor else {
                continue;
            };
            b.values[c].clear();
            b.levels[c].clear();
            b.at[c] = 0;
            let optional = matches!(c, BID | ASK);
            let levels = optional.then_some(&mut b.levels[c]);
            let read = match cursor {
                Cursor::I64(r) => {
                    r.read_records(BATCH_ROWS, levels, None, &mut b.values[c])
                        .map_err(io::Error::other)?
                        .0
                }
                Cursor::I32(r) => {
                    b.i32s.clear();
                    let read = r
                        .read_records(BATCH_ROWS, levels, None, &mut b.i32s)
                        .map_err(io::Error::other)?
                        .0;
                    b.values[c].extend(b.i32s.iter().map(|&v| i64::from(v)));
                    read
                }
                Cursor::Fixed(r) => {
                    b.fixed.clear();
                    let read = r
                        .read_records(BATCH_ROWS, levels, None, &mut b.fixed)
                        .map_err(io::Error::other)?
                        .0;
                    for bytes in &b.fixed {
                        // Out of i64 range: a value no tick holds; the
                        // row check reports it.
                        b.values[c].push(big_endian(bytes.data()).unwrap_or(i64::MAX));
                    }
                    read
                }
            };
            if !optional {
                b.levels[c].clear();
            }
            match rows {
                None => rows = Some(read),
                Some(n) if n != read => {
                    return Err(io::Error::other(format!(
                        "column {} has {read} rows where the others have {n}",
                        COLUMNS[c]
                    )))
                }
                Some(_) => {}
            }
        }
        let rows = rows.unwrap_or(0);
        b.row = 0;
        b.rows = rows;
        Ok(rows)
    }

    fn take_row(&mut self) -> Result<(Tick, u64), RowErrorKind> {
        let b = &mut self.batch;
        let scale = &self.scale;
        let mut required = |c: usize| {
            let v = b.values[c][b.at[c]];
            b.at[c] += 1;
            v
        };
        let ts = required(TS);
        let instrument = required(INSTRUMENT);
        let price = required(PRICE);
        let volume = required(VOLUME);
        let seq = if self.leaves[SEQ].is_some() {
            required(SEQ)
        } else {
            0
        };
        let row = b.row;
        let mut quote = |c: usize| -> Option<i64> {
            if b.levels[c].get(row).copied().unwrap_or(0) == 0 {
                return None;
            }
            let v = b.values[c][b.at[c]];
            b.at[c] += 1;
            Some(v)
        };
        let (bid, ask) = (quote(BID), quote(ASK));
        let ts_ns = ts
            .checked_mul(scale[TS])
            .ok_or_else(|| RowErrorKind::BadTimestamp {
                text: ts.to_string(),
            })?;
        let price_of = |c: usize, v: i64| -> Result<Price, RowErrorKind> {
            v.checked_mul(scale[c])
                .map(Price::from_units)
                .ok_or_else(|| RowErrorKind::BadPrice {
                    field: COLUMNS[c],
                    error: PriceError::OutOfRange(v.to_string()),
                })
        };
        let tick = Tick {
            ts_ns,
            instrument: instrument as InstrumentToken,
            price: price_of(PRICE, price)?,
            volume: volume as u64,
            bid: bid.map(|v| price_of(BID, v)).transpose()?,
            ask: ask.map(|v| price_of(ASK, v)).transpose()?,
        };
        Ok((tick_check::check_typed(tick)?, seq as u64))
    }
}

impl Partition {
    fn check(&self, tick: &Tick) -> Result<(), RowErrorKind> {
        if tick.instrument != self.instrument {
            return Err(RowErrorKind::OutsidePartition {
                message: format!(
                    "instrument: {} in the directory of instrument {}",
                    tick.instrument, self.instrument
                ),
            });
        }
        if tick.ts_ns < self.range.0 || tick.ts_ns >= self.range.1 {
            return Err(RowErrorKind::OutsidePartition {
                message: format!("ts_ns: {} is not on the file's date", tick.ts_ns),
            });
        }
        Ok(())
    }
}

fn cursor(group: &dyn RowGroupReader, leaf: usize) -> io::Result<Cursor> {
    let reader = group.get_column_reader(leaf).map_err(io::Error::other)?;
    let physical = group.metadata().column(leaf).column_type();
    Ok(match physical {
        PhysicalType::INT64 => Cursor::I64(get_typed_column_reader::<Int64Type>(reader)),
        PhysicalType::INT32 => Cursor::I32(get_typed_column_reader::<Int32Type>(reader)),
        _ => Cursor::Fixed(get_typed_column_reader::<FixedLenByteArrayType>(reader)),
    })
}

fn columns_error(file: &str, c: usize, problem: &str) -> OpenError {
    OpenError::Columns {
        file: file.to_owned(),
        message: format!("column {:?} {problem}", COLUMNS[c]),
    }
}

/// What a column's stored integers are multiplied by, or why the column
/// cannot hold its field exactly.
fn column_scale(file: &str, c: usize, column: &ColumnDescriptor) -> Result<i64, OpenError> {
    let physical = column.physical_type();
    let logical = column.logical_type_ref();
    let integer = matches!(physical, PhysicalType::INT64 | PhysicalType::INT32);
    match c {
        TS => match (physical, logical) {
            (PhysicalType::INT64, None | Some(LogicalType::Integer(_))) => Ok(1),
            (PhysicalType::INT64, Some(LogicalType::Timestamp(t))) => Ok(match t.unit {
                TimeUnit::NANOS => 1,
                TimeUnit::MICROS => 1_000,
                TimeUnit::MILLIS => 1_000_000,
            }),
            _ => Err(columns_error(
                file,
                c,
                "must be INT64 nanoseconds (or a TIMESTAMP)",
            )),
        },
        INSTRUMENT | VOLUME | SEQ => match logical {
            None | Some(LogicalType::Integer(_)) if integer => Ok(1),
            _ => Err(columns_error(
                file,
                c,
                "must be an integer (INT64 or INT32)",
            )),
        },
        _ => {
            let scale = match logical {
                Some(LogicalType::Decimal(d)) => d.scale,
                None if integer => {
                    return Err(columns_error(
                        file,
                        c,
                        "is an integer without a DECIMAL scale; prices must say their scale",
                    ))
                }
                _ => {
                    return Err(columns_error(
                        file,
                        c,
                        "must be an exact DECIMAL (INT32, INT64 or FIXED_LEN_BYTE_ARRAY); floats are not exact",
                    ))
                }
            };
            let fixed_ok =
                physical == PhysicalType::FIXED_LEN_BYTE_ARRAY && column.type_length() <= 16;
            if !(integer || fixed_ok) {
                return Err(columns_error(
                    file,
                    c,
                    "has a DECIMAL storage this reader does not read",
                ));
            }
            let decimals = PRICE_DECIMALS as i32;
            if !(0..=decimals).contains(&scale) {
                return Err(columns_error(
                    file,
                    c,
                    &format!("has scale {scale}; prices keep at most {decimals} decimals"),
                ));
            }
            Ok(10i64.pow((decimals - scale) as u32))
        }
    }
}

/// A big-endian two's-complement integer of up to 16 bytes, when it fits
/// an `i64`.
fn big_endian(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let negative = bytes[0] & 0x80 != 0;
    let mut value: i128 = if negative { -1 } else { 0 };
    for &b in bytes {
        value = (value << 8) | i128::from(b);
    }
    i64::try_from(value).ok()
}

fn i64_range(statistics: Option<&Statistics>) -> Option<(i64, i64)> {
    match statistics? {
        Statistics::Int64(s) => Some((*s.min_opt()?, *s.max_opt()?)),
        Statistics::Int32(s) => Some((i64::from(*s.min_opt()?), i64::from(*s.max_opt()?))),
        _ => None,
    }
}
