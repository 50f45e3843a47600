//! Parquet at the command line: `quiver convert` both ways, `quiver gen
//! --format parquet`, and replays from a Parquet file or a partitioned
//! directory giving the golden signals byte for byte, with `--from`,
//! `--to` and `--instruments` choosing what is read.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

mod support;

use std::path::Path;

use support::{
    assert_same_bytes, golden, quiver, read, read_text, replay_golden_config, tempdir, write,
};

fn convert(from: &Path, to: &Path, extra: &[&str]) -> support::Run {
    let mut args = vec![
        "convert".to_owned(),
        "--ticks".to_owned(),
        from.display().to_string(),
        "--out".to_owned(),
        to.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    quiver(args)
}

#[test]
fn golden_ticks_as_a_parquet_file_or_directory_replay_to_the_golden_signals() {
    let dir = tempdir();
    let expected = read(&golden("expected_signals.jsonl"));
    let file = dir.path().join("ticks.parquet");
    convert(&golden("ticks.csv"), &file, &[])
        .expect_code(0)
        .expect_stderr_contains("converted 3000 ticks");
    let partitions = dir.path().join("partitions");
    convert(&file, &partitions, &[])
        .expect_code(0)
        .expect_stderr_contains("(4 files)");
    assert!(partitions.join("1001").join("20260105.parquet").is_file());
    for (ticks, name) in [(&file, "file.jsonl"), (&partitions, "dir.jsonl")] {
        let (run, bytes) = replay_golden_config(dir.path(), ticks, name, &[]);
        run.expect_code(0);
        assert_same_bytes(&bytes, &expected, &format!("replay of {}", ticks.display()));
    }
    // And back: the same ticks, prices exact, as CSV and JSON Lines.
    let back = dir.path().join("back.csv");
    convert(&partitions, &back, &[]).expect_code(0);
    let original = read_text(&golden("ticks.csv"));
    let returned = read_text(&back);
    let mut rows = returned.lines();
    assert_eq!(rows.next(), Some("ts_ns,instrument,price,volume,bid,ask"));
    for (a, b) in original.lines().skip(1).zip(rows) {
        assert_eq!(format!("{a},,"), b);
    }
    assert_eq!(original.lines().count(), returned.lines().count());
    let jsonl = dir.path().join("back.jsonl");
    convert(&file, &jsonl, &[]).expect_code(0);
    let (run, bytes) = replay_golden_config(dir.path(), &jsonl, "jsonl.jsonl", &[]);
    run.expect_code(0);
    assert_same_bytes(&bytes, &expected, "replay of the JSON Lines conversion");
}

#[test]
fn a_selection_reads_the_same_ticks_from_csv_and_from_partitions() {
    let dir = tempdir();
    let partitions = dir.path().join("p");
    convert(&golden("ticks.csv"), &partitions, &[]).expect_code(0);
    let select = [
        "--instruments",
        "1002,1007",
        "--from",
        "2026-01-05",
        "--to",
        "2026-01-05",
    ];
    let kept = read_text(&golden("ticks.csv"))
        .lines()
        .filter(|l| l.contains(",1002,") || l.contains(",1007,"))
        .count();
    let summary = format!("replay: {kept} ticks");
    assert!(kept > 100, "{summary}");
    let (run, from_csv) =
        replay_golden_config(dir.path(), &golden("ticks.csv"), "a.jsonl", &select);
    run.expect_code(0).expect_stderr_contains(&summary);
    let (run, from_dir) = replay_golden_config(dir.path(), &partitions, "b.jsonl", &select);
    run.expect_code(0).expect_stderr_contains(&summary);
    assert_same_bytes(&from_dir, &from_csv, "the selected replay");
    assert!(!from_csv.is_empty());
    for line in read_text(&dir.path().join("b.jsonl")).lines() {
        assert!(
            line.contains("\"instrument\":1002") || line.contains("\"instrument\":1007"),
            "{line}"
        );
    }
    // A day with no partition reads nothing; the range is checked.
    let (run, _) = replay_golden_config(
        dir.path(),
        &partitions,
        "c.jsonl",
        &["--from", "2026-01-06"],
    );
    run.expect_code(0).expect_stderr_contains("replay: 0 ticks");
    let (run, _) = replay_golden_config(
        dir.path(),
        &partitions,
        "d.jsonl",
        &["--from", "2026-01-06", "--to", "2026-01-05"],
    );
    run.expect_code(2)
        .expect_stderr_contains("--from 2026-01-06 is after --to 2026-01-05");
    let (run, _) = replay_golden_config(
        dir.path(),
        &partitions,
        "e.jsonl",
        &["--timezone", "Mars/Olympus"],
    );
    run.expect_code(2)
        .expect_stderr_contains("\"Mars/Olympus\" is not an IANA time zone");
}

#[test]
fn gen_writes_parquet_that_replays_like_its_csv() {
    let dir = tempdir();
    let csv = dir.path().join("g.csv");
    let parquet = dir.path().join("g.parquet");
    let partitions = dir.path().join("g");
    let gen = |out: &Path, format: &str| {
        quiver([
            "gen",
            "--instruments",
            "10",
            "--ticks",
            "5000",
            "--seed",
            "4",
            "--out",
            &out.display().to_string(),
            "--format",
            format,
        ])
    };
    gen(&csv, "csv").expect_code(0);
    gen(&parquet, "parquet").expect_code(0);
    gen(&partitions, "parquet").expect_code(0);
    gen(&dir.path().join("g.csv2"), "parquet")
        .expect_code(2)
        .expect_stderr_contains("does not name a Parquet output");
    let (_, from_csv) = replay_golden_config(dir.path(), &csv, "csv.jsonl", &[]);
    assert!(!from_csv.is_empty());
    for ticks in [&parquet, &partitions] {
        let (run, bytes) = replay_golden_config(dir.path(), ticks, "pq.jsonl", &[]);
        run.expect_code(0);
        assert_same_bytes(&bytes, &from_csv, &format!("replay of {}", ticks.display()));
    }
}

#[test]
fn bad_parquet_input_is_refused_with_the_file_named() {
    let dir = tempdir();
    let fake = dir.path().join("fake.parquet");
    write(&fake, "ts_ns,instrument,price,volume\n");
    let (run, _) = replay_golden_config(dir.path(), &fake, "x.jsonl", &[]);
    run.expect_code(2)
        .expect_stderr_contains("fake.parquet: not a readable Parquet file");
    let partitions = dir.path().join("p");
    convert(&golden("ticks.csv"), &partitions, &[]).expect_code(0);
    write(&partitions.join("README"), "not data");
    let (run, _) = replay_golden_config(dir.path(), &partitions, "y.jsonl", &[]);
    run.expect_code(2)
        .expect_stderr_contains("README: is not an instrument directory");
    // Converting onto existing partitions never overwrites them.
    std::fs::remove_file(partitions.join("README")).unwrap();
    convert(&golden("ticks.csv"), &partitions, &[])
        .expect_code(2)
        .expect_stderr_contains("is not empty");
    convert(&golden("ticks.csv"), &golden("ticks.csv"), &[])
        .expect_code(2)
        .expect_stderr_contains("is the input");
}
