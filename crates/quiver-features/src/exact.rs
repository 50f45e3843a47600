//! Correctly rounded mean and population standard deviation of doubles.
//!
//! The seed's mean-reversion strategy uses Python's `statistics.mean` and
//! `statistics.pstdev`, which compute exactly on the rational values of the
//! input floats and round once at the end. Reproducing that rounding is what
//! makes exact-threshold ties (`z == z_entry`) resolve as the seed's do; a naive
//! `sum / n` differs in the last bit often enough to flip them.
//!
//! Every finite double is `m · 2^e` with an integer `m < 2^53`, so a window of
//! doubles is a set of integers over a common power of two. Sums and sums of
//! squared deviations are then exact in 128-bit integers, and the final
//! division and square root are rounded once, to nearest-even. When a window
//! would overflow 128 bits (values spanning 2^60 or more, or more than 512 of
//! them), [`mean`] and [`pstdev`] fall back to ordinary two-pass `f64`
//! arithmetic, which is then within a few ulps.

const MANTISSA_BITS: u32 = 53;
/// Beyond this many values the square root loses its rounding bit.
const MAX_EXACT_LEN: usize = 512;

/// `(statistics.mean(xs), statistics.pstdev(xs))`, the strategies' entry point.
///
/// Windows of positive prices take a fast route: the sums are exact 64/128-bit
/// integers as below, but instead of dividing and taking square roots in
/// 128-bit arithmetic, an `f64` estimate is checked against the two rounding
/// midpoints around it with exact integer comparisons (multiplications only)
/// and nudged by one ulp when it is on the wrong side. Anything unusual takes
/// the general route.
pub fn mean_and_pstdev(xs: &[f64]) -> (f64, f64) {
    match positive_window(xs) {
        Some(both) => both,
        None => (mean(xs), pstdev(xs)),
    }
}

/// `statistics.mean(xs)` for finite doubles; NaN for an empty slice.
pub fn mean(xs: &[f64]) -> f64 {
    match Fixed::of(xs) {
        Some(fixed) => fixed.mean(),
        None => naive_mean(xs),
    }
}

/// `statistics.pstdev(xs)` for finite doubles; NaN for an empty slice.
pub fn pstdev(xs: &[f64]) -> f64 {
    match Fixed::of(xs).and_then(|fixed| fixed.pstdev()) {
        Some(sigma) => sigma,
        None => naive_pstdev(xs),
    }
}

fn naive_mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn naive_pstdev(xs: &[f64]) -> f64 {
    let mu = naive_mean(xs);
    (xs.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / xs.len() as f64).sqrt()
}

/// The window as integers `ints[i] · 2^exp`, all non-negative after an offset
/// is taken out: `xs[i] = (base + offsets[i]) · 2^exp`.
struct Fixed {
    sum: i128,
    n: u32,
    exp: i32,
    /// Σ (v - min)² and Σ (v - min), exact, for the variance.
    sum_sq_dev: Option<u128>,
    sum_dev: u128,
}

/// `x = mantissa · 2^exp` with an integer mantissa (sign carried by it).
fn decompose(x: f64) -> (i64, i32) {
    let bits = x.to_bits();
    let exp_bits = ((bits >> 52) & 0x7ff) as i32;
    let frac = (bits & ((1u64 << 52) - 1)) as i64;
    let (mantissa, exp) = if exp_bits == 0 {
        (frac, -1074)
    } else {
        (frac | (1i64 << 52), exp_bits - 1075)
    };
    if x.is_sign_negative() {
        (-mantissa, exp)
    } else {
        (mantissa, exp)
    }
}

impl Fixed {
    fn of(xs: &[f64]) -> Option<Fixed> {
        if xs.is_empty() || xs.len() > MAX_EXACT_LEN || !xs.iter().all(|x| x.is_finite()) {
            return None;
        }
        let exp = xs
            .iter()
            .filter(|x| **x != 0.0)
            .map(|&x| decompose(x).1)
            .min()
            .unwrap_or(0);
        let to_int = |x: f64| -> Option<i128> {
            let (m, e) = decompose(x);
            let shift = u32::try_from(e - exp).ok()?;
            if m == 0 {
                return Some(0);
            }
            // Leave room for the sum of up to MAX_EXACT_LEN values.
            (shift + MANTISSA_BITS <= 116).then(|| i128::from(m) << shift)
        };
        let mut sum: i128 = 0;
        let mut min = i128::MAX;
        for &x in xs {
            let v = to_int(x)?;
            sum += v;
            min = min.min(v);
        }
        let mut sum_dev: u128 = 0;
        let mut sum_sq_dev: Option<u128> = Some(0);
        for &x in xs {
            let dev = u128::try_from(to_int(x)? - min).ok()?;
            sum_dev += dev;
            sum_sq_dev =
                sum_sq_dev.and_then(|acc| dev.checked_mul(dev).and_then(|sq| acc.checked_add(sq)));
        }
        Some(Fixed {
            sum,
            n: xs.len() as u32,
            exp,
            sum_sq_dev,
            sum_dev,
        })
    }

    fn mean(&self) -> f64 {
        let negative = self.sum < 0;
        let magnitude = round_ratio(self.sum.unsigned_abs(), u128::from(self.n), self.exp);
        if negative {
            -magnitude
        } else {
            magnitude
        }
    }

    /// sqrt(Σ(v - mean)² / n) = sqrt(n·Σd² − (Σd)²) / n, with d = v − min.
    fn pstdev(&self) -> Option<f64> {
        let n = u128::from(self.n);
        let scaled = n.checked_mul(self.sum_sq_dev?)?;
        let square_of_sum = self.sum_dev.checked_mul(self.sum_dev)?;
        let v = scaled.checked_sub(square_of_sum)?;
        if v == 0 {
            return Some(0.0);
        }
        // Scale v by 4^k so its square root carries ≥ 63 bits.
        let k = (v.leading_zeros() / 2) as i32;
        let y = v << (2 * k);
        let root = y.isqrt();
        let inexact_root = root * root != y;
        let quotient = root / n;
        let sticky = inexact_root || !root.is_multiple_of(n);
        Some(round_to_f64(quotient, sticky, self.exp - k))
    }
}

/// Fast-route windows span less than this ratio (max < 32 · min), so every
/// integer below fits in 58 bits and no per-element sum can overflow.
const MAX_FAST_RATIO: f64 = 32.0;

fn positive_window(xs: &[f64]) -> Option<(f64, f64)> {
    let n = xs.len();
    if n == 0 || n > MAX_EXACT_LEN {
        return None;
    }
    let (mut min, mut max) = (f64::INFINITY, 0.0);
    for &x in xs {
        // Also refuses NaN, zero, negatives and subnormals.
        if !(f64::MIN_POSITIVE..=f64::MAX).contains(&x) {
            return None;
        }
        if x < min {
            min = x;
        }
        if x > max {
            max = x;
        }
    }
    if max >= min * MAX_FAST_RATIO {
        return None;
    }
    let mut sums = ExactSums::anchored_at(min)?;
    for &x in xs {
        sums.add(x)?;
    }
    sums.mean_and_pstdev()
}

/// Exact running sums of a window of positive doubles, for O(1) rolling
/// updates: every value is an integer multiple of `2^exp`, kept as its
/// deviation from an anchor, so adding and removing values is exact and the
/// window's mean and population std-dev can be rounded exactly at any time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExactSums {
    n: u64,
    exp: i32,
    anchor: i64,
    sum_dev: i128,
    sum_sq_dev: u128,
}

/// Values must stay below this many units of `2^exp` (so deviations fit in
/// 63 bits and squares in 126).
const MAX_UNITS: f64 = 4_611_686_018_427_387_904.0; // 2^62

impl ExactSums {
    /// Empty sums whose unit is the least significant bit of `anchor`, which
    /// must be a positive normal double. Values with a smaller exponent than
    /// `anchor` cannot be added (see [`ExactSums::add`]).
    pub fn anchored_at(anchor: f64) -> Option<ExactSums> {
        if !(f64::MIN_POSITIVE..=f64::MAX).contains(&anchor) {
            return None;
        }
        let (mantissa, exp) = decompose(anchor);
        Some(ExactSums {
            n: 0,
            exp,
            anchor: mantissa,
            sum_dev: 0,
            sum_sq_dev: 0,
        })
    }

    /// `x` in units of `2^exp`, when that is exact and in range.
    #[inline]
    fn units(&self, x: f64) -> Option<i64> {
        let scaled = x * pow2(-self.exp)?;
        // In range and integral: a smaller exponent than `exp` leaves a fraction.
        if !(0.0..MAX_UNITS).contains(&scaled) || scaled.fract() != 0.0 {
            return None;
        }
        Some(scaled as i64)
    }

    /// Adds `x`; `None` (sums unchanged) if it cannot be held exactly.
    #[inline]
    pub fn add(&mut self, x: f64) -> Option<()> {
        let dev = i128::from(self.units(x)? - self.anchor);
        let sq = u128::try_from(dev * dev).ok()?;
        self.sum_sq_dev = self.sum_sq_dev.checked_add(sq)?;
        self.sum_dev += dev;
        self.n += 1;
        Some(())
    }

    /// Removes `x`, which must have been added; `None` if it is not representable.
    #[inline]
    pub fn remove(&mut self, x: f64) -> Option<()> {
        let dev = i128::from(self.units(x)? - self.anchor);
        let sq = u128::try_from(dev * dev).ok()?;
        self.sum_sq_dev = self.sum_sq_dev.checked_sub(sq)?;
        self.sum_dev -= dev;
        self.n = self.n.checked_sub(1)?;
        Some(())
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Correctly rounded `(mean, pstdev)` of the values held, or `None` when the
    /// fast verification cannot decide (the caller then uses [`mean`]/[`pstdev`]).
    pub fn mean_and_pstdev(&self) -> Option<(f64, f64)> {
        if self.n == 0 || self.n > MAX_EXACT_LEN as u64 {
            return None;
        }
        let n = u128::from(self.n);
        let total = i128::try_from(n)
            .ok()?
            .checked_mul(i128::from(self.anchor))?
            .checked_add(self.sum_dev)?;
        let mean = verified_ratio(u128::try_from(total).ok()?, self.n, self.exp)?;
        let sum_dev = self.sum_dev.unsigned_abs();
        let spread = n
            .checked_mul(self.sum_sq_dev)?
            .checked_sub(sum_dev.checked_mul(sum_dev)?)?;
        let sigma = if spread == 0 {
            0.0
        } else {
            verified_sqrt_ratio(spread, self.n, self.exp)?
        };
        Some((mean, sigma))
    }
}

/// `2^exp` for a normal-range exponent.
fn pow2(exp: i32) -> Option<f64> {
    (-1022..=1023)
        .contains(&exp)
        .then(|| f64::from_bits(((1023 + exp) as u64) << 52))
}

/// Where the exact value lies relative to the rounding midpoints of a candidate.
enum Verdict {
    Correct,
    Up,
    Down,
}

/// Checks candidate `c` (positive normal) for the exact value `t`, given
/// `cmp(mid_num, mid_exp)` = ordering of `t` against `mid_num · 2^mid_exp`.
fn judge(c: f64, cmp: impl Fn(u128, i32) -> Option<std::cmp::Ordering>) -> Option<Verdict> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let (m, k) = decompose(c);
    let m = m as u128;
    let even = m & 1 == 0;
    // Midpoint to the next double up, and down (one binade lower at 2^52).
    let up = cmp(2 * m + 1, k - 1)?;
    let down = if m == 1 << 52 {
        cmp(4 * m - 1, k - 2)?
    } else {
        cmp(2 * m - 1, k - 1)?
    };
    Some(match (down, up) {
        (_, Greater) => Verdict::Up,
        (_, Equal) if !even => Verdict::Up,
        (Less, _) => Verdict::Down,
        (Equal, _) if !even => Verdict::Down,
        _ => Verdict::Correct,
    })
}

/// Refines an estimate of a positive value until it is the nearest double.
fn refine(mut c: f64, cmp: impl Fn(u128, i32) -> Option<std::cmp::Ordering>) -> Option<f64> {
    // The estimates are within two ulps; more steps mean something is off.
    for _ in 0..4 {
        if !(c.is_normal() && c > 0.0) {
            return None;
        }
        match judge(c, &cmp)? {
            Verdict::Correct => return Some(c),
            Verdict::Up => c = f64::from_bits(c.to_bits() + 1),
            Verdict::Down => c = f64::from_bits(c.to_bits() - 1),
        }
    }
    None
}

/// `a · 2^sa` against `b · 2^sb` for non-negative integers, exactly.
fn cmp_shifted(a: u128, sa: i32, b: u128, sb: i32) -> Option<std::cmp::Ordering> {
    let shift = |v: u128, by: i32| -> Option<u128> {
        let by = u32::try_from(by).ok()?;
        (v == 0 || by < v.leading_zeros()).then(|| v << by)
    };
    let low = sa.min(sb);
    Some(shift(a, sa - low)?.cmp(&shift(b, sb - low)?))
}

/// An estimate of `v` (within an ulp or two; `refine` makes it exact). Avoids
/// the slow software `u128 → f64` conversion for the common 64-bit case.
#[inline]
fn to_f64(v: u128) -> f64 {
    match u64::try_from(v) {
        Ok(small) => small as f64,
        Err(_) => (v >> 64) as u64 as f64 * TWO_POW_64 + (v as u64) as f64,
    }
}

const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// Nearest-even `num / den · 2^exp` (`num > 0`), from an `f64` estimate.
fn verified_ratio(num: u128, den: u64, exp: i32) -> Option<f64> {
    let estimate = to_f64(num) / den as f64 * pow2(exp)?;
    // t vs mid·2^e  ⟺  num·2^exp vs mid·den·2^e
    refine(estimate, |mid, e| {
        cmp_shifted(num, exp, mid.checked_mul(u128::from(den))?, e)
    })
}

/// Nearest-even `sqrt(w) / n · 2^exp` (`w > 0`), from an `f64` estimate.
fn verified_sqrt_ratio(w: u128, n: u64, exp: i32) -> Option<f64> {
    let estimate = to_f64(w).sqrt() / n as f64 * pow2(exp)?;
    // t vs mid·2^e  ⟺  w·2^(2·exp) vs (mid·n)²·2^(2e)
    refine(estimate, |mid, e| {
        let scaled = mid.checked_mul(u128::from(n))?;
        cmp_shifted(w, 2 * exp, scaled.checked_mul(scaled)?, 2 * e)
    })
}

/// Nearest-even `num / den · 2^exp` for `num > 0`.
fn round_ratio(num: u128, den: u128, exp: i32) -> f64 {
    if num == 0 {
        return 0.0;
    }
    let shift = num.leading_zeros();
    let shifted = num << shift;
    let quotient = shifted / den;
    let sticky = !shifted.is_multiple_of(den);
    round_to_f64(quotient, sticky, exp - shift as i32)
}

/// Nearest-even `(q + ε) · 2^exp`, where `sticky` says ε ∈ (0, 1) is non-zero.
fn round_to_f64(q: u128, sticky: bool, exp: i32) -> f64 {
    let bits = 128 - q.leading_zeros();
    if bits <= MANTISSA_BITS {
        // Only reachable for tiny inputs; the sticky bit cannot change a
        // correctly scaled result here, so this stays exact or nearly so.
        return scale(q as u64, exp);
    }
    let drop = bits - MANTISSA_BITS;
    let mut mantissa = (q >> drop) as u64;
    let rest = q & ((1u128 << drop) - 1);
    let half = 1u128 << (drop - 1);
    let round_up = rest > half || (rest == half && (sticky || mantissa & 1 == 1));
    let mut exp = exp + drop as i32;
    if round_up {
        mantissa += 1;
        if mantissa == 1 << MANTISSA_BITS {
            mantissa >>= 1;
            exp += 1;
        }
    }
    scale(mantissa, exp)
}

/// `mantissa · 2^exp`, exact while the result is a normal double.
fn scale(mantissa: u64, exp: i32) -> f64 {
    let mut value = mantissa as f64;
    let mut exp = exp;
    // Powers of two multiply exactly; step in safe chunks.
    while exp > 0 {
        let step = exp.min(1000);
        value *= f64::from_bits(((1023 + step) as u64) << 52);
        exp -= step;
    }
    while exp < 0 {
        let step = (-exp).min(1000);
        value *= f64::from_bits(((1023 - step) as u64) << 52);
        exp += step;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Values printed by CPython 3.11: statistics.mean / statistics.pstdev.
    #[test]
    fn matches_python_statistics() {
        let xs = [100.05, 100.1];
        assert_eq!(mean(&xs), 100.07499999999999);
        assert_eq!(pstdev(&xs), 0.02499999999999858);
        let xs = [0.1, 0.2, 0.3];
        assert_eq!(mean(&xs), 0.2);
        assert_eq!(pstdev(&xs), 0.0816496580927726);
        let xs = [101.05, 99.95, 100.0, 100.5, 98.25];
        assert_eq!(mean(&xs), 99.95);
        assert_eq!(pstdev(&xs), 0.9386160024205845);
        assert_eq!(pstdev(&[5.0, 5.0, 5.0]), 0.0);
        assert_eq!(mean(&[1.0, 2.0]), 1.5);
        assert_eq!(pstdev(&[1.0, 3.0]), 1.0);
    }

    #[test]
    fn handles_zero_and_negative_values() {
        assert_eq!(mean(&[0.0, 0.0]), 0.0);
        assert_eq!(mean(&[-1.5, 0.5]), -0.5);
        assert_eq!(pstdev(&[-1.0, 1.0]), 1.0);
    }

    proptest! {
        #[test]
        fn fast_route_equals_the_general_route(
            steps in proptest::collection::vec(1u32..2_000_000u32, 1..80),
            grid in prop_oneof![Just(0.05), Just(0.01), Just(1.0), Just(0.25)],
        ) {
            let xs: Vec<f64> = steps.iter().map(|&s| (f64::from(s) * grid * 100.0).round() / 100.0).collect();
            let fast = positive_window(&xs);
            prop_assume!(fast.is_some());
            prop_assert_eq!(fast.unwrap(), (mean(&xs), pstdev(&xs)));
        }

        #[test]
        fn fast_route_equals_the_general_route_on_ties(
            a in 1u32..100_000u32, b in 1u32..100_000u32, repeat in 1usize..30,
        ) {
            let mut xs = vec![f64::from(a) / 20.0; repeat];
            xs.push(f64::from(b) / 20.0);
            prop_assert_eq!(mean_and_pstdev(&xs), (mean(&xs), pstdev(&xs)));
        }

        #[test]
        fn agrees_with_naive_arithmetic_closely(
            xs in proptest::collection::vec(1u32..10_000_000u32, 2..60)
        ) {
            let xs: Vec<f64> = xs.iter().map(|&u| f64::from(u) / 100.0).collect();
            let m = mean(&xs);
            let s = pstdev(&xs);
            prop_assert!((m - naive_mean(&xs)).abs() <= 1e-12 * m.abs());
            let naive = naive_pstdev(&xs);
            prop_assert!((s - naive).abs() <= 1e-9 * naive.max(1e-9), "{s} vs {naive}");
        }
    }
}
