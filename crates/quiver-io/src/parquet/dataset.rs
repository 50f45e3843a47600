//! A directory of tick partitions, `DIR/<instrument>/YYYYMMDD.parquet`
//! (a recording may split a partition into `YYYYMMDD-N.parquet` parts),
//! read as one time-ordered stream and written from one.
//!
//! Reading lists the partitions, drops those a [`TickSelection`] leaves
//! out by their path alone, and merges the rest (a k-way merge, each file
//! opened only when the merge reaches its first possible key, so memory is
//! bounded by the files that overlap in time, not by the dataset). The
//! order, stable for equal timestamps:
//! - files without `seq`: by `ts_ns`, then instrument token, then part
//!   number, then row;
//! - recordings (every file has `seq`): by `seq`, the live run's tick
//!   sequence; a seq recorded twice (a tick redelivered after a crash) is
//!   read once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;
use quiver_core::{InstrumentToken, Tick};

use super::reader::{ParquetTicks, Partition};
use super::writer::{CheckpointFile, ParquetTickWriter};
use super::{date_of, day_start, TickSelection};
use crate::tick_error::{OpenError, RowErrorKind};

/// One partition file.
#[derive(Clone, Debug)]
struct PartFile {
    path: PathBuf,
    name: Arc<str>,
    instrument: InstrumentToken,
    part: u32,
    date: NaiveDate,
    range: (i64, i64),
    /// The smallest key its rows can have.
    first: Key,
}

/// Merge order: (ts_ns or seq, instrument, part), as unsigned integers
/// that compare like the values.
type Key = (u64, u64, u32);

fn ts_key(ts_ns: i64) -> u64 {
    (ts_ns as u64) ^ (1 << 63)
}

/// A merged row: its file (an index into the dataset's files), its row and
/// the tick; or, failing, the file's name, the row and what is wrong.
pub(crate) type MergedRow = Result<(usize, u64, Tick), (Arc<str>, u64, RowErrorKind)>;

enum Step {
    Row(Key, u64, Tick),
    /// The file ended, or failed (in `Dataset::failed`).
    End,
}

/// The ticks of a partitioned directory, merged into one stream.
pub struct Dataset {
    files: Vec<PartFile>,
    next_file: usize,
    recorded: bool,
    selection: TickSelection,
    open: Vec<Option<(ParquetTicks, usize)>>,
    /// The head row of each open file, by key.
    heads: BinaryHeap<Reverse<(Key, usize)>>,
    pending: Vec<Option<(u64, Tick)>>,
    failed: Option<(Arc<str>, u64, RowErrorKind)>,
    /// The seq of the last recorded tick given out: a tick recorded twice
    /// (redelivered after a crash, into the next part) is given once.
    last_seq: Option<u64>,
    /// A file whose row failed, to read on from once the error is out.
    resume: Option<usize>,
}

/// The partition file name `YYYYMMDD.parquet` or `YYYYMMDD-N.parquet`.
fn parse_file_name(name: &str) -> Option<(NaiveDate, u32)> {
    let stem = name.strip_suffix(".parquet")?;
    let (date, part) = match stem.split_once('-') {
        Some((date, part)) if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) => {
            (date, part.parse().ok()?)
        }
        Some(_) => return None,
        None => (stem, 0),
    };
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((NaiveDate::parse_from_str(date, "%Y%m%d").ok()?, part))
}

fn layout_error(path: &Path, message: impl Into<String>) -> OpenError {
    OpenError::Layout {
        file: path.display().to_string(),
        message: message.into(),
    }
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// Every partition file under `dir` the selection keeps, by path alone.
fn list(dir: &Path, selection: &TickSelection) -> Result<Vec<PartFile>, OpenError> {
    let read_dir = |path: &Path| {
        fs::read_dir(path).map_err(|error| OpenError::Open {
            file: path.display().to_string(),
            error,
        })
    };
    let mut files = Vec::new();
    for entry in read_dir(dir)? {
        let entry = entry.map_err(|error| OpenError::Read {
            file: dir.display().to_string(),
            error,
        })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(layout_error(&entry.path(), "is not a UTF-8 name"));
        };
        if is_hidden(name) {
            continue;
        }
        let path = entry.path();
        let Ok(instrument) = name.parse::<InstrumentToken>() else {
            return Err(layout_error(
                &path,
                "is not an instrument directory (expected DIR/<instrument token>/YYYYMMDD.parquet)",
            ));
        };
        if !path.is_dir() {
            return Err(layout_error(&path, "is not a directory"));
        }
        if !selection.keeps_instrument(instrument) {
            continue;
        }
        for entry in read_dir(&path)? {
            let entry = entry.map_err(|error| OpenError::Read {
                file: path.display().to_string(),
                error,
            })?;
            let file_name = entry.file_name();
            let file_path = entry.path();
            let Some(file_name) = file_name.to_str() else {
                return Err(layout_error(&file_path, "is not a UTF-8 name"));
            };
            if is_hidden(file_name) {
                continue;
            }
            let Some((date, part)) = parse_file_name(file_name) else {
                return Err(layout_error(
                    &file_path,
                    "is not a partition file (expected YYYYMMDD.parquet or YYYYMMDD-N.parquet)",
                ));
            };
            if !selection.keeps_date(date) {
                continue;
            }
            let start = day_start(selection.tz, date);
            let end = date
                .succ_opt()
                .map_or(i64::MAX, |d| day_start(selection.tz, d));
            files.push(PartFile {
                name: Arc::from(file_path.display().to_string()),
                path: file_path,
                instrument,
                part,
                date,
                range: (start, end),
                first: (ts_key(start), instrument, part),
            });
        }
    }
    files.sort_by(|a, b| a.first.cmp(&b.first).then_with(|| a.path.cmp(&b.path)));
    Ok(files)
}

impl Dataset {
    /// The partitions of `dir` that `selection` keeps (dates in
    /// `selection.tz`). Fails when the directory does not have the layout,
    /// or mixes recordings with files that are not.
    pub fn open(dir: &Path, selection: &TickSelection) -> Result<Dataset, OpenError> {
        let mut files = list(dir, selection)?;
        let mut recorded = None;
        for file in &mut files {
            // Footers only: a few small reads per file. The partition's
            // day is the one of the zone its writer dated it in.
            let ticks = open_part(file, selection)?;
            if let Some(tz) = ticks.timezone() {
                let start = day_start(tz, file.date);
                let end = file.date.succ_opt().map_or(i64::MAX, |d| day_start(tz, d));
                file.range = (start, end);
                file.first = (ts_key(start), file.instrument, file.part);
            }
            match recorded {
                None => recorded = Some(ticks.recorded()),
                Some(r) if r != ticks.recorded() => {
                    return Err(layout_error(
                        &file.path,
                        "mixes recorded files (with a seq column) and files without one",
                    ))
                }
                Some(_) => {}
            }
            if ticks.recorded() {
                file.first = (ticks.first_seq().unwrap_or(u64::MAX), 0, 0);
            }
        }
        let recorded = recorded.unwrap_or(false);
        {
            files.sort_by(|a, b| a.first.cmp(&b.first).then_with(|| a.path.cmp(&b.path)));
        }
        let open = (0..files.len()).map(|_| None).collect();
        let pending = (0..files.len()).map(|_| None).collect();
        Ok(Dataset {
            files,
            next_file: 0,
            recorded,
            selection: selection.clone(),
            open,
            heads: BinaryHeap::new(),
            pending,
            failed: None,
            last_seq: None,
            resume: None,
        })
    }

    /// Partition files the selection kept.
    pub fn files(&self) -> usize {
        self.files.len()
    }

    /// Whether this is a recording (ordered by `seq`).
    pub fn recorded(&self) -> bool {
        self.recorded
    }

    fn key(&self, file: usize, tick: &Tick, seq: u64) -> Key {
        if self.recorded {
            (seq, 0, 0)
        } else {
            (ts_key(tick.ts_ns), tick.instrument, self.files[file].part)
        }
    }

    /// File `f`'s next row, read.
    fn read_next(&mut self, f: usize) -> Step {
        let Some((ticks, _)) = self.open[f].as_mut() else {
            return Step::End;
        };
        match ticks.next_row() {
            None => {
                self.open[f] = None;
                Step::End
            }
            Some(Ok((row, tick, seq))) => Step::Row(self.key(f, &tick, seq), row, tick),
            Some(Err((row, kind))) => {
                if kind.ends_reading() {
                    self.open[f] = None;
                } else {
                    // The file goes on after this row.
                    self.resume = Some(f);
                }
                self.failed = Some((self.files[f].name.clone(), row, kind));
                Step::End
            }
        }
    }

    /// Reads file `f`'s next row into the heap.
    fn advance(&mut self, f: usize) {
        if let Step::Row(key, row, tick) = self.read_next(f) {
            self.pending[f] = Some((row, tick));
            self.heads.push(Reverse((key, f)));
        }
    }

    /// Opens every file whose first key is not after `key`.
    fn open_up_to(&mut self, key: Key) -> Result<(), (Arc<str>, u64, RowErrorKind)> {
        while let Some(file) = self.files.get(self.next_file) {
            if file.first > key {
                break;
            }
            let f = self.next_file;
            self.next_file += 1;
            let ticks = open_part(file, &self.selection).map_err(|e| {
                (
                    file.name.clone(),
                    0,
                    RowErrorKind::Io {
                        error: io::Error::other(e.to_string()),
                    },
                )
            })?;
            self.open[f] = Some((ticks, f));
            self.advance(f);
            if let Some(failed) = self.failed.take() {
                return Err(failed);
            }
        }
        Ok(())
    }

    /// The name of file `f` of [`Self::next_row`].
    pub(crate) fn file_name(&self, f: usize) -> &Arc<str> {
        &self.files[f].name
    }

    /// The next tick (its file and row), or a row error (its file's name).
    pub(crate) fn next_row(&mut self) -> Option<MergedRow> {
        if let Some(failed) = self.failed.take() {
            return Some(Err(failed));
        }
        if let Some(f) = self.resume.take() {
            self.advance(f);
            if let Some(failed) = self.failed.take() {
                return Some(Err(failed));
            }
        }
        loop {
            if let Some(failed) = self.failed.take() {
                return Some(Err(failed));
            }
            // Pop only once no unopened file can hold a key before the
            // smallest head; with no head, open the next file.
            let top = self.heads.peek().map(|Reverse((key, _))| *key);
            let next = self.files.get(self.next_file).map(|f| f.first);
            match (top, next) {
                (None, None) => return None,
                (None, Some(first)) => {
                    if let Err(failed) = self.open_up_to(first) {
                        return Some(Err(failed));
                    }
                }
                (Some(top), Some(first)) if first <= top => {
                    if let Err(failed) = self.open_up_to(top) {
                        return Some(Err(failed));
                    }
                }
                (Some(_), _) => {
                    let Reverse((key, f)) = *self.heads.peek()?;
                    let Some((row, tick)) = self.pending[f].take() else {
                        self.heads.pop();
                        continue;
                    };
                    // The file's next row takes its place at the top: one
                    // sift instead of a pop and a push.
                    match self.read_next(f) {
                        Step::Row(next, next_row, next_tick) => {
                            self.pending[f] = Some((next_row, next_tick));
                            if let Some(mut top) = self.heads.peek_mut() {
                                *top = Reverse((next, f));
                            }
                        }
                        Step::End => {
                            self.heads.pop();
                        }
                    }
                    if self.recorded {
                        if self.last_seq == Some(key.0) {
                            continue;
                        }
                        self.last_seq = Some(key.0);
                    }
                    return Some(Ok((f, row, tick)));
                }
            }
        }
    }
}

fn open_part(file: &PartFile, selection: &TickSelection) -> Result<ParquetTicks, OpenError> {
    let name = file.path.display().to_string();
    let handle = File::open(&file.path).map_err(|error| OpenError::Open {
        file: name.clone(),
        error,
    })?;
    ParquetTicks::from_file(
        name,
        handle,
        Some(selection),
        Some(Partition {
            instrument: file.instrument,
            range: file.range,
        }),
    )
}

/// Writes a time-ordered tick stream as partitions of a directory, one
/// open file per instrument (a partition is finished when its
/// instrument's ticks move on to the next date).
pub struct DatasetWriter {
    dir: PathBuf,
    tz: Tz,
    recorded: bool,
    group_rows: usize,
    /// Per instrument: its open partition.
    open: HashMap<InstrumentToken, OpenPart>,
    files: u64,
    rows: u64,
}

struct OpenPart {
    range: (i64, i64),
    path: PathBuf,
    writer: ParquetTickWriter<CheckpointFile>,
}

impl DatasetWriter {
    /// A writer into `dir` (created when missing). `recorded` writes each
    /// tick's `seq`, and a partition that already exists gets its next
    /// part; otherwise an existing partition is an error.
    pub fn new(dir: &Path, tz: Tz, recorded: bool) -> io::Result<DatasetWriter> {
        fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", dir.display())))?;
        Ok(DatasetWriter {
            dir: dir.to_owned(),
            tz,
            recorded,
            group_rows: super::ROW_GROUP_ROWS,
            open: HashMap::new(),
            files: 0,
            rows: 0,
        })
    }

    /// Row groups of at most `rows` ticks (the default is
    /// [`super::ROW_GROUP_ROWS`]).
    pub fn with_group_rows(mut self, rows: usize) -> DatasetWriter {
        self.group_rows = rows.max(1);
        self
    }

    /// Appends a tick (ticks of an instrument in time order).
    pub fn push(&mut self, tick: &Tick, seq: u64) -> io::Result<()> {
        let current = self
            .open
            .get(&tick.instrument)
            .is_some_and(|p| tick.ts_ns >= p.range.0 && tick.ts_ns < p.range.1);
        if !current {
            if let Some(done) = self.open.remove(&tick.instrument) {
                done.writer.finish_file()?;
            }
            let part = self.create(tick)?;
            self.open.insert(tick.instrument, part);
        }
        self.rows += 1;
        match self.open.get_mut(&tick.instrument) {
            Some(part) => part.writer.push(tick, seq),
            None => Ok(()),
        }
    }

    fn create(&mut self, tick: &Tick) -> io::Result<OpenPart> {
        let (date, range) = date_of(self.tz, tick.ts_ns);
        let dir = self.dir.join(tick.instrument.to_string());
        fs::create_dir_all(&dir)
            .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", dir.display())))?;
        let stem = date.format("%Y%m%d").to_string();
        let mut part = 0u32;
        loop {
            let name = if part == 0 {
                format!("{stem}.parquet")
            } else {
                format!("{stem}-{part}.parquet")
            };
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    self.files += 1;
                    let mut writer = ParquetTickWriter::with_group_rows(
                        CheckpointFile::new(file),
                        self.recorded,
                        self.group_rows,
                    )?;
                    writer.set_timezone(self.tz.name());
                    return Ok(OpenPart {
                        range,
                        path,
                        writer,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && self.recorded => part += 1,
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("creating {}: {e}", path.display()),
                    ))
                }
            }
        }
    }

    /// Every open partition readable up to the last tick pushed (see
    /// [`ParquetTickWriter::checkpoint`]); partitions with nothing new are
    /// left alone.
    pub fn checkpoint(&mut self) -> io::Result<()> {
        for part in self.open.values_mut() {
            if part.writer.pending() > 0 {
                part.writer.checkpoint().map_err(|e| {
                    io::Error::new(e.kind(), format!("{}: {e}", part.path.display()))
                })?;
            }
        }
        Ok(())
    }

    /// Finishes every partition: (files written, ticks written).
    pub fn finish(self) -> io::Result<(u64, u64)> {
        for (_, part) in self.open {
            part.writer
                .finish_file()
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", part.path.display())))?;
        }
        Ok((self.files, self.rows))
    }

    /// The highest `seq` recorded in `dir` so far (a recording that
    /// continues goes on after it); `None` when there is none.
    pub fn last_seq(dir: &Path, tz: Tz) -> Result<Option<u64>, OpenError> {
        if !dir.exists() {
            return Ok(None);
        }
        let dataset = Dataset::open(dir, &TickSelection::all(tz))?;
        if !dataset.recorded {
            return Ok(None);
        }
        let mut last = None;
        for file in &dataset.files {
            let ticks = open_part(file, &dataset.selection)?;
            if let Some(max) = ticks.last_seq() {
                last = last.max(Some(max));
            }
        }
        Ok(last)
    }
}
