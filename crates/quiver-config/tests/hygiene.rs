//! `priority`, `budget_us_per_tick` and `validators` on a strategy row: what
//! they load as, and the message for each way they can be wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use quiver_config::{parse_config, ConfigError};
use quiver_core::Price;
use quiver_strategy::{GuardSpec, Priority, RateSpec, Schedule};

const FILE: &str = "s.yaml";

fn row(extra: &[&str]) -> String {
    let mut text = String::from(
        "strategies:\n  - id: m\n    strategy_type: momentum\n    brokers: [paper]\n    instruments: [7]\n",
    );
    for line in extra {
        text.push_str("    ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

fn issues(extra: &[&str]) -> Vec<String> {
    match parse_config(&row(extra), FILE) {
        Err(err @ ConfigError::Invalid { .. }) => {
            err.to_string().lines().map(str::to_owned).collect()
        }
        Err(other) => panic!("expected issues, got: {other}"),
        Ok(config) => panic!("expected issues, got {config:?}"),
    }
}

#[test]
fn rows_without_them_are_as_before() {
    let config = parse_config(&row(&[]), FILE).unwrap();
    assert_eq!(config.strategies[0].guards, GuardSpec::default());
    assert_eq!(config.strategies[0].schedule, Schedule::default());
}

#[test]
fn every_validator_loads_with_its_parameters() {
    let config = parse_config(
        &row(&[
            "priority: background",
            "budget_us_per_tick: 500",
            "validators:",
            "  - rate_limit: {max_signals_per_minute: 6, min_signal_interval_ms: 500}",
            "  - duplicate_window: {seconds: 3}",
            "  - cooldown: {seconds: 0.25}",
            "  - position_guard",
            "  - price_band: {max_deviation_bps: 50}",
            "  - exposure_cap: {max_exposure: \"100000.5\"}",
        ]),
        FILE,
    )
    .unwrap();
    let row = &config.strategies[0];
    assert_eq!(
        row.schedule,
        Schedule {
            priority: Priority::Background,
            budget_ns: Some(500_000),
        }
    );
    assert_eq!(
        row.guards,
        GuardSpec {
            duplicate_window_ns: Some(3_000_000_000),
            cooldown_ns: Some(250_000_000),
            position_guard: true,
            price_band_bps: Some(50),
            max_exposure: Some(Price::parse("100000.5").unwrap()),
            rates: RateSpec {
                max_per_minute: Some(6),
                min_interval_ns: Some(500_000_000),
            },
        }
    );
}

#[test]
fn each_mistake_is_named_at_its_line() {
    let cases: [(&[&str], &str); 9] = [
        (
            &["priority: urgent"],
            "s.yaml:6: strategies[0] (id \"m\").priority: unknown priority \"urgent\"",
        ),
        (
            &["budget_us_per_tick: 0"],
            "s.yaml:6: strategies[0] (id \"m\").budget_us_per_tick: must be >= 1, got 0",
        ),
        (
            &["validators:", "  - cooldown: {seconds: -1}"],
            "s.yaml:7: strategies[0] (id \"m\").validators[0].cooldown.seconds: must be > 0 and <= 86400 (a day), got -1",
        ),
        (
            &["validators:", "  - cooldown"],
            "s.yaml:7: strategies[0] (id \"m\").validators[0].cooldown: needs its parameters: seconds",
        ),
        (
            &["validators:", "  - position_guard: {strict: true}"],
            "s.yaml:7: strategies[0] (id \"m\").validators[0].position_guard: position_guard takes no parameters",
        ),
        (
            &["validators:", "  - price_band: {max_deviation_bps: 0}"],
            "s.yaml:7: strategies[0] (id \"m\").validators[0].price_band.max_deviation_bps: must be >= 1, got 0",
        ),
        (
            &["validators:", "  - position_guard", "  - position_guard"],
            "s.yaml:8: strategies[0] (id \"m\").validators[1]: validator \"position_guard\" is already named at strategies[0] (id \"m\").validators[0]",
        ),
        (
            &["validators:", "  - exposure_cap: {max_exposure: -5}"],
            "s.yaml:7: strategies[0] (id \"m\").validators[0].exposure_cap.max_exposure: must be > 0, got -5",
        ),
        (
            &["validators:", "  - rate_limit: {}"],
            "s.yaml:7: strategies[0] (id \"m\").validators[0].rate_limit: needs max_signals_per_minute, min_signal_interval_ms or both",
        ),
    ];
    for (extra, expected) in cases {
        let got = issues(extra);
        assert!(
            got.iter().any(|line| line.starts_with(expected)),
            "{extra:?}: expected a line starting with\n  {expected}\ngot\n  {}",
            got.join("\n  ")
        );
    }
    let unknown = issues(&["validators:", "  - stop_loss"]);
    assert!(
        unknown.iter().any(|l| l.starts_with(
            "s.yaml:7: strategies[0] (id \"m\").validators[0]: unknown validator \"stop_loss\""
        )),
        "{unknown:?}"
    );
}

#[test]
fn the_lifecycle_section_sets_quarantine_and_back_off_within_bounds() {
    let text = format!(
        "lifecycle: {{quarantine_after: 3, backoff_base_ms: 500, backoff_cap_ms: 4000}}\n{}",
        row(&[])
    );
    let config = parse_config(&text, FILE).unwrap();
    assert_eq!(
        config.lifecycle,
        quiver_config::Lifecycle {
            quarantine_after: 3,
            backoff_base_ms: 500,
            backoff_cap_ms: 4000,
        }
    );
    let bad = format!(
        "lifecycle: {{quarantine_after: 0, backoff_base_ms: 500, backoff_cap_ms: 100}}\n{}",
        row(&[])
    );
    let err = parse_config(&bad, FILE).unwrap_err().to_string();
    assert!(
        err.contains("s.yaml:1: lifecycle.quarantine_after: must be >= 1, got 0"),
        "{err}"
    );
    assert!(
        err.contains("s.yaml:1: lifecycle.backoff_cap_ms: must be >= 500, got 100"),
        "{err}"
    );
}
