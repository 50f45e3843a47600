//! End-to-end behaviour of the `quiver` commands: bad tick rows, invalid
//! configs, `validate`, `gen`, `demo`, `bench` and missing files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

mod support;

use std::ffi::OsStr;
use std::path::Path;

use support::{
    assert_same_bytes, get_str, golden, parse_object, parse_ticks_csv, quiver, quiver_in, read,
    read_text, replay_golden_config, tempdir, write, TickRow,
};

/// Exit code of invalid input (bad tick rows, invalid config).
const INVALID_INPUT: i32 = 2;

/// The golden ticks as CSV lines (header first).
fn golden_tick_lines() -> Vec<String> {
    read_text(&golden("ticks.csv"))
        .lines()
        .map(str::to_owned)
        .collect()
}

fn csv(lines: &[String]) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn row(ts_ns: i64, instrument: u64, price: &str, volume: &str) -> String {
    format!("{ts_ns},{instrument},{price},{volume}")
}

/// The lines of the golden signals whose tick index is below `seq`, as bytes.
fn golden_signals_before(seq: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for line in read_text(&golden("expected_signals.jsonl")).lines() {
        let line_seq = support::get_u64(&parse_object(line), "seq");
        if line_seq < seq {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
    out
}

fn lines_of(text: &str) -> Vec<&str> {
    text.lines().collect()
}

// ---------------------------------------------------------------- bad rows

#[test]
fn bad_price_stops_the_replay_with_file_line_and_field() {
    let dir = tempdir();
    let mut lines = golden_tick_lines();
    // Data line 4 is physical line 5.
    let t = &parse_ticks_csv(&csv(&lines))[3];
    lines[4] = row(t.ts_ns, t.instrument, "abc", &t.volume.to_string());
    write(&dir.path().join("ticks.csv"), csv(&lines));

    let run = quiver_in(
        dir.path(),
        [
            "replay",
            "--config",
            golden("strategies.yaml").to_str().expect("utf-8 path"),
            "--ticks",
            "ticks.csv",
            "--out",
            "signals.jsonl",
        ],
    );
    run.expect_code(INVALID_INPUT);
    assert!(
        lines_of(&run.stderr).contains(&r#"error: ticks.csv:5: price: "abc" is not a decimal"#),
        "stderr:\n{}",
        run.stderr
    );
    run.expect_stderr_contains("replay: 3 ticks");
    // No tick before the bad row completes a warm-up, so the file is empty.
    assert_eq!(read(&dir.path().join("signals.jsonl")), b"");

    // The message names the file exactly as it was given.
    let absolute = dir.path().join("ticks.csv");
    let (run, _) = replay_golden_config(dir.path(), &absolute, "abs.jsonl", &[]);
    run.expect_code(INVALID_INPUT)
        .expect_stderr_contains(&format!(
            r#"{}:5: price: "abc" is not a decimal"#,
            absolute.display()
        ));
}

#[test]
fn bad_row_keeps_the_signals_of_the_rows_before_it() {
    let dir = tempdir();
    let mut lines = golden_tick_lines();
    // Data line 1500 (seq 1499) is physical line 1501.
    let t = &parse_ticks_csv(&csv(&lines))[1499];
    lines[1500] = row(t.ts_ns, t.instrument, "abc", &t.volume.to_string());
    let ticks = dir.path().join("ticks.csv");
    write(&ticks, csv(&lines));

    let (run, bytes) = replay_golden_config(dir.path(), &ticks, "signals.jsonl", &[]);
    run.expect_code(INVALID_INPUT)
        .expect_stderr_contains(r#"ticks.csv:1501: price: "abc" is not a decimal"#)
        .expect_stderr_contains("replay: 1,499 ticks");
    let expected = golden_signals_before(1499);
    assert!(!expected.is_empty());
    assert_same_bytes(&bytes, &expected, "signals before the bad row");
}

#[test]
fn skip_bad_rows_counts_by_reason_and_matches_the_clean_file() {
    let dir = tempdir();
    let all = golden_tick_lines();
    let clean: Vec<String> = all[..1001].to_vec(); // header + 1000 rows
    let rows: Vec<TickRow> = parse_ticks_csv(&csv(&clean));
    let first_1001_ts = rows
        .iter()
        .find(|r| r.instrument == 1001)
        .expect("a 1001 tick")
        .ts_ns;

    // (insert after data row n, bad row)
    let r = |n: usize| &rows[n - 1];
    let bad: Vec<(usize, String)> = vec![
        (
            10,
            row(
                r(10).ts_ns,
                r(10).instrument,
                "abc",
                &r(10).volume.to_string(),
            ),
        ),
        (50, row(r(50).ts_ns, r(50).instrument, "-3.5", "10")),
        (100, row(r(100).ts_ns, r(100).instrument, "0", "10")),
        (200, row(first_1001_ts - 1, 1001, "400.05", "10")),
        (300, row(r(300).ts_ns, r(300).instrument, "400.05", "x")),
        (400, row(r(400).ts_ns, r(400).instrument, "1.2.3", "10")),
        (
            500,
            format!("{},{},400.05", r(500).ts_ns, r(500).instrument),
        ),
        // A rejected row's far-future timestamp must not make later rows "backwards".
        (600, row(i64::MAX - 1, 1001, "abc", "10")),
    ];
    let mut dirty = vec![clean[0].clone()];
    for (i, line) in clean[1..].iter().enumerate() {
        dirty.push(line.clone());
        for (_, b) in bad.iter().filter(|(after, _)| *after == i + 1) {
            dirty.push(b.clone());
        }
    }
    assert_eq!(dirty.len(), clean.len() + bad.len());
    let dirty_path = dir.path().join("dirty.csv");
    let clean_path = dir.path().join("clean.csv");
    write(&dirty_path, csv(&dirty));
    write(&clean_path, csv(&clean));

    let (run, skipped) = replay_golden_config(
        dir.path(),
        &dirty_path,
        "skipped.jsonl",
        &["--skip-bad-rows"],
    );
    run.expect_code(0);
    for needle in [
        "skipped 8 bad rows",
        "bad_price 3",
        "bad_volume 1",
        "non_positive_price 2",
        "timestamp_backwards 1",
        "wrong_field_count 1",
        "replay: 1,000 ticks",
    ] {
        run.expect_stderr_contains(needle);
    }

    let (clean_run, clean_bytes) =
        replay_golden_config(dir.path(), &clean_path, "clean.jsonl", &[]);
    clean_run
        .expect_code(0)
        .expect_stderr_contains("skipped 0 bad rows");
    assert!(!clean_bytes.is_empty());
    assert_same_bytes(&skipped, &clean_bytes, "skipped bad rows vs clean file");
    assert_same_bytes(&clean_bytes, &golden_signals_before(1000), "clean prefix");

    // Without the flag the same file stops at the first bad row (physical line 12).
    let (stopped, _) = replay_golden_config(dir.path(), &dirty_path, "stopped.jsonl", &[]);
    stopped
        .expect_code(INVALID_INPUT)
        .expect_stderr_contains(&format!(
            r#"{}:12: price: "abc" is not a decimal"#,
            dirty_path.display()
        ));
}

#[test]
fn unknown_column_is_rejected_by_name() {
    let dir = tempdir();
    write(
        &dir.path().join("ticks.csv"),
        "ts_ns,instrument,price,volume,venue\n1767584700001914447,1001,366.05,82,NSE\n",
    );
    let run = quiver_in(
        dir.path(),
        [
            "replay",
            "--config",
            golden("strategies.yaml").to_str().expect("utf-8 path"),
            "--ticks",
            "ticks.csv",
            "--out",
            "signals.jsonl",
        ],
    );
    run.expect_code(INVALID_INPUT)
        .expect_stderr_contains(r#"ticks.csv:1: unknown column "venue""#);
    assert_no_signals(&dir.path().join("signals.jsonl"));
}

#[test]
fn missing_column_is_rejected_by_name() {
    let dir = tempdir();
    let ticks = dir.path().join("ticks.csv");
    write(
        &ticks,
        "ts_ns,instrument,price\n1767584700001914447,1001,366.05\n",
    );
    let (run, _) = replay_golden_config(dir.path(), &ticks, "signals.jsonl", &[]);
    run.expect_code(INVALID_INPUT)
        .expect_stderr_contains(r#"missing column "volume""#);
    assert_no_signals(&dir.path().join("signals.jsonl"));
}

#[test]
fn unknown_jsonl_field_stops_at_its_line() {
    let dir = tempdir();
    let ticks = dir.path().join("ticks.jsonl");
    write(
        &ticks,
        concat!(
            r#"{"ts_ns":1767584700001914447,"instrument":1001,"price":"366.05","volume":82}"#,
            "\n",
            r#"{"ts_ns":1767584700003134461,"instrument":1002,"price":"313.05","volume":456,"venue":"NSE"}"#,
            "\n",
        ),
    );
    let (run, bytes) = replay_golden_config(dir.path(), &ticks, "signals.jsonl", &[]);
    run.expect_code(INVALID_INPUT)
        .expect_stderr_contains(&format!(r#"{}:2: unknown field "venue""#, ticks.display()));
    assert!(bytes.is_empty());
}

#[test]
fn unsupported_tick_file_extension_is_rejected() {
    let dir = tempdir();
    let ticks = dir.path().join("ticks.txt");
    write(&ticks, "ts_ns,instrument,price,volume\n");
    let (run, _) = replay_golden_config(dir.path(), &ticks, "signals.jsonl", &[]);
    assert_ne!(run.code, Some(0));
    run.expect_stderr_contains(&format!("{}: unsupported", ticks.display()));
}

fn assert_no_signals(path: &Path) {
    if path.exists() {
        assert_eq!(read(path), b"", "{} should be empty", path.display());
    }
}

// ---------------------------------------------------------------- config

const INVALID_CONFIG: &str = "\
strategies:
  - id: mom-zero
    strategy_type: momentum
    parameters: {lookback_periods: 0}
    brokers: [paper]
    instruments: [1001]

  - id: fine
    strategy_type: rsi
    parameters: {}
    brokers: [paper]
    instruments: [1001]

  - id: astro
    strategy_type: astrology
    parameters: {}
    brokers: [paper]
    instruments: [1002]
";

const INVALID_CONFIG_ERRORS: [&str; 2] = [
    r#"strategies.yaml:4: strategies[0] (id "mom-zero").parameters.lookback_periods: must be >= 2, got 0"#,
    r#"strategies.yaml:15: strategies[2] (id "astro").strategy_type: unknown strategy_type "astrology" (expected momentum, mean_reversion, rsi, breakout, hybrid, ml, ml_momentum, hybrid_momentum)"#,
];

#[test]
fn validate_reports_every_config_error_with_file_line_and_path() {
    let dir = tempdir();
    write(&dir.path().join("strategies.yaml"), INVALID_CONFIG);
    let run = quiver_in(dir.path(), ["validate", "--config", "strategies.yaml"]);
    run.expect_code(INVALID_INPUT);
    assert_eq!(lines_of(&run.stderr), INVALID_CONFIG_ERRORS);
    assert_eq!(run.stdout_text(), "");
}

#[test]
fn replay_rejects_an_invalid_config_whole_and_writes_no_signals() {
    let dir = tempdir();
    write(&dir.path().join("strategies.yaml"), INVALID_CONFIG);
    let run = quiver_in(
        dir.path(),
        [
            "replay",
            "--config",
            "strategies.yaml",
            "--ticks",
            golden("ticks.csv").to_str().expect("utf-8 path"),
            "--out",
            "signals.jsonl",
        ],
    );
    run.expect_code(INVALID_INPUT);
    let stderr = lines_of(&run.stderr);
    for expected in INVALID_CONFIG_ERRORS {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{}",
            run.stderr
        );
    }
    assert!(
        !run.stderr.contains("ticks/s"),
        "replay ran:\n{}",
        run.stderr
    );
    assert_eq!(run.stdout_text(), "");
    assert_no_signals(&dir.path().join("signals.jsonl"));

    // To stdout, too: nothing.
    let run = quiver_in(
        dir.path(),
        [
            "replay",
            "--config",
            "strategies.yaml",
            "--ticks",
            golden("ticks.csv").to_str().expect("utf-8 path"),
        ],
    );
    run.expect_code(INVALID_INPUT);
    assert_eq!(run.stdout_text(), "");
}

#[test]
fn validate_summarises_the_golden_config_in_one_line() {
    let run = quiver([
        OsStr::new("validate"),
        OsStr::new("--config"),
        golden("strategies.yaml").as_os_str(),
    ]);
    run.expect_code(0);
    let stdout = run.stdout_text();
    let lines = lines_of(&stdout);
    assert_eq!(lines.len(), 1, "stdout:\n{stdout}");
    for needle in [
        "12 strategies",
        "11 enabled",
        "1 disabled",
        "5 hybrid",
        "4 instruments",
        "2 brokers",
    ] {
        assert!(
            lines[0].contains(needle),
            "{needle:?} not in {:?}",
            lines[0]
        );
    }
    assert!(lines[0].starts_with(&format!("{}: ok", golden("strategies.yaml").display())));
}

// ---------------------------------------------------------------- gen

fn gen(dir: &Path, name: &str, instruments: u32, ticks: u64, seed: u64) -> Vec<u8> {
    let out = dir.join(name);
    let run = quiver([
        OsStr::new("gen"),
        OsStr::new("--instruments"),
        instruments.to_string().as_ref(),
        OsStr::new("--ticks"),
        ticks.to_string().as_ref(),
        OsStr::new("--seed"),
        seed.to_string().as_ref(),
        OsStr::new("--out"),
        out.as_os_str(),
    ]);
    run.expect_code(0)
        .expect_stderr_contains(&format!("wrote {ticks} ticks"));
    read(&out)
}

#[test]
fn gen_is_deterministic_seeded_and_replayable() {
    let dir = tempdir();
    let a = gen(dir.path(), "a.csv", 3, 800, 5);
    let b = gen(dir.path(), "b.csv", 3, 800, 5);
    let c = gen(dir.path(), "c.csv", 3, 800, 6);
    assert_same_bytes(&b, &a, "gen with the same arguments");
    assert_ne!(a, c, "a different seed gave the same ticks");

    let text = String::from_utf8(a).expect("utf-8");
    assert_eq!(text.lines().next(), Some("ts_ns,instrument,price,volume"));
    let rows = parse_ticks_csv(&text);
    assert_eq!(rows.len(), 800);
    let mut instruments: Vec<u64> = rows.iter().map(|r| r.instrument).collect();
    instruments.sort_unstable();
    instruments.dedup();
    assert_eq!(instruments.len(), 3);
    for r in &rows {
        let price: f64 = r.price.parse().expect("decimal price");
        assert!(price > 0.0, "{r:?}");
    }

    let (run, signals) =
        replay_golden_config(dir.path(), &dir.path().join("a.csv"), "s.jsonl", &[]);
    run.expect_code(0)
        .expect_stderr_contains("replay: 800 ticks")
        .expect_stderr_contains("skipped 0 bad rows");
    assert!(!signals.is_empty());
}

#[test]
fn gen_reproduces_the_golden_ticks() {
    let dir = tempdir();
    let ticks = gen(dir.path(), "ticks.csv", 4, 3000, 11);
    assert_same_bytes(
        &ticks,
        &read(&golden("ticks.csv")),
        "gen --seed 11 vs golden",
    );
}

// ---------------------------------------------------------------- demo, bench

/// The number after `label` on the summary line that starts with it (thousands separators allowed).
fn summary_number(text: &str, label: &str) -> u64 {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no line starting {label:?} in:\n{text}"));
    line[label.len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no number in {line:?}"))
}

#[test]
fn demo_replays_a_synthetic_day() {
    let dir = tempdir();
    let report = dir.path().join("report");
    let run = quiver([
        OsStr::new("demo"),
        OsStr::new("--ticks"),
        OsStr::new("20000"),
        OsStr::new("--report"),
        report.as_os_str(),
    ]);
    run.expect_code(0);
    // Its paper-trading report, and where the page is.
    run.expect_stderr_contains(&format!("report: {}", report.join("report.html").display()));
    run.expect_stderr_contains("paper trading (configs/demo.yaml's paper:, risk: and costs:)");
    for file in [
        "summary.csv",
        "summary.json",
        "trades.csv",
        "equity.csv",
        "report.html",
    ] {
        assert!(report.join(file).is_file(), "no {file}");
    }
    assert_eq!(run.stdout_text(), "");
    let config_line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("demo config: "))
        .unwrap_or_else(|| panic!("no config summary:\n{}", run.stderr));
    assert!(
        config_line.contains("strategies") && config_line.contains("enabled"),
        "{config_line}"
    );
    for needle in [
        "demo: 20,000 ticks",
        "ticks/s",
        "evaluations/s",
        "signals per strategy",
    ] {
        run.expect_stderr_contains(needle);
    }
    // As many hybrid strategy lines as the config summary announces.
    let hybrids: u64 = config_line
        .split([',', ':', ';', '('])
        .map(str::trim)
        .find_map(|part| part.strip_suffix(" hybrid")?.parse().ok())
        .unwrap_or_else(|| panic!("no hybrid count in {config_line:?}"));
    assert!(hybrids > 0);
    let hybrid_lines = run
        .stderr
        .lines()
        .filter(|l| l.contains("(hybrid:"))
        .count();
    assert_eq!(hybrid_lines as u64, hybrids, "stderr:\n{}", run.stderr);
    assert!(summary_number(&run.stderr, "signals") > 0);
}

#[test]
fn demo_out_writes_deterministic_signals() {
    let dir = tempdir();
    let out = |name: &str| {
        let path = dir.path().join(name);
        let report = dir.path().join(format!("{name}.report"));
        let run = quiver([
            OsStr::new("demo"),
            OsStr::new("--ticks"),
            OsStr::new("20000"),
            OsStr::new("--out"),
            path.as_os_str(),
            OsStr::new("--report"),
            report.as_os_str(),
        ]);
        run.expect_code(0)
            .expect_stderr_contains(&format!("signals written to {}", path.display()));
        (run, read(&path))
    };
    // Two independent runs, side by side.
    let ((run, first), (_, second)) = std::thread::scope(|s| {
        let a = s.spawn(|| out("a.jsonl"));
        let b = s.spawn(|| out("b.jsonl"));
        (
            a.join().expect("first demo"),
            b.join().expect("second demo"),
        )
    });
    assert!(!first.is_empty());
    assert_same_bytes(&second, &first, "demo --out, second run");

    let text = String::from_utf8(first).expect("utf-8");
    let lines = lines_of(&text);
    assert_eq!(lines.len() as u64, summary_number(&run.stderr, "signals"));
    for line in lines {
        let obj = parse_object(line);
        assert_eq!(obj.len(), 12, "{line}");
        assert!(
            ["BUY", "SELL"].contains(&get_str(&obj, "side").as_str()),
            "{line}"
        );
    }
}

#[test]
fn bench_reports_throughput_latency_and_memory() {
    let run = quiver(["bench", "--ticks", "20000"]);
    run.expect_code(0).expect_stderr_contains("20,000 ticks");
    let stdout = run.stdout_text();
    assert_eq!(summary_number(&stdout, "ticks "), 20_000);
    assert!(summary_number(&stdout, "ticks/s") > 0);
    assert!(summary_number(&stdout, "strategy evals/s") > 0);
    let dispatch = stdout
        .lines()
        .find(|l| l.starts_with("per-tick dispatch"))
        .unwrap_or_else(|| panic!("no dispatch latency line:\n{stdout}"));
    assert!(
        dispatch.contains("p50") && dispatch.contains("p99"),
        "{dispatch}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("peak RSS")),
        "no peak RSS line:\n{stdout}"
    );
}

// ---------------------------------------------------------------- missing files

#[test]
fn replay_names_a_missing_ticks_file() {
    let dir = tempdir();
    let ticks = dir.path().join("no-such-ticks.csv");
    let (run, _) = replay_golden_config(dir.path(), &ticks, "signals.jsonl", &[]);
    assert_ne!(run.code, Some(0));
    run.expect_stderr_contains(&ticks.display().to_string());
    assert_no_signals(&dir.path().join("signals.jsonl"));
}

#[test]
fn replay_and_validate_name_a_missing_config_file() {
    let dir = tempdir();
    let config = dir.path().join("no-such-config.yaml");
    let run = quiver([
        OsStr::new("replay"),
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("--ticks"),
        golden("ticks.csv").as_os_str(),
    ]);
    assert_ne!(run.code, Some(0));
    run.expect_stderr_contains(&config.display().to_string());
    assert!(run.stdout.is_empty());

    let run = quiver([
        OsStr::new("validate"),
        OsStr::new("--config"),
        config.as_os_str(),
    ]);
    assert_ne!(run.code, Some(0));
    run.expect_stderr_contains(&config.display().to_string());
}

#[test]
fn unwritable_outputs_are_named() {
    let dir = tempdir();
    let missing_dir = dir.path().join("no-such-dir");

    let out = missing_dir.join("signals.jsonl");
    let run = quiver([
        OsStr::new("replay"),
        OsStr::new("--config"),
        golden("strategies.yaml").as_os_str(),
        OsStr::new("--ticks"),
        golden("ticks.csv").as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ]);
    assert_ne!(run.code, Some(0));
    run.expect_stderr_contains(&out.display().to_string());

    let gen_out = missing_dir.join("ticks.csv");
    let run = quiver([
        OsStr::new("gen"),
        OsStr::new("--instruments"),
        OsStr::new("2"),
        OsStr::new("--ticks"),
        OsStr::new("10"),
        OsStr::new("--out"),
        gen_out.as_os_str(),
    ]);
    assert_ne!(run.code, Some(0));
    run.expect_stderr_contains(&gen_out.display().to_string());
}

#[test]
fn replay_refuses_to_overwrite_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let ticks = dir.path().join("ticks.csv");
    std::fs::copy(support::golden("ticks.csv"), &ticks).unwrap();
    let before = std::fs::read(&ticks).unwrap();
    let config = support::golden("strategies.yaml");
    let out = support::quiver([
        "replay",
        "--config",
        config.to_str().unwrap(),
        "--ticks",
        ticks.to_str().unwrap(),
        "--out",
        ticks.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("refusing to overwrite"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&ticks).unwrap(), before);
}

#[test]
fn gen_needs_at_least_one_instrument() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.csv");
    let out = support::quiver([
        "gen",
        "--instruments",
        "0",
        "--ticks",
        "10",
        "--out",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("--instruments"), "{}", out.stderr);
    assert!(!path.exists());
}

#[test]
fn a_config_that_is_not_a_mapping_is_reported_briefly() {
    let out = support::quiver([
        "validate",
        "--config",
        support::golden("ticks.csv").to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.len() < 400,
        "message too long: {} bytes",
        out.stderr.len()
    );
    assert!(out.stderr.contains("characters)"), "{}", out.stderr);
}

#[test]
fn features_prints_one_row_per_tick_of_the_instrument() {
    let ticks = support::golden("ticks.csv");
    let out = support::quiver([
        "features",
        "--ticks",
        ticks.to_str().unwrap(),
        "--instrument",
        "1002",
        "--spec",
        "sma(2)",
        "--spec",
        "max(3)",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let text = out.stdout_text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("seq,ts_ns,price,sma(2),max(3)"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    let source = std::fs::read_to_string(&ticks).unwrap();
    let expected: Vec<(usize, String)> = source
        .lines()
        .skip(1)
        .enumerate()
        .filter(|(_, l)| l.split(',').nth(1) == Some("1002"))
        .map(|(seq, l)| (seq, l.split(',').nth(2).unwrap().to_owned()))
        .collect();
    assert_eq!(rows.len(), expected.len());
    for (i, (row, (seq, price))) in rows.iter().zip(&expected).enumerate() {
        assert_eq!(row[0], seq.to_string());
        assert_eq!(&row[2], price);
        if i == 0 {
            assert_eq!((row[3].as_str(), row[4].as_str()), ("", ""), "warming up");
            continue;
        }
        let prev: f64 = expected[i - 1].1.parse().unwrap();
        let now: f64 = price.parse().unwrap();
        let sma: f64 = row[3].parse().unwrap();
        assert!((sma - (prev + now) / 2.0).abs() < 1e-9, "row {i}: {sma}");
        if i >= 2 {
            let window = [expected[i - 2].1.parse::<f64>().unwrap(), prev, now];
            let max: f64 = row[4].parse().unwrap();
            assert_eq!(max, window.iter().copied().fold(f64::MIN, f64::max));
        } else {
            assert_eq!(row[4], "");
        }
    }
}

#[test]
fn features_rejects_a_bad_spec_by_name() {
    let ticks = support::golden("ticks.csv");
    let out = support::quiver([
        "features",
        "--ticks",
        ticks.to_str().unwrap(),
        "--instrument",
        "1001",
        "--spec",
        "zscore(1)",
    ]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr
            .contains("--spec \"zscore(1)\": window must be an integer between 2 and 100000"),
        "{}",
        out.stderr
    );
}

#[test]
fn special_files_are_refused_by_name_not_read_for_ever() {
    let dir = tempdir();
    // A device as the strategies file.
    let run = quiver(["validate", "--config", "/dev/zero"]);
    run.expect_code(INVALID_INPUT);
    let stderr = run.stderr.clone();
    assert!(
        stderr.contains("/dev/zero") && stderr.contains("a device"),
        "{stderr}"
    );
    // A FIFO as the model registry: refused without blocking on it.
    let fifo = dir.path().join("registry.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    write(
        &dir.path().join("strategies.yaml"),
        "models: registry.yaml\nstrategies:\n  - id: m\n    strategy_type: momentum\n    brokers: [paper]\n    instruments: [1]\n",
    );
    let run = quiver_in(dir.path(), ["validate", "--config", "strategies.yaml"]);
    run.expect_code(INVALID_INPUT);
    let stderr = run.stderr.clone();
    assert!(
        stderr.contains("registry.yaml") && stderr.contains("a FIFO"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------- hostile configs

/// `quiver validate --config PATH` and `quiver replay` of it over the golden
/// ticks (into `dir`), for a config both must refuse: both runs.
fn validate_and_replay(dir: &Path, config: &Path) -> [support::Run; 2] {
    let out = dir.join("signals.jsonl");
    let validate = quiver([
        OsStr::new("validate"),
        OsStr::new("--config"),
        config.as_os_str(),
    ]);
    let replay = quiver([
        OsStr::new("replay"),
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("--ticks"),
        golden("ticks.csv").as_os_str(),
        OsStr::new("--backend"),
        OsStr::new("tract"),
        OsStr::new("--out"),
        out.as_os_str(),
    ]);
    assert!(!out.exists(), "replay wrote signals");
    [validate, replay]
}

/// A strategies file with the registry written in place: one model whose
/// `path:` (line 3) is `model_path`, used by the row whose `model:` is on
/// line 12.
fn inline_registry_config(model_path: &str) -> String {
    format!(
        "models:\n  - name: mlp\n    path: {model_path}\n    sha256: \"2829f2fd0d6a3ec231593376bc10396960842d8ed7e839d412e1b9ebe3d63f40\"\n    version: \"1\"\n    framework: sklearn\n    input: {{features: 9, dtype: f32}}\n    output: {{kind: classifier, classes: [-1, 0, 1]}}\nstrategies:\n  - id: a\n    strategy_type: ml_momentum\n    parameters: {{model: mlp}}\n    brokers: [paper]\n    instruments: [1001]\n"
    )
}

#[test]
fn a_model_file_that_cannot_be_read_is_named_at_its_path_line() {
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("a-directory.onnx")).unwrap();
    let big = std::fs::File::create(dir.path().join("big.onnx")).unwrap();
    // Sparse: no disk is written for it.
    big.set_len((1 << 30) + 1).unwrap();
    let config = dir.path().join("strategies.yaml");
    let shown = config.display().to_string();
    for (model_path, problem) in [
        ("missing.onnx", "No such file or directory"),
        ("a-directory.onnx", "not a regular file (a directory)"),
        ("big.onnx", "larger than the 1073741824-byte limit"),
    ] {
        write(&config, inline_registry_config(model_path));
        let resolved = dir.path().join(model_path);
        for run in validate_and_replay(dir.path(), &config) {
            run.expect_code(INVALID_INPUT)
                .expect_stderr_contains(&format!(
                    "{shown}:3: models[0] (name \"mlp\").path: model file {}: {problem}",
                    resolved.display()
                ))
                .expect_stderr_contains(&format!(
                    "(model \"mlp\", used at {shown}:12: strategies[0] (id \"a\").parameters.model)"
                ));
        }
    }
}

#[test]
fn a_registry_file_names_its_own_lines_and_a_missing_one_the_models_line() {
    let dir = tempdir();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let registry = dir.path().join("registry.yaml");
    // The shipped registry, its paths left relative: none of its model files
    // is beside the copy.
    std::fs::copy(models.join("registry.yaml"), &registry).unwrap();
    let config = dir.path().join("strategies.yaml");
    write(
        &config,
        "\nmodels: registry.yaml\nstrategies:\n  - id: a\n    strategy_type: ml_momentum\n    brokers: [paper]\n    instruments: [1001]\n",
    );
    let registry_text = read_text(&registry);
    let path_line = registry_text
        .lines()
        .position(|l| l.trim() == "path: ml_momentum_mlp.onnx")
        .unwrap()
        + 1;
    for run in validate_and_replay(dir.path(), &config) {
        run.expect_code(INVALID_INPUT).expect_stderr_contains(&format!(
            "{}:{path_line}: models[1] (name \"ml_momentum_mlp\").path: model file {}: No such file or directory",
            registry.display(),
            dir.path().join("ml_momentum_mlp.onnx").display()
        ));
    }
    // A registry that is not there is named where `models:` points at it.
    write(
        &config,
        "\nmodels: nowhere.yaml\nstrategies:\n  - id: a\n    strategy_type: ml_momentum\n    brokers: [paper]\n    instruments: [1001]\n",
    );
    for run in validate_and_replay(dir.path(), &config) {
        run.expect_code(INVALID_INPUT)
            .expect_stderr_contains(&format!(
                "{}:2: models: registry {}: ",
                config.display(),
                dir.path().join("nowhere.yaml").display()
            ));
    }
}

#[test]
fn what_validate_refuses_for_size_replay_refuses_before_allocating() {
    let dir = tempdir();
    let config = dir.path().join("strategies.yaml");
    let instruments: Vec<String> = (1..=400).map(|t| t.to_string()).collect();
    for (lookback, expected) in [
        (
            "10000000000",
            "strategies[0] (id \"deep\").parameters.lookback_periods: must be <= 100000, got 10000000000",
        ),
        (
            "100000",
            "strategies[0] (id \"deep\").parameters.lookback_periods: the history would take 3.0 GiB for the whole file, over the budget of 1024 MiB (history_budget_mib); this strategy keeps 100001 ticks on each of its 400 instruments (3.0 GiB)",
        ),
    ] {
        write(
            &config,
            format!(
                "strategies:\n  - id: deep\n    strategy_type: breakout\n    parameters: {{lookback_periods: {lookback}}}\n    brokers: [paper]\n    instruments: [{}]\n",
                instruments.join(", ")
            ),
        );
        for run in validate_and_replay(dir.path(), &config) {
            run.expect_code(INVALID_INPUT)
                .expect_stderr_contains(&format!("{}:4: {expected}", config.display()));
        }
    }
    // Within the budget as replay builds it, but the service's warm-up floor
    // deepens every ring: `quiver run` refuses before starting anything.
    write(
        &config,
        format!(
            "strategies:\n  - id: wide\n    strategy_type: momentum\n    brokers: [paper]\n    instruments: [{}]\n",
            instruments.join(", ")
        ),
    );
    quiver([
        OsStr::new("validate"),
        OsStr::new("--config"),
        config.as_os_str(),
    ])
    .expect_code(0);
    let settings = dir.path().join("settings.yaml");
    write(&settings, "strategy:\n  warmup_ticks: 1000000\n");
    let run = quiver([
        OsStr::new("run"),
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("--settings"),
        settings.as_os_str(),
        OsStr::new("--http"),
        OsStr::new("off"),
    ]);
    run.expect_code(INVALID_INPUT).expect_stderr_contains(&format!(
        "error: {}: with strategy.warmup_ticks = 1000000, the history would take 17.9 GiB, over the budget of 1024 MiB (history_budget_mib)",
        config.display()
    ));
}

#[test]
fn ten_thousand_duplicate_keys_fail_validate_quickly_and_together() {
    let dir = tempdir();
    let config = dir.path().join("strategies.yaml");
    let mut text =
        String::from("strategies:\n  - id: a\n    strategy_type: momentum\n    parameters:\n");
    for _ in 0..10_001 {
        text.push_str("      threshold: 0.02\n");
    }
    text.push_str("    brokers: [paper]\n    instruments: [1]\n");
    write(&config, text);
    let started = std::time::Instant::now();
    let run = quiver([
        OsStr::new("validate"),
        OsStr::new("--config"),
        config.as_os_str(),
    ]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    run.expect_code(INVALID_INPUT)
        .expect_stderr_contains(&format!(
            "{}:6: strategies[0] (id \"a\").parameters.threshold: duplicate key \"threshold\" (first at line 5)",
            config.display()
        ))
        .expect_stderr_contains("and 9900 more (10000 in all)");
    assert_eq!(run.stderr.lines().count(), 101);
}

#[test]
fn replay_simulates_load_shedding_on_a_tick_schedule() {
    let dir = tempdir();
    let ticks = dir.path().join("ticks.csv");
    quiver([
        "gen",
        "--instruments",
        "10",
        "--ticks",
        "5000",
        "--seed",
        "5",
        "--out",
        ticks.to_str().unwrap(),
    ])
    .expect_code(0);
    let config = dir.path().join("strategies.yaml");
    let instruments = "[1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010]";
    std::fs::write(
        &config,
        format!(
            "strategies:\n  - id: guard\n    strategy_type: momentum\n    priority: critical\n    parameters: {{lookback_periods: 5, threshold: 0.001}}\n    brokers: [paper]\n    instruments: {instruments}\n  - id: swing\n    strategy_type: mean_reversion\n    parameters: {{lookback_periods: 20, z_entry: 1.0}}\n    brokers: [paper]\n    instruments: {instruments}\n  - id: research\n    strategy_type: rsi\n    priority: background\n    brokers: [paper]\n    instruments: {instruments}\n"
        ),
    )
    .unwrap();
    let replay = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            "--config",
            config.to_str().unwrap(),
            "--ticks",
            ticks.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let run = quiver(args);
        run.expect_code(0);
        run
    };
    let full = replay(&[]);
    let shed = replay(&[
        "--shed-at",
        "3000=none",
        "--shed-at",
        "1000=background",
        "--shed-at",
        "2000=normal",
    ]);
    // Tick-exact: background off over [1000, 3000), normal over [2000,
    // 3000), critical never; nothing else changes.
    let skipped = |line: &str| {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let seq = v["seq"].as_u64().unwrap();
        match v["strategy_id"].as_str().unwrap() {
            "research" => (1000..3000).contains(&seq),
            "swing" => (2000..3000).contains(&seq),
            _ => false,
        }
    };
    let full_text = full.stdout_text();
    let expected: Vec<&str> = lines_of(&full_text)
        .into_iter()
        .filter(|l| !skipped(l))
        .collect();
    let shed_text = shed.stdout_text();
    let got = lines_of(&shed_text);
    assert!(
        expected.len() < lines_of(&full_text).len(),
        "nothing to skip"
    );
    assert_eq!(got, expected);
    let shed_count = |run: &support::Run| {
        run.stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("evaluations shed"))
            .map(|rest| {
                rest.split_whitespace()
                    .next()
                    .unwrap_or("")
                    .replace(',', "")
            })
    };
    // 10 instruments × (2,000 background + 1,000 normal ticks), less the
    // ticks of an instrument still warming up: all were shed.
    let n: u64 = shed_count(&shed)
        .expect("shed count in the summary")
        .parse()
        .unwrap();
    assert_eq!(n, 3_000, "{}", shed.stderr);
    assert_eq!(shed_count(&full), None);

    let bad = quiver([
        "replay",
        "--config",
        config.to_str().unwrap(),
        "--ticks",
        ticks.to_str().unwrap(),
        "--shed-at",
        "10=sometimes",
    ]);
    bad.expect_code(2).expect_stderr_contains(
        "\"sometimes\" is not a shed level (expected none, background or normal)",
    );
}

/// Signal lines of `text` (JSONL) by strategy id, with their seq.
fn signals_by_strategy(text: &str) -> std::collections::BTreeMap<String, Vec<(u64, String)>> {
    let mut out: std::collections::BTreeMap<String, Vec<(u64, String)>> = Default::default();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        out.entry(v["strategy_id"].as_str().unwrap().to_owned())
            .or_default()
            .push((v["seq"].as_u64().unwrap(), line.to_owned()));
    }
    out
}

#[test]
fn replay_reloads_on_a_schedule_carrying_unchanged_strategies_and_refusing_bad_files_whole() {
    let dir = tempdir();
    let ticks = dir.path().join("ticks.csv");
    quiver([
        "gen",
        "--instruments",
        "8",
        "--ticks",
        "8000",
        "--seed",
        "9",
        "--out",
        ticks.to_str().unwrap(),
    ])
    .expect_code(0);
    let registry = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/registry.yaml");
    let on = "[1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008]";
    let row = |id: &str, body: &str| {
        format!("  - id: {id}\n{body}    brokers: [paper]\n    instruments: {on}\n")
    };
    let keep = row(
        "keep",
        "    strategy_type: momentum\n    parameters: {lookback_periods: 5, threshold: 0.001}\n",
    );
    let ml = row(
        "ml",
        "    strategy_type: ml_momentum\n    parameters: {model: ml_momentum_mlp, confidence_threshold: 0.34}\n",
    );
    let change_a = row(
        "change",
        "    strategy_type: mean_reversion\n    parameters: {lookback_periods: 20, z_entry: 1.0}\n",
    );
    let change_b = row(
        "change",
        "    strategy_type: mean_reversion\n    parameters: {lookback_periods: 30, z_entry: 1.0}\n",
    );
    let drop = row("drop", "    strategy_type: rsi\n");
    let added = row(
        "added",
        "    strategy_type: breakout\n    parameters: {lookback_periods: 40}\n",
    );
    let file = |name: &str, rows: &[&str]| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!("models: {registry}\nstrategies:\n{}", rows.concat()),
        )
        .unwrap();
        path
    };
    let a = file("a.yaml", &[&keep, &ml, &change_a, &drop]);
    // `keep` and `ml` moved in the file: still unchanged.
    let b = file("b.yaml", &[&change_b, &added, &ml, &keep]);
    let bad = file(
        "bad.yaml",
        &[&keep, "  - id: broken\n    strategy_type: momentum\n    parameters: {lookback_periods: 5, speed: 3}\n    brokers: [paper]\n    instruments: [1001]\n"],
    );
    let replay = |extra: &[String]| {
        let mut args: Vec<String> = [
            "replay",
            "--config",
            a.to_str().unwrap(),
            "--ticks",
            ticks.to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend_from_slice(extra);
        let run = quiver(args);
        run.expect_code(0);
        run
    };
    let plain = signals_by_strategy(&replay(&[]).stdout_text());
    let schedule: Vec<String> = [
        format!("2000={}", b.display()),
        format!("4000={}", bad.display()),
        format!("6000={}", a.display()),
    ]
    .into_iter()
    .flat_map(|s| ["--reload-at".to_owned(), s])
    .collect();
    let reloaded = replay(&schedule);
    let got = signals_by_strategy(&reloaded.stdout_text());
    let span = |id: &str, from: u64, to: u64| -> Vec<String> {
        got.get(id)
            .into_iter()
            .flatten()
            .filter(|(seq, _)| (from..to).contains(seq))
            .map(|(_, l)| l.clone())
            .collect()
    };
    let plain_span = |id: &str, from: u64, to: u64| -> Vec<String> {
        plain[id]
            .iter()
            .filter(|(seq, _)| (from..to).contains(seq))
            .map(|(_, l)| l.clone())
            .collect()
    };
    // Unchanged through every reload: exactly the run without reloads.
    for id in ["keep", "ml"] {
        assert!(!plain[id].is_empty(), "{id} never signals");
        assert_eq!(span(id, 0, 8000), plain_span(id, 0, 8000), "{id}");
    }
    // Removed at 2,000 and added back, fresh, at 6,000.
    assert_eq!(span("drop", 0, 2000), plain_span("drop", 0, 2000));
    assert!(span("drop", 2000, 6000).is_empty());
    // Added at 2,000, removed at 6,000.
    assert!(span("added", 0, 2000).is_empty() && span("added", 6000, 8000).is_empty());
    assert!(!span("added", 2000, 6000).is_empty());
    // Changed: the old instance up to 2,000.
    assert_eq!(span("change", 0, 2000), plain_span("change", 0, 2000));
    let stderr = &reloaded.stderr;
    for needle in [
        "reload at tick 2,000",
        "1 added, 1 removed, 1 changed, 2 unchanged",
        "reload at tick 6,000",
        "1 added, 1 removed, 1 changed, 2 unchanged",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }
    let refusal = stderr
        .lines()
        .find(|l| l.contains("reload at tick 4,000"))
        .unwrap_or_else(|| panic!("no line for the bad reload:\n{stderr}"));
    assert!(
        refusal.contains("refused")
            && refusal.contains("bad.yaml:10:")
            && refusal.contains("speed"),
        "{refusal}"
    );
    // The schedule gives the same bytes whatever the model batch size.
    let mut batched = schedule.clone();
    batched.extend(["--batch-size".to_owned(), "1".to_owned()]);
    assert_eq!(replay(&batched).stdout, reloaded.stdout);
}
