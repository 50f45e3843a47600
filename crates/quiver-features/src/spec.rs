//! Feature specifications: `sma(20)`, `rsi(14)`, `zscore(20)`, …

use std::fmt;
use std::str::FromStr;

/// Longest window a feature may have.
pub const MAX_WINDOW: u32 = 100_000;

/// One indicator over one window length. Parsed from and printed as `name(n)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeatureSpec {
    /// Simple moving average of the last `n` prices (exact decimal sum).
    Sma(u32),
    /// Exponential moving average, `alpha = 2/(n+1)`, seeded with the SMA of the
    /// first `n` prices (TA-Lib's convention).
    Ema(u32),
    /// Wilder's RSI over `n` changes (TA-Lib's convention).
    Rsi(u32),
    /// RSI from simple sums of gains and losses over the last `n` changes.
    RsiSimple(u32),
    /// Simple return over `n` ticks: `p_t / p_{t-n} − 1`, as `(p_t − p_{t-n}) / p_{t-n}`.
    Returns(u32),
    /// `ln(p_t / p_{t-n})`.
    LogReturn(u32),
    /// Population std-dev of the last `n` one-tick simple returns.
    Volatility(u32),
    /// `(p − mean) / pstdev` over the last `n` prices, current included,
    /// rounded exactly as Python's `statistics` (a zero deviation counts as 1e-9).
    ZScore(u32),
    /// Population skewness of the last `n` prices (0 for a flat window).
    Skew(u32),
    /// Lowest of the last `n` prices.
    Min(u32),
    /// Highest of the last `n` prices.
    Max(u32),
    /// Volume-weighted average price of the last `n` ticks (exact sums).
    Vwap(u32),
}

/// Why a feature spec string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("{0:?} is not a feature spec (expected name(n), e.g. sma(20))")]
    Malformed(String),
    #[error("unknown feature {name:?} (expected {})", FeatureSpec::NAMES.join(", "))]
    UnknownName { name: String },
    #[error("{spec:?}: window must be an integer between {min} and {MAX_WINDOW}")]
    BadWindow { spec: String, min: u32 },
}

impl FeatureSpec {
    pub const NAMES: &'static [&'static str] = &[
        "sma",
        "ema",
        "rsi",
        "rsi_simple",
        "returns",
        "log_return",
        "volatility",
        "zscore",
        "skew",
        "min",
        "max",
        "vwap",
    ];

    pub const fn name(self) -> &'static str {
        match self {
            FeatureSpec::Sma(_) => "sma",
            FeatureSpec::Ema(_) => "ema",
            FeatureSpec::Rsi(_) => "rsi",
            FeatureSpec::RsiSimple(_) => "rsi_simple",
            FeatureSpec::Returns(_) => "returns",
            FeatureSpec::LogReturn(_) => "log_return",
            FeatureSpec::Volatility(_) => "volatility",
            FeatureSpec::ZScore(_) => "zscore",
            FeatureSpec::Skew(_) => "skew",
            FeatureSpec::Min(_) => "min",
            FeatureSpec::Max(_) => "max",
            FeatureSpec::Vwap(_) => "vwap",
        }
    }

    pub const fn window(self) -> u32 {
        match self {
            FeatureSpec::Sma(n)
            | FeatureSpec::Ema(n)
            | FeatureSpec::Rsi(n)
            | FeatureSpec::RsiSimple(n)
            | FeatureSpec::Returns(n)
            | FeatureSpec::LogReturn(n)
            | FeatureSpec::Volatility(n)
            | FeatureSpec::ZScore(n)
            | FeatureSpec::Skew(n)
            | FeatureSpec::Min(n)
            | FeatureSpec::Max(n)
            | FeatureSpec::Vwap(n) => n,
        }
    }

    /// Smallest window that makes sense for this feature.
    const fn min_window(name: &str) -> u32 {
        match name.as_bytes() {
            b"zscore" | b"skew" | b"volatility" | b"rsi" | b"rsi_simple" => 2,
            _ => 1,
        }
    }

    /// Ticks of history (current included) before the feature has a value.
    pub const fn warmup(self) -> usize {
        let n = self.window() as usize;
        match self {
            FeatureSpec::Rsi(_)
            | FeatureSpec::RsiSimple(_)
            | FeatureSpec::Returns(_)
            | FeatureSpec::LogReturn(_)
            | FeatureSpec::Volatility(_) => n + 1,
            _ => n,
        }
    }

    /// Whether the value depends only on the last [`ring_needed`] ticks.
    /// EMA and Wilder's RSI are recursions over every tick since the first:
    /// reproducing their exact value after a restart takes the whole history,
    /// not a window of it.
    ///
    /// [`ring_needed`]: FeatureSpec::ring_needed
    pub const fn has_finite_memory(self) -> bool {
        !matches!(self, FeatureSpec::Ema(_) | FeatureSpec::Rsi(_))
    }

    /// Ticks the shared history ring must hold to update this feature in O(1):
    /// the window plus the value leaving it.
    pub const fn ring_needed(self) -> usize {
        self.warmup() + 1
    }
}

impl fmt::Display for FeatureSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.window())
    }
}

impl FromStr for FeatureSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let malformed = || SpecError::Malformed(text.to_owned());
        let trimmed = text.trim();
        let (name, rest) = trimmed.split_once('(').ok_or_else(malformed)?;
        let arg = rest.strip_suffix(')').ok_or_else(malformed)?;
        let name = name.trim();
        if !FeatureSpec::NAMES.contains(&name) {
            return Err(SpecError::UnknownName {
                name: name.to_owned(),
            });
        }
        let min = FeatureSpec::min_window(name);
        let n: u32 = arg
            .trim()
            .parse()
            .ok()
            .filter(|n| (min..=MAX_WINDOW).contains(n))
            .ok_or_else(|| SpecError::BadWindow {
                spec: text.to_owned(),
                min,
            })?;
        Ok(match name {
            "sma" => FeatureSpec::Sma(n),
            "ema" => FeatureSpec::Ema(n),
            "rsi" => FeatureSpec::Rsi(n),
            "rsi_simple" => FeatureSpec::RsiSimple(n),
            "returns" => FeatureSpec::Returns(n),
            "log_return" => FeatureSpec::LogReturn(n),
            "volatility" => FeatureSpec::Volatility(n),
            "zscore" => FeatureSpec::ZScore(n),
            "skew" => FeatureSpec::Skew(n),
            "min" => FeatureSpec::Min(n),
            "max" => FeatureSpec::Max(n),
            _ => FeatureSpec::Vwap(n),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_spec() {
        for name in FeatureSpec::NAMES {
            let text = format!("{name}(20)");
            let spec: FeatureSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), text);
            assert_eq!(spec.window(), 20);
        }
        assert_eq!(" zscore( 20 ) ".parse(), Ok(FeatureSpec::ZScore(20)));
    }

    #[test]
    fn refuses_bad_specs_with_a_reason() {
        let err = |s: &str| s.parse::<FeatureSpec>().unwrap_err().to_string();
        assert_eq!(
            err("sma20"),
            "\"sma20\" is not a feature spec (expected name(n), e.g. sma(20))"
        );
        assert!(err("smaa(20)").starts_with("unknown feature \"smaa\" (expected sma, ema"));
        assert_eq!(
            err("zscore(1)"),
            "\"zscore(1)\": window must be an integer between 2 and 100000"
        );
        assert_eq!(
            err("sma(0)"),
            "\"sma(0)\": window must be an integer between 1 and 100000"
        );
        assert!(err("sma(x)").contains("window must be an integer"));
        assert!(err("sma(20").contains("is not a feature spec"));
    }

    #[test]
    fn warmups() {
        assert_eq!(FeatureSpec::Sma(20).warmup(), 20);
        assert_eq!(FeatureSpec::Rsi(14).warmup(), 15);
        assert_eq!(FeatureSpec::Returns(5).warmup(), 6);
        assert_eq!(FeatureSpec::ZScore(20).ring_needed(), 21);
    }
}
