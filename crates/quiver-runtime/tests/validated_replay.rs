//! Whatever `quiver validate` accepts, replay accepts: strategies files with
//! parameters drawn across and far beyond their ranges are checked as
//! `validate` checks them (the file, then its models), and every file that
//! passes is built into an engine and replayed over a few hundred ticks —
//! which must neither panic nor abort.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use quiver_core::{Price, Tick};
use quiver_infer::{BackendChoice, StoreOptions};
use quiver_io::SignalWriter;
use quiver_runtime::models::Models;
use quiver_runtime::replay::{Replay, ReplayOptions};

fn registry() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/registry.yaml")
}

/// An integer written as the file would: mostly in range, sometimes at and
/// past the bounds, and far past any (beyond i64 it is read as a float).
fn int() -> impl Strategy<Value = String> {
    prop_oneof![
        60 => (1i64..60).prop_map(|v| v.to_string()),
        10 => (60i64..3_000).prop_map(|v| v.to_string()),
        1 => Just("10000000000".to_owned()),
        1 => Just("9223372036854775807".to_owned()),
        1 => Just("18446744073709551615".to_owned()),
        1 => Just("-1".to_owned()),
        1 => Just("0".to_owned()),
    ]
}

/// A count of ticks of history: drawn far more often at and beyond its
/// bounds, where memory and index arithmetic are at stake.
fn window() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => (2i64..60).prop_map(|v| v.to_string()),
        3 => (60i64..100_000).prop_map(|v| v.to_string()),
        2 => Just("100000".to_owned()),
        1 => Just("2".to_owned()),
        1 => Just("100001".to_owned()),
        1 => Just("1000000".to_owned()),
        1 => Just("10000000000".to_owned()),
        1 => Just("9223372036854775807".to_owned()),
        1 => Just("18446744073709551615".to_owned()),
        1 => Just("-1".to_owned()),
    ]
}

/// What a parameter holds, for drawing mostly valid values of it.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Int,
    Window,
    /// In [0, 1].
    Unit,
    /// > 0.
    Positive,
    /// In (0, 100).
    Percent,
}

/// A float written as the file would, mostly valid for `kind`, sometimes
/// hostile.
fn float(kind: Kind) -> BoxedStrategy<String> {
    let valid = match kind {
        Kind::Unit | Kind::Int | Kind::Window => {
            (0.0f64..=1.0).prop_map(|v| format!("{v:.4}")).boxed()
        }
        Kind::Positive => (0.0001f64..50.0).prop_map(|v| format!("{v:.4}")).boxed(),
        Kind::Percent => (0.5f64..99.5).prop_map(|v| format!("{v:.2}")).boxed(),
    };
    prop_oneof![
        60 => valid,
        1 => Just(".nan".to_owned()),
        1 => Just(".inf".to_owned()),
        1 => Just("-.inf".to_owned()),
        1 => Just("-0.5".to_owned()),
        1 => Just("0".to_owned()),
        1 => Just("1e300".to_owned()),
        1 => Just("1e-300".to_owned()),
        1 => Just("1e400".to_owned()),
        1 => Just("\"0.1\"".to_owned()),
    ]
    .boxed()
}

/// `name: value` pairs for some of `params`.
fn params(names: &'static [(&'static str, Kind)]) -> impl Strategy<Value = Vec<String>> {
    let each: Vec<_> = names
        .iter()
        .map(|&(name, kind)| {
            let value = match kind {
                Kind::Int => int().boxed(),
                Kind::Window => window().boxed(),
                _ => float(kind),
            };
            proptest::option::weighted(0.6, value)
                .prop_map(move |v| v.map(|v| format!("{name}: {v}")))
        })
        .collect();
    each.prop_map(|pairs| pairs.into_iter().flatten().collect())
}

const RULES: &[(&str, &[(&str, Kind)])] = &[
    (
        "momentum",
        &[
            ("lookback_periods", Kind::Window),
            ("threshold", Kind::Positive),
            ("position_size", Kind::Int),
        ],
    ),
    (
        "mean_reversion",
        &[
            ("lookback_periods", Kind::Window),
            ("z_entry", Kind::Positive),
            ("position_size", Kind::Int),
        ],
    ),
    (
        "rsi",
        &[
            ("period", Kind::Window),
            ("oversold", Kind::Percent),
            ("overbought", Kind::Percent),
            ("position_size", Kind::Int),
        ],
    ),
    (
        "breakout",
        &[
            ("lookback_periods", Kind::Window),
            ("min_breakout", Kind::Positive),
            ("position_size", Kind::Int),
        ],
    ),
];

const ML: &[(&str, Kind)] = &[
    ("confidence_threshold", Kind::Unit),
    ("temperature", Kind::Positive),
    ("position_size", Kind::Int),
];

const POLICIES: &[&str] = &[
    "majority_vote",
    "confirm",
    "sizer",
    "guardrail",
    "threshold_escalation",
];

/// `{strategy_type: t, parameters: {...}}` of a rules strategy.
fn rules_part() -> impl Strategy<Value = String> {
    (0..RULES.len())
        .prop_flat_map(|i| (Just(RULES[i].0), params(RULES[i].1)))
        .prop_map(|(ty, p)| format!("{{strategy_type: {ty}, parameters: {{{}}}}}", p.join(", ")))
}

/// An ML feature list of nine columns (the shipped models' width), windows
/// drawn like integers.
fn ml_features() -> impl Strategy<Value = String> {
    let feature = (
        prop::sample::select(vec![
            "sma",
            "ema",
            "rsi",
            "returns",
            "volatility",
            "zscore",
            "skew",
            "max",
            "min",
            "vwap",
            "momentum",
            "returns_std",
            "returns_skew",
        ]),
        int(),
    )
        .prop_map(|(name, n)| format!("\"{name}({n})\""));
    prop::collection::vec(prop_oneof![4 => feature, 1 => Just("price".to_owned())], 9)
        .prop_map(|f| format!("[{}]", f.join(", ")))
}

/// The `parameters` of a row: a strategy type and what it takes.
fn strategy() -> impl Strategy<Value = (String, Vec<String>)> {
    let rules =
        (0..RULES.len()).prop_flat_map(|i| (Just(RULES[i].0.to_owned()), params(RULES[i].1)));
    let hybrid = (
        prop::sample::select(POLICIES),
        rules_part(),
        prop_oneof![
            rules_part(),
            Just("{strategy_type: ml_momentum}".to_owned())
        ],
        params(&[
            ("min_conf", Kind::Unit),
            ("high_vol_conf", Kind::Unit),
            ("vol_threshold", Kind::Positive),
            ("vol_lookback", Kind::Window),
        ]),
    )
        .prop_map(|(policy, rules, ml, mut p)| {
            p.push(format!("policy: {policy}"));
            p.push(format!("rules: {rules}"));
            p.push(format!("ml: {ml}"));
            ("hybrid".to_owned(), p)
        });
    let ml = (
        prop::sample::select(vec!["ml_momentum_mlp", "ml_momentum_logreg"]),
        ml_features(),
        params(ML),
    )
        .prop_map(|(model, features, mut p)| {
            p.push(format!("model: {model}"));
            p.push(format!("features: {features}"));
            ("ml".to_owned(), p)
        });
    let ml_momentum = params(ML).prop_map(|p| ("ml_momentum".to_owned(), p));
    let hybrid_momentum = params(&[
        ("lookback_periods", Kind::Window),
        ("threshold", Kind::Positive),
        ("confidence_threshold", Kind::Unit),
        ("min_conf", Kind::Unit),
    ])
    .prop_map(|p| ("hybrid_momentum".to_owned(), p));
    prop_oneof![5 => rules, 2 => hybrid, 1 => ml, 1 => ml_momentum, 1 => hybrid_momentum]
}

const TOKENS: &[&str] = &["1", "2", "256265", "9223372036854775807"];
const BAD_TOKENS: &[&str] = &["0", "-3", "18446744073709551615", "1"];

/// A whole strategies file.
fn config() -> impl Strategy<Value = String> {
    let row = (
        strategy(),
        params(&[("min_confidence", Kind::Unit), ("max_quantity", Kind::Int)]),
        (
            prop::sample::subsequence(TOKENS, 1..=TOKENS.len()).prop_shuffle(),
            proptest::option::weighted(0.05, prop::sample::select(BAD_TOKENS)),
        ),
        any::<bool>(),
    );
    let budget = proptest::option::weighted(
        0.3,
        prop::sample::select(vec!["1", "2", "16", "0", "-1", "1048577", "1000000000000"]),
    );
    (budget, prop::collection::vec(row, 1..4)).prop_map(|(budget, rows)| {
        let mut text = format!("models: {}\n", registry().display());
        if let Some(budget) = budget {
            text.push_str(&format!("history_budget_mib: {budget}\n"));
        }
        text.push_str("strategies:\n");
        for (i, ((ty, own), validator, tokens, enabled)) in rows.into_iter().enumerate() {
            let mut all = own;
            all.extend(validator);
            let (mut tokens, bad) = tokens;
            tokens.extend(bad);
            text.push_str(&format!(
                "  - id: s{i}\n    strategy_type: {ty}\n    parameters: {{{}}}\n    brokers: [paper]\n    instruments: [{}]\n    enabled: {enabled}\n",
                all.join(", "),
                tokens.join(", ")
            ));
        }
        text
    })
}

/// Three hundred ticks round-robin over `tokens`: a random walk on a 0.05
/// grid, with a few jumps.
fn ticks(tokens: &[u64], seed: u64) -> Vec<Tick> {
    let mut state = seed | 1;
    let mut prices: Vec<i64> = vec![10_000_000_000; tokens.len()];
    (0..300)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let k = i % tokens.len();
            let step = (state % 9) as i64 - 4;
            let jump = if state.is_multiple_of(97) { 40 } else { 1 };
            prices[k] = (prices[k] + step * jump * 5_000_000).max(5_000_000);
            Tick::trade(
                1_767_225_600_000_000_000 + i as i64 * 1_000_000,
                tokens[k],
                Price::from_units(prices[k]),
                1 + state % 500,
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn what_validate_accepts_replays(text in config(), seed in any::<u64>()) {
        let path = Path::new("/nonexistent/strategies.yaml");
        let Ok(config) = quiver_config::parse_config(&text, "strategies.yaml") else {
            return Ok(());
        };
        let options = StoreOptions { backend: BackendChoice::Tract, ..Default::default() };
        // `quiver validate`'s second half: the models the rows name.
        if Models::open(path, &config, None, options).is_err() {
            return Ok(());
        }
        let replay_options = ReplayOptions { backend: BackendChoice::Tract, ..Default::default() };
        let mut replay = match Replay::open(path, &config, &text, &replay_options) {
            Ok(replay) => replay,
            Err(err) => return Err(TestCaseError::fail(format!("validated, but replay refused: {err}\n{text}"))),
        };
        let mut tokens: Vec<u64> = config.enabled().flat_map(|r| r.instruments.iter().copied()).collect();
        tokens.sort_unstable();
        tokens.dedup();
        if tokens.is_empty() {
            tokens.push(1);
        }
        let feed = ticks(&tokens, seed).into_iter().map(Ok);
        let mut out = SignalWriter::new(Vec::new());
        let run = replay.run(feed, false, &mut out, &mut |_| {}).unwrap();
        prop_assert_eq!(run.ticks, 300);
        prop_assert!(run.stopped_at.is_none());
    }
}
