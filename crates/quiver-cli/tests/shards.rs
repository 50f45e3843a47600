//! Sharded replays: the instruments split over engines on several threads,
//! merged back into one engine's output — byte-identical signals for every
//! shard count on the golden replay, the ML strategies and the demo (models
//! included), the same backtest report, and sets that cannot be split
//! refused with the reason, or run on one shard when no count was asked.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

mod support;

use std::ffi::OsString;

use support::{assert_same_bytes, golden, quiver, read, replay_golden_config, tempdir, write};

const COUNTS: [&str; 4] = ["1", "2", "3", "8"];

#[test]
fn the_golden_replay_is_byte_identical_on_every_shard_count() {
    let dir = tempdir();
    let expected = read(&golden("expected_signals.jsonl"));
    for shards in COUNTS {
        let (run, bytes) = replay_golden_config(
            dir.path(),
            &golden("ticks.csv"),
            &format!("s{shards}.jsonl"),
            &["--shards", shards],
        );
        run.expect_code(0);
        if shards != "1" {
            run.expect_stderr_contains(&format!("on {shards} shards"))
                .expect_stderr_contains("each tick waits for its round of 4,096 ticks");
        }
        // The summary adds the shards' counters up.
        run.expect_stderr_contains("3,868 lines (3,350 signals × brokers)");
        assert_same_bytes(&bytes, &expected, &format!("--shards {shards}"));
    }
}

#[test]
fn ml_strategies_give_the_same_signals_on_every_shard_count_and_backend() {
    let dir = tempdir();
    let mut backends = vec!["tract"];
    if std::env::var_os("ORT_DYLIB_PATH").is_some() {
        backends.push("onnxruntime");
    }
    for backend in backends {
        let mut reference: Option<Vec<u8>> = None;
        for (shards, batch) in COUNTS.iter().zip(["256", "7", "1", "1024"]) {
            let out = dir.path().join(format!("{backend}-{shards}.jsonl"));
            quiver([
                OsString::from("replay"),
                "--config".into(),
                golden("ml_strategies.yaml").into(),
                "--ticks".into(),
                golden("ticks.csv").into(),
                "--backend".into(),
                backend.into(),
                "--batch-size".into(),
                batch.into(),
                "--shards".into(),
                (*shards).into(),
                "--out".into(),
                out.clone().into(),
            ])
            .expect_code(0)
            .expect_stderr_contains(&format!("rows on {backend}"));
            let bytes = read(&out);
            assert!(
                String::from_utf8_lossy(&bytes).contains("\"model_version\":\"1.0.0\""),
                "{backend}: no ML signal"
            );
            match &reference {
                None => reference = Some(bytes),
                Some(reference) => {
                    assert_same_bytes(&bytes, reference, &format!("{backend}: --shards {shards}"))
                }
            }
        }
    }
}

#[test]
fn the_demo_and_its_report_are_the_same_on_every_shard_count() {
    let dir = tempdir();
    let mut reference: Option<(Vec<u8>, Vec<u8>, Vec<u8>)> = None;
    for shards in COUNTS {
        let out = dir.path().join(format!("demo-{shards}.jsonl"));
        let report = dir.path().join(format!("report-{shards}"));
        quiver([
            OsString::from("demo"),
            "--ticks".into(),
            "20000".into(),
            "--shards".into(),
            shards.into(),
            "--out".into(),
            out.clone().into(),
            "--report".into(),
            report.clone().into(),
        ])
        .expect_code(0);
        let got = (
            read(&out),
            read(&report.join("summary.csv")),
            read(&report.join("trades.csv")),
        );
        assert!(
            String::from_utf8_lossy(&got.0).contains("\"model\":"),
            "the demo's ML strategies signal"
        );
        match &reference {
            None => reference = Some(got),
            Some((signals, summary, trades)) => {
                assert_same_bytes(&got.0, signals, &format!("demo signals, --shards {shards}"));
                assert_same_bytes(&got.1, summary, &format!("summary.csv, --shards {shards}"));
                assert_same_bytes(&got.2, trades, &format!("trades.csv, --shards {shards}"));
            }
        }
    }
}

/// The golden config with a rate limit on its first strategy.
fn rate_limited(dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(golden("strategies.yaml")).unwrap();
    let limited = text.replacen(
        "    instruments: [1001, 1002, 1003, 1004]\n",
        "    instruments: [1001, 1002, 1003, 1004]\n    validators:\n      - rate_limit: {max_signals_per_minute: 6}\n",
        1,
    );
    assert_ne!(text, limited);
    let path = dir.join("limited.yaml");
    write(&path, limited);
    path
}

#[test]
fn a_set_with_limits_across_instruments_is_refused_shards_or_runs_on_one() {
    let dir = tempdir();
    let config = rate_limited(dir.path());
    let replay = |extra: &[&str], out: &str| {
        let mut args: Vec<OsString> = vec![
            "replay".into(),
            "--config".into(),
            config.clone().into(),
            "--ticks".into(),
            golden("ticks.csv").into(),
            "--out".into(),
            dir.path().join(out).into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        quiver(args)
    };
    replay(&["--shards", "2"], "two.jsonl")
        .expect_code(2)
        .expect_stderr_contains("strategy \"mom-10\" has a rate_limit validator")
        .expect_stderr_contains("--shards 1");
    assert!(!dir.path().join("two.jsonl").exists(), "nothing written");
    // Asked for nothing: one shard, the same as asked for one.
    let default = replay(&[], "default.jsonl");
    default.expect_code(0);
    assert!(!default.stderr.contains("shards"), "{}", default.stderr);
    replay(&["--shards", "1"], "one.jsonl").expect_code(0);
    let one = read(&dir.path().join("one.jsonl"));
    assert_same_bytes(
        &read(&dir.path().join("default.jsonl")),
        &one,
        "default vs 1",
    );
    // The limit holds signals back: the set differs from the golden one.
    assert_ne!(one, read(&golden("expected_signals.jsonl")));
}

#[test]
fn a_reload_schedule_needs_one_shard() {
    let dir = tempdir();
    let (run, _) = replay_golden_config(
        dir.path(),
        &golden("ticks.csv"),
        "s.jsonl",
        &[
            "--shards",
            "2",
            "--reload-at",
            &format!("100={}", golden("strategies.yaml").display()),
        ],
    );
    run.expect_code(2)
        .expect_stderr_contains("cannot swap strategy sets (--reload-at)");
    // Without --shards the schedule runs on one engine.
    let (run, bytes) = replay_golden_config(
        dir.path(),
        &golden("ticks.csv"),
        "r.jsonl",
        &[
            "--reload-at",
            &format!("100={}", golden("strategies.yaml").display()),
        ],
    );
    run.expect_code(0);
    assert_same_bytes(
        &bytes,
        &read(&golden("expected_signals.jsonl")),
        "reload of the same set",
    );
}
