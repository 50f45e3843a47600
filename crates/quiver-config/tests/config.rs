//! The strategies file: what loads, and the exact message for every way it
//! can be wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use quiver_config::{load_config, parse_config, Config, ConfigError, ConfigIssue};
use quiver_strategy::hybrid::{Policy, PolicyKind};
use quiver_strategy::params::{ParamValue, ParamValues, VALIDATOR_PARAMS};
use quiver_strategy::{RulesType, StandardValidator, StrategySpec};

const FILE: &str = "strategies.yaml";

/// Joins `lines` into a document, so line numbers in assertions are the
/// position in the slice plus one.
fn doc<S: AsRef<str>>(lines: &[S]) -> String {
    lines.iter().map(|l| format!("{}\n", l.as_ref())).collect()
}

fn load<S: AsRef<str>>(lines: &[S]) -> Config {
    match parse_config(&doc(lines), FILE) {
        Ok(config) => config,
        Err(err) => panic!("expected a valid file, got:\n{err}"),
    }
}

/// The printed issues of a file that must be rejected as invalid.
fn issues<S: AsRef<str>>(lines: &[S]) -> Vec<String> {
    match parse_config(&doc(lines), FILE) {
        Err(err @ ConfigError::Invalid { .. }) => {
            err.to_string().lines().map(str::to_owned).collect()
        }
        Err(other) => panic!("expected issues, got: {other}"),
        Ok(config) => panic!("expected issues, got a valid config: {config:?}"),
    }
}

/// A valid row whose line `at` (1-based, within the row) is replaced by `with`.
fn momentum_row_with(at: usize, with: &[&str]) -> Vec<String> {
    let mut lines: Vec<String> = [
        "strategies:",
        "  - id: mom-1",
        "    strategy_type: momentum",
        "    parameters:",
        "      lookback_periods: 20",
        "    brokers: [paper]",
        "    instruments: [256265]",
    ]
    .map(str::to_owned)
    .to_vec();
    lines.splice(at - 1..at, with.iter().map(|l| (*l).to_owned()));
    lines
}

/// Asserts `spec` is a `ty` strategy whose every parameter is its default
/// except those in `set`. Compares by name, not with `==`: `ParamValues`'
/// equality compares the declarations' addresses, and the same `const` slice
/// can have a different address in each crate that mentions it.
fn assert_rules(spec: &StrategySpec, ty: RulesType, set: &[(&str, ParamValue)]) {
    let StrategySpec::Rules(actual, values) = spec else {
        panic!("expected a {ty:?} spec, got {spec:?}");
    };
    assert_eq!(*actual, ty);
    let defs = ty.strategy_type().params();
    for (name, _) in set {
        assert!(
            defs.iter().any(|d| d.name == *name),
            "{name} is not declared"
        );
    }
    for def in defs {
        let expected = set
            .iter()
            .find(|(n, _)| *n == def.name)
            .map_or(def.default, |(_, v)| *v);
        assert_eq!(values.get(def.name), Some(expected), "{}", def.name);
    }
}

// ---------------------------------------------------------------- valid files

#[test]
fn valid_file_round_trips_with_defaults_filled() {
    let config = load(&[
        "# Quiver strategies",
        "strategies:",
        "  - id: mom-1",
        "    strategy_type: momentum",
        "    parameters:",
        "      lookback_periods: 10",
        "      threshold: 0.02",
        "      min_confidence: 0.25",
        "    brokers: [paper, zerodha]",
        "    instruments: [256265, 738561]",
        "  - id: mr-1",
        "    strategy_type: mean_reversion",
        "    brokers: [paper]",
        "    instruments: [256265]",
        "    enabled: false",
        "    validator: standard",
        "  - id: rsi-1",
        "    strategy_type: rsi",
        "    parameters: {oversold: 25, overbought: 75.5, max_quantity: 500}",
        "    brokers: [zerodha]",
        "    instruments: [1]",
        "  - id: hyb-1",
        "    strategy_type: hybrid",
        "    parameters:",
        "      policy: threshold_escalation",
        "      min_conf: 0.6",
        "      rules: {strategy_type: momentum, parameters: {lookback_periods: 5}}",
        "      ml:",
        "        strategy_type: breakout",
        "    brokers: [paper]",
        "    instruments: [738561, 42]",
    ]);
    let rows = &config.strategies;
    assert_eq!(
        rows.iter()
            .map(|r| (r.id.as_str(), r.line, r.enabled))
            .collect::<Vec<_>>(),
        [
            ("mom-1", 3, true),
            ("mr-1", 11, false),
            ("rsi-1", 17, true),
            ("hyb-1", 22, true)
        ]
    );

    let mom = &rows[0];
    assert_rules(
        &mom.spec,
        RulesType::Momentum,
        &[
            ("lookback_periods", ParamValue::Int(10)),
            ("threshold", ParamValue::Float(0.02)),
        ],
    );
    assert_eq!(mom.brokers, ["paper", "zerodha"]);
    assert_eq!(mom.instruments, [256265, 738561]);
    assert_eq!(
        mom.validator,
        StandardValidator {
            min_confidence: 0.25,
            max_quantity: 1_000_000_000
        }
    );

    let mr = &rows[1];
    assert_rules(&mr.spec, RulesType::MeanReversion, &[]);
    assert_eq!(mr.validator, StandardValidator::default());

    let rsi_row = &rows[2];
    assert_rules(
        &rsi_row.spec,
        RulesType::Rsi,
        &[
            ("oversold", ParamValue::Float(25.0)),
            ("overbought", ParamValue::Float(75.5)),
        ],
    );
    assert_eq!(rsi_row.validator.max_quantity, 500);

    let hybrid = &rows[3];
    let StrategySpec::Hybrid { rules, ml, policy } = &hybrid.spec else {
        panic!("expected a hybrid, got {:?}", hybrid.spec);
    };
    assert_rules(
        rules,
        RulesType::Momentum,
        &[("lookback_periods", ParamValue::Int(5))],
    );
    assert_rules(ml, RulesType::Breakout, &[]);
    assert_eq!(
        *policy,
        Policy {
            min_conf: 0.6,
            ..Policy::with_defaults(PolicyKind::ThresholdEscalation)
        }
    );
    assert_eq!(
        hybrid.spec.build(&Vec::new()).unwrap().strategy().name(),
        "hybrid:momentum+breakout"
    );
    assert_eq!(hybrid.validator, StandardValidator::default());

    assert_eq!(
        config.enabled().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["mom-1", "rsi-1", "hyb-1"]
    );
    assert_eq!(
        config.summary(),
        "4 strategies (3 enabled: 1 momentum, 1 rsi, 1 hybrid; 1 disabled) over 4 instruments and 2 brokers"
    );
}

#[test]
fn an_empty_list_is_a_valid_file_with_no_rows() {
    let config = load(&["strategies: []"]);
    assert!(config.strategies.is_empty());
    assert_eq!(
        config.summary(),
        "0 strategies over 0 instruments and 0 brokers"
    );
}

#[test]
fn null_parameters_mean_all_defaults() {
    let mut lines = momentum_row_with(4, &["    parameters:  # all commented out"]);
    lines.retain(|l| !l.contains("lookback_periods"));
    let config = load(&lines);
    assert_rules(&config.strategies[0].spec, RulesType::Momentum, &[]);
    assert_eq!(
        config.summary(),
        "1 strategy (1 enabled: 1 momentum) over 1 instrument and 1 broker"
    );
}

#[test]
fn validator_params_default_when_absent() {
    let config = load(&momentum_row_with(5, &["      max_quantity: 7"]));
    let defaults = ParamValues::defaults(VALIDATOR_PARAMS);
    assert_eq!(
        config.strategies[0].validator,
        StandardValidator {
            min_confidence: defaults.float(&quiver_strategy::params::MIN_CONFIDENCE),
            max_quantity: 7
        }
    );
}

// ------------------------------------------------------------ one per error

#[test]
fn missing_field_is_reported_at_the_row_start() {
    let lines = momentum_row_with(6, &[]);
    assert_eq!(
        issues(&lines),
        [r#"strategies.yaml:2: strategies[0] (id "mom-1"): missing field "brokers""#]
    );
}

#[test]
fn missing_id_leaves_the_row_unlabelled() {
    assert_eq!(
        issues(
            &momentum_row_with(2, &["  - strategy_type: momentum"])
                .into_iter()
                .filter(|l| l != "    strategy_type: momentum")
                .collect::<Vec<_>>()
        ),
        [r#"strategies.yaml:2: strategies[0]: missing field "id""#]
    );
}

#[test]
fn unknown_row_field() {
    assert_eq!(
        issues(&momentum_row_with(
            7,
            &["    instruments: [256265]", "    foo: 1"]
        )),
        [
            r#"strategies.yaml:8: strategies[0] (id "mom-1").foo: unknown field "foo" (expected id, strategy_type, parameters, brokers, instruments, enabled, validator, validators, priority, budget_us_per_tick)"#
        ]
    );
}

#[test]
fn unknown_top_level_key() {
    assert_eq!(
        issues(&["strategies: []", "strategy: []"]),
        [
            r#"strategies.yaml:2: strategy: unknown field "strategy" (expected strategies, models, history_budget_mib, lifecycle, paper, risk, costs)"#
        ]
    );
}

#[test]
fn missing_strategies() {
    assert_eq!(
        issues(&["# nothing yet"]),
        [r#"strategies.yaml:1: (root): missing field "strategies""#]
    );
    assert_eq!(
        issues(&["", "strategy: []"]),
        [
            r#"strategies.yaml:2: strategy: unknown field "strategy" (expected strategies, models, history_budget_mib, lifecycle, paper, risk, costs)"#,
            r#"strategies.yaml:2: (root): missing field "strategies""#,
        ]
    );
}

#[test]
fn top_level_must_be_a_mapping() {
    assert_eq!(
        issues(&["- id: mom-1"]),
        ["strategies.yaml:1: (root): expected a mapping, got a list"]
    );
}

#[test]
fn strategies_must_be_a_list() {
    assert_eq!(
        issues(&["strategies:", "  id: mom-1"]),
        ["strategies.yaml:2: strategies: expected a list, got a mapping"]
    );
    assert_eq!(
        issues(&["strategies:"]),
        ["strategies.yaml:1: strategies: expected a list, got null"]
    );
}

#[test]
fn only_one_document() {
    assert_eq!(
        issues(&["strategies: []", "---", "strategies: []"]),
        ["strategies.yaml:3: (root): expected one YAML document, got 2"]
    );
}

#[test]
fn row_must_be_a_mapping() {
    assert_eq!(
        issues(&["strategies:", "  - mom-1"]),
        [r#"strategies.yaml:2: strategies[0]: expected a mapping, got "mom-1""#]
    );
}

#[test]
fn id_must_be_a_non_empty_string() {
    assert_eq!(
        issues(&momentum_row_with(2, &["  - id: 5"])),
        ["strategies.yaml:2: strategies[0].id: expected a string, got 5"]
    );
    assert_eq!(
        issues(&momentum_row_with(2, &["  - id: ''"])),
        ["strategies.yaml:2: strategies[0].id: must not be empty"]
    );
}

#[test]
fn duplicate_id() {
    let mut lines = momentum_row_with(1, &["strategies:"]);
    lines.extend(momentum_row_with(1, &[]));
    assert_eq!(
        issues(&lines),
        [
            r#"strategies.yaml:8: strategies[1] (id "mom-1").id: duplicate id "mom-1" (first used by strategies[0] at line 2)"#
        ]
    );
}

#[test]
fn unknown_strategy_type() {
    assert_eq!(
        issues(&momentum_row_with(3, &["    strategy_type: foo"])),
        [
            r#"strategies.yaml:3: strategies[0] (id "mom-1").strategy_type: unknown strategy_type "foo" (expected momentum, mean_reversion, rsi, breakout, hybrid, ml, ml_momentum, hybrid_momentum)"#
        ]
    );
    assert_eq!(
        issues(&momentum_row_with(3, &["    strategy_type: [momentum]"])),
        [
            r#"strategies.yaml:3: strategies[0] (id "mom-1").strategy_type: expected a string, got a list"#
        ]
    );
}

#[test]
fn unknown_parameter() {
    assert_eq!(
        issues(&momentum_row_with(5, &["      lookback: 20"])),
        [
            r#"strategies.yaml:5: strategies[0] (id "mom-1").parameters.lookback: unknown parameter "lookback" (expected lookback_periods, threshold, position_size, min_confidence, max_quantity)"#
        ]
    );
}

#[test]
fn parameter_out_of_range_uses_the_declared_message() {
    assert_eq!(
        issues(&momentum_row_with(5, &["      lookback_periods: 0"])),
        [
            r#"strategies.yaml:5: strategies[0] (id "mom-1").parameters.lookback_periods: must be >= 2, got 0"#
        ]
    );
    assert_eq!(
        issues(&momentum_row_with(5, &["      min_confidence: 1.5"])),
        [
            r#"strategies.yaml:5: strategies[0] (id "mom-1").parameters.min_confidence: must be >= 0 and <= 1, got 1.5"#
        ]
    );
}

#[test]
fn parameter_of_the_wrong_type() {
    assert_eq!(
        issues(&momentum_row_with(
            5,
            &[
                "      lookback_periods: 2.5",
                "      threshold: [1]",
                "      position_size:"
            ]
        )),
        [
            r#"strategies.yaml:5: strategies[0] (id "mom-1").parameters.lookback_periods: expected an integer, got 2.5"#,
            r#"strategies.yaml:6: strategies[0] (id "mom-1").parameters.threshold: expected a number, got a list"#,
            r#"strategies.yaml:7: strategies[0] (id "mom-1").parameters.position_size: expected an integer, got null"#,
        ]
    );
}

#[test]
fn quoted_numbers_stay_strings_and_are_mistyped() {
    assert_eq!(
        issues(&momentum_row_with(
            5,
            &["      lookback_periods: '20'", r#"      threshold: "0.01""#]
        )),
        [
            r#"strategies.yaml:5: strategies[0] (id "mom-1").parameters.lookback_periods: expected an integer, got "20""#,
            r#"strategies.yaml:6: strategies[0] (id "mom-1").parameters.threshold: expected a number, got "0.01""#,
        ]
    );
    assert_eq!(
        issues(&momentum_row_with(7, &[r#"    instruments: ["256265"]"#])),
        [
            r#"strategies.yaml:7: strategies[0] (id "mom-1").instruments[0]: expected an integer, got "256265""#
        ]
    );
}

#[test]
fn parameters_must_be_a_mapping() {
    assert_eq!(
        issues(
            &momentum_row_with(4, &["    parameters: [lookback_periods]"])
                .into_iter()
                .filter(|l| !l.contains("lookback_periods: 20"))
                .collect::<Vec<_>>()
        ),
        [
            r#"strategies.yaml:4: strategies[0] (id "mom-1").parameters: expected a mapping, got a list"#
        ]
    );
}

#[test]
fn brokers_must_be_a_non_empty_list() {
    assert_eq!(
        issues(&momentum_row_with(6, &["    brokers: []"])),
        [r#"strategies.yaml:6: strategies[0] (id "mom-1").brokers: must not be empty"#]
    );
    assert_eq!(
        issues(&momentum_row_with(6, &["    brokers: paper"])),
        [r#"strategies.yaml:6: strategies[0] (id "mom-1").brokers: expected a list, got "paper""#]
    );
}

#[test]
fn brokers_must_be_non_empty_strings() {
    assert_eq!(
        issues(&momentum_row_with(6, &["    brokers: [paper, 5, '']"])),
        [
            r#"strategies.yaml:6: strategies[0] (id "mom-1").brokers[1]: expected a string, got 5"#,
            r#"strategies.yaml:6: strategies[0] (id "mom-1").brokers[2]: must not be empty"#,
        ]
    );
}

#[test]
fn duplicate_broker() {
    assert_eq!(
        issues(&momentum_row_with(
            6,
            &[
                "    brokers:",
                "      - paper",
                "      - zerodha",
                "      - paper"
            ]
        )),
        [
            r#"strategies.yaml:9: strategies[0] (id "mom-1").brokers[2]: duplicate broker "paper" (also at brokers[0])"#
        ]
    );
}

#[test]
fn instruments_must_be_positive_integers() {
    assert_eq!(
        issues(&momentum_row_with(
            7,
            &["    instruments: [0, -3, 1.5, 256265]"]
        )),
        [
            r#"strategies.yaml:7: strategies[0] (id "mom-1").instruments[0]: must be > 0, got 0"#,
            r#"strategies.yaml:7: strategies[0] (id "mom-1").instruments[1]: must be > 0, got -3"#,
            r#"strategies.yaml:7: strategies[0] (id "mom-1").instruments[2]: expected an integer, got 1.5"#,
        ]
    );
    assert_eq!(
        issues(&momentum_row_with(7, &["    instruments: []"])),
        [r#"strategies.yaml:7: strategies[0] (id "mom-1").instruments: must not be empty"#]
    );
}

#[test]
fn duplicate_instrument() {
    assert_eq!(
        issues(&momentum_row_with(
            7,
            &["    instruments: [256265, 738561, 256265]"]
        )),
        [
            r#"strategies.yaml:7: strategies[0] (id "mom-1").instruments[2]: duplicate instrument 256265 (also at instruments[0])"#
        ]
    );
}

#[test]
fn enabled_must_be_a_boolean() {
    assert_eq!(
        issues(&momentum_row_with(
            7,
            &["    instruments: [256265]", "    enabled: 'no'"]
        )),
        [r#"strategies.yaml:8: strategies[0] (id "mom-1").enabled: expected a boolean, got "no""#]
    );
}

#[test]
fn unknown_validator() {
    assert_eq!(
        issues(&momentum_row_with(
            7,
            &["    instruments: [256265]", "    validator: strict"]
        )),
        [
            r#"strategies.yaml:8: strategies[0] (id "mom-1").validator: unknown validator "strict" (expected standard)"#
        ]
    );
}

/// A hybrid row whose `parameters` lines are `params`.
fn hybrid_row(params: &[&str]) -> Vec<String> {
    let mut lines = vec![
        "strategies:",
        "  - id: hyb-1",
        "    strategy_type: hybrid",
        "    parameters:",
    ];
    lines.extend(params);
    lines.extend(["    brokers: [paper]", "    instruments: [256265]"]);
    lines.into_iter().map(str::to_owned).collect()
}

#[test]
fn hybrid_parts_are_required() {
    assert_eq!(
        issues(&hybrid_row(&["      rules: {strategy_type: momentum}"])),
        [r#"strategies.yaml:5: strategies[0] (id "hyb-1").parameters: missing field "ml""#]
    );
}

#[test]
fn nested_hybrids_are_refused() {
    assert_eq!(
        issues(&hybrid_row(&[
            "      rules: {strategy_type: momentum}",
            "      ml: {strategy_type: hybrid}",
        ])),
        [
            r#"strategies.yaml:6: strategies[0] (id "hyb-1").parameters.ml.strategy_type: nested hybrids are not supported"#
        ]
    );
}

#[test]
fn hybrid_part_shape() {
    assert_eq!(
        issues(&hybrid_row(&[
            "      rules: {strategy_type: momentum, enabled: true}",
            "      ml: {parameters: {z_entry: 1.5}}",
        ])),
        [
            r#"strategies.yaml:5: strategies[0] (id "hyb-1").parameters.rules.enabled: unknown field "enabled" (expected strategy_type, parameters)"#,
            r#"strategies.yaml:6: strategies[0] (id "hyb-1").parameters.ml: missing field "strategy_type""#,
        ]
    );
    assert_eq!(
        issues(&hybrid_row(&[
            "      rules: momentum",
            "      ml: {strategy_type: rsi}"
        ])),
        [
            r#"strategies.yaml:5: strategies[0] (id "hyb-1").parameters.rules: expected a mapping, got "momentum""#
        ]
    );
}

#[test]
fn hybrid_part_parameters_are_the_types_own() {
    assert_eq!(
        issues(&hybrid_row(&[
            "      policy: unanimous",
            "      rules: {strategy_type: momentum, parameters: {min_confidence: 0.5}}",
            "      ml:",
            "        strategy_type: mean_reversion",
            "        parameters:",
            "          z_entry: 0",
        ])),
        [
            r#"strategies.yaml:5: strategies[0] (id "hyb-1").parameters.policy: must be one of majority_vote, confirm, sizer, guardrail, threshold_escalation, got "unanimous""#,
            r#"strategies.yaml:6: strategies[0] (id "hyb-1").parameters.rules.parameters.min_confidence: unknown parameter "min_confidence" (expected lookback_periods, threshold, position_size)"#,
            r#"strategies.yaml:10: strategies[0] (id "hyb-1").parameters.ml.parameters.z_entry: must be > 0, got 0"#,
        ]
    );
}

#[test]
fn hybrid_unknown_parameter_lists_parts_and_validator_params() {
    assert_eq!(
        issues(&hybrid_row(&[
            "      rules: {strategy_type: momentum}",
            "      ml: {strategy_type: rsi}",
            "      ruels: {strategy_type: momentum}",
        ])),
        [
            r#"strategies.yaml:7: strategies[0] (id "hyb-1").parameters.ruels: unknown parameter "ruels" (expected policy, min_conf, high_vol_conf, vol_threshold, vol_lookback, rules, ml, min_confidence, max_quantity)"#
        ]
    );
}

#[test]
fn rsi_overbought_must_exceed_oversold() {
    let rsi_row = |params: &[&str]| {
        let mut lines = vec![
            "strategies:",
            "  - id: rsi-1",
            "    strategy_type: rsi",
            "    parameters:",
        ];
        lines.extend(params);
        lines.extend(["    brokers: [paper]", "    instruments: [256265]"]);
        issues(&lines)
    };
    assert_eq!(
        rsi_row(&["      overbought: 20"]),
        [
            r#"strategies.yaml:5: strategies[0] (id "rsi-1").parameters.overbought: must be greater than oversold (30), got 20"#
        ]
    );
    assert_eq!(
        rsi_row(&["      oversold: 70"]),
        [
            r#"strategies.yaml:5: strategies[0] (id "rsi-1").parameters.overbought: must be greater than oversold (70), got 70"#
        ]
    );
    // A level that is itself invalid is reported once, not also as crossed.
    assert_eq!(
        rsi_row(&["      oversold: 150", "      overbought: 20"]),
        [
            r#"strategies.yaml:5: strategies[0] (id "rsi-1").parameters.oversold: must be > 0 and < 100, got 150"#
        ]
    );
    assert_eq!(
        issues(&hybrid_row(&[
            "      rules: {strategy_type: rsi, parameters: {oversold: 60, overbought: 40}}",
            "      ml: {strategy_type: momentum}",
        ])),
        [
            r#"strategies.yaml:5: strategies[0] (id "hyb-1").parameters.rules.parameters.overbought: must be greater than oversold (60), got 40"#
        ]
    );
}

#[test]
fn duplicate_keys_are_reported_at_the_later_one() {
    assert_eq!(
        issues(&momentum_row_with(
            5,
            &[
                "      lookback_periods: 20",
                "      threshold: 0.01",
                "      lookback_periods: 0",
            ]
        )),
        [
            r#"strategies.yaml:7: strategies[0] (id "mom-1").parameters.lookback_periods: duplicate key "lookback_periods" (first at line 5)"#
        ]
    );
    assert_eq!(
        issues(&momentum_row_with(
            7,
            &[
                "    instruments: [256265]",
                "    'brokers': [zerodha]",
                "    brokers: []"
            ]
        )),
        [
            r#"strategies.yaml:8: strategies[0] (id "mom-1").brokers: duplicate key "brokers" (first at line 6)"#,
            r#"strategies.yaml:9: strategies[0] (id "mom-1").brokers: duplicate key "brokers" (first at line 6)"#,
        ]
    );
    assert_eq!(
        issues(&["strategies: []", "strategies: []"]),
        [r#"strategies.yaml:2: strategies: duplicate key "strategies" (first at line 1)"#]
    );
}

#[test]
fn keys_must_be_strings() {
    assert_eq!(
        issues(&momentum_row_with(5, &["      1: 20"])),
        [
            r#"strategies.yaml:5: strategies[0] (id "mom-1").parameters: expected a string key, got 1"#
        ]
    );
}

#[test]
fn a_disabled_row_is_still_validated() {
    assert_eq!(
        issues(&momentum_row_with(
            7,
            &["    instruments: [0]", "    enabled: false"]
        )),
        [r#"strategies.yaml:7: strategies[0] (id "mom-1").instruments[0]: must be > 0, got 0"#]
    );
}

// ------------------------------------------------------- several, syntax, io

#[test]
fn every_error_comes_back_together_in_document_order() {
    let err = parse_config(
        &doc(&[
            "strategies:",                       // 1
            "  - id: mom-1",                     // 2
            "    strategy_type: momentum",       // 3
            "    instruments: [256265, 256265]", // 4
            "    parameters:",                   // 5
            "      lookback_periods: 0",         // 6
            "      threshold: \"0.01\"",         // 7
            "    brokers: [paper]",              // 8
            "  - id: mom-1",                     // 9
            "    strategy_type: momentum",       // 10
            "    brokers: []",                   // 11
            "    instruments: [738561]",         // 12
            "  - id: x",                         // 13
            "    strategy_type: foo",            // 14
            "    parameters: {anything: 1}",     // 15
            "    brokers: [paper]",              // 16
            "    instruments: [1]",              // 17
            "    colour: red",                   // 18
        ]),
        FILE,
    );
    let Err(ConfigError::Invalid { file, issues }) = err else {
        panic!("expected issues, got {err:?}");
    };
    assert_eq!(file, FILE);
    let at = |line: usize, path: &str, message: &str| ConfigIssue {
        file: FILE.to_owned(),
        line,
        path: path.to_owned(),
        message: message.to_owned(),
    };
    assert_eq!(
        issues,
        [
            at(
                4,
                r#"strategies[0] (id "mom-1").instruments[1]"#,
                "duplicate instrument 256265 (also at instruments[0])"
            ),
            at(
                6,
                r#"strategies[0] (id "mom-1").parameters.lookback_periods"#,
                "must be >= 2, got 0"
            ),
            at(
                7,
                r#"strategies[0] (id "mom-1").parameters.threshold"#,
                r#"expected a number, got "0.01""#
            ),
            at(
                9,
                r#"strategies[1] (id "mom-1").id"#,
                r#"duplicate id "mom-1" (first used by strategies[0] at line 2)"#
            ),
            at(
                11,
                r#"strategies[1] (id "mom-1").brokers"#,
                "must not be empty"
            ),
            at(
                14,
                r#"strategies[2] (id "x").strategy_type"#,
                r#"unknown strategy_type "foo" (expected momentum, mean_reversion, rsi, breakout, hybrid, ml, ml_momentum, hybrid_momentum)"#
            ),
            at(
                18,
                r#"strategies[2] (id "x").colour"#,
                r#"unknown field "colour" (expected id, strategy_type, parameters, brokers, instruments, enabled, validator, validators, priority, budget_us_per_tick)"#
            ),
        ]
    );
}

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let err = parse_config(
        &doc(&[
            "strategies:",
            "  - id: [mom-1",
            "    strategy_type: momentum",
        ]),
        FILE,
    );
    let Err(err @ ConfigError::Syntax { .. }) = err else {
        panic!("expected a syntax error, got {err:?}");
    };
    assert_eq!(
        err.to_string(),
        "strategies.yaml:3:18: YAML syntax error: illegal placement of ':' indicator"
    );
}

#[test]
fn load_config_names_a_missing_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nope.yaml");
    let err = load_config(&path).expect_err("missing file");
    let ConfigError::Io {
        path: named,
        source,
    } = &err
    else {
        panic!("expected an I/O error, got {err:?}");
    };
    assert_eq!(named, &path.display().to_string());
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read: ", path.display())),
        "{err}"
    );
}

#[test]
fn load_config_reads_the_file_and_names_it_in_issues() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("strategies.yaml");
    std::fs::write(&path, doc(&["strategies:", "  - id: a"])).expect("write");
    let err = load_config(&path).expect_err("invalid file");
    let first = err.to_string().lines().next().map(str::to_owned);
    assert_eq!(
        first,
        Some(format!(
            r#"{}:2: strategies[0] (id "a"): missing field "strategy_type""#,
            path.display()
        ))
    );

    std::fs::write(&path, doc(&momentum_row_with(1, &["strategies:"]))).expect("write");
    let config = load_config(&path).expect("valid file");
    assert_eq!(config.strategies.len(), 1);
}

/// The format documented in the crate docs must itself load, so the docs
/// cannot drift from what the loader accepts.
#[test]
fn documented_example_loads() {
    let docs = include_str!("../src/lib.rs");
    let example: Vec<&str> = docs
        .lines()
        .map(|l| l.strip_prefix("//!").unwrap_or(l))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .skip_while(|l| *l != "```yaml")
        .skip(1)
        .take_while(|l| *l != "```")
        .collect();
    assert!(example.len() > 10, "example not found");
    let config = load(&example);
    assert_eq!(
        config.summary(),
        "3 strategies (3 enabled: 1 momentum, 1 hybrid, 1 ml) over 2 instruments and 2 brokers"
    );
}

#[test]
fn ml_rows_load_with_their_model_and_features() {
    let config = load(&[
        "models: models/registry.yaml",
        "strategies:",
        "  - id: ml-1",
        "    strategy_type: ml",
        "    parameters:",
        "      model: m",
        "      features: [sma(5), momentum(3), returns_std(10), returns_skew(20), price]",
        "      confidence_threshold: 0.7",
        "    brokers: [paper]",
        "    instruments: [1]",
        "  - id: preset",
        "    strategy_type: ml_momentum",
        "    brokers: [paper]",
        "    instruments: [1]",
        "  - id: hyb",
        "    strategy_type: hybrid_momentum",
        "    parameters: {lookback_periods: 12, model: other, min_conf: 0.7, position_size: 3}",
        "    brokers: [paper]",
        "    instruments: [1]",
    ]);
    assert_eq!(
        config.models,
        Some(quiver_config::ModelsSource::File {
            path: "models/registry.yaml".into(),
            line: 1
        })
    );
    let StrategySpec::Ml(ml) = &config.strategies[0].spec else {
        panic!("{:?}", config.strategies[0].spec)
    };
    assert_eq!(ml.model, "m");
    let names: Vec<String> = ml.features.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "sma(5)",
            "returns(3)",
            "volatility(10)",
            "returns_skew(20)",
            "price"
        ]
    );
    assert_eq!(
        ml.params.get("confidence_threshold"),
        Some(quiver_strategy::ParamValue::Float(0.7))
    );
    assert_eq!(config.strategies[0].models[0].line, 6);
    assert_eq!(
        config.strategies[0].models[0].path,
        "strategies[0] (id \"ml-1\").parameters.model"
    );
    assert_eq!(config.strategies[1].spec.models(), ["ml_momentum_mlp"]);
    let StrategySpec::Hybrid { rules, ml, policy } = &config.strategies[2].spec else {
        panic!("{:?}", config.strategies[2].spec)
    };
    assert_eq!(policy.kind, PolicyKind::MajorityVote);
    assert_eq!(policy.min_conf, 0.7);
    assert_rules(
        rules,
        RulesType::Momentum,
        &[
            ("lookback_periods", ParamValue::Int(12)),
            ("position_size", ParamValue::Int(3)),
        ],
    );
    assert_eq!(ml.models(), ["other"]);
    // hybrid_momentum is a hybrid of momentum and ml_momentum.
    assert!(
        config.summary().contains("1 hybrid, 1 ml, 1 ml_momentum"),
        "{}",
        config.summary()
    );
}

#[test]
fn ml_rows_report_every_mistake() {
    assert_eq!(
        issues(&[
            "models: 3",
            "strategies:",
            "  - id: a",
            "    strategy_type: ml",
            "    parameters: {features: [sma(5), smaa(3), 7, returns_skew(1)], temperature: 0}",
            "    brokers: [paper]",
            "    instruments: [1]",
            "  - id: b",
            "    strategy_type: ml_momentum",
            "    parameters: {features: [price], model: \"\"}",
            "    brokers: [paper]",
            "    instruments: [1]",
            "  - id: c",
            "    strategy_type: hybrid",
            "    parameters:",
            "      rules: {strategy_type: ml_momentum}",
            "      ml: {strategy_type: hybrid_momentum}",
            "    brokers: [paper]",
            "    instruments: [1]",
        ]),
        [
            "strategies.yaml:1: models: expected a registry file path or a list of models, got 3",
            "strategies.yaml:5: strategies[0] (id \"a\").parameters: missing field \"model\"",
            "strategies.yaml:5: strategies[0] (id \"a\").parameters.features[1]: unknown feature \"smaa\" (expected sma, ema, rsi, rsi_simple, returns, log_return, volatility, zscore, skew, min, max, vwap), or derived price, momentum(n), returns_std(n), returns_skew(n)",
            "strategies.yaml:5: strategies[0] (id \"a\").parameters.features[2]: expected a string, got 7",
            "strategies.yaml:5: strategies[0] (id \"a\").parameters.features[3]: \"returns_skew(1)\": window must be an integer between 2 and 100000",
            "strategies.yaml:5: strategies[0] (id \"a\").parameters.temperature: must be > 0, got 0",
            "strategies.yaml:10: strategies[1] (id \"b\").parameters.features: unknown parameter \"features\" (expected confidence_threshold, position_size, temperature, model, min_confidence, max_quantity)",
            "strategies.yaml:10: strategies[1] (id \"b\").parameters.model: must not be empty",
            "strategies.yaml:16: strategies[2] (id \"c\").parameters.rules: must be a rules strategy, got ml_momentum",
            "strategies.yaml:17: strategies[2] (id \"c\").parameters.ml.strategy_type: nested hybrids are not supported",
        ]
    );
}

#[test]
fn ids_and_broker_names_that_would_become_bad_keys_are_refused() {
    let lines = [
        "strategies:",
        "  - id: \"mom 1\"",
        "    strategy_type: momentum",
        "    brokers: [paper, dlq, \"signals/x\", zerodha]",
        "    instruments: [256265]",
        "  - id: mom-2.b_3",
        "    strategy_type: momentum",
        "    brokers: [paper]",
        "    instruments: [256265]",
    ];
    let rule = "is not a valid name: use 1 to 64 ASCII letters, digits, '-', '_' or '.', starting with a letter or digit";
    assert_eq!(
        issues(&lines),
        [
            format!("strategies.yaml:2: strategies[0] (id \"mom 1\").id: \"mom 1\" {rule}"),
            "strategies.yaml:4: strategies[0] (id \"mom 1\").brokers[1]: \"dlq\" is reserved (broker dlq would publish into the dead-letter stream signals.dlq)".to_owned(),
            format!("strategies.yaml:4: strategies[0] (id \"mom 1\").brokers[2]: \"signals/x\" {rule}"),
        ]
    );
    let long = "x".repeat(65);
    let lines = momentum_row_with(2, &[&format!("  - id: {long}")]);
    assert!(issues(&lines)[0].contains("is not a valid name"));
    let fine = momentum_row_with(2, &[&format!("  - id: {}", "x".repeat(64))]);
    assert_eq!(load(&fine).strategies.len(), 1);
}

#[test]
fn yaml_bombs_are_refused_before_anything_is_built() {
    // Deep nesting: refused at the level that exceeds the bound, whatever the
    // depth (60 KB of brackets used to overflow the stack).
    let deep = format!("strategies:\n  {}x\n", "- ".repeat(30_000));
    let err = parse_config(&deep, FILE).unwrap_err().to_string();
    assert!(err.contains("nested more than 64 levels deep"), "{err}");
    assert!(err.starts_with("strategies.yaml:2:"), "{err}");
    // Flow brackets meet the parser's own limit first; refused all the same.
    let flow = format!("strategies: {}{}\n", "[".repeat(60_000), "]".repeat(60_000));
    let err = parse_config(&flow, FILE).unwrap_err().to_string();
    assert!(err.starts_with("strategies.yaml:1:"), "{err}");
    // Billion laughs: each level aliases the previous one ten times.
    let mut bomb = String::from("a0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n");
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    bomb.push_str("strategies: []\n");
    let err = parse_config(&bomb, FILE).unwrap_err().to_string();
    assert!(err.contains("once aliases are expanded"), "{err}");
    // One large scalar aliased many times.
    let mut wide = format!("big: &big \"{}\"\nmany:\n", "x".repeat(100_000));
    for _ in 0..1_000 {
        wide.push_str("  - *big\n");
    }
    let err = parse_config(&wide, FILE).unwrap_err().to_string();
    assert!(err.contains("once aliases are expanded"), "{err}");
    // Ordinary aliases still load.
    let shared = doc(&[
        "defaults: &p {lookback_periods: 20}",
        "strategies:",
        "  - id: mom-1",
        "    strategy_type: momentum",
        "    parameters: *p",
        "    brokers: [paper]",
        "    instruments: [256265]",
    ]);
    let err = parse_config(&shared, FILE).unwrap_err().to_string();
    // Refused only for the unknown top-level key, not for the alias.
    assert!(!err.contains("aliases"), "{err}");
    assert!(err.contains("defaults"), "{err}");
}

const ONE_ROW: [&str; 5] = [
    "strategies:",
    "  - id: mom-1",
    "    strategy_type: momentum",
    "    brokers: [paper]",
    "    instruments: [1001, 1002]",
];

fn with_sections(sections: &[&str]) -> Vec<String> {
    sections
        .iter()
        .chain(ONE_ROW.iter())
        .map(|s| (*s).to_owned())
        .collect()
}

#[test]
fn paper_risk_and_costs_sections_are_read_into_the_desk() {
    use quiver_paper::{FillModel, Money, Rate, SignalMode};
    let config = load(&with_sections(&[
        "paper: {capital: 250000.5, fill: next_quote, slippage_bps: 0.5, signals: target, strategies: {mom-1: {signals: order}}, sample_ms: 1000}",
        "risk:",
        "  max_instrument_exposure: 100000",
        "  tags: {banks: [1001]}",
        "  max_tag_exposure: {banks: 50000}",
        "  max_strategy_drawdown: 0.1",
        "  resume_after_ms: 60000",
        "costs: {spread_bps: 2, taker_fee_bps: 3, edge_bps: 20, min_edge_bps: 5, instruments: {1001: {taker_fee_bps: 5}}}",
    ]));
    let desk = &config.desk;
    assert_eq!(desk.paper.capital.to_string(), "250000.5");
    assert_eq!(desk.paper.fill, FillModel::NextQuote);
    assert_eq!(desk.paper.slippage, Rate::from_bps(0.5).unwrap());
    assert_eq!(desk.paper.mode_of("mom-1"), SignalMode::Order);
    assert_eq!(desk.paper.mode_of("other"), SignalMode::Target);
    assert_eq!(desk.paper.sample_ns, 1_000_000_000);
    assert_eq!(
        desk.risk.max_instrument_exposure,
        Some(Money::from_int(100_000))
    );
    assert_eq!(desk.risk.tags["banks"], [1001]);
    assert_eq!(desk.risk.max_tag_exposure["banks"], Money::from_int(50_000));
    assert_eq!(desk.risk.max_strategy_drawdown, Some(0.1));
    assert_eq!(desk.risk.resume_after_ns, Some(60_000_000_000));
    let fee = |bps: f64| Rate::from_bps(bps).unwrap();
    assert_eq!(desk.costs.of(1001).taker_fee, fee(5.0));
    // Unset fields of an instrument's costs are the defaults.
    assert_eq!(desk.costs.of(1001).spread, fee(2.0));
    assert_eq!(desk.costs.of(1002).taker_fee, fee(3.0));
    assert_eq!(
        (desk.costs.edge_bps, desk.costs.min_edge_bps),
        (Some(20.0), Some(5.0))
    );
    // And without the sections: everything off, 1,000,000 each, fills at
    // the next price.
    let plain = load(&ONE_ROW);
    assert_eq!(plain.desk, quiver_paper::DeskSpec::default());
}

#[test]
fn bad_paper_risk_and_costs_values_are_named_by_line_and_field() {
    assert_eq!(
        issues(&with_sections(&[
            "paper:",
            "  capital: -5",
            "  fill: market",
            "  strategies: {nobody: {signals: target}}",
            "risk:",
            "  max_strategy_drawdown: 1.5",
            "  max_tag_exposure: {energy: 10}",
            "costs:",
            "  taker_fee_bps: 0.00001",
            "  edge_bps: 10",
            "  instruments: {x: {spread_bps: 1}}",
        ])),
        [
            "strategies.yaml:2: paper.capital: expected an amount above 0 and at most 9e10, got -5",
            r#"strategies.yaml:3: paper.fill: unknown fill model "market" (expected next_price, next_quote, limit)"#,
            r#"strategies.yaml:4: paper.strategies.nobody: no strategy has id "nobody""#,
            "strategies.yaml:6: risk.max_strategy_drawdown: expected a fraction above 0 and below 1, got 1.5",
            r#"strategies.yaml:7: risk.max_tag_exposure.energy: tag "energy" is not one of risk.tags"#,
            "strategies.yaml:9: costs.taker_fee_bps: expected basis points from 0 to 10000 in steps of 0.0001, got 1e-5",
            r#"strategies.yaml:11: costs.instruments: expected an instrument token, got "x""#,
        ]
    );
    assert_eq!(
        issues(&with_sections(&["costs: {edge_bps: 10}"])),
        ["strategies.yaml:1: costs.edge_bps: edge_bps needs min_edge_bps: the edge filter compares the two"]
    );
}
