//! Parquet tick files and partitioned directories: exact round trips,
//! pruning by date and instrument, the merge order, checkpoints, and the
//! errors a bad file or layout gets.

#![cfg(feature = "parquet")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;
use parquet::data_type::{DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use proptest::prelude::*;
use quiver_core::synthetic::SyntheticSpec;
use quiver_core::{Price, Tick};
use quiver_io::parquet::{CheckpointFile, Dataset, DatasetWriter, ParquetTickWriter, ParquetTicks};
use quiver_io::{
    day_start, open_ticks, open_ticks_selected, OpenError, RowErrorKind, TickOutput, TickSelection,
};

const NS: i64 = 1_000_000_000;
const DAY: i64 = 86_400 * NS;

fn price() -> impl Strategy<Value = Price> {
    (1i64..i64::MAX).prop_map(Price::from_units)
}

fn ticks() -> impl Strategy<Value = Vec<Tick>> {
    let row = (
        0i64..3 * DAY / 50,
        0u64..4,
        price(),
        0..=Tick::MAX_VOLUME,
        proptest::option::of(price()),
        proptest::option::of(price()),
    );
    proptest::collection::vec(row, 0..300).prop_map(|rows| {
        let mut ts_ns = 1_700_000_000 * NS;
        rows.into_iter()
            .map(|(gap, instrument, price, volume, bid, ask)| {
                ts_ns += gap;
                Tick {
                    ts_ns,
                    instrument: instrument * 1_000_003
                        + u64::from(instrument == 3) * (u64::MAX - 3_000_009),
                    price,
                    volume,
                    bid,
                    ask,
                }
            })
            .collect()
    })
}

fn read_all(path: &Path) -> Vec<Tick> {
    open_ticks(path).unwrap().map(Result::unwrap).collect()
}

fn write_dataset(dir: &Path, tz: Tz, ticks: &[Tick], group_rows: usize) -> (u64, u64) {
    let mut writer = DatasetWriter::new(dir, tz, false)
        .unwrap()
        .with_group_rows(group_rows);
    for tick in ticks {
        writer.push(tick, 0).unwrap();
    }
    writer.finish().unwrap()
}

/// The documented merge order of a directory: time, then instrument token,
/// each instrument's ticks in their order.
fn merge_order(ticks: &[Tick]) -> Vec<Tick> {
    let mut sorted = ticks.to_vec();
    sorted.sort_by_key(|t| (t.ts_ns, t.instrument));
    sorted
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_file_round_trips_every_tick_exactly(ticks in ticks(), group_rows in 1usize..64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ticks.parquet");
        let mut writer =
            ParquetTickWriter::with_group_rows(File::create(&path).unwrap(), false, group_rows)
                .unwrap();
        for tick in &ticks {
            writer.push(tick, 0).unwrap();
        }
        writer.finish().unwrap();
        prop_assert_eq!(read_all(&path), ticks);
    }

    #[test]
    fn a_directory_round_trips_in_time_then_instrument_order(ticks in ticks(), group_rows in 1usize..64) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("data");
        let (_, rows) = write_dataset(&out, Tz::Asia__Kolkata, &ticks, group_rows);
        prop_assert_eq!(rows, ticks.len() as u64);
        let selection = TickSelection::all(Tz::Asia__Kolkata);
        let read: Vec<Tick> = open_ticks_selected(&out, &selection)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        prop_assert_eq!(read, merge_order(&ticks));
    }
}

#[test]
fn partitions_are_named_by_instrument_and_date_in_the_time_zone() {
    let dir = tempfile::tempdir().unwrap();
    let tz = Tz::Asia__Kolkata;
    let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let start = day_start(tz, day);
    // 18:29:59 UTC on 2 March is 23:59:59 in Kolkata; a second later is 3 March.
    assert_eq!(start, 1_772_389_800 * NS);
    let ticks = [
        Tick::trade(start, 7, Price::from_units(100), 1),
        Tick::trade(start + DAY - NS, 7, Price::from_units(101), 1),
        Tick::trade(start + DAY, 7, Price::from_units(102), 1),
        Tick::trade(start + DAY, 9, Price::from_units(103), 1),
    ];
    let (files, rows) = write_dataset(dir.path(), tz, &ticks, 10);
    assert_eq!((files, rows), (3, 4));
    let mut names: Vec<String> = walk(dir.path());
    names.sort();
    assert_eq!(
        names,
        [
            "7/20260302.parquet",
            "7/20260303.parquet",
            "9/20260303.parquet"
        ]
    );
    // The files say their zone: read with another, the same days.
    assert_eq!(
        open_ticks_selected(dir.path(), &TickSelection::all(Tz::UTC))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>(),
        ticks
    );
    // A row off its file's date is refused with the file and row.
    let stray = dir.path().join("7").join("20260304.parquet");
    let mut writer = ParquetTickWriter::new(File::create(&stray).unwrap(), false).unwrap();
    writer.set_timezone("Asia/Kolkata");
    writer.push(&ticks[2], 0).unwrap();
    writer.finish().unwrap();
    let err = open_ticks(dir.path())
        .unwrap()
        .find_map(Result::err)
        .expect("a row off its partition's date");
    assert!(
        matches!(err.kind(), RowErrorKind::OutsidePartition { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("7/20260304.parquet:1: ts_ns:"),
        "{err}"
    );
    let err =
        open_ticks(&dir.path().join("9")).expect_err("an instrument directory is not a dataset");
    assert!(
        err.to_string().contains("is not an instrument directory"),
        "{err}"
    );
}

fn walk(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        for file in std::fs::read_dir(entry.path()).unwrap() {
            let file = file.unwrap();
            names.push(format!(
                "{}/{}",
                entry.file_name().to_string_lossy(),
                file.file_name().to_string_lossy()
            ));
        }
    }
    names
}

/// 20 instruments over 10 days, a row group per ~hour of each.
fn ten_days() -> (tempfile::TempDir, Vec<Tick>, Tz) {
    let tz = Tz::America__New_York;
    let first = day_start(tz, NaiveDate::from_ymd_opt(2026, 3, 5).unwrap());
    let ticks: Vec<Tick> = SyntheticSpec::new(20, 20_000, 3)
        .iter()
        .enumerate()
        .map(|(i, mut t)| {
            // 10 days (DST starts on the 8th) spread over 20,000 ticks.
            t.ts_ns = first + i as i64 * (10 * DAY / 20_000);
            t
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), tz, &ticks, 40);
    (dir, ticks, tz)
}

#[test]
fn a_date_and_instrument_selection_opens_only_the_partitions_it_needs() {
    let (dir, ticks, tz) = ten_days();
    let all = Dataset::open(dir.path(), &TickSelection::all(tz)).unwrap();
    let partitions: std::collections::BTreeSet<_> = ticks
        .iter()
        .map(|t| (t.instrument, quiver_io::date_of(tz, t.ts_ns).0))
        .collect();
    // 240 hours from midnight on the 5th, the 8th (DST) 23 hours long: 11 dates.
    assert_eq!(
        partitions
            .iter()
            .map(|p| p.1)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        11
    );
    assert_eq!(all.files(), partitions.len());
    let from = NaiveDate::from_ymd_opt(2026, 3, 7).unwrap();
    let to = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
    let tokens: Vec<u64> = SyntheticSpec::new(20, 1, 3).tokens().collect();
    let selection = TickSelection {
        from: Some(from),
        to: Some(to),
        instruments: Some(vec![tokens[2], tokens[5]]),
        tz,
    };
    assert_eq!(
        Dataset::open(dir.path(), &selection).unwrap().files(),
        2 * 3
    );
    let (start, end) = (day_start(tz, from), day_start(tz, to.succ_opt().unwrap()));
    let expected: Vec<Tick> = merge_order(&ticks)
        .into_iter()
        .filter(|t| t.ts_ns >= start && t.ts_ns < end)
        .filter(|t| t.instrument == tokens[2] || t.instrument == tokens[5])
        .collect();
    assert!(!expected.is_empty());
    let read: Vec<Tick> = open_ticks_selected(dir.path(), &selection)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(read, expected);
}

#[test]
fn a_single_file_skips_row_groups_outside_the_dates_by_their_statistics() {
    let (_dir, ticks, tz) = ten_days();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.parquet");
    let mut writer =
        ParquetTickWriter::with_group_rows(File::create(&path).unwrap(), false, 1000).unwrap();
    for tick in &ticks {
        writer.push(tick, 0).unwrap();
    }
    writer.finish().unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
    let selection = TickSelection {
        from: Some(day),
        to: Some(day),
        instruments: None,
        tz,
    };
    let file = ParquetTicks::open(&path, Some(&selection)).unwrap();
    assert!(
        (1..=3).contains(&file.row_groups()),
        "one day of ten is 2,000 rows: 2 or 3 groups of 1,000, not {}",
        file.row_groups()
    );
    let (start, end) = selection.ts_range();
    let expected: Vec<Tick> = ticks
        .iter()
        .copied()
        .filter(|t| t.ts_ns >= start && t.ts_ns < end)
        .collect();
    let read: Vec<Tick> = open_ticks_selected(&path, &selection)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(read.len(), expected.len());
    assert_eq!(read, expected);
}

#[test]
fn a_recording_merges_by_arrival_order_not_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let tz = Tz::UTC;
    let base = 1_800_000_000 * NS;
    // Instrument 2's feed lags: its earlier ticks arrived after 1's later ones.
    let arrivals = [
        Tick::trade(base + 5 * NS, 1, Price::from_units(10), 1),
        Tick::trade(base + 6 * NS, 1, Price::from_units(11), 1),
        Tick::trade(base + NS, 2, Price::from_units(20), 1),
        Tick::trade(base + 7 * NS, 1, Price::from_units(12), 1),
        Tick::trade(base + 2 * NS, 2, Price::from_units(21), 1),
    ];
    let mut writer = DatasetWriter::new(dir.path(), tz, true).unwrap();
    for (seq, tick) in arrivals.iter().enumerate() {
        writer.push(tick, 100 + seq as u64).unwrap();
    }
    writer.finish().unwrap();
    assert_eq!(DatasetWriter::last_seq(dir.path(), tz).unwrap(), Some(104));
    let dataset = Dataset::open(dir.path(), &TickSelection::all(tz)).unwrap();
    assert!(dataset.recorded());
    assert_eq!(read_all(dir.path()), arrivals);
    // A second session into the same directory adds parts, and goes on
    // after the last seq.
    let mut writer = DatasetWriter::new(dir.path(), tz, true).unwrap();
    let later = Tick::trade(base + 9 * NS, 2, Price::from_units(22), 1);
    writer.push(&later, 105).unwrap();
    writer.finish().unwrap();
    assert!(dir.path().join("2").join("20270115-1.parquet").exists());
    let mut expected = arrivals.to_vec();
    expected.push(later);
    assert_eq!(read_all(dir.path()), expected);
    // A tick recorded again (redelivered after a crash) is read once.
    let mut writer = DatasetWriter::new(dir.path(), tz, true).unwrap();
    writer.push(&later, 105).unwrap();
    writer.finish().unwrap();
    assert_eq!(read_all(dir.path()), expected);
}

#[test]
fn a_checkpointed_file_is_readable_up_to_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.parquet");
    let ticks: Vec<Tick> = SyntheticSpec::new(3, 500, 1).iter().collect();
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    let mut writer = ParquetTickWriter::new(CheckpointFile::new(file), true).unwrap();
    let snapshot = |name: &str| {
        let copy = dir.path().join(name);
        std::fs::copy(&path, &copy).unwrap();
        copy
    };
    for (seq, tick) in ticks[..200].iter().enumerate() {
        writer.push(tick, seq as u64).unwrap();
    }
    writer.checkpoint().unwrap();
    let first = snapshot("first.parquet");
    for (seq, tick) in ticks[200..450].iter().enumerate() {
        writer.push(tick, 200 + seq as u64).unwrap();
    }
    // Pushed but not checkpointed: a reader (a crash) sees the 200.
    let unflushed = snapshot("unflushed.parquet");
    writer.checkpoint().unwrap();
    let second = snapshot("second.parquet");
    for (seq, tick) in ticks[450..].iter().enumerate() {
        writer.push(tick, 450 + seq as u64).unwrap();
    }
    writer.finish_file().unwrap();
    assert_eq!(read_all(&first), ticks[..200]);
    assert_eq!(read_all(&unflushed), ticks[..200]);
    assert_eq!(read_all(&second), ticks[..450]);
    assert_eq!(read_all(&path), ticks);
}

#[test]
fn every_output_format_converts_back_to_the_same_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let mut ticks: Vec<Tick> = SyntheticSpec::new(4, 300, 9).iter().collect();
    for (i, t) in ticks.iter_mut().enumerate() {
        if i % 3 == 0 {
            t.bid = Some(Price::from_units(t.price.units() - 1));
            t.ask = Some(Price::from_units(t.price.units() + 7));
        }
    }
    let mut expected = ticks.clone();
    for name in ["t.csv", "t.jsonl", "t.parquet", "t-dir"] {
        let path = dir.path().join(name);
        let mut out = TickOutput::create(&path, Tz::UTC, true).unwrap();
        for t in &ticks {
            out.push(t).unwrap();
        }
        let (_, rows) = out.finish().unwrap();
        assert_eq!(rows, ticks.len() as u64);
        let read = read_all(&path);
        if name == "t-dir" {
            expected = merge_order(&ticks);
        }
        assert_eq!(read, expected, "{name}");
    }
    let err = TickOutput::create(&dir.path().join("t.txt"), Tz::UTC, true)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("unsupported tick file extension"),
        "{err}"
    );
}

fn write_raw(path: &Path, schema: &str, write: impl FnOnce(&mut SerializedFileWriter<File>)) {
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let props = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(File::create(path).unwrap(), schema, props).unwrap();
    write(&mut writer);
    writer.close().unwrap();
}

fn open_error(path: &Path) -> String {
    match open_ticks(path) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{} opened", path.display()),
    }
}

#[test]
fn files_that_are_not_exact_ticks_are_refused_with_the_column_named() {
    let dir = tempfile::tempdir().unwrap();
    let floats = dir.path().join("floats.parquet");
    write_raw(
        &floats,
        "message m { required int64 ts_ns; required int64 instrument; required double price; required int64 volume; }",
        |w| {
            let mut g = w.next_row_group().unwrap();
            for c in 0..4 {
                let mut col = g.next_column().unwrap().unwrap();
                if c == 2 {
                    col.typed::<DoubleType>().write_batch(&[1.5], None, None).unwrap();
                } else {
                    col.typed::<Int64Type>().write_batch(&[1], None, None).unwrap();
                }
                col.close().unwrap();
            }
            g.close().unwrap();
        },
    );
    let message = open_error(&floats);
    assert!(
        message.contains("column \"price\" must be an exact DECIMAL"),
        "{message}"
    );

    let missing = dir.path().join("missing.parquet");
    write_raw(
        &missing,
        "message m { required int64 ts_ns; required int64 instrument; }",
        |_| {},
    );
    assert!(open_error(&missing).contains("missing column \"price\""));

    let extra = dir.path().join("extra.parquet");
    write_raw(
        &extra,
        "message m { required int64 ts_ns; required int64 instrument; required int64 price (DECIMAL(18,2)); required int64 volume; required int64 venue; }",
        |_| {},
    );
    assert!(open_error(&extra).contains("unknown column \"venue\""));

    let garbage = dir.path().join("garbage.parquet");
    std::fs::write(&garbage, b"ts_ns,instrument\n1,2\n").unwrap();
    assert!(matches!(
        open_ticks(&garbage),
        Err(OpenError::Parquet { .. })
    ));
}

#[test]
fn a_scaled_decimal_reads_as_exact_prices_and_bad_rows_are_counted_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cents.parquet");
    write_raw(
        &path,
        "message m { required int64 ts_ns; required int64 instrument; required int64 price (DECIMAL(18,2)); required int64 volume; }",
        |w| {
            let mut g = w.next_row_group().unwrap();
            let columns: [&[i64]; 4] = [&[1, 2, 3], &[5, 5, 5], &[12345, 0, 12346], &[1, 1, 1]];
            for values in columns {
                let mut col = g.next_column().unwrap().unwrap();
                col.typed::<Int64Type>().write_batch(values, None, None).unwrap();
                col.close().unwrap();
            }
            g.close().unwrap();
        },
    );
    let rows: Vec<_> = open_ticks(&path).unwrap().collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0].as_ref().unwrap().price,
        Price::parse("123.45").unwrap()
    );
    let err = rows[1].as_ref().unwrap_err();
    assert_eq!(err.line(), 2);
    assert_eq!(err.reason(), "non_positive_price");
    assert_eq!(
        rows[2].as_ref().unwrap().price,
        Price::parse("123.46").unwrap()
    );
}

#[test]
fn a_directory_without_the_layout_is_refused_with_the_entry_named() {
    let dir = tempfile::tempdir().unwrap();
    let ticks: Vec<Tick> = SyntheticSpec::new(2, 10, 1).iter().collect();
    write_dataset(dir.path(), Tz::UTC, &ticks, 10);
    let instrument = ticks[0].instrument.to_string();
    std::fs::write(dir.path().join(&instrument).join("notes.txt"), "x").unwrap();
    let message = open_error(dir.path());
    assert!(
        message.contains("notes.txt: is not a partition file"),
        "{message}"
    );
    std::fs::remove_file(dir.path().join(&instrument).join("notes.txt")).unwrap();
    std::fs::create_dir(dir.path().join("prices")).unwrap();
    let message = open_error(dir.path());
    assert!(
        message.contains("prices: is not an instrument directory"),
        "{message}"
    );
    std::fs::remove_dir(dir.path().join("prices")).unwrap();
    // Hidden entries are not data.
    std::fs::write(dir.path().join(".lock"), "").unwrap();
    assert_eq!(read_all(dir.path()).len(), ticks.len());
    // Converting into an existing partition does not overwrite it.
    let mut again = DatasetWriter::new(dir.path(), Tz::UTC, false).unwrap();
    let err = again.push(&ticks[0], 0).unwrap_err();
    assert!(err.to_string().contains("exists"), "{err}");
    let err = TickOutput::create(dir.path(), Tz::UTC, false)
        .err()
        .unwrap();
    assert!(err.to_string().contains("is not empty"), "{err}");
}

#[test]
fn a_bad_row_in_a_partition_is_reported_as_its_file_reaches_it_and_the_file_read_on() {
    let dir = tempfile::tempdir().unwrap();
    let day = 1_800_000_000 * NS - (1_800_000_000 * NS).rem_euclid(DAY);
    let good: Vec<Tick> = (0..6)
        .map(|i| {
            Tick::trade(
                day + i * NS,
                5 + (i as u64 % 2),
                Price::from_units(100 + i),
                1,
            )
        })
        .collect();
    write_dataset(dir.path(), Tz::UTC, &good, 2);
    // Instrument 7: a zero price between two good rows.
    std::fs::create_dir(dir.path().join("7")).unwrap();
    write_raw(
        &dir.path().join("7").join("20270115.parquet"),
        "message m { required int64 ts_ns; required int64 instrument; required int64 price (DECIMAL(18,8)); required int64 volume; }",
        |w| {
            let mut g = w.next_row_group().unwrap();
            let columns: [&[i64]; 4] = [
                &[day + 2 * NS + 1, day + 3 * NS + 1, day + 4 * NS + 1],
                &[7, 7, 7],
                &[50, 0, 51],
                &[1, 1, 1],
            ];
            for values in columns {
                let mut col = g.next_column().unwrap().unwrap();
                col.typed::<Int64Type>().write_batch(values, None, None).unwrap();
                col.close().unwrap();
            }
            g.close().unwrap();
        },
    );
    let rows: Vec<_> = open_ticks_selected(dir.path(), &TickSelection::all(Tz::UTC))
        .unwrap()
        .collect();
    let shown: Vec<String> = rows
        .iter()
        .map(|r| match r {
            Ok(t) => format!("{}@{}", t.instrument, (t.ts_ns - day) / NS),
            Err(e) => format!("error {} row {}", e.reason(), e.line()),
        })
        .collect();
    assert_eq!(
        shown,
        [
            "5@0",
            "6@1",
            "5@2",
            "7@2",
            "error non_positive_price row 2",
            "6@3",
            "5@4",
            "7@4",
            "6@5"
        ]
    );
}
