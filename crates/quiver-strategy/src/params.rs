//! Declared strategy parameters: names, types, defaults and valid ranges.
//!
//! Each strategy type publishes a `&'static [ParamDef]`. The config loader
//! checks a row's `parameters` against it (unknown name, wrong type, out of
//! range — every error reported with its path) and fills defaults, producing a
//! [`ParamValues`] from which the strategy is built. Keeping the declaration
//! next to the strategy keeps docs, defaults and checks in one place.

use std::fmt;

/// A parameter's type and valid range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamKind {
    /// An integer in `min..=max`.
    Int { min: i64, max: i64 },
    /// A finite float within the bounds (`*_open` excludes the bound itself).
    Float {
        min: f64,
        min_open: bool,
        max: f64,
        max_open: bool,
    },
    /// One of a fixed set of names.
    Choice(&'static [&'static str]),
}

impl ParamKind {
    pub const fn int_at_least(min: i64) -> Self {
        ParamKind::Int { min, max: i64::MAX }
    }

    pub const fn int_in(min: i64, max: i64) -> Self {
        ParamKind::Int { min, max }
    }

    /// A count of ticks of history: at least `min`, and no longer than a
    /// shared feature's window may be ([`quiver_features::MAX_WINDOW`]), which
    /// is what a lookback becomes.
    pub const fn window(min: i64) -> Self {
        ParamKind::Int {
            min,
            max: quiver_features::MAX_WINDOW as i64,
        }
    }

    pub const fn positive_float() -> Self {
        ParamKind::Float {
            min: 0.0,
            min_open: true,
            max: f64::INFINITY,
            max_open: true,
        }
    }

    pub const fn non_negative_float() -> Self {
        ParamKind::Float {
            min: 0.0,
            min_open: false,
            max: f64::INFINITY,
            max_open: true,
        }
    }

    pub const fn unit_interval() -> Self {
        ParamKind::Float {
            min: 0.0,
            min_open: false,
            max: 1.0,
            max_open: false,
        }
    }

    pub const fn open_percent() -> Self {
        ParamKind::Float {
            min: 0.0,
            min_open: true,
            max: 100.0,
            max_open: true,
        }
    }
}

/// A parameter value after type checking.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Choice(&'static str),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(v) => write!(f, "{v}"),
            ParamValue::Float(v) => write!(f, "{v}"),
            ParamValue::Choice(v) => write!(f, "{v}"),
        }
    }
}

/// One declared parameter.
#[derive(Clone, Copy, Debug)]
pub struct ParamDef {
    pub name: &'static str,
    pub kind: ParamKind,
    pub default: ParamValue,
    pub doc: &'static str,
}

/// A raw value as a config file spells it, before checking.
#[derive(Clone, Debug, PartialEq)]
pub enum RawParam<'a> {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(&'a str),
    Other(&'static str),
}

impl RawParam<'_> {
    fn describe(&self) -> String {
        match self {
            RawParam::Int(v) => v.to_string(),
            RawParam::Float(v) => format!("{v:?}"),
            RawParam::Bool(v) => v.to_string(),
            RawParam::Text(v) => quote_truncated(v),
            RawParam::Other(what) => (*what).to_owned(),
        }
    }
}

impl ParamDef {
    /// Type- and range-checks a raw value. The error is the message that follows
    /// the parameter's path, e.g. `must be >= 2, got 0`.
    pub fn check(&self, raw: &RawParam<'_>) -> Result<ParamValue, String> {
        match (self.kind, raw) {
            (ParamKind::Int { min, max }, RawParam::Int(v)) => {
                if *v < min {
                    Err(format!("must be >= {min}, got {v}"))
                } else if *v > max {
                    Err(format!("must be <= {max}, got {v}"))
                } else {
                    Ok(ParamValue::Int(*v))
                }
            }
            (ParamKind::Int { .. }, other) => {
                Err(format!("expected an integer, got {}", other.describe()))
            }
            (
                ParamKind::Float {
                    min,
                    min_open,
                    max,
                    max_open,
                },
                RawParam::Int(_) | RawParam::Float(_),
            ) => {
                let v = match raw {
                    RawParam::Int(i) => *i as f64,
                    RawParam::Float(f) => *f,
                    _ => f64::NAN,
                };
                if !v.is_finite() {
                    return Err(format!("must be a finite number, got {}", raw.describe()));
                }
                let below = if min_open { v <= min } else { v < min };
                let above = if max_open { v >= max } else { v > max };
                if below || above {
                    Err(format!(
                        "must be {}, got {}",
                        describe_range(self.kind),
                        raw.describe()
                    ))
                } else {
                    Ok(ParamValue::Float(v))
                }
            }
            (ParamKind::Float { .. }, other) => {
                Err(format!("expected a number, got {}", other.describe()))
            }
            (ParamKind::Choice(options), RawParam::Text(text)) => options
                .iter()
                .find(|o| *o == text)
                .map(|o| ParamValue::Choice(o))
                .ok_or_else(|| format!("must be one of {}, got {text:?}", options.join(", "))),
            (ParamKind::Choice(options), other) => Err(format!(
                "must be one of {}, got {}",
                options.join(", "),
                other.describe()
            )),
        }
    }
}

/// Longest quoted text an error message repeats in full.
const MAX_QUOTED_CHARS: usize = 60;

/// `"text"`, or its beginning and its length when long: error messages name a
/// bad value without repeating a whole file that was passed by mistake.
pub fn quote_truncated(text: &str) -> String {
    let chars = text.chars().count();
    if chars <= MAX_QUOTED_CHARS {
        return format!("{text:?}");
    }
    let head: String = text.chars().take(MAX_QUOTED_CHARS).collect();
    format!("{head:?}… ({chars} characters)")
}

fn describe_range(kind: ParamKind) -> String {
    match kind {
        ParamKind::Float {
            min,
            min_open,
            max,
            max_open,
        } => {
            let lower = if min_open { ">" } else { ">=" };
            if max.is_infinite() {
                format!("{lower} {min}")
            } else {
                let upper = if max_open { "<" } else { "<=" };
                format!("{lower} {min} and {upper} {max}")
            }
        }
        ParamKind::Int { min, max } => format!(">= {min} and <= {max}"),
        ParamKind::Choice(options) => format!("one of {}", options.join(", ")),
    }
}

/// Checked values for every declared parameter, defaults filled in.
#[derive(Clone, Debug)]
pub struct ParamValues {
    defs: &'static [ParamDef],
    values: Vec<ParamValue>,
}

/// Equal when the same names hold the same values (declarations are compared
/// by name: a `const` slice may live at a different address in each crate).
impl PartialEq for ParamValues {
    fn eq(&self, other: &Self) -> bool {
        self.defs.len() == other.defs.len()
            && self
                .defs
                .iter()
                .zip(other.defs)
                .all(|(a, b)| a.name == b.name)
            && self.values == other.values
    }
}

impl ParamValues {
    /// All defaults.
    pub fn defaults(defs: &'static [ParamDef]) -> Self {
        ParamValues {
            defs,
            values: defs.iter().map(|d| d.default).collect(),
        }
    }

    /// Sets a checked value; returns false if `name` is not declared.
    pub fn set(&mut self, name: &str, value: ParamValue) -> bool {
        match self.defs.iter().position(|d| d.name == name) {
            Some(at) => {
                self.values[at] = value;
                true
            }
            None => false,
        }
    }

    /// The value of the parameter named `name`, if declared (for reading
    /// a description generically; strategies use the typed accessors).
    pub fn get(&self, name: &str) -> Option<ParamValue> {
        self.defs
            .iter()
            .position(|d| d.name == name)
            .map(|at| self.values[at])
    }

    /// The value of `def`. Accessors take the declaration itself, so a
    /// misspelled name does not compile; a declaration the strategy does
    /// not list is a bug caught by the tests (every registered type is
    /// built from its defaults, with debug assertions on) and otherwise
    /// reads as the declaration's default — never as 0, NaN or "".
    fn value(&self, def: &ParamDef) -> ParamValue {
        match self.get(def.name) {
            Some(value) => value,
            None => {
                debug_assert!(false, "parameter {:?} is not declared here", def.name);
                def.default
            }
        }
    }

    /// An integer parameter.
    pub fn int(&self, def: &ParamDef) -> i64 {
        match (self.value(def), def.default) {
            (ParamValue::Int(v), _) | (_, ParamValue::Int(v)) => v,
            _ => {
                debug_assert!(false, "parameter {:?} is not an integer", def.name);
                0
            }
        }
    }

    /// A float parameter; integer values widen.
    pub fn float(&self, def: &ParamDef) -> f64 {
        match (self.value(def), def.default) {
            (ParamValue::Float(v), _) | (_, ParamValue::Float(v)) => v,
            (ParamValue::Int(v), _) | (_, ParamValue::Int(v)) => v as f64,
            _ => {
                debug_assert!(false, "parameter {:?} is not a number", def.name);
                0.0
            }
        }
    }

    /// A choice parameter.
    pub fn choice(&self, def: &ParamDef) -> &'static str {
        match (self.value(def), def.default) {
            (ParamValue::Choice(v), _) | (_, ParamValue::Choice(v)) => v,
            _ => {
                debug_assert!(false, "parameter {:?} is not a choice", def.name);
                ""
            }
        }
    }

    /// A count parameter (validated non-negative at load).
    pub fn count(&self, def: &ParamDef) -> usize {
        usize::try_from(self.int(def)).unwrap_or(0)
    }

    /// A quantity parameter (validated positive at load).
    pub fn quantity(&self, def: &ParamDef) -> u64 {
        u64::try_from(self.int(def)).unwrap_or(0)
    }
}

/// Parameters every top-level strategy row accepts: the standard validator's.
pub const VALIDATOR_PARAMS: &[ParamDef] = &[MIN_CONFIDENCE, MAX_QUANTITY];

pub const MIN_CONFIDENCE: ParamDef = ParamDef {
    name: "min_confidence",
    kind: ParamKind::unit_interval(),
    default: ParamValue::Float(0.0),
    doc: "signals below this confidence are dropped",
};

pub const MAX_QUANTITY: ParamDef = ParamDef {
    name: "max_quantity",
    kind: ParamKind::int_at_least(1),
    default: ParamValue::Int(1_000_000_000),
    doc: "signals above this quantity are dropped",
};

#[cfg(test)]
mod tests {
    use super::*;

    const LOOKBACK: ParamDef = ParamDef {
        name: "lookback_periods",
        kind: ParamKind::int_at_least(2),
        default: ParamValue::Int(20),
        doc: "",
    };

    #[test]
    fn long_texts_are_quoted_by_their_beginning() {
        assert_eq!(quote_truncated("abc"), "\"abc\"");
        let long = "x".repeat(100);
        assert_eq!(
            quote_truncated(&long),
            format!("\"{}\"… (100 characters)", "x".repeat(60))
        );
    }

    #[test]
    fn messages_name_the_rule_and_the_value() {
        assert_eq!(
            LOOKBACK.check(&RawParam::Int(0)).unwrap_err(),
            "must be >= 2, got 0"
        );
        assert_eq!(
            LOOKBACK.check(&RawParam::Float(2.5)).unwrap_err(),
            "expected an integer, got 2.5"
        );
        assert_eq!(
            LOOKBACK.check(&RawParam::Float(20.0)).unwrap_err(),
            "expected an integer, got 20.0"
        );
        assert_eq!(
            LOOKBACK.check(&RawParam::Text("ten")).unwrap_err(),
            "expected an integer, got \"ten\""
        );
        let threshold = ParamDef {
            name: "threshold",
            kind: ParamKind::positive_float(),
            default: ParamValue::Float(0.01),
            doc: "",
        };
        assert_eq!(
            threshold.check(&RawParam::Int(0)).unwrap_err(),
            "must be > 0, got 0"
        );
        assert_eq!(
            threshold.check(&RawParam::Int(1)),
            Ok(ParamValue::Float(1.0))
        );
        let conf = VALIDATOR_PARAMS[0];
        assert_eq!(
            conf.check(&RawParam::Float(1.5)).unwrap_err(),
            "must be >= 0 and <= 1, got 1.5"
        );
        let policy = ParamDef {
            name: "policy",
            kind: ParamKind::Choice(&["a", "b"]),
            default: ParamValue::Choice("a"),
            doc: "",
        };
        assert_eq!(
            policy.check(&RawParam::Text("c")).unwrap_err(),
            "must be one of a, b, got \"c\""
        );
    }
}
