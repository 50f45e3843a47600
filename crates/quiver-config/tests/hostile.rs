//! Hostile strategies files: numbers far outside their ranges, history that
//! would not fit in memory, and thousands of repeated keys. Each is refused
//! whole, at load, with the line and path of the value to fix.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use std::time::{Duration, Instant};

use quiver_config::{parse_config, Config, ConfigError};

const FILE: &str = "strategies.yaml";

fn doc<S: AsRef<str>>(lines: &[S]) -> String {
    lines.iter().map(|l| format!("{}\n", l.as_ref())).collect()
}

/// The printed lines of the error for a file that must be refused.
fn refused<S: AsRef<str>>(lines: &[S]) -> Vec<String> {
    match parse_config(&doc(lines), FILE) {
        Err(err @ ConfigError::Invalid { .. }) => {
            err.to_string().lines().map(str::to_owned).collect()
        }
        Err(other) => panic!("expected issues, got: {other}"),
        Ok(config) => panic!("expected issues, got a valid config: {config:?}"),
    }
}

fn accepted<S: AsRef<str>>(lines: &[S]) -> Config {
    parse_config(&doc(lines), FILE).unwrap_or_else(|err| panic!("expected a valid file:\n{err}"))
}

/// A one-row file of `ty` with `param: value` on line 5.
fn row(ty: &str, param: &str, value: &str) -> Vec<String> {
    [
        "strategies:".to_owned(),
        "  - id: s".to_owned(),
        format!("    strategy_type: {ty}"),
        "    parameters:".to_owned(),
        format!("      {param}: {value}"),
        "    brokers: [paper]".to_owned(),
        "    instruments: [1]".to_owned(),
    ]
    .to_vec()
}

#[test]
fn lookbacks_beyond_the_window_limit_are_refused_at_their_line() {
    let at = |param: &str, message: &str| {
        format!(r#"strategies.yaml:5: strategies[0] (id "s").parameters.{param}: {message}"#)
    };
    for (ty, param) in [
        ("momentum", "lookback_periods"),
        ("mean_reversion", "lookback_periods"),
        ("breakout", "lookback_periods"),
        ("rsi", "period"),
        ("hybrid_momentum", "lookback_periods"),
    ] {
        assert_eq!(
            refused(&row(ty, param, "10000000000")),
            [at(param, "must be <= 100000, got 10000000000")],
            "{ty}"
        );
        assert_eq!(
            refused(&row(ty, param, "9223372036854775807")),
            [at(param, "must be <= 100000, got 9223372036854775807")],
            "{ty}"
        );
        // Past i64 the number is read as a float, and a count is an integer.
        assert_eq!(
            refused(&row(ty, param, "18446744073709551615")),
            [at(param, "expected an integer, got 1.8446744073709552e19")],
            "{ty}"
        );
        assert_eq!(
            refused(&row(ty, param, "-1")),
            [at(param, "must be >= 2, got -1")],
            "{ty}"
        );
        assert_eq!(
            refused(&row(ty, param, "100001")),
            [at(param, "must be <= 100000, got 100001")],
            "{ty}"
        );
        accepted(&row(ty, param, "100000"));
    }
}

#[test]
fn hybrid_parts_and_policies_are_bounded_alike() {
    let hybrid = |line: &str| {
        doc(&[
            "strategies:",
            "  - id: h",
            "    strategy_type: hybrid",
            "    parameters:",
            "      policy: threshold_escalation",
            line,
            "      ml: {strategy_type: rsi}",
            "    brokers: [paper]",
            "    instruments: [1]",
        ])
    };
    let err = |line: &str| parse_config(&hybrid(line), FILE).unwrap_err().to_string();
    assert_eq!(
        err("      rules: {strategy_type: momentum, parameters: {lookback_periods: 10000000000}}"),
        r#"strategies.yaml:6: strategies[0] (id "h").parameters.rules.parameters.lookback_periods: must be <= 100000, got 10000000000"#
    );
    let vol = hybrid("      vol_lookback: 10000000000\n      rules: {strategy_type: momentum}");
    assert_eq!(
        parse_config(&vol, FILE).unwrap_err().to_string(),
        r#"strategies.yaml:6: strategies[0] (id "h").parameters.vol_lookback: must be <= 100000, got 10000000000"#
    );
}

#[test]
fn floats_must_be_finite_and_in_range() {
    let cases = [
        (
            "momentum",
            "threshold",
            ".nan",
            "must be a finite number, got NaN",
        ),
        (
            "momentum",
            "threshold",
            ".inf",
            "must be a finite number, got inf",
        ),
        (
            "momentum",
            "threshold",
            "-.inf",
            "must be a finite number, got -inf",
        ),
        (
            "momentum",
            "threshold",
            "1e400",
            "must be a finite number, got inf",
        ),
        ("momentum", "threshold", "-0.01", "must be > 0, got -0.01"),
        ("momentum", "threshold", "0", "must be > 0, got 0"),
        ("mean_reversion", "z_entry", "-1.5", "must be > 0, got -1.5"),
        ("breakout", "min_breakout", "-0.1", "must be >= 0, got -0.1"),
        ("rsi", "oversold", "100", "must be > 0 and < 100, got 100"),
        (
            "rsi",
            "overbought",
            ".nan",
            "must be a finite number, got NaN",
        ),
        ("ml_momentum", "temperature", "0", "must be > 0, got 0"),
        (
            "ml_momentum",
            "temperature",
            ".inf",
            "must be a finite number, got inf",
        ),
        (
            "ml_momentum",
            "confidence_threshold",
            "1.01",
            "must be >= 0 and <= 1, got 1.01",
        ),
        (
            "hybrid",
            "min_conf",
            ".NaN",
            "must be a finite number, got NaN",
        ),
        ("hybrid", "vol_threshold", "-1", "must be > 0, got -1"),
        (
            "momentum",
            "min_confidence",
            ".inf",
            "must be a finite number, got inf",
        ),
        ("momentum", "position_size", "0", "must be >= 1, got 0"),
        ("momentum", "max_quantity", "-5", "must be >= 1, got -5"),
    ];
    for (ty, param, value, message) in cases {
        let mut lines = row(ty, param, value);
        if ty == "hybrid" {
            lines.insert(
                5,
                "      rules: {strategy_type: momentum}\n      ml: {strategy_type: rsi}".to_owned(),
            );
        }
        let got = refused(&lines);
        assert_eq!(
            got,
            [format!(
                r#"strategies.yaml:5: strategies[0] (id "s").parameters.{param}: {message}"#
            )],
            "{ty}.{param}: {value}"
        );
    }
}

#[test]
fn feature_windows_are_bounded() {
    let lines = [
        "strategies:",
        "  - id: m",
        "    strategy_type: ml",
        "    parameters:",
        "      model: any",
        "      features: [price, sma(100001), returns_skew(10000000000), max(-3)]",
        "    brokers: [paper]",
        "    instruments: [1]",
    ];
    assert_eq!(
        refused(&lines),
        [
            r#"strategies.yaml:6: strategies[0] (id "m").parameters.features[1]: "sma(100001)": window must be an integer between 1 and 100000"#,
            r#"strategies.yaml:6: strategies[0] (id "m").parameters.features[2]: "returns_skew(10000000000)": window must be an integer between 2 and 100000"#,
            r#"strategies.yaml:6: strategies[0] (id "m").parameters.features[3]: "max(-3)": window must be an integer between 1 and 100000"#,
        ]
    );
}

/// `n` instruments, one per line from line `first`.
fn instruments(n: usize) -> String {
    let list: Vec<String> = (1..=n).map(|t| t.to_string()).collect();
    format!("    instruments: [{}]", list.join(", "))
}

#[test]
fn history_over_the_budget_names_the_lookback_that_drives_it() {
    // 400 instruments × 100,001 ticks × 48 bytes is 1.8 GiB of rings.
    let lines = [
        "strategies:".to_owned(),
        "  - id: small".to_owned(),
        "    strategy_type: momentum".to_owned(),
        "    brokers: [paper]".to_owned(),
        instruments(400),
        "  - id: deep".to_owned(),
        "    strategy_type: momentum".to_owned(),
        "    parameters:".to_owned(),
        "      lookback_periods: 100000".to_owned(),
        "    brokers: [paper]".to_owned(),
        instruments(400),
    ];
    let got = refused(&lines);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(
            r#"strategies.yaml:9: strategies[1] (id "deep").parameters.lookback_periods: the history would take 1.8 GiB for the whole file, over the budget of 1024 MiB (history_budget_mib); this strategy keeps 100001 ticks on each of its 400 instruments (1.8 GiB)"#
        ),
        "{}",
        got[0]
    );
    // The file may raise its own budget, and then loads.
    let mut raised = vec!["history_budget_mib: 2048".to_owned()];
    raised.extend(lines.iter().cloned());
    let config = accepted(&raised);
    assert_eq!(config.history_budget_mib, 2048);
    assert!(config.history_bytes(0) > 1 << 30);
    assert!(config.check_history_budget(0).is_ok());
    // A service warm-up floor deepens every ring, and is checked too.
    let err = config.check_history_budget(1_000_000).unwrap_err();
    assert!(err.contains("over the budget of 2048 MiB"), "{err}");
    // A disabled row counts: enabling it must not break the file.
    let mut disabled = lines.to_vec();
    disabled.insert(10, "    enabled: false".to_owned());
    assert_eq!(refused(&disabled).len(), 1);
}

#[test]
fn history_over_the_budget_by_instrument_count_names_the_instruments() {
    let lines = [
        "history_budget_mib: 1".to_owned(),
        "strategies:".to_owned(),
        "  - id: wide".to_owned(),
        "    strategy_type: momentum".to_owned(),
        "    brokers: [paper]".to_owned(),
        instruments(2_000),
    ];
    let got = refused(&lines);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(
            r#"strategies.yaml:6: strategies[0] (id "wide").instruments: the history would take "#
        ),
        "{}",
        got[0]
    );
    assert!(got[0].contains("this strategy keeps 21 ticks on each of its 2000 instruments"));
}

#[test]
fn an_ml_feature_can_drive_the_history() {
    let lines = [
        "history_budget_mib: 1",
        "strategies:",
        "  - id: m",
        "    strategy_type: ml",
        "    parameters:",
        "      model: any",
        "      features: [price, max(100000), sma(5)]",
        "    brokers: [paper]",
        "    instruments: [1, 2, 3]",
    ];
    let got = refused(&lines);
    assert!(
        got[0].starts_with(
            r#"strategies.yaml:7: strategies[0] (id "m").parameters.features[1]: the history would take"#
        ),
        "{got:?}"
    );
}

#[test]
fn the_budget_itself_is_checked() {
    for (value, message) in [
        ("0", "must be >= 1, got 0"),
        ("-1", "must be >= 1, got -1"),
        ("1048577", "must be <= 1048576, got 1048577"),
        ("\"1GiB\"", "expected an integer, got \"1GiB\""),
        ("1.5", "expected an integer, got 1.5"),
    ] {
        let lines = [
            format!("history_budget_mib: {value}"),
            "strategies: []".to_owned(),
        ];
        assert_eq!(
            refused(&lines),
            [format!("strategies.yaml:1: history_budget_mib: {message}")],
            "{value}"
        );
    }
    let config = accepted(&["strategies: []"]);
    assert_eq!(config.history_budget_mib, 1024);
}

#[test]
fn ten_thousand_duplicate_keys_are_reported_together_quickly() {
    let mut lines = vec![
        "strategies:".to_owned(),
        "  - id: s".to_owned(),
        "    strategy_type: momentum".to_owned(),
        "    parameters:".to_owned(),
        "      threshold: 0.01".to_owned(),
    ];
    for i in 0..10_000 {
        lines.push(format!("      threshold: 0.0{i}"));
    }
    lines.push("    brokers: [paper]".to_owned());
    lines.push("    instruments: [1]".to_owned());
    let started = Instant::now();
    let err = parse_config(&doc(&lines), FILE).unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let ConfigError::Invalid { issues, .. } = &err else {
        panic!("expected issues, got {err}");
    };
    assert_eq!(issues.len(), 10_000);
    let shown: Vec<String> = err.to_string().lines().map(str::to_owned).collect();
    assert_eq!(shown.len(), 101);
    for (i, line) in shown[..100].iter().enumerate() {
        assert_eq!(
            *line,
            format!(
                r#"strategies.yaml:{}: strategies[0] (id "s").parameters.threshold: duplicate key "threshold" (first at line 5)"#,
                i + 6
            )
        );
    }
    assert_eq!(shown[100], "and 9900 more (10000 in all)");
}

#[test]
fn duplicate_rows_and_keys_at_every_level_are_all_reported() {
    let mut lines = vec!["strategies: []".to_owned()];
    for _ in 0..300 {
        lines.push("strategies: []".to_owned());
    }
    let started = Instant::now();
    let err = parse_config(&doc(&lines), FILE).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    let ConfigError::Invalid { issues, .. } = err else {
        panic!("expected issues");
    };
    assert_eq!(issues.len(), 300);
    assert!(issues
        .iter()
        .enumerate()
        .all(|(i, issue)| issue.line == i + 2
            && issue.message == "duplicate key \"strategies\" (first at line 1)"));
}
