//! Writing one Parquet tick file, row group by row group.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use parquet::basic::{ColumnOrder, Compression};
use parquet::data_type::Int64Type;
use parquet::errors::ParquetError;
use parquet::file::metadata::{FileMetaData, KeyValue, ParquetMetaData, ParquetMetaDataWriter};
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::SchemaDescriptor;
use quiver_core::Tick;

use super::{schema, ROW_GROUP_ROWS};

/// Key of the schema metadata entry that names the layout's version.
pub(crate) const SCHEMA_KEY: &str = "quiver.ticks";
pub(crate) const SCHEMA_VERSION: &str = "1";
/// Key of the entry naming the time zone of a partition's date.
pub(crate) const TIMEZONE_KEY: &str = "quiver.timezone";

/// Streams ticks into one Parquet file: rows are buffered by column and
/// written as a row group every [`ROW_GROUP_ROWS`] (or at [`Self::flush_group`]).
pub struct ParquetTickWriter<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    descriptor: Arc<SchemaDescriptor>,
    columns: Columns,
    group_rows: usize,
    rows: u64,
    recorded: bool,
    timezone: Option<String>,
}

#[derive(Default)]
struct Columns {
    ts_ns: Vec<i64>,
    instrument: Vec<i64>,
    price: Vec<i64>,
    volume: Vec<i64>,
    bid: Vec<i64>,
    bid_levels: Vec<i16>,
    ask: Vec<i64>,
    ask_levels: Vec<i16>,
    seq: Vec<i64>,
}

impl Columns {
    fn len(&self) -> usize {
        self.ts_ns.len()
    }

    fn clear(&mut self) {
        for column in [
            &mut self.ts_ns,
            &mut self.instrument,
            &mut self.price,
            &mut self.volume,
            &mut self.bid,
            &mut self.ask,
            &mut self.seq,
        ] {
            column.clear();
        }
        self.bid_levels.clear();
        self.ask_levels.clear();
    }
}

fn io_error(error: ParquetError) -> io::Error {
    match error {
        ParquetError::External(inner) => io::Error::other(inner),
        other => io::Error::other(other.to_string()),
    }
}

fn properties() -> Arc<WriterProperties> {
    Arc::new(
        WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(Compression::SNAPPY)
            // Small pages bound what a reader holds per open file, and a
            // merge over a day's instruments holds one per instrument.
            .set_data_page_size_limit(64 << 10)
            // Interim footers ([`ParquetTickWriter::checkpoint`]) list row
            // groups only; the final one must not differ in kind.
            .set_offset_index_disabled(true)
            .set_key_value_metadata(Some(vec![KeyValue::new(
                SCHEMA_KEY.to_owned(),
                SCHEMA_VERSION.to_owned(),
            )]))
            .set_created_by(format!("quiver {}", env!("CARGO_PKG_VERSION")))
            .build(),
    )
}

impl<W: Write + Send> ParquetTickWriter<W> {
    /// A writer of ticks into `out`; `recorded` adds each tick's `seq`.
    pub fn new(out: W, recorded: bool) -> io::Result<Self> {
        Self::with_group_rows(out, recorded, ROW_GROUP_ROWS)
    }

    /// [`Self::new`] with row groups of `group_rows` (at least 1).
    pub fn with_group_rows(out: W, recorded: bool, group_rows: usize) -> io::Result<Self> {
        let schema = schema(recorded);
        let descriptor = Arc::new(SchemaDescriptor::new(schema.clone()));
        let writer = SerializedFileWriter::new(out, schema, properties()).map_err(io_error)?;
        Ok(ParquetTickWriter {
            writer,
            descriptor,
            columns: Columns::default(),
            group_rows: group_rows.max(1),
            rows: 0,
            recorded,
            timezone: None,
        })
    }

    /// Names the time zone the file's partition date is in (kept in its
    /// metadata, so a reader checks rows against the right day).
    pub fn set_timezone(&mut self, tz: &str) {
        self.timezone = Some(tz.to_owned());
        self.writer
            .append_key_value_metadata(KeyValue::new(TIMEZONE_KEY.to_owned(), tz.to_owned()));
    }

    /// Appends one tick (its `seq` when the file is a recording).
    pub fn push(&mut self, tick: &Tick, seq: u64) -> io::Result<()> {
        let c = &mut self.columns;
        c.ts_ns.push(tick.ts_ns);
        // Unsigned columns hold the u64's bits, as the INTEGER(64, false)
        // logical type defines.
        c.instrument.push(tick.instrument as i64);
        c.price.push(tick.price.units());
        c.volume.push(tick.volume as i64);
        for (quote, values, levels) in [
            (tick.bid, &mut c.bid, &mut c.bid_levels),
            (tick.ask, &mut c.ask, &mut c.ask_levels),
        ] {
            match quote {
                Some(price) => {
                    values.push(price.units());
                    levels.push(1);
                }
                None => levels.push(0),
            }
        }
        if self.recorded {
            c.seq.push(seq as i64);
        }
        self.rows += 1;
        if self.columns.len() >= self.group_rows {
            self.flush_group()?;
        }
        Ok(())
    }

    /// Ticks written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Ticks buffered, not yet in a row group.
    pub fn pending(&self) -> usize {
        self.columns.len()
    }

    /// Writes the buffered rows as a row group (nothing when none are).
    pub fn flush_group(&mut self) -> io::Result<()> {
        if self.columns.len() == 0 {
            return Ok(());
        }
        let c = &self.columns;
        let mut group = self.writer.next_row_group().map_err(io_error)?;
        let mut columns: Vec<(&[i64], Option<&[i16]>)> = vec![
            (&c.ts_ns, None),
            (&c.instrument, None),
            (&c.price, None),
            (&c.volume, None),
            (&c.bid, Some(&c.bid_levels)),
            (&c.ask, Some(&c.ask_levels)),
        ];
        if self.recorded {
            columns.push((&c.seq, None));
        }
        for (values, levels) in columns {
            let Some(mut column) = group.next_column().map_err(io_error)? else {
                return Err(io::Error::other(
                    "the tick schema has fewer columns than written",
                ));
            };
            column
                .typed::<Int64Type>()
                .write_batch(values, levels, None)
                .map_err(io_error)?;
            column.close().map_err(io_error)?;
        }
        group.close().map_err(io_error)?;
        self.columns.clear();
        Ok(())
    }

    /// Writes what is buffered and the footer; the sink, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_group()?;
        // Writes the footer.
        self.writer.into_inner().map_err(io_error)
    }

    /// The footer a reader would need if the file ended after the row
    /// groups written so far.
    fn interim_footer(&self) -> io::Result<Vec<u8>> {
        let groups = self.writer.flushed_row_groups().to_vec();
        let rows = groups.iter().map(|g| g.num_rows()).sum();
        let orders = self
            .descriptor
            .columns()
            .iter()
            .map(|c| {
                ColumnOrder::column_order_for_type(
                    c.logical_type_ref(),
                    c.converted_type(),
                    c.physical_type(),
                )
            })
            .collect();
        // The same entries the final footer gets: the writer's properties,
        // and the time zone appended since.
        let properties = self.writer.properties();
        let entries = properties
            .key_value_metadata()
            .into_iter()
            .flatten()
            .cloned()
            .chain(
                self.timezone
                    .iter()
                    .map(|tz| KeyValue::new(TIMEZONE_KEY.to_owned(), tz.clone())),
            )
            .collect();
        let file = FileMetaData::new(
            properties.writer_version().as_num(),
            rows,
            Some(properties.created_by().to_owned()),
            Some(entries),
            self.descriptor.clone(),
            Some(orders),
        );
        let metadata = ParquetMetaData::new(file, groups);
        let mut footer = Vec::new();
        ParquetMetaDataWriter::new(&mut footer, &metadata)
            .finish()
            .map_err(io_error)?;
        Ok(footer)
    }
}

/// A file written at a moving end, so that an interim footer can sit past
/// the data and be overwritten by the next row group
/// ([`ParquetTickWriter::checkpoint`]).
pub struct CheckpointFile {
    file: File,
    end: u64,
}

impl CheckpointFile {
    pub fn new(file: File) -> CheckpointFile {
        CheckpointFile { file, end: 0 }
    }
}

impl Write for CheckpointFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all_at(buf, self.end)?;
        self.end += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ParquetTickWriter<CheckpointFile> {
    /// Makes every tick pushed so far readable should the process die now:
    /// the buffered rows become a row group, and a footer listing every
    /// row group is written past them (the next row group overwrites it;
    /// [`Self::finish`] writes the last one). A reader of the file sees the
    /// ticks up to the latest checkpoint.
    pub fn checkpoint(&mut self) -> io::Result<()> {
        self.flush_group()?;
        self.writer.flush()?;
        let footer = self.interim_footer()?;
        let sink = self.writer.inner();
        sink.file.write_all_at(&footer, sink.end)?;
        sink.file.set_len(sink.end + footer.len() as u64)?;
        Ok(())
    }

    /// [`Self::finish`] for a checkpointed file: cuts what an interim
    /// footer left past the final one.
    pub fn finish_file(self) -> io::Result<()> {
        let sink = self.finish()?;
        sink.file.set_len(sink.end)?;
        sink.file.sync_data()
    }
}
