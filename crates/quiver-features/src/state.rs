//! The incremental state of one feature on one instrument.
//!
//! `update` is called once per tick, after the tick was appended to the
//! instrument's history ring (which holds at least `spec.ring_needed()` ticks),
//! and costs O(1): the value leaving the window is read back from the ring.
//! Sums are exact integers wherever the definition allows (SMA, VWAP, RSI
//! simple, z-score, skew); the float recursions (EMA, Wilder RSI) follow
//! TA-Lib's operation order; volatility keeps compensated float sums and is
//! recomputed from the window every [`RECOMPUTE_EVERY`] updates, so its error
//! cannot grow with the length of the run.

use quiver_core::History;

use crate::exact::{self, ExactSums};
use crate::spec::FeatureSpec;

/// Updates between exact recomputations of float rolling sums.
pub const RECOMPUTE_EVERY: u32 = 1_024;
/// 10⁻⁸: exact price units to price.
const UNIT: f64 = 1e-8;

/// Per-(instrument, spec) state.
#[derive(Debug, Clone)]
pub(crate) enum FeatureState {
    Sma {
        n: usize,
        sum: i128,
    },
    Ema(Ema),
    Rsi(WilderRsi),
    RsiSimple {
        n: usize,
        losses: i128,
    },
    Returns {
        n: usize,
    },
    LogReturn {
        n: usize,
    },
    Volatility(Volatility),
    ZScore(ZScore),
    Skew(Skew),
    Extreme(Extreme),
    Vwap {
        n: usize,
        /// Σ price units × volume over the window; `None` after an
        /// overflow, until the window's own sum fits again.
        price_volume: Option<i128>,
        volume: u128,
    },
}

impl FeatureState {
    pub(crate) fn new(spec: FeatureSpec) -> FeatureState {
        let n = spec.window() as usize;
        match spec {
            FeatureSpec::Sma(_) => FeatureState::Sma { n, sum: 0 },
            FeatureSpec::Ema(_) => FeatureState::Ema(Ema {
                n,
                alpha: 2.0 / (n as f64 + 1.0),
                seen: 0,
                seed_sum: 0.0,
                value: 0.0,
            }),
            FeatureSpec::Rsi(_) => FeatureState::Rsi(WilderRsi {
                n,
                seen: 0,
                gain: 0.0,
                loss: 0.0,
            }),
            FeatureSpec::RsiSimple(_) => FeatureState::RsiSimple { n, losses: 0 },
            FeatureSpec::Returns(_) => FeatureState::Returns { n },
            FeatureSpec::LogReturn(_) => FeatureState::LogReturn { n },
            FeatureSpec::Volatility(_) => FeatureState::Volatility(Volatility {
                n,
                sum: Neumaier::default(),
                sum_sq: Neumaier::default(),
                since_recompute: 0,
            }),
            FeatureSpec::ZScore(_) => FeatureState::ZScore(ZScore { n, sums: None }),
            FeatureSpec::Skew(_) => FeatureState::Skew(Skew {
                n,
                anchor: 0,
                sums: None,
            }),
            FeatureSpec::Min(_) => FeatureState::Extreme(Extreme::new(n, false)),
            FeatureSpec::Max(_) => FeatureState::Extreme(Extreme::new(n, true)),
            FeatureSpec::Vwap(_) => FeatureState::Vwap {
                n,
                price_volume: Some(0),
                volume: 0,
            },
        }
    }

    /// Heap bytes the state of `spec` owns, as [`FeatureState::heap_bytes`]
    /// will count it once built.
    pub(crate) fn heap_bytes_of(spec: FeatureSpec) -> usize {
        match spec {
            FeatureSpec::Min(n) | FeatureSpec::Max(n) => (n as usize)
                .max(1)
                .saturating_mul(std::mem::size_of::<(u64, f64)>()),
            _ => 0,
        }
    }

    /// Heap bytes owned by this state.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            FeatureState::Extreme(e) => e.deque.len() * std::mem::size_of::<(u64, f64)>(),
            _ => 0,
        }
    }

    /// Takes the tick that `history` now ends with; returns the feature's
    /// value, `None` while warming up.
    #[inline]
    pub(crate) fn update(&mut self, history: History<'_>) -> Option<f64> {
        let len = history.len();
        match self {
            FeatureState::Sma { n, sum } => {
                let units = history.units();
                *sum += i128::from(*units.last()?);
                if len > *n {
                    *sum -= i128::from(units[len - *n - 1]);
                }
                (len >= *n).then(|| *sum as f64 / *n as f64 * UNIT)
            }
            FeatureState::Ema(ema) => ema.update(history.current()?),
            FeatureState::Rsi(rsi) => rsi.update(history),
            FeatureState::RsiSimple { n, losses } => {
                let units = history.units();
                if len >= 2 {
                    *losses += loss(units[len - 2], units[len - 1]);
                }
                if len > *n + 1 {
                    *losses -= loss(units[len - *n - 2], units[len - *n - 1]);
                }
                (len > *n).then(|| {
                    let net = i128::from(units[len - 1] - units[len - *n - 1]);
                    rsi_from_sums(*losses + net, *losses)
                })
            }
            FeatureState::Returns { n } => {
                let start = history.back(*n + 1)?;
                let now = history.current()?;
                Some((now - start) / start)
            }
            FeatureState::LogReturn { n } => {
                let start = history.back(*n + 1)?;
                Some((history.current()? / start).ln())
            }
            FeatureState::Volatility(v) => v.update(history),
            FeatureState::ZScore(z) => z.update(history),
            FeatureState::Skew(s) => s.update(history),
            FeatureState::Extreme(e) => e.update(history.current()?),
            FeatureState::Vwap {
                n,
                price_volume,
                volume,
            } => {
                let (units, volumes) = (history.units(), history.volumes());
                let vol = volumes[len - 1] as u64;
                let leaving = (len > *n).then(|| len - *n - 1);
                // Checked: prices and volumes at the edges of their ranges
                // would wrap the sum. After an overflow the sum is taken from
                // the window again, so it recovers once the extreme ticks
                // leave it; until then the feature reads as absent.
                let rolled = price_volume.and_then(|sum| {
                    let sum = sum.checked_add(price_volume_term(units[len - 1], vol)?)?;
                    match leaving {
                        Some(i) => sum.checked_sub(price_volume_term(units[i], volumes[i] as u64)?),
                        None => Some(sum),
                    }
                });
                *price_volume = rolled.or_else(|| {
                    let start = len.saturating_sub(*n);
                    (start..len).try_fold(0i128, |sum, i| {
                        sum.checked_add(price_volume_term(units[i], volumes[i] as u64)?)
                    })
                });
                *volume += u128::from(vol);
                if let Some(i) = leaving {
                    *volume -= u128::from(volumes[i] as u64);
                }
                match *price_volume {
                    Some(sum) if len >= *n && *volume > 0 => {
                        Some(sum as f64 / *volume as f64 * UNIT)
                    }
                    _ => None,
                }
            }
        }
    }
}

/// One tick's price units × volume; `None` if it does not fit (it always
/// does for the volumes sources accept, at most 2⁵³).
#[inline]
fn price_volume_term(units: i64, volume: u64) -> Option<i128> {
    i128::from(units).checked_mul(i128::from(volume))
}

#[inline]
fn loss(before: i64, after: i64) -> i128 {
    let change = i128::from(after) - i128::from(before);
    if change < 0 {
        -change
    } else {
        0
    }
}

/// RSI from the exact sums of gains and losses (same units, any scale):
/// `100 − 100 / (1 + G/L)`, 100 when only gains, 50 on a flat window.
pub fn rsi_from_sums(gains: i128, losses: i128) -> f64 {
    if losses == 0 {
        return if gains > 0 { 100.0 } else { 50.0 };
    }
    100.0 - 100.0 / (1.0 + gains as f64 / losses as f64)
}

/// TA-Lib's EMA: the SMA of the first `n` prices, then `ema += (p − ema)·k`.
#[derive(Debug, Clone)]
pub(crate) struct Ema {
    n: usize,
    alpha: f64,
    seen: usize,
    seed_sum: f64,
    value: f64,
}

impl Ema {
    #[inline]
    fn update(&mut self, price: f64) -> Option<f64> {
        if self.seen < self.n {
            self.seen += 1;
            self.seed_sum += price;
            if self.seen < self.n {
                return None;
            }
            self.value = self.seed_sum / self.n as f64;
        } else {
            self.value += (price - self.value) * self.alpha;
        }
        Some(self.value)
    }
}

/// TA-Lib's RSI (Wilder smoothing, no unstable period).
#[derive(Debug, Clone)]
pub(crate) struct WilderRsi {
    n: usize,
    /// Changes seen so far.
    seen: usize,
    gain: f64,
    loss: f64,
}

impl WilderRsi {
    #[inline]
    fn update(&mut self, history: History<'_>) -> Option<f64> {
        let prices = history.prices();
        let len = prices.len();
        if len < 2 {
            return None;
        }
        let change = prices[len - 1] - prices[len - 2];
        let n = self.n as f64;
        self.seen += 1;
        if self.seen <= self.n {
            if change < 0.0 {
                self.loss -= change;
            } else {
                self.gain += change;
            }
            if self.seen < self.n {
                return None;
            }
            self.loss /= n;
            self.gain /= n;
        } else {
            self.loss *= n - 1.0;
            self.gain *= n - 1.0;
            if change < 0.0 {
                self.loss -= change;
            } else {
                self.gain += change;
            }
            self.loss /= n;
            self.gain /= n;
        }
        let total = self.gain + self.loss;
        // TA-Lib's TA_IS_ZERO.
        Some(if total > -1e-8 && total < 1e-8 {
            0.0
        } else {
            100.0 * (self.gain / total)
        })
    }
}

/// Neumaier-compensated running sum: the error stays O(ε) instead of O(nε).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Neumaier {
    sum: f64,
    compensation: f64,
}

impl Neumaier {
    #[inline]
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    #[inline]
    fn value(&self) -> f64 {
        self.sum + self.compensation
    }
}

/// Std-dev of one-tick simple returns.
#[derive(Debug, Clone)]
pub(crate) struct Volatility {
    n: usize,
    sum: Neumaier,
    sum_sq: Neumaier,
    since_recompute: u32,
}

#[inline]
fn one_tick_return(before: f64, after: f64) -> f64 {
    (after - before) / before
}

impl Volatility {
    fn update(&mut self, history: History<'_>) -> Option<f64> {
        let prices = history.prices();
        let len = prices.len();
        if len < 2 {
            return None;
        }
        let n = self.n;
        self.since_recompute += 1;
        if self.since_recompute >= RECOMPUTE_EVERY {
            // Exact restart from the window: float error cannot accumulate.
            self.since_recompute = 0;
            self.sum = Neumaier::default();
            self.sum_sq = Neumaier::default();
            let start = len.saturating_sub(n + 1);
            for pair in prices[start..].windows(2) {
                let r = one_tick_return(pair[0], pair[1]);
                self.sum.add(r);
                self.sum_sq.add(r * r);
            }
        } else {
            let r = one_tick_return(prices[len - 2], prices[len - 1]);
            self.sum.add(r);
            self.sum_sq.add(r * r);
            if len > n + 1 {
                let old = one_tick_return(prices[len - n - 2], prices[len - n - 1]);
                self.sum.add(-old);
                self.sum_sq.add(-old * old);
            }
        }
        (len > n).then(|| {
            let mean = self.sum.value() / n as f64;
            (self.sum_sq.value() / n as f64 - mean * mean)
                .max(0.0)
                .sqrt()
        })
    }
}

/// Z-score with exact sums (see [`ExactSums`]); rebuilt from the window when
/// a value cannot be held exactly at the current scale.
#[derive(Debug, Clone)]
pub(crate) struct ZScore {
    n: usize,
    sums: Option<ExactSums>,
}

impl ZScore {
    fn rebuild(window: &[f64]) -> Option<ExactSums> {
        let min = window.iter().copied().fold(f64::INFINITY, f64::min);
        let mut sums = ExactSums::anchored_at(min)?;
        for &x in window {
            sums.add(x)?;
        }
        Some(sums)
    }

    fn update(&mut self, history: History<'_>) -> Option<f64> {
        let prices = history.prices();
        let len = prices.len();
        let n = self.n;
        let now = *prices.last()?;
        let window = &prices[len.saturating_sub(n)..];
        let rolled = self.sums.as_mut().and_then(|sums| {
            if len > n {
                sums.remove(prices[len - n - 1])?;
            }
            sums.add(now)
        });
        if rolled.is_none() {
            self.sums = Self::rebuild(window);
        }
        if len < n {
            return None;
        }
        let (mu, sigma) = self
            .sums
            .and_then(|sums| sums.mean_and_pstdev())
            .unwrap_or_else(|| exact::mean_and_pstdev(window));
        let sigma = if sigma == 0.0 { 1e-9 } else { sigma };
        Some((now - mu) / sigma)
    }
}

/// Skewness from exact integer power sums of deviations from an anchor price.
#[derive(Debug, Clone)]
pub(crate) struct Skew {
    n: usize,
    anchor: i64,
    /// Σd, Σd², Σd³ of the window's units minus `anchor`.
    sums: Option<[i128; 3]>,
}

impl Skew {
    fn powers(&self, units: i64) -> Option<[i128; 3]> {
        let d = i128::from(units) - i128::from(self.anchor);
        let d2 = d.checked_mul(d)?;
        Some([d, d2, d2.checked_mul(d)?])
    }

    fn rebuild(&mut self, window: &[i64]) {
        self.anchor = window.first().copied().unwrap_or(0);
        let mut sums = Some([0i128; 3]);
        for &u in window {
            sums = sums.and_then(|acc| {
                let p = self.powers(u)?;
                Some([
                    acc[0].checked_add(p[0])?,
                    acc[1].checked_add(p[1])?,
                    acc[2].checked_add(p[2])?,
                ])
            });
        }
        self.sums = sums;
    }

    fn update(&mut self, history: History<'_>) -> Option<f64> {
        let units = history.units();
        let len = units.len();
        let n = self.n;
        let rolled = self.sums.and_then(|acc| {
            let add = self.powers(*units.last()?)?;
            let mut next = [
                acc[0].checked_add(add[0])?,
                acc[1].checked_add(add[1])?,
                acc[2].checked_add(add[2])?,
            ];
            if len > n {
                let old = self.powers(units[len - n - 1])?;
                for (sum, o) in next.iter_mut().zip(old) {
                    *sum = sum.checked_sub(o)?;
                }
            }
            Some(next)
        });
        match rolled {
            Some(next) => self.sums = Some(next),
            None => self.rebuild(&units[len.saturating_sub(n)..]),
        }
        if len < n {
            return None;
        }
        let window = &units[len - n..];
        Some(
            self.sums
                .and_then(|s| skew_from_sums(n as i128, s))
                .unwrap_or_else(|| skew_two_pass(window)),
        )
    }
}

/// `m3 / m2^1.5` from exact Σd, Σd², Σd³: with `A = nΣd² − (Σd)²` and
/// `B = n²Σd³ − 3nΣdΣd² + 2(Σd)³`, skew = `B / A^1.5` (the powers of n cancel).
fn skew_from_sums(n: i128, [s1, s2, s3]: [i128; 3]) -> Option<f64> {
    let a = n.checked_mul(s2)?.checked_sub(s1.checked_mul(s1)?)?;
    if a == 0 {
        return Some(0.0);
    }
    let b = n
        .checked_mul(n)?
        .checked_mul(s3)?
        .checked_sub(n.checked_mul(3)?.checked_mul(s1)?.checked_mul(s2)?)?
        .checked_add(s1.checked_mul(s1)?.checked_mul(s1)?.checked_mul(2)?)?;
    Some(b as f64 / (a as f64).powf(1.5))
}

/// The definition, in floats, for windows too wide for exact sums.
pub(crate) fn skew_two_pass(units: &[i64]) -> f64 {
    let n = units.len() as f64;
    let mean = units.iter().map(|&u| u as f64).sum::<f64>() / n;
    let (mut m2, mut m3) = (0.0, 0.0);
    for &u in units {
        let d = u as f64 - mean;
        m2 += d * d;
        m3 += d * d * d;
    }
    let (m2, m3) = (m2 / n, m3 / n);
    if m2 == 0.0 {
        0.0
    } else {
        m3 / m2.powf(1.5)
    }
}

/// Rolling min or max by a monotonic deque (amortised O(1), preallocated).
#[derive(Debug, Clone)]
pub(crate) struct Extreme {
    n: usize,
    is_max: bool,
    /// Ring buffer of (tick number, price), values monotonic from the front.
    deque: Box<[(u64, f64)]>,
    head: usize,
    len: usize,
    ticks: u64,
}

impl Extreme {
    fn new(n: usize, is_max: bool) -> Self {
        Extreme {
            n,
            is_max,
            deque: vec![(0, 0.0); n.max(1)].into_boxed_slice(),
            head: 0,
            len: 0,
            ticks: 0,
        }
    }

    #[inline]
    fn slot(&self, i: usize) -> usize {
        (self.head + i) % self.deque.len()
    }

    #[inline]
    fn update(&mut self, price: f64) -> Option<f64> {
        let t = self.ticks;
        self.ticks += 1;
        // Drop values the new price dominates.
        while self.len > 0 {
            let back = self.deque[self.slot(self.len - 1)].1;
            let dominated = if self.is_max {
                back <= price
            } else {
                back >= price
            };
            if !dominated {
                break;
            }
            self.len -= 1;
        }
        // Drop the front if it left the window.
        if self.len > 0 && self.deque[self.head].0 + self.n as u64 <= t {
            self.head = self.slot(1);
            self.len -= 1;
        }
        let at = self.slot(self.len);
        self.deque[at] = (t, price);
        self.len += 1;
        (self.ticks >= self.n as u64).then(|| self.deque[self.head].1)
    }
}
