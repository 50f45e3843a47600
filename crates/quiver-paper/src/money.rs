//! Exact money and rates.
//!
//! Money is an `i128` of 10⁻⁸ units, the scale of [`Price`], so a price
//! times a quantity is exact and sums of them never round. Rates (fees,
//! slippage, spreads, given in basis points) are fractions in 10⁻⁸ units;
//! applying one rounds once, half away from zero, to the nearest 10⁻⁸.

use std::fmt;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use quiver_core::Price;

const SCALE: i128 = 100_000_000;

/// An exact amount of money in 10⁻⁸ units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i128);

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_units(units: i128) -> Money {
        Money(units)
    }

    pub const fn units(self) -> i128 {
        self.0
    }

    /// A whole amount.
    pub const fn from_int(value: i64) -> Money {
        Money(value as i128 * SCALE)
    }

    /// `price × quantity`, signed by `quantity`.
    pub fn notional(price: Price, quantity: i64) -> Money {
        Money(i128::from(price.units()) * i128::from(quantity))
    }

    pub fn abs(self) -> Money {
        Money(self.0.abs())
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// `self × rate`, rounded half away from zero.
    pub fn times(self, rate: Rate) -> Money {
        Money(mul_round(self.0, i128::from(rate.0)))
    }

    /// The nearest `f64` (for statistics and plots, never for sums).
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, other: Money) -> Money {
        Money(self.0 + other.0)
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, other: Money) -> Money {
        Money(self.0 - other.0)
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, other: Money) {
        self.0 += other.0;
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, other: Money) {
        self.0 -= other.0;
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl fmt::Display for Money {
    /// The shortest exact decimal, as [`Price`] prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let int = abs / SCALE as u128;
        let mut frac = abs % SCALE as u128;
        if frac == 0 {
            return write!(f, "{sign}{int}");
        }
        let mut width = 8usize;
        while frac.is_multiple_of(10) {
            frac /= 10;
            width -= 1;
        }
        write!(f, "{sign}{int}.{frac:0width$}")
    }
}

/// A non-negative fraction in 10⁻⁸ units: 1 bp is 10,000 units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(i64);

impl Rate {
    pub const ZERO: Rate = Rate(0);

    /// A rate of `bps` basis points, when it is a finite, non-negative
    /// multiple of 0.0001 bp no larger than 10,000 bp (the whole amount).
    pub fn from_bps(bps: f64) -> Option<Rate> {
        if !bps.is_finite() || !(0.0..=10_000.0).contains(&bps) {
            return None;
        }
        let units = (bps * 10_000.0).round();
        ((units - bps * 10_000.0).abs() < 1e-6).then_some(Rate(units as i64))
    }

    pub const fn from_units(units: i64) -> Rate {
        Rate(units)
    }

    pub const fn units(self) -> i64 {
        self.0
    }

    /// The rate in basis points (for printing).
    pub fn bps(self) -> f64 {
        self.0 as f64 / 10_000.0
    }

    /// Half the rate, rounded down to a unit (half a spread).
    pub fn half(self) -> Rate {
        Rate(self.0 / 2)
    }
}

impl Add for Rate {
    type Output = Rate;
    fn add(self, other: Rate) -> Rate {
        Rate(self.0.saturating_add(other.0))
    }
}

/// `price` moved by `rate` against a trader buying (`up`) or selling,
/// rounded half away from zero to the nearest 10⁻⁸.
pub fn adjust(price: Price, rate: Rate, up: bool) -> Price {
    let delta = mul_round(i128::from(price.units()), i128::from(rate.0));
    let delta = i64::try_from(delta).unwrap_or(i64::MAX);
    Price::from_units(if up {
        price.units().saturating_add(delta)
    } else {
        price.units().saturating_sub(delta)
    })
}

/// `a × b / 10⁸`, rounded half away from zero.
fn mul_round(a: i128, b: i128) -> i128 {
    // Most products (a fee on a notional, a price moved by some bps) fit a
    // u64, whose division by a constant is a multiply, not a call.
    if let (Ok(x), Ok(y)) = (
        u64::try_from(a.unsigned_abs()),
        u64::try_from(b.unsigned_abs()),
    ) {
        if let Some(p) = x.checked_mul(y) {
            const S: u64 = SCALE as u64;
            let q = p / S + u64::from(p % S * 2 >= S);
            let q = i128::from(q);
            return if (a < 0) != (b < 0) { -q } else { q };
        }
    }
    let product = a.saturating_mul(b);
    let (q, r) = (product / SCALE, product % SCALE);
    if r.abs() * 2 >= SCALE {
        q + product.signum()
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Price {
        Price::parse(text).unwrap()
    }

    #[test]
    fn notional_is_exact_and_prints_as_a_decimal() {
        let m = Money::notional(p("101.05"), 3);
        assert_eq!(m.to_string(), "303.15");
        assert_eq!(
            Money::notional(p("0.00000001"), -7).to_string(),
            "-0.00000007"
        );
        assert_eq!(Money::from_int(5).to_string(), "5");
    }

    #[test]
    fn rates_round_half_away_from_zero_once() {
        let three_bps = Rate::from_bps(3.0).unwrap();
        assert_eq!(three_bps.units(), 30_000);
        // 303.15 × 0.0003 = 0.090945
        assert_eq!(
            Money::notional(p("101.05"), 3).times(three_bps).to_string(),
            "0.090945"
        );
        // 0.00000005 × 0.5 = 0.000000025 → 0.00000003 (half away from zero)
        let half = Rate::from_bps(5_000.0).unwrap();
        assert_eq!(Money::from_units(5).times(half), Money::from_units(3));
        assert_eq!(Money::from_units(-5).times(half), Money::from_units(-3));
    }

    #[test]
    fn the_fast_and_the_wide_products_round_alike() {
        let wide = |a: i128, b: i128| {
            let product = a * b;
            let (q, r) = (product / SCALE, product % SCALE);
            if r.abs() * 2 >= SCALE {
                q + product.signum()
            } else {
                q
            }
        };
        for (a, b) in [
            (5, 50_000_000),
            (-5, 50_000_000),
            (15, -10_000_000),
            (123_456_789_012, 30_000),
            (-987_654_321, 12_345),
            (i128::from(u64::MAX), 3),
            (1 << 70, -7),
        ] {
            assert_eq!(mul_round(a, b), wide(a, b), "{a} × {b}");
        }
    }

    #[test]
    fn only_representable_rates_are_accepted() {
        assert_eq!(Rate::from_bps(0.0001).map(Rate::units), Some(1));
        assert_eq!(Rate::from_bps(0.00001), None);
        assert_eq!(Rate::from_bps(-1.0), None);
        assert_eq!(Rate::from_bps(f64::NAN), None);
        assert_eq!(Rate::from_bps(10_001.0), None);
    }

    #[test]
    fn adjusting_a_price_moves_it_against_the_trader() {
        let one_bp = Rate::from_bps(1.0).unwrap();
        assert_eq!(adjust(p("100"), one_bp, true), p("100.01"));
        assert_eq!(adjust(p("100"), one_bp, false), p("99.99"));
    }
}
