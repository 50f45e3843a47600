//! `quiver backtest`: figures checked by hand on a tiny tick file and by an
//! independent recomputation (pandas) on a larger one, determinism across
//! batch sizes, the report rendered in a real headless browser, and bad
//! `paper:`/`risk:`/`costs:` sections refused with their line.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{quiver, read_text, tempdir, write};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn backtest(config: &Path, ticks: &Path, out: &Path, extra: &[&str]) -> support::Run {
    let mut args = vec![
        "backtest".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
        "--ticks".to_owned(),
        ticks.display().to_string(),
        "--out".to_owned(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    quiver(args)
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&read_text(&dir.join("summary.json"))).expect("summary.json")
}

#[test]
fn a_tiny_tick_file_gives_the_figures_worked_out_by_hand() {
    let dir = tempdir();
    let ticks = dir.path().join("ticks.csv");
    // Momentum over one tick (lookback 2): a move beyond 5% signals.
    // seq: 0 100 | 1 110 BUY | 2 112 (fills the BUY) | 3 100 SELL |
    // 4 101 (fills it) | 5 90 SELL | 6 80 SELL (fills seq 5) |
    // 7 85 BUY (fills seq 6) | 8 85 (fills seq 7)
    let prices = ["100", "110", "112", "100", "101", "90", "80", "85", "85"];
    let mut csv = String::from("ts_ns,instrument,price,volume\n");
    for (k, p) in prices.iter().enumerate() {
        csv += &format!(
            "{},7,{p},1\n",
            1_700_000_000_000_000_000i64 + k as i64 * 1_000_000_000
        );
    }
    write(&ticks, csv);
    let config = dir.path().join("strategies.yaml");
    write(
        &config,
        "paper: {sample_ms: 1000}\ncosts: {taker_fee_bps: 10}\nstrategies:\n  - id: mom\n    strategy_type: momentum\n    parameters: {lookback_periods: 2, threshold: 0.05, position_size: 10}\n    brokers: [paper]\n    instruments: [7]\n",
    );
    let out = dir.path().join("report");
    let run = backtest(&config, &ticks, &out, &[]);
    run.expect_code(0);
    assert_eq!(
        read_text(&out.join("trades.csv")),
        "seq,ts_ns,signal_seq,strategy,instrument,side,quantity,price,fee,position,realized\n\
         2,1700000002000000000,1,mom,7,BUY,10,112,1.12,10,0\n\
         4,1700000004000000000,3,mom,7,SELL,10,101,1.01,0,-110\n\
         6,1700000006000000000,5,mom,7,SELL,10,80,0.8,-10,0\n\
         7,1700000007000000000,6,mom,7,SELL,10,85,0.85,-20,0\n\
         8,1700000008000000000,7,mom,7,BUY,10,85,0.85,-10,-50\n"
    );
    let s = summary(&out);
    let mom = &s["strategies"][0];
    // Cash 1,000,000 − 1,120 − 1.12 + 1,010 − 1.01 + 800 − 0.80 + 850 − 0.85
    // − 850 − 0.85 = 1,000,685.37; short 10 marked at 85: −850.
    assert_eq!(mom["equity"], "999835.37");
    assert_eq!(mom["pnl"], "-164.63");
    assert_eq!(mom["realized"], "-160");
    assert_eq!(mom["unrealized"], "0");
    assert_eq!(mom["fees"], "4.63");
    assert_eq!(mom["trades"], 5);
    // One closed round trip (long 10 from 112 out at 101: −110 − 2.13 fees).
    assert_eq!(mom["round_trips"], 1);
    assert_eq!(mom["win_rate"], 0.0);
    assert_eq!(mom["profit_factor"], 0.0);
    assert_eq!(mom["turnover"], 0.00463);
    assert_eq!(mom["signals"], 5);
    assert_eq!(mom["verdicts"]["accepted"], 5);
    // One sample a second: the equity at each tick.
    let equity = read_text(&out.join("equity.csv"));
    let mom_curve: Vec<&str> = equity
        .lines()
        .filter(|l| l.contains(",mom,"))
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    assert_eq!(
        mom_curve,
        [
            "1000000",
            "1000000",
            "999998.88", // long 10 at 112, fee 1.12
            "999878.88", // marked at 100
            "999887.87", // out at 101, fee 1.01
            "999887.87",
            "999887.07", // short 10 at 80, fee 0.80
            "999836.22", // marked at 85 and short 10 more at 85, fee 0.85
            "999835.37"  // 10 bought back at 85, fee 0.85
        ]
    );
    // The terminal table and where the page is.
    let table = run.stdout_text();
    assert!(table.starts_with("strategy"), "{table}");
    assert!(table.contains("-164.63"), "{table}");
    run.expect_stderr_contains(&format!("report: {}", out.join("report.html").display()));
}

/// A config of four rules strategies over 20 instruments with every part of
/// the desk switched on.
fn desk_config(dir: &Path) -> PathBuf {
    let on: Vec<String> = (1001..1021).map(|t| t.to_string()).collect();
    let on = on.join(", ");
    let config = dir.join("desk.yaml");
    write(
        &config,
        format!(
            "paper: {{fill: next_quote, slippage_bps: 0.5, sample_ms: 1000, strategies: {{mr: {{signals: target}}}}}}\n\
             risk: {{max_instrument_exposure: 400000, max_strategy_exposure: 1500000, max_total_exposure: 4000000, \
             tags: {{low: [1001, 1002, 1003, 1004, 1005]}}, max_tag_exposure: {{low: 300000}}, max_strategy_drawdown: 0.02, resume_after_ms: 600000}}\n\
             costs: {{spread_bps: 2, taker_fee_bps: 1.5, edge_bps: 30, min_edge_bps: 2, instruments: {{1001: {{taker_fee_bps: 4}}}}}}\n\
             strategies:\n\
             \x20 - {{id: mom, strategy_type: momentum, parameters: {{lookback_periods: 20, threshold: 0.002}}, brokers: [paper], instruments: [{on}]}}\n\
             \x20 - {{id: mr, strategy_type: mean_reversion, parameters: {{lookback_periods: 30, z_entry: 2.0}}, brokers: [paper], instruments: [{on}]}}\n\
             \x20 - {{id: brk, strategy_type: breakout, parameters: {{lookback_periods: 50}}, brokers: [paper], instruments: [{on}]}}\n\
             \x20 - {{id: rsi, strategy_type: rsi, brokers: [paper], instruments: [{on}]}}\n"
        ),
    );
    config
}

fn gen(dir: &Path, instruments: u32, ticks: u64) -> PathBuf {
    let path = dir.join("ticks.csv");
    quiver([
        "gen",
        "--instruments",
        &instruments.to_string(),
        "--ticks",
        &ticks.to_string(),
        "--seed",
        "11",
        "--out",
        path.to_str().unwrap(),
    ])
    .expect_code(0);
    path
}

/// A Python with pandas: `QUIVER_PYTHON`, else Debian's, else the first on
/// the path.
fn python_with_pandas() -> Option<String> {
    let candidates = std::env::var("QUIVER_PYTHON")
        .into_iter()
        .chain(["/usr/bin/python3".to_owned(), "python3".to_owned()]);
    for python in candidates {
        let ok = Command::new(&python)
            .args(["-c", "import pandas, numpy"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(python);
        }
    }
    None
}

#[test]
fn every_figure_of_a_larger_backtest_matches_an_independent_recomputation() {
    let Some(python) = python_with_pandas() else {
        assert!(
            std::env::var("QUIVER_REQUIRE_PANDAS").as_deref() != Ok("1"),
            "QUIVER_REQUIRE_PANDAS=1 but no python3 with pandas and numpy was found"
        );
        eprintln!("SKIPPED: no python3 with pandas");
        return;
    };
    let dir = tempdir();
    let ticks = gen(dir.path(), 20, 200_000);
    let config = desk_config(dir.path());
    let out = dir.path().join("report");
    backtest(&config, &ticks, &out, &[]).expect_code(0);
    let s = summary(&out);
    // The desk was exercised: fills, throttles, blocks, halts, skips.
    let v = &s["total"]["verdicts"];
    for reason in ["accepted", "throttled", "below_edge", "no_change"] {
        assert!(v[reason].as_u64() > Some(0), "no {reason}: {v}");
    }
    let refused: u64 = [
        "instrument_limit",
        "strategy_limit",
        "tag_limit",
        "total_limit",
        "strategy_drawdown",
    ]
    .iter()
    .map(|r| v[*r].as_u64().unwrap())
    .sum();
    assert!(refused > 0, "no refusal: {v}");
    assert!(s["samples"].as_u64() > Some(50), "{}", s["samples"]);
    let check = Command::new(&python)
        .arg(Path::new(REPO).join("scripts/check_backtest.py"))
        .arg(&out)
        .arg(&ticks)
        .output()
        .expect("running check_backtest.py");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "the recomputation differs:\n{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(said.contains("every figure matches"), "{said}");
}

#[test]
fn a_backtest_is_the_same_whatever_the_batch_size_ml_included() {
    let dir = tempdir();
    let ticks = gen(dir.path(), 50, 30_000);
    let config = Path::new(REPO).join("configs/demo.yaml");
    let files = ["summary.json", "trades.csv", "equity.csv", "summary.csv"];
    let mut reports = Vec::new();
    for batch in ["1", "7", "256"] {
        let out = dir.path().join(format!("report-{batch}"));
        backtest(
            &config,
            &ticks,
            &out,
            &["--batch-size", batch, "--backend", "tract"],
        )
        .expect_code(0);
        reports.push(files.map(|f| read_text(&out.join(f))));
    }
    assert!(
        reports[0][1].lines().count() > 100,
        "too few fills to compare"
    );
    assert_eq!(reports[0], reports[1]);
    assert_eq!(reports[0], reports[2]);
}

/// A headless Chromium or Firefox: `QUIVER_BROWSER`, else the first found.
fn browser() -> Option<String> {
    let candidates = std::env::var("QUIVER_BROWSER")
        .into_iter()
        .chain(["chromium", "chromium-browser", "google-chrome"].map(str::to_owned));
    candidates.into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn the_report_page_renders_in_a_headless_browser_without_errors() {
    let Some(browser) = browser() else {
        assert!(
            std::env::var("QUIVER_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "QUIVER_REQUIRE_BROWSER=1 but no chromium was found"
        );
        eprintln!("SKIPPED: no headless browser");
        return;
    };
    let dir = tempdir();
    let ticks = gen(dir.path(), 20, 50_000);
    let out = dir.path().join("report");
    backtest(&desk_config(dir.path()), &ticks, &out, &[]).expect_code(0);
    let page = out.join("report.html");
    let html = read_text(&page);
    // Self-contained: nothing to fetch (the SVG namespace is a name, not a
    // request).
    assert!(
        !html.contains("<script src") && !html.contains("<link") && !html.contains("url("),
        "the page loads something"
    );
    let profile = dir.path().join("profile");
    let run = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("running the browser");
    let dom = String::from_utf8_lossy(&run.stdout);
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{browser} failed:\n{log}");
    // The page's script marks the body once every chart holds its shapes.
    assert!(
        dom.contains("data-rendered=\"charts:6\""),
        "not rendered:\n{}",
        &dom[..dom.len().min(2000)]
    );
    for strategy in ["mom", "mr", "brk", "rsi", "TOTAL"] {
        assert!(
            dom.contains(&format!("<td>{strategy}</td>")),
            "{strategy} missing from the table"
        );
    }
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("SyntaxError"))
        .collect();
    assert!(
        errors.is_empty(),
        "the page logged errors:\n{}",
        errors.join("\n")
    );
}

#[test]
fn bad_desk_sections_are_refused_with_their_line_before_anything_runs() {
    let dir = tempdir();
    let ticks = gen(dir.path(), 2, 100);
    let config = dir.path().join("bad.yaml");
    write(
        &config,
        "risk:\n  soft_limit: 2\nstrategies:\n  - id: a\n    strategy_type: momentum\n    brokers: [paper]\n    instruments: [1001]\n",
    );
    let out = dir.path().join("report");
    backtest(&config, &ticks, &out, &[])
        .expect_code(2)
        .expect_stderr_contains(
            "bad.yaml:2: risk.soft_limit: expected a fraction above 0 and at most 1, got 2",
        );
    assert!(!out.exists(), "a report was written for a refused config");
    // A file where the report's directory should be.
    let file = dir.path().join("taken");
    write(&file, "x");
    write(
        &config,
        "strategies:\n  - id: a\n    strategy_type: momentum\n    brokers: [paper]\n    instruments: [1001]\n",
    );
    backtest(&config, &ticks, &file, &[])
        .expect_code(2)
        .expect_stderr_contains("is a file");
}
