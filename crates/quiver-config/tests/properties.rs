//! Properties over generated files: the loader never panics, always locates
//! what it reports, and reports each repeated key exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use proptest::prelude::*;
use quiver_config::yaml::SyntaxError;
use quiver_config::{parse_config, ConfigError};

const VALID: &str = "strategies:
  - id: mom-1
    strategy_type: momentum
    parameters: {lookback_periods: 20, threshold: 0.01}
    brokers: [paper, zerodha]
    instruments: [256265, 738561]
  - id: hyb-1
    strategy_type: hybrid
    parameters:
      policy: majority_vote
      rules: {strategy_type: rsi, parameters: {oversold: 25}}
      ml: {strategy_type: mean_reversion}
    brokers: [paper]
    instruments: [1]
    enabled: false
";

/// Checks what any outcome must satisfy: positions exist in the text, issues
/// come in document order, and an invalid file has at least one issue.
fn check_outcome(text: &str) -> Result<(), TestCaseError> {
    let lines = text.lines().count().max(1);
    match parse_config(text, "f.yaml") {
        Ok(_) => {}
        Err(ConfigError::Syntax(SyntaxError { line, col, .. })) => {
            prop_assert!(line >= 1 && line <= lines + 1, "line {line} of {lines}");
            prop_assert!(col >= 1);
        }
        Err(ConfigError::Invalid { issues, .. }) => {
            prop_assert!(!issues.is_empty());
            prop_assert!(
                issues.windows(2).all(|w| w[0].line <= w[1].line),
                "{issues:?}"
            );
            for issue in &issues {
                prop_assert!(
                    issue.line >= 1 && issue.line <= lines + 1,
                    "{issue:?} of {lines}"
                );
                prop_assert!(!issue.path.is_empty() && !issue.message.is_empty());
            }
        }
        Err(other) => prop_assert!(false, "unexpected {other}"),
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_yaml_like_text_never_panics(text in "[a-z0-9_:\\-\\[\\]{}'\",&*!?#. \n]{0,200}") {
        check_outcome(&text)?;
    }

    #[test]
    fn edited_valid_files_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), "[a-z0-9:\\-\\[\\]{}'\" \n]{0,3}", 0usize..4), 1..6)
    ) {
        let mut text: Vec<char> = VALID.chars().collect();
        for (at, insert, delete) in edits {
            let at = at.index(text.len() + 1);
            let end = (at + delete).min(text.len());
            text.splice(at..end, insert.chars());
        }
        check_outcome(&text.into_iter().collect::<String>())?;
    }

    /// Keys drawn with repeats and in mixed quoting styles: every repeat is
    /// reported once, at its own line, and nothing else is.
    #[test]
    fn every_repeated_key_is_reported_once(
        keys in proptest::collection::vec((0usize..3, 0usize..3), 1..10)
    ) {
        const NAMES: [&str; 3] = ["lookback_periods", "threshold", "position_size"];
        const VALUES: [&str; 3] = ["20", "0.01", "100"];
        let mut text = String::from("strategies:\n  - id: mom-1\n    strategy_type: momentum\n    parameters:\n");
        let mut expected = Vec::new();
        let mut first_line = [None; 3];
        for (i, (name, style)) in keys.iter().enumerate() {
            let line = 5 + i;
            let key = match style {
                0 => NAMES[*name].to_owned(),
                1 => format!("'{}'", NAMES[*name]),
                _ => format!("\"{}\"", NAMES[*name]),
            };
            text.push_str(&format!("      {key}: {}\n", VALUES[*name]));
            match first_line[*name] {
                None => first_line[*name] = Some(line),
                Some(first) => expected.push(format!(
                    "f.yaml:{line}: strategies[0] (id \"mom-1\").parameters.{0}: duplicate key \"{0}\" (first at line {first})",
                    NAMES[*name]
                )),
            }
        }
        text.push_str("    brokers: [paper]\n    instruments: [1]\n");
        match parse_config(&text, "f.yaml") {
            Ok(_) => prop_assert!(expected.is_empty(), "{text}"),
            Err(err) => {
                let got: Vec<String> = err.to_string().lines().map(str::to_owned).collect();
                prop_assert_eq!(got, expected, "{}", text);
            }
        }
    }
}
