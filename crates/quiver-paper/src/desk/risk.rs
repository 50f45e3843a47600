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

/// Equity at least `limit_ppb` billionths below a positive peak.
fn tripped(peak: Money, equity: Money, limit_ppb: i128) -> bool {
    peak > Money::ZERO && (peak - equity).units() * PPB >= peak.units() * limit_ppb
}

/// A drawdown breaker: the peak follows equity, and once equity is the
/// limit below it the breaker holds new entries.
#[derive(Clone, Debug)]
pub(super) struct Breaker {
    pub(super) peak: Money,
    halted_since: Option<i64>,
}

impl Breaker {
    pub(super) fn new(peak: Money) -> Breaker {
        Breaker {
            peak,
            halted_since: None,
        }
    }

    /// At a sample: the peak follows `equity`, and the breaker trips when
    /// `equity` is `limit_ppb` below it. Whether it holds entries now.
    pub(super) fn observe(&mut self, equity: Money, ts_ns: i64, limit_ppb: Option<i128>) -> bool {
        self.peak = self.peak.max(equity);
        if let Some(limit) = limit_ppb {
            if self.halted_since.is_none() && tripped(self.peak, equity, limit) {
                self.halted_since = Some(ts_ns);
            }
        }
        self.halted_since.is_some()
    }

    /// At an entry: whether the breaker holds it. One past `resume_ns`
    /// since it tripped lets go first, its peak reset to `equity`.
    fn holds(
        &mut self,
        equity: Money,
        ts_ns: i64,
        limit_ppb: i128,
        resume_ns: Option<i64>,
    ) -> bool {
        if let Some(since) = self.halted_since {
            match resume_ns {
                Some(after) if ts_ns.saturating_sub(since) >= after => {
                    self.halted_since = None;
                    self.peak = equity;
                }
                _ => return true,
            }
        }
        self.observe(equity, ts_ns, Some(limit_ppb))
    }
}

impl Desk {
    /// Confidence × `edge_bps` minus (half the spread + the taker fee + the
    /// slippage) below `min_edge_bps`.
    pub(super) fn below_edge(&self, i: usize, decision: &Decision) -> bool {
        let costs = &self.spec.costs;
        let (Some(edge), Some(min)) = (costs.edge_bps, costs.min_edge_bps) else {
            return false;
        };
        let of = self.markets[i].costs;
        let fee = match self.spec.paper.fill {
            FillModel::Limit => of.maker_fee,
            _ => of.taker_fee,
        };
        let cost = of.spread.bps() / 2.0 + fee.bps() + self.spec.paper.slippage.bps();
        decision.confidence * edge - cost < min
    }

    /// The breaker holding account `a`'s entries at `ts_ns`, if any; peaks
    /// follow equity, and a breaker past its `resume_after_ms` lets go,
    /// its peak reset to the equity now.
    pub(super) fn halted(&mut self, a: u32, ts_ns: i64) -> Option<Scope> {
        let resume = self.spec.risk.resume_after_ns;
        if let Some(limit) = self.total_drawdown_ppb {
            let equity = self.total_equity();
            if self.total_breaker.holds(equity, ts_ns, limit, resume) {
                return Some(Scope::Total);
            }
        }
        if let Some(limit) = self.strategy_drawdown_ppb {
            let account = &mut self.accounts[a as usize];
            let equity = account.equity();
            if account.breaker.holds(equity, ts_ns, limit, resume) {
                return Some(Scope::Strategy);
            }
        }
        None
    }

    /// `Err(scope)`: the entry takes a limit past 100%; `Ok(Some(scope))`:
    /// past its soft level (throttle); `Ok(None)`: within every limit.
    pub(super) fn limits(
        &self,
        a: u32,
        i: usize,
        old: i64,
        q: i64,
        mark: Price,
    ) -> Result<Option<Scope>, Scope> {
        let risk = &self.spec.risk;
        let added = Money::notional(mark, (old + q).abs() - old.abs());
        let market = &self.markets[i];
        let instrument = Money::from_units(market.committed * i128::from(mark.units()));
        let tags = market.tags.iter().filter_map(|&t| {
            let tag = &self.tags[t as usize];
            tag.limit.map(|limit| (Scope::Tag, tag.exposure, limit))
        });
        let checks = [
            risk.max_instrument_exposure
                .map(|limit| (Scope::Instrument, instrument, limit)),
            risk.max_strategy_exposure
                .map(|limit| (Scope::Strategy, self.accounts[a as usize].exposure, limit)),
        ]
        .into_iter()
        .flatten()
        .chain(tags)
        .chain(
            risk.max_total_exposure
                .map(|limit| (Scope::Total, self.total_exposure, limit)),
        );
        let mut soft = None;
        for (scope, now, limit) in checks {
            let after = now + added;
            if after > limit {
                return Err(scope);
            }
            if soft.is_none() && after.units() * PPB > limit.units() * self.soft_ppb {
                soft = Some(scope);
            }
        }
        Ok(soft)
    }
}
