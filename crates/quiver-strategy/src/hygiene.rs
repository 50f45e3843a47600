//! Signal hygiene (seed 002, sections 2 and 3): the checks a validated
//! signal passes before it leaves, beyond the [`StandardValidator`]'s.
//!
//! Every check runs on tick time (the `ts_ns` of the tick that caused the
//! signal), never the wall clock, so a replay drops exactly what a live run
//! drops. State changes only when a signal passes: a dropped signal does
//! not count towards a rate, start a cool-down or move a position.
//!
//! [`SignalGuards`], one per strategy, holds them all: the duplicate window,
//! the cool-down, the position guard, the price band, the exposure cap and
//! the rate limits ([`RateLimiter`]: `max_signals_per_minute`,
//! `min_signal_interval_ms`). A strategy's signals go to each of its brokers
//! alike, so one limiter per strategy limits every (strategy, broker) pair
//! the same way.
//!
//! Positions here are the ones the signals sent imply (a BUY of `q` adds
//! `q`, a SELL subtracts it), not fills: that is what the position guard and
//! the exposure cap can know without a broker.
//!
//! [`StandardValidator`]: crate::StandardValidator

use std::collections::{HashMap, VecDeque};

use quiver_core::{Decision, InstrumentToken, Price, Side};

const NS_PER_MS: i64 = 1_000_000;
const MINUTE_NS: i64 = 60_000 * NS_PER_MS;

/// Why a signal was held back. Bounded: one metric label each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GuardDrop {
    /// Same instrument and side again within the duplicate window.
    Duplicate,
    /// Another signal on the instrument within the cool-down.
    Cooldown,
    /// A second signal in the direction already held.
    PositionGuard,
    /// The signal's price is too far from the instrument's last tick.
    PriceBand,
    /// The strategy's exposure would exceed its cap.
    ExposureCap,
    /// More than `max_signals_per_minute` to one broker.
    RateLimited,
    /// Sooner than `min_signal_interval_ms` after the last one to the broker.
    MinInterval,
}

impl GuardDrop {
    pub const ALL: [GuardDrop; 7] = [
        GuardDrop::Duplicate,
        GuardDrop::Cooldown,
        GuardDrop::PositionGuard,
        GuardDrop::PriceBand,
        GuardDrop::ExposureCap,
        GuardDrop::RateLimited,
        GuardDrop::MinInterval,
    ];

    /// Position in [`GuardDrop::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            GuardDrop::Duplicate => "duplicate",
            GuardDrop::Cooldown => "cooldown",
            GuardDrop::PositionGuard => "position_guard",
            GuardDrop::PriceBand => "price_band",
            GuardDrop::ExposureCap => "exposure_cap",
            GuardDrop::RateLimited => "rate_limited",
            GuardDrop::MinInterval => "min_interval",
        }
    }
}

/// What a strategy row asks of its signals; every check is off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GuardSpec {
    /// Drop a signal with the same instrument and side as one sent less than
    /// this long before (`duplicate_window_ms`).
    pub duplicate_window_ns: Option<i64>,
    /// After a signal on an instrument, drop any other on it for this long
    /// (`cooldown_ms`).
    pub cooldown_ns: Option<i64>,
    /// Drop a BUY while long and a SELL while short (`position_guard`).
    pub position_guard: bool,
    /// Drop a signal whose price is more than this many basis points from the
    /// instrument's last tick price (`max_price_deviation_bps`).
    pub price_band_bps: Option<u32>,
    /// Drop a signal that would take the sum over instruments of
    /// |position| × price above this (`max_exposure`).
    pub max_exposure: Option<Price>,
    pub rates: RateSpec,
}

/// The rate limits of one strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateSpec {
    /// At most this many signals in any 60 s of tick time.
    pub max_per_minute: Option<u32>,
    /// At least this long between two signals (`min_signal_interval_ms`).
    pub min_interval_ns: Option<i64>,
}

impl GuardSpec {
    pub fn is_off(&self) -> bool {
        *self == GuardSpec::default()
    }
}

impl RateSpec {
    pub fn is_off(&self) -> bool {
        *self == RateSpec::default()
    }
}

/// The milliseconds of a setting as nanoseconds, saturating.
pub const fn ms_to_ns(ms: u64) -> i64 {
    let ns = (ms as i128) * (NS_PER_MS as i128);
    if ns > i64::MAX as i128 {
        i64::MAX
    } else {
        ns as i64
    }
}

/// One instrument as the guards remember it.
#[derive(Clone, Copy, Debug, Default)]
struct Held {
    /// Net quantity the signals sent imply.
    position: i128,
    /// Time and side of the last signal sent.
    last: Option<(i64, Side)>,
    /// Price of the last signal sent, which values the position.
    mark: Price,
}

/// The per-strategy checks of a [`GuardSpec`] and what they remember.
#[derive(Clone, Debug)]
pub struct SignalGuards {
    spec: GuardSpec,
    /// Nothing configured: every signal passes without a look-up (the
    /// common case, checked once per signal).
    off: bool,
    rates: RateLimiter,
    held: HashMap<InstrumentToken, Held>,
    /// Σ |position| × mark over instruments, in 10⁻⁸ units (exact).
    exposure: i128,
}

impl SignalGuards {
    pub fn new(spec: GuardSpec) -> Self {
        SignalGuards {
            spec,
            off: spec.is_off(),
            rates: RateLimiter::new(spec.rates),
            held: HashMap::new(),
            exposure: 0,
        }
    }

    pub fn spec(&self) -> &GuardSpec {
        &self.spec
    }

    /// Checks `decision` on `instrument` at tick time `ts_ns`, the tick's
    /// price being `last_price`; a signal that passes is remembered.
    #[inline]
    pub fn admit(
        &mut self,
        ts_ns: i64,
        instrument: InstrumentToken,
        decision: &Decision,
        last_price: Price,
    ) -> Result<(), GuardDrop> {
        if self.off {
            return Ok(());
        }
        let held = self.held.get(&instrument).copied().unwrap_or_default();
        if let (Some(window), Some((at, side))) = (self.spec.duplicate_window_ns, held.last) {
            if side == decision.side && ts_ns.saturating_sub(at) < window {
                return Err(GuardDrop::Duplicate);
            }
        }
        if let (Some(cooldown), Some((at, _))) = (self.spec.cooldown_ns, held.last) {
            if ts_ns.saturating_sub(at) < cooldown {
                return Err(GuardDrop::Cooldown);
            }
        }
        if self.spec.position_guard {
            let same_way = match decision.side {
                Side::Buy => held.position > 0,
                Side::Sell => held.position < 0,
            };
            if same_way {
                return Err(GuardDrop::PositionGuard);
            }
        }
        if let Some(bps) = self.spec.price_band_bps {
            // |price − last| / last > bps / 10,000, without division.
            let deviation = (i128::from(decision.price.units()) - i128::from(last_price.units()))
                .abs()
                * 10_000;
            if deviation > i128::from(last_price.units()).abs() * i128::from(bps) {
                return Err(GuardDrop::PriceBand);
            }
        }
        let signed = match decision.side {
            Side::Buy => i128::from(decision.quantity),
            Side::Sell => -i128::from(decision.quantity),
        };
        let position = held.position.saturating_add(signed);
        let before = value(held.position, held.mark);
        let after = value(position, decision.price);
        let exposure = self.exposure - before + after;
        if let Some(cap) = self.spec.max_exposure {
            if after > before && exposure > i128::from(cap.units()) {
                return Err(GuardDrop::ExposureCap);
            }
        }
        // Last, because it counts what passes.
        self.rates.admit(ts_ns)?;
        self.exposure = exposure;
        self.held.insert(
            instrument,
            Held {
                position,
                last: Some((ts_ns, decision.side)),
                mark: decision.price,
            },
        );
        Ok(())
    }

    /// Net quantity on `instrument` implied by the signals sent.
    pub fn position(&self, instrument: InstrumentToken) -> i128 {
        self.held.get(&instrument).map_or(0, |h| h.position)
    }

    /// Σ |position| × price of the last signal, over instruments.
    pub fn exposure(&self) -> i128 {
        self.exposure
    }

    /// Forgets everything (a reset or replacement starts fresh).
    pub fn clear(&mut self) {
        self.held.clear();
        self.exposure = 0;
        self.rates.clear();
    }
}

fn value(position: i128, price: Price) -> i128 {
    position
        .abs()
        .saturating_mul(i128::from(price.units()).abs())
}

/// The per-(strategy, broker) limits of a [`RateSpec`].
#[derive(Clone, Debug)]
pub struct RateLimiter {
    spec: RateSpec,
    /// Tick times of the signals sent in the last minute, oldest first;
    /// never longer than `max_per_minute`.
    recent: VecDeque<i64>,
    last: Option<i64>,
}

impl RateLimiter {
    pub fn new(spec: RateSpec) -> Self {
        let capacity = spec.max_per_minute.map_or(0, |n| n as usize).min(4096);
        RateLimiter {
            spec,
            recent: VecDeque::with_capacity(capacity),
            last: None,
        }
    }

    /// Whether a signal at tick time `ts_ns` may go; one that may is counted.
    pub fn admit(&mut self, ts_ns: i64) -> Result<(), GuardDrop> {
        if let (Some(interval), Some(last)) = (self.spec.min_interval_ns, self.last) {
            if ts_ns.saturating_sub(last) < interval {
                return Err(GuardDrop::MinInterval);
            }
        }
        if let Some(max) = self.spec.max_per_minute {
            while self
                .recent
                .front()
                .is_some_and(|&at| ts_ns.saturating_sub(at) >= MINUTE_NS)
            {
                self.recent.pop_front();
            }
            if self.recent.len() >= max as usize {
                return Err(GuardDrop::RateLimited);
            }
            self.recent.push_back(ts_ns);
        }
        self.last = Some(ts_ns);
        Ok(())
    }

    pub fn clear(&mut self) {
        self.recent.clear();
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::{Metadata, Reasoning};

    quiver_core::fixed_reason!(t, "t");

    const S: i64 = 1_000_000_000;

    fn decision(side: Side, quantity: u64, price: &str) -> Decision {
        Decision {
            side,
            confidence: 1.0,
            quantity,
            price: Price::parse(price).unwrap(),
            reasoning: Reasoning::fixed(t),
            metadata: Metadata::EMPTY,
        }
    }

    fn p(text: &str) -> Price {
        Price::parse(text).unwrap()
    }

    #[test]
    fn every_reason_sits_at_its_index() {
        for (i, reason) in GuardDrop::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
    }

    #[test]
    fn everything_passes_when_nothing_is_configured() {
        let mut guards = SignalGuards::new(GuardSpec::default());
        for i in 0..100 {
            let d = decision(Side::Buy, 1, "100");
            assert_eq!(guards.admit(i, 7, &d, p("1")), Ok(()));
        }
        let mut limiter = RateLimiter::new(RateSpec::default());
        assert!((0..100).all(|i| limiter.admit(i).is_ok()));
    }

    #[test]
    fn the_duplicate_window_drops_the_same_side_only_and_only_within_it() {
        let mut guards = SignalGuards::new(GuardSpec {
            duplicate_window_ns: Some(3 * S),
            ..GuardSpec::default()
        });
        let buy = decision(Side::Buy, 1, "100");
        let sell = decision(Side::Sell, 1, "100");
        assert_eq!(guards.admit(0, 7, &buy, p("100")), Ok(()));
        assert_eq!(
            guards.admit(S, 7, &buy, p("100")),
            Err(GuardDrop::Duplicate)
        );
        // Another instrument is independent.
        assert_eq!(guards.admit(S, 8, &buy, p("100")), Ok(()));
        // The window runs from the last signal sent, not the last dropped.
        assert_eq!(
            guards.admit(3 * S - 1, 7, &buy, p("100")),
            Err(GuardDrop::Duplicate)
        );
        assert_eq!(guards.admit(3 * S, 7, &buy, p("100")), Ok(()));
        assert_eq!(guards.admit(3 * S + 1, 7, &sell, p("100")), Ok(()));
    }

    #[test]
    fn the_cooldown_drops_either_side_after_a_signal() {
        let mut guards = SignalGuards::new(GuardSpec {
            cooldown_ns: Some(60 * S),
            ..GuardSpec::default()
        });
        assert_eq!(
            guards.admit(0, 7, &decision(Side::Buy, 1, "1"), p("1")),
            Ok(())
        );
        assert_eq!(
            guards.admit(59 * S, 7, &decision(Side::Sell, 1, "1"), p("1")),
            Err(GuardDrop::Cooldown)
        );
        assert_eq!(
            guards.admit(60 * S, 7, &decision(Side::Sell, 1, "1"), p("1")),
            Ok(())
        );
    }

    #[test]
    fn the_position_guard_allows_reversals_but_not_a_second_entry() {
        let mut guards = SignalGuards::new(GuardSpec {
            position_guard: true,
            ..GuardSpec::default()
        });
        let buy = decision(Side::Buy, 10, "100");
        let sell = decision(Side::Sell, 10, "100");
        assert_eq!(guards.admit(0, 7, &buy, p("100")), Ok(()));
        assert_eq!(guards.position(7), 10);
        assert_eq!(
            guards.admit(1, 7, &buy, p("100")),
            Err(GuardDrop::PositionGuard)
        );
        assert_eq!(guards.admit(2, 7, &sell, p("100")), Ok(()));
        assert_eq!(guards.position(7), 0);
        assert_eq!(guards.admit(3, 7, &sell, p("100")), Ok(()));
        assert_eq!(guards.position(7), -10);
        assert_eq!(
            guards.admit(4, 7, &sell, p("100")),
            Err(GuardDrop::PositionGuard)
        );
    }

    #[test]
    fn the_price_band_is_measured_against_the_last_tick_in_basis_points() {
        let mut guards = SignalGuards::new(GuardSpec {
            price_band_bps: Some(50), // 0.5 %
            ..GuardSpec::default()
        });
        // 100.50 is exactly 50 bps above 100: inside; 100.51 is not.
        assert_eq!(
            guards.admit(0, 7, &decision(Side::Buy, 1, "100.50"), p("100")),
            Ok(())
        );
        assert_eq!(
            guards.admit(1, 7, &decision(Side::Buy, 1, "100.51"), p("100")),
            Err(GuardDrop::PriceBand)
        );
        assert_eq!(
            guards.admit(2, 7, &decision(Side::Sell, 1, "99.49"), p("100")),
            Err(GuardDrop::PriceBand)
        );
        assert_eq!(
            guards.admit(3, 7, &decision(Side::Sell, 1, "99.5"), p("100")),
            Ok(())
        );
    }

    #[test]
    fn the_exposure_cap_refuses_what_would_grow_exposure_past_it_but_not_what_reduces_it() {
        let mut guards = SignalGuards::new(GuardSpec {
            max_exposure: Some(p("2500")),
            ..GuardSpec::default()
        });
        // 10 × 100 + 10 × 100 = 2,000 ≤ 2,500.
        assert_eq!(
            guards.admit(0, 7, &decision(Side::Buy, 10, "100"), p("100")),
            Ok(())
        );
        assert_eq!(
            guards.admit(0, 8, &decision(Side::Sell, 10, "100"), p("100")),
            Ok(())
        );
        assert_eq!(guards.exposure(), i128::from(p("2000").units()));
        // Another 10 on 7 would be 20 × 100 + 1,000 = 3,000.
        assert_eq!(
            guards.admit(1, 7, &decision(Side::Buy, 10, "100"), p("100")),
            Err(GuardDrop::ExposureCap)
        );
        // Five more at 100 is 2,500: at the cap, allowed.
        assert_eq!(
            guards.admit(2, 7, &decision(Side::Buy, 5, "100"), p("100")),
            Ok(())
        );
        // Closing instrument 8 reduces exposure: always allowed.
        assert_eq!(
            guards.admit(3, 8, &decision(Side::Buy, 10, "100"), p("100")),
            Ok(())
        );
        assert_eq!(guards.exposure(), i128::from(p("1500").units()));
    }

    #[test]
    fn a_signal_the_rate_limit_drops_moves_no_position() {
        let mut guards = SignalGuards::new(GuardSpec {
            position_guard: true,
            rates: RateSpec {
                max_per_minute: None,
                min_interval_ns: Some(S),
            },
            ..GuardSpec::default()
        });
        assert_eq!(
            guards.admit(0, 7, &decision(Side::Buy, 1, "1"), p("1")),
            Ok(())
        );
        assert_eq!(
            guards.admit(1, 8, &decision(Side::Buy, 1, "1"), p("1")),
            Err(GuardDrop::MinInterval)
        );
        assert_eq!(guards.position(8), 0);
        assert_eq!(
            guards.admit(S, 8, &decision(Side::Buy, 1, "1"), p("1")),
            Ok(())
        );
        assert_eq!(guards.position(8), 1);
    }

    #[test]
    fn rate_limits_count_per_minute_of_tick_time_and_space_signals() {
        let mut limiter = RateLimiter::new(RateSpec {
            max_per_minute: Some(3),
            min_interval_ns: None,
        });
        assert_eq!(limiter.admit(0), Ok(()));
        assert_eq!(limiter.admit(10 * S), Ok(()));
        assert_eq!(limiter.admit(20 * S), Ok(()));
        assert_eq!(limiter.admit(30 * S), Err(GuardDrop::RateLimited));
        // The first left the window 60 s after it was sent.
        assert_eq!(limiter.admit(60 * S - 1), Err(GuardDrop::RateLimited));
        assert_eq!(limiter.admit(60 * S), Ok(()));
        assert_eq!(limiter.admit(61 * S), Err(GuardDrop::RateLimited));

        let mut spaced = RateLimiter::new(RateSpec {
            max_per_minute: None,
            min_interval_ns: Some(ms_to_ns(500)),
        });
        assert_eq!(spaced.admit(0), Ok(()));
        assert_eq!(spaced.admit(S / 2 - 1), Err(GuardDrop::MinInterval));
        assert_eq!(spaced.admit(S / 2), Ok(()));
        assert_eq!(ms_to_ns(u64::MAX), i64::MAX);
    }
}
