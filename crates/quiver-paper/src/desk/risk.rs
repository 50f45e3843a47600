//! The desk's gate on entries: the cost model's edge filter, the drawdown
//! breakers and the exposure limits. The breakers and limits compare money
//! in integer arithmetic (fractions as billionths), so a check rounds
//! nothing.

use quiver_core::{Decision, Price};

use super::Desk;
use crate::money::Money;
use crate::spec::FillModel;

use crate::verdict::Scope;

pub(super) const PPB: i128 = 1_000_000_000;

pub(super) fn ppb(fraction: f64) -> i128 {
    (fraction * PPB as f64).round() as i128
}

/// A drawdown breaker: the peak follows equity, and once equity is the
/// limit below it the breaker holds new entries. The equity that trips it
/// is worked out when the peak moves, so a check is one comparison.
#[derive(Clone, Debug)]
pub(super) struct Breaker {
    pub(super) peak: Money,
    halted_since: Option<i64>,
    /// The limit in billionths of the peak; `None`: never trips.
    limit_ppb: Option<i128>,
    /// The highest equity at or below which the breaker trips:
    /// `(peak − equity) × PPB ≥ peak × limit` exactly.
    trips_at: Money,
}

/// `⌈a / b⌉` for `a ≥ 0`, `b > 0`.
fn ceil_div(a: i128, b: i128) -> i128 {
    (a + b - 1) / b
}

impl Breaker {
    pub(super) fn new(peak: Money, limit_ppb: Option<i128>) -> Breaker {
        let mut breaker = Breaker {
            peak,
            halted_since: None,
            limit_ppb,
            trips_at: Money::ZERO,
        };
        breaker.set_peak(peak);
        breaker
    }

    pub(super) fn set_peak(&mut self, peak: Money) {
        self.peak = peak;
        self.trips_at = match self.limit_ppb {
            Some(limit) if peak > Money::ZERO => {
                Money::from_units(peak.units() - ceil_div(peak.units().saturating_mul(limit), PPB))
            }
            _ => Money::from_units(i128::MIN),
        };
    }

    /// At a sample or an entry: the peak follows `equity`, and the breaker
    /// trips when `equity` is its limit below the peak. Whether it holds
    /// entries now.
    pub(super) fn observe(&mut self, equity: Money, ts_ns: i64) -> bool {
        if equity > self.peak {
            self.set_peak(equity);
        }
        if self.halted_since.is_none() && equity <= self.trips_at {
            self.halted_since = Some(ts_ns);
        }
        self.halted_since.is_some()
    }

    /// At an entry: whether the breaker holds it. One past `resume_ns`
    /// since it tripped lets go first, its peak reset to `equity`.
    fn holds(&mut self, equity: Money, ts_ns: i64, resume_ns: Option<i64>) -> bool {
        if let Some(since) = self.halted_since {
            match resume_ns {
                Some(after) if ts_ns.saturating_sub(since) >= after => {
                    self.halted_since = None;
                    self.set_peak(equity);
                }
                _ => return true,
            }
        }
        self.observe(equity, ts_ns)
    }
}

/// An exposure limit and its soft level: exceeded when the exposure after
/// an entry is above them (the soft level is `⌊limit × soft_limit⌋`, so
/// the comparison is the exact one, `after × PPB > limit × soft_ppb`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Limit {
    pub(super) hard: Money,
    pub(super) soft: Money,
}

impl Limit {
    pub(super) fn new(hard: Money, soft_ppb: i128) -> Limit {
        Limit {
            hard,
            soft: Money::from_units(hard.units().saturating_mul(soft_ppb).div_euclid(PPB)),
        }
    }
}

/// The desk-wide limits, and the edge filter's numbers.
#[derive(Clone, Debug)]
pub(super) struct Gate {
    pub(super) instrument: Option<Limit>,
    pub(super) strategy: Option<Limit>,
    pub(super) total: Option<Limit>,
    /// (`edge_bps`, `min_edge_bps`) when both are set.
    pub(super) edge: Option<(f64, f64)>,
}

impl Gate {
    pub(super) fn new(spec: &crate::spec::DeskSpec) -> Gate {
        let soft = ppb(spec.risk.soft_limit);
        let limit = |l: Option<Money>| l.map(|hard| Limit::new(hard, soft));
        Gate {
            instrument: limit(spec.risk.max_instrument_exposure),
            strategy: limit(spec.risk.max_strategy_exposure),
            total: limit(spec.risk.max_total_exposure),
            edge: spec.costs.edge_bps.zip(spec.costs.min_edge_bps),
        }
    }
}

/// What an entry costs in basis points on a market: half its spread, the
/// fee its orders pay and the slippage.
pub(super) fn entry_cost_bps(
    costs: &crate::spec::InstrumentCosts,
    spec: &crate::spec::DeskSpec,
) -> f64 {
    let fee = match spec.paper.fill {
        FillModel::Limit => costs.maker_fee,
        _ => costs.taker_fee,
    };
    costs.spread.bps() / 2.0 + fee.bps() + spec.paper.slippage.bps()
}

impl Desk {
    /// Confidence × `edge_bps` minus (half the spread + the fee + the
    /// slippage) below `min_edge_bps`.
    pub(super) fn below_edge(&self, i: usize, decision: &Decision) -> bool {
        match self.gate.edge {
            Some((edge, min)) => decision.confidence * edge - self.markets[i].entry_cost_bps < min,
            None => false,
        }
    }

    /// The breaker holding account `a`'s entries at `ts_ns`, if any; peaks
    /// follow equity, and a breaker past its `resume_after_ms` lets go,
    /// its peak reset to the equity now.
    pub(super) fn halted(&mut self, a: u32, ts_ns: i64) -> Option<Scope> {
        let resume = self.spec.risk.resume_after_ns;
        let equity = self.total_equity();
        if self.total_breaker.holds(equity, ts_ns, resume) {
            return Some(Scope::Total);
        }
        let account = &mut self.accounts[a as usize];
        let equity = account.equity();
        if account.breaker.holds(equity, ts_ns, resume) {
            return Some(Scope::Strategy);
        }
        None
    }

    /// `Err(scope)`: the entry takes a limit past 100%; `Ok(Some(scope))`:
    /// past its soft level (throttle); `Ok(None)`: within every limit.
    /// Checked in the order instrument, strategy, tags, total.
    pub(super) fn limits(
        &self,
        a: u32,
        i: usize,
        old: i64,
        q: i64,
        mark: Price,
    ) -> Result<Option<Scope>, Scope> {
        let added = Money::notional(mark, (old + q).abs() - old.abs());
        let market = &self.markets[i];
        let mut soft = None;
        let mut check = |scope: Scope, now: Money, limit: Limit| {
            let after = now + added;
            if after > limit.hard {
                return Err(scope);
            }
            if soft.is_none() && after > limit.soft {
                soft = Some(scope);
            }
            Ok(())
        };
        if let Some(limit) = self.gate.instrument {
            let instrument = Money::from_units(market.committed * i128::from(mark.units()));
            check(Scope::Instrument, instrument, limit)?;
        }
        if let Some(limit) = self.gate.strategy {
            check(Scope::Strategy, self.accounts[a as usize].exposure, limit)?;
        }
        for &t in &market.tags {
            let tag = &self.tags[t as usize];
            if let Some(limit) = tag.limit {
                check(Scope::Tag, tag.exposure, limit)?;
            }
        }
        if let Some(limit) = self.gate.total {
            check(Scope::Total, self.total_exposure, limit)?;
        }
        Ok(soft)
    }
}
