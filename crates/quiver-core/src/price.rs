//! Exact decimal prices.
//!
//! A price is a fixed-point integer of 10⁻⁸ units, so `101.05` is stored as
//! `10_105_000_000` and printed back as `101.05` with no float round-trip.
//! Strategies that need floats get [`Price::to_f64`], the nearest double to
//! the exact decimal, which is what Python's `float(Decimal("101.05"))` gives.

use std::fmt;
use std::str::FromStr;

/// Number of fractional decimal digits a [`Price`] keeps.
pub const PRICE_DECIMALS: u32 = 8;
const SCALE: i64 = 100_000_000;
/// Largest integer below which `units as f64` is exact.
const F64_EXACT_INT: i64 = 1 << 53;

/// An exact decimal price with [`PRICE_DECIMALS`] fractional digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Price(i64);

/// Why a string is not a price.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("{0:?} is not a decimal")]
    NotDecimal(String),
    #[error("{0:?} has more than {PRICE_DECIMALS} decimal places")]
    TooPrecise(String),
    #[error("{0:?} is out of range")]
    OutOfRange(String),
}

impl Price {
    /// The zero price (never valid on a tick, useful as a neutral value).
    pub const ZERO: Price = Price(0);

    /// A price from its raw 10⁻⁸ units.
    pub const fn from_units(units: i64) -> Self {
        Price(units)
    }

    /// The raw 10⁻⁸ units.
    pub const fn units(self) -> i64 {
        self.0
    }

    /// A whole-number price, for tests and generators (saturating at the
    /// representable range rather than wrapping).
    pub const fn from_int(value: i64) -> Self {
        Price(value.saturating_mul(SCALE))
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// The nearest `f64` to the exact decimal value (correctly rounded).
    pub fn to_f64(self) -> f64 {
        if self.0.abs() < F64_EXACT_INT {
            // Both operands are exact doubles, so IEEE division rounds the exact
            // quotient once: the nearest double to the decimal.
            self.0 as f64 / SCALE as f64
        } else {
            // Rare (prices above ~9·10⁷): let the correctly rounded parser do it.
            self.to_string().parse().unwrap_or(f64::NAN)
        }
    }

    /// Parses a plain decimal (`101.05`, `-3`, `0.50`); no exponents, no spaces.
    pub fn parse(text: &str) -> Result<Price, PriceError> {
        let not_decimal = || PriceError::NotDecimal(text.to_owned());
        let out_of_range = || PriceError::OutOfRange(text.to_owned());
        let bytes = text.as_bytes();
        let (negative, digits) = match bytes.first() {
            Some(b'-') => (true, &bytes[1..]),
            Some(b'+') => (false, &bytes[1..]),
            _ => (false, bytes),
        };
        let (int_part, frac_part) = match digits.iter().position(|&b| b == b'.') {
            Some(dot) => (&digits[..dot], &digits[dot + 1..]),
            None => (digits, &digits[digits.len()..]),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(not_decimal());
        }
        if !int_part.iter().chain(frac_part).all(u8::is_ascii_digit) {
            return Err(not_decimal());
        }
        let significant_frac =
            frac_part.len() - frac_part.iter().rev().take_while(|&&b| b == b'0').count();
        if significant_frac > PRICE_DECIMALS as usize {
            return Err(PriceError::TooPrecise(text.to_owned()));
        }
        let mut units: i64 = 0;
        for &b in int_part {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(i64::from(b - b'0')))
                .ok_or_else(out_of_range)?;
        }
        units = units.checked_mul(SCALE).ok_or_else(out_of_range)?;
        let mut frac_scale = SCALE;
        for &b in &frac_part[..significant_frac] {
            frac_scale /= 10;
            // Checked: an integer part near the limit plus a fraction would
            // otherwise wrap, and a wrapped negative price reads as positive.
            units = units
                .checked_add(i64::from(b - b'0') * frac_scale)
                .ok_or_else(out_of_range)?;
        }
        Ok(Price(if negative { -units } else { units }))
    }
}

impl FromStr for Price {
    type Err = PriceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Price::parse(s)
    }
}

impl fmt::Display for Price {
    /// Prints the shortest exact decimal: trailing zeros and a bare `.` removed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let int = abs / SCALE as u64;
        let mut frac = abs % SCALE as u64;
        if frac == 0 {
            return write!(f, "{sign}{int}");
        }
        let mut width = PRICE_DECIMALS as usize;
        while frac.is_multiple_of(10) {
            frac /= 10;
            width -= 1;
        }
        write!(f, "{sign}{int}.{frac:0width$}")
    }
}

impl fmt::Debug for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Price({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints_exactly() {
        for (text, printed) in [
            ("101.05", "101.05"),
            ("101.050", "101.05"),
            ("101.00", "101"),
            ("0.5", "0.5"),
            (".5", "0.5"),
            ("7.", "7"),
            ("-2.25", "-2.25"),
            ("0.00000001", "0.00000001"),
            ("123456789.12345678", "123456789.12345678"),
        ] {
            assert_eq!(Price::parse(text).unwrap().to_string(), printed, "{text}");
        }
    }

    #[test]
    fn rejects_non_decimals() {
        for text in [
            "", "abc", "1e5", "1.2.3", " 1", "1,5", "-", ".", "NaN", "inf",
        ] {
            assert!(
                matches!(Price::parse(text), Err(PriceError::NotDecimal(_))),
                "{text:?}"
            );
        }
        assert_eq!(
            Price::parse("abc").unwrap_err().to_string(),
            "\"abc\" is not a decimal"
        );
        assert!(matches!(
            Price::parse("1.000000001"),
            Err(PriceError::TooPrecise(_))
        ));
        assert!(matches!(
            Price::parse("99999999999999999999"),
            Err(PriceError::OutOfRange(_))
        ));
    }

    #[test]
    fn the_fraction_cannot_wrap_a_price_past_its_range() {
        // i64::MAX units is 92233720368.54775807: the largest price.
        let max = Price::parse("92233720368.54775807").unwrap();
        assert_eq!(max.units(), i64::MAX);
        assert_eq!(
            Price::parse("-92233720368.54775807").unwrap().units(),
            -i64::MAX
        );
        for text in [
            "92233720368.54775808",
            "92233720368.99999999",
            "-92233720368.99999999",
            "+92233720368.6",
        ] {
            assert_eq!(
                Price::parse(text),
                Err(PriceError::OutOfRange(text.to_owned())),
                "{text}"
            );
        }
        assert_eq!(Price::from_int(i64::MAX).units(), i64::MAX);
    }

    #[test]
    fn to_f64_matches_the_correctly_rounded_parse() {
        for text in [
            "101.05",
            "0.1",
            "0.3",
            "99.95",
            "1234.56789",
            "100000000.05",
        ] {
            let exact: f64 = text.parse().unwrap();
            assert_eq!(Price::parse(text).unwrap().to_f64(), exact, "{text}");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(units in -10_000_000_000_000_000i64..10_000_000_000_000_000) {
            let price = Price::from_units(units);
            prop_assert_eq!(Price::parse(&price.to_string()).unwrap(), price);
            let parsed: f64 = price.to_string().parse().unwrap();
            prop_assert_eq!(price.to_f64(), parsed);
        }
    }
}
