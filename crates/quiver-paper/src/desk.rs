//! The paper desk: every strategy's account, the orders its signals become,
//! their simulated fills, the risk controller and the cost model, in one
//! deterministic state machine driven by ticks and signals in output order.
//!
//! Per tick of an instrument ([`Desk::on_tick`]): the instrument's mark
//! moves (and with it every holder's equity and exposure, incrementally:
//! O(holders)), orders resting on it fill or expire, and the equity curve is
//! sampled when the tick crosses a sample boundary. Per signal
//! ([`Desk::on_signal`]): the signal becomes an order (its [`SignalMode`]),
//! an entry (an order that grows the position) passes the cost model, the
//! drawdown breakers and the exposure limits, and the order rests until the
//! instrument's next tick. A reduction always passes: limits never trap a
//! position.
//!
//! Money is exact ([`Money`]); only the statistics are floats.

use std::collections::{HashMap, VecDeque};

use quiver_core::{Decision, InstrumentToken, Price, Side, Tick};

use crate::money::{adjust, Money, Rate};
use crate::spec::{DeskSpec, FillModel, SignalMode};

/// What became of a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// An order of the signal's size (or its target difference) rests.
    Accepted,
    /// An order rests, smaller than asked: a limit is above its soft level.
    Throttled(Scope),
    /// No order: the entry would take a limit past 100%.
    Blocked(Scope),
    /// No order: a drawdown breaker holds new entries.
    Halted(Scope),
    /// No order: the expected edge after costs is below `min_edge_bps`.
    BelowEdge,
    /// No order: the position is already where a target signal wants it.
    NoChange,
}

/// Which limit or breaker decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Instrument,
    Strategy,
    Tag,
    Total,
}

impl Scope {
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Instrument => "instrument",
            Scope::Strategy => "strategy",
            Scope::Tag => "tag",
            Scope::Total => "total",
        }
    }
}

impl Verdict {
    /// A bounded label: one metric series or report column each.
    pub fn reason(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Throttled(_) => "throttled",
            Verdict::Blocked(Scope::Instrument) => "instrument_limit",
            Verdict::Blocked(Scope::Strategy) => "strategy_limit",
            Verdict::Blocked(Scope::Tag) => "tag_limit",
            Verdict::Blocked(Scope::Total) => "total_limit",
            Verdict::Halted(Scope::Total) => "total_drawdown",
            Verdict::Halted(_) => "strategy_drawdown",
            Verdict::BelowEdge => "below_edge",
            Verdict::NoChange => "no_change",
        }
    }

    /// Whether an order rests.
    pub fn ordered(self) -> bool {
        matches!(self, Verdict::Accepted | Verdict::Throttled(_))
    }
}

/// Every [`Verdict::reason`], in report order.
pub const REASONS: [&str; 10] = [
    "accepted",
    "throttled",
    "instrument_limit",
    "strategy_limit",
    "tag_limit",
    "total_limit",
    "strategy_drawdown",
    "total_drawdown",
    "below_edge",
    "no_change",
];

/// One simulated fill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fill {
    /// The tick it filled on.
    pub seq: u64,
    pub ts_ns: i64,
    /// The tick of the signal it came from.
    pub signal_seq: u64,
    pub account: u32,
    pub instrument: InstrumentToken,
    /// Signed: bought > 0, sold < 0.
    pub quantity: i64,
    pub price: Price,
    pub fee: Money,
    /// The position after it.
    pub position: i64,
    /// What it realised against the lots it closed (before fees).
    pub realized: Money,
}

/// An order resting until the instrument's next tick (or its limit).
#[derive(Clone, Copy, Debug)]
struct Order {
    account: u32,
    quantity: i64,
    signal_seq: u64,
    limit: Price,
    expires_ns: i64,
}

#[derive(Clone, Debug, Default)]
struct Holding {
    position: i64,
    /// The position once every resting order fills.
    committed: i64,
    /// Open lots, oldest first: (signed quantity, price).
    lots: VecDeque<(i64, Price)>,
    /// The round trip in progress: realised PnL net of fees so far.
    trip: Money,
    /// In its instrument's holder list.
    listed: bool,
}

/// One strategy's account.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub mode: SignalMode,
    pub capital: Money,
    pub cash: Money,
    /// Σ position × mark.
    pub marked: Money,
    /// Σ |committed| × mark.
    pub exposure: Money,
    pub realized: Money,
    pub fees: Money,
    /// Σ |fill price − the tick's price| × quantity: the spread and the
    /// slippage paid.
    pub spread_slippage: Money,
    /// Σ |fill notional|.
    pub traded: Money,
    pub fills: u64,
    pub wins: u64,
    pub losses: u64,
    pub gross_profit: Money,
    pub gross_loss: Money,
    /// Signals by [`REASONS`] index.
    pub verdicts: [u64; REASONS.len()],
    /// Limit orders cancelled unfilled.
    pub expired: u64,
    /// Equity at each sample.
    pub samples: Vec<Money>,
    peak: Money,
    halted_since: Option<i64>,
    holdings: Vec<Holding>,
}

impl Account {
    fn new(id: String, spec: &DeskSpec) -> Account {
        Account {
            mode: spec.paper.mode_of(&id),
            id,
            capital: spec.paper.capital,
            cash: spec.paper.capital,
            marked: Money::ZERO,
            exposure: Money::ZERO,
            realized: Money::ZERO,
            fees: Money::ZERO,
            spread_slippage: Money::ZERO,
            traded: Money::ZERO,
            fills: 0,
            wins: 0,
            losses: 0,
            gross_profit: Money::ZERO,
            gross_loss: Money::ZERO,
            verdicts: [0; REASONS.len()],
            expired: 0,
            samples: Vec::new(),
            peak: spec.paper.capital,
            halted_since: None,
            holdings: Vec::new(),
        }
    }

    pub fn equity(&self) -> Money {
        self.cash + self.marked
    }

    /// The position in `instrument` (by desk index).
    fn holding(&mut self, i: usize) -> &mut Holding {
        if self.holdings.len() <= i {
            self.holdings.resize_with(i + 1, Holding::default);
        }
        &mut self.holdings[i]
    }

    /// Positions held, by desk instrument index.
    pub fn positions(&self) -> impl Iterator<Item = (usize, i64)> + '_ {
        self.holdings
            .iter()
            .enumerate()
            .filter(|(_, h)| h.position != 0)
            .map(|(i, h)| (i, h.position))
    }
}

struct Market {
    token: InstrumentToken,
    mark: Price,
    /// Σ over accounts of |committed|.
    committed: i128,
    /// Accounts with a position or an order here.
    holders: Vec<u32>,
    orders: Vec<Order>,
    /// Indices into `Desk::tags`.
    tags: Vec<u32>,
}

struct Tag {
    name: String,
    limit: Option<Money>,
    exposure: Money,
}

/// The desk of every strategy's paper account.
pub struct Desk {
    spec: DeskSpec,
    accounts: Vec<Account>,
    markets: Vec<Market>,
    by_token: HashMap<InstrumentToken, u32>,
    tags: Vec<Tag>,
    total_exposure: Money,
    fills: Vec<Fill>,
    /// Tick time of each sample.
    sample_ts: Vec<i64>,
    next_sample: Option<i64>,
    last_ts: Option<i64>,
    total_peak: Money,
    total_halted_since: Option<i64>,
}

impl Desk {
    /// A desk for strategies `ids` (one account each, in this order).
    pub fn new(spec: DeskSpec, ids: impl IntoIterator<Item = String>) -> Desk {
        let accounts: Vec<Account> = ids.into_iter().map(|id| Account::new(id, &spec)).collect();
        let mut tags: Vec<Tag> = spec
            .risk
            .tags
            .keys()
            .map(|name| Tag {
                name: name.clone(),
                limit: spec.risk.max_tag_exposure.get(name).copied(),
                exposure: Money::ZERO,
            })
            .collect();
        for (name, limit) in &spec.risk.max_tag_exposure {
            if !tags.iter().any(|t| &t.name == name) {
                tags.push(Tag {
                    name: name.clone(),
                    limit: Some(*limit),
                    exposure: Money::ZERO,
                });
            }
        }
        let total_peak = accounts.iter().map(|a| a.capital).sum();
        Desk {
            spec,
            accounts,
            markets: Vec::new(),
            by_token: HashMap::new(),
            tags,
            total_exposure: Money::ZERO,
            fills: Vec::new(),
            sample_ts: Vec::new(),
            next_sample: None,
            last_ts: None,
            total_peak,
            total_halted_since: None,
        }
    }

    /// The account of strategy `id`, opened now (with the capital flat
    /// over the samples taken so far) when it has none: a strategy a reload
    /// added.
    pub fn account_of(&mut self, id: &str) -> u32 {
        if let Some(a) = self.accounts.iter().position(|a| a.id == id) {
            return a as u32;
        }
        let capital = self.spec.paper.capital;
        let mut account = Account::new(id.to_owned(), &self.spec);
        account.samples = vec![capital; self.sample_ts.len()];
        self.total_peak += capital;
        self.accounts.push(account);
        (self.accounts.len() - 1) as u32
    }

    pub fn spec(&self) -> &DeskSpec {
        &self.spec
    }

    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    pub fn fills(&self) -> &[Fill] {
        &self.fills
    }

    /// Tick time of each equity sample.
    pub fn sample_times(&self) -> &[i64] {
        &self.sample_ts
    }

    /// The instrument token of desk index `i`.
    pub fn token(&self, i: usize) -> InstrumentToken {
        self.markets[i].token
    }

    /// Σ over accounts.
    pub fn total_equity(&self) -> Money {
        self.accounts.iter().map(Account::equity).sum()
    }

    fn market(&mut self, tick: &Tick) -> usize {
        if let Some(&i) = self.by_token.get(&tick.instrument) {
            return i as usize;
        }
        let i = self.markets.len();
        let tags = self
            .spec
            .risk
            .tags
            .iter()
            .filter(|(_, tokens)| tokens.contains(&tick.instrument))
            .filter_map(|(name, _)| self.tags.iter().position(|t| &t.name == name))
            .map(|t| t as u32)
            .collect();
        self.markets.push(Market {
            token: tick.instrument,
            mark: tick.price,
            committed: 0,
            holders: Vec::new(),
            orders: Vec::new(),
            tags,
        });
        self.by_token.insert(tick.instrument, i as u32);
        i
    }

    /// A tick: marks, fills, samples. Ticks come in seq order, each before
    /// the signals it caused.
    pub fn on_tick(&mut self, seq: u64, tick: &Tick) {
        let i = self.market(tick);
        let market = &mut self.markets[i];
        let delta = i128::from(tick.price.units()) - i128::from(market.mark.units());
        market.mark = tick.price;
        if delta != 0 {
            for &a in &market.holders {
                let account = &mut self.accounts[a as usize];
                let h = &account.holdings[i];
                account.marked += Money::from_units(i128::from(h.position) * delta);
                account.exposure += Money::from_units(i128::from(h.committed.abs()) * delta);
            }
            let moved = Money::from_units(market.committed * delta);
            for &t in &market.tags {
                self.tags[t as usize].exposure += moved;
            }
            self.total_exposure += moved;
        }
        if !self.markets[i].orders.is_empty() {
            self.fill_orders(i, seq, tick);
        }
        self.last_ts = Some(tick.ts_ns);
        match self.next_sample {
            Some(at) if tick.ts_ns < at => {}
            _ => self.sample(tick.ts_ns),
        }
    }

    fn fill_orders(&mut self, i: usize, seq: u64, tick: &Tick) {
        let orders = std::mem::take(&mut self.markets[i].orders);
        let mut resting = Vec::new();
        let costs = self.spec.costs.of(tick.instrument);
        let slippage = self.spec.paper.slippage;
        for order in orders {
            let buy = order.quantity > 0;
            let (price, fee) = match self.spec.paper.fill {
                FillModel::NextPrice => (
                    adjust(tick.price, costs.spread.half() + slippage, buy),
                    costs.taker_fee,
                ),
                FillModel::NextQuote => {
                    let quote = if buy { tick.ask } else { tick.bid };
                    match quote {
                        Some(quote) => (adjust(quote, slippage, buy), costs.taker_fee),
                        None => (
                            adjust(tick.price, costs.spread.half() + slippage, buy),
                            costs.taker_fee,
                        ),
                    }
                }
                FillModel::Limit => {
                    let crossed = if buy {
                        tick.price <= order.limit
                    } else {
                        tick.price >= order.limit
                    };
                    if !crossed {
                        if tick.ts_ns >= order.expires_ns {
                            self.cancel(i, order);
                        } else {
                            resting.push(order);
                        }
                        continue;
                    }
                    (order.limit, costs.maker_fee)
                }
            };
            self.apply_fill(i, seq, tick, order, price, fee);
        }
        self.markets[i].orders = resting;
    }

    fn cancel(&mut self, i: usize, order: Order) {
        let account = &mut self.accounts[order.account as usize];
        account.expired += 1;
        let mark = self.markets[i].mark;
        let h = account.holding(i);
        let before = h.committed.abs();
        h.committed -= order.quantity;
        let change = h.committed.abs() - before;
        self.move_committed(order.account, i, change, mark);
        self.unlist_if_flat(order.account, i);
    }

    fn apply_fill(
        &mut self,
        i: usize,
        seq: u64,
        tick: &Tick,
        order: Order,
        price: Price,
        fee: Rate,
    ) {
        let q = order.quantity;
        let notional = Money::notional(price, q);
        let fee = notional.abs().times(fee);
        let account = &mut self.accounts[order.account as usize];
        account.cash -= notional + fee;
        account.marked += Money::notional(tick.price, q);
        account.fees += fee;
        account.spread_slippage += Money::notional(
            Price::from_units((price.units() - tick.price.units()).abs()),
            q.abs(),
        );
        account.traded += notional.abs();
        account.fills += 1;
        let h = account.holding(i);
        let before = h.position;
        h.position += q;
        let mut remaining = q;
        let mut realized = Money::ZERO;
        while remaining != 0 {
            let Some(front) = h.lots.front_mut() else {
                break;
            };
            if front.0.signum() == remaining.signum() {
                break;
            }
            let closing = remaining.abs().min(front.0.abs()) * front.0.signum();
            realized += Money::notional(price, closing) - Money::notional(front.1, closing);
            front.0 -= closing;
            remaining += closing;
            if front.0 == 0 {
                h.lots.pop_front();
            }
        }
        if remaining != 0 {
            h.lots.push_back((remaining, price));
        }
        h.trip += realized - fee;
        let closed = before != 0 && (h.position == 0 || h.position.signum() != before.signum());
        let trip = if closed {
            Some(std::mem::take(&mut h.trip))
        } else {
            None
        };
        let position = h.position;
        account.realized += realized;
        if let Some(trip) = trip {
            if trip > Money::ZERO {
                account.wins += 1;
                account.gross_profit += trip;
            } else {
                account.losses += 1;
                account.gross_loss -= trip;
            }
        }
        self.fills.push(Fill {
            seq,
            ts_ns: tick.ts_ns,
            signal_seq: order.signal_seq,
            account: order.account,
            instrument: tick.instrument,
            quantity: q,
            price,
            fee,
            position,
            realized,
        });
        self.unlist_if_flat(order.account, i);
    }

    /// Changes account `a`'s |committed| on market `i` by `change` at `mark`.
    fn move_committed(&mut self, a: u32, i: usize, change: i64, mark: Price) {
        let value = Money::notional(mark, change);
        self.accounts[a as usize].exposure += value;
        let market = &mut self.markets[i];
        market.committed += i128::from(change);
        for &t in &market.tags {
            self.tags[t as usize].exposure += value;
        }
        self.total_exposure += value;
    }

    fn unlist_if_flat(&mut self, a: u32, i: usize) {
        let h = &mut self.accounts[a as usize].holdings[i];
        if h.listed && h.position == 0 && h.committed == 0 {
            h.listed = false;
            let holders = &mut self.markets[i].holders;
            if let Some(at) = holders.iter().position(|&x| x == a) {
                holders.swap_remove(at);
            }
        }
    }

    /// A validated signal of account `a` (caused by tick `seq`).
    pub fn on_signal(
        &mut self,
        a: u32,
        seq: u64,
        ts_ns: i64,
        instrument: InstrumentToken,
        decision: &Decision,
    ) -> Verdict {
        let verdict = self.decide(a, seq, ts_ns, instrument, decision);
        let k = REASONS
            .iter()
            .position(|r| *r == verdict.reason())
            .unwrap_or(0);
        self.accounts[a as usize].verdicts[k] += 1;
        verdict
    }

    fn decide(
        &mut self,
        a: u32,
        seq: u64,
        ts_ns: i64,
        instrument: InstrumentToken,
        decision: &Decision,
    ) -> Verdict {
        let Some(&i) = self.by_token.get(&instrument) else {
            // A signal always follows a tick of its instrument.
            return Verdict::NoChange;
        };
        let i = i as usize;
        let mark = self.markets[i].mark;
        let quantity = i64::try_from(decision.quantity).unwrap_or(i64::MAX);
        let signed = match decision.side {
            Side::Buy => quantity,
            Side::Sell => -quantity,
        };
        let account = &mut self.accounts[a as usize];
        let old = account.holding(i).committed;
        let mut q = match account.mode {
            SignalMode::Order => signed,
            SignalMode::Target => signed - old,
        };
        if q == 0 {
            return Verdict::NoChange;
        }
        let mut verdict = Verdict::Accepted;
        if (old + q).abs() > old.abs() {
            if self.below_edge(instrument, decision) {
                return Verdict::BelowEdge;
            }
            if let Some(scope) = self.halted(a, ts_ns) {
                return Verdict::Halted(scope);
            }
            match self.limits(a, i, old, q, mark) {
                Err(scope) => return Verdict::Blocked(scope),
                Ok(Some(scope)) => {
                    let kept = (q.abs() as f64 * self.spec.risk.throttle_factor).floor() as i64;
                    q = kept.max(1) * q.signum();
                    verdict = Verdict::Throttled(scope);
                }
                Ok(None) => {}
            }
        }
        let ttl = self.spec.paper.limit_ttl_ns;
        let account = &mut self.accounts[a as usize];
        let h = account.holding(i);
        h.committed = old + q;
        let change = h.committed.abs() - old.abs();
        let newly = !h.listed;
        h.listed = true;
        if newly {
            self.markets[i].holders.push(a);
        }
        self.move_committed(a, i, change, mark);
        self.markets[i].orders.push(Order {
            account: a,
            quantity: q,
            signal_seq: seq,
            limit: decision.price,
            expires_ns: ts_ns.saturating_add(ttl),
        });
        verdict
    }

    /// Confidence × `edge_bps` minus (half the spread + the taker fee + the
    /// slippage) below `min_edge_bps`.
    fn below_edge(&self, instrument: InstrumentToken, decision: &Decision) -> bool {
        let costs = &self.spec.costs;
        let (Some(edge), Some(min)) = (costs.edge_bps, costs.min_edge_bps) else {
            return false;
        };
        let of = costs.of(instrument);
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
    fn halted(&mut self, a: u32, ts_ns: i64) -> Option<Scope> {
        let risk = &self.spec.risk;
        let resume = risk.resume_after_ns;
        if let Some(limit) = risk.max_total_drawdown {
            let equity = self.total_equity();
            if let Some(since) = self.total_halted_since {
                match resume {
                    Some(after) if ts_ns.saturating_sub(since) >= after => {
                        self.total_halted_since = None;
                        self.total_peak = equity;
                    }
                    _ => return Some(Scope::Total),
                }
            }
            self.total_peak = self.total_peak.max(equity);
            if drawdown(self.total_peak, equity) >= limit {
                self.total_halted_since = Some(ts_ns);
                return Some(Scope::Total);
            }
        }
        if let Some(limit) = risk.max_strategy_drawdown {
            let account = &mut self.accounts[a as usize];
            let equity = account.equity();
            if let Some(since) = account.halted_since {
                match resume {
                    Some(after) if ts_ns.saturating_sub(since) >= after => {
                        account.halted_since = None;
                        account.peak = equity;
                    }
                    _ => return Some(Scope::Strategy),
                }
            }
            account.peak = account.peak.max(equity);
            if drawdown(account.peak, equity) >= limit {
                account.halted_since = Some(ts_ns);
                return Some(Scope::Strategy);
            }
        }
        None
    }

    /// `Err(scope)`: the entry takes a limit past 100%; `Ok(Some(scope))`:
    /// past its soft level (throttle); `Ok(None)`: within every limit.
    fn limits(
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
        let mut checks: Vec<(Scope, Money, Money)> = Vec::with_capacity(4);
        if let Some(limit) = risk.max_instrument_exposure {
            checks.push((Scope::Instrument, instrument, limit));
        }
        if let Some(limit) = risk.max_strategy_exposure {
            checks.push((Scope::Strategy, self.accounts[a as usize].exposure, limit));
        }
        for &t in &market.tags {
            let tag = &self.tags[t as usize];
            if let Some(limit) = tag.limit {
                checks.push((Scope::Tag, tag.exposure, limit));
            }
        }
        if let Some(limit) = risk.max_total_exposure {
            checks.push((Scope::Total, self.total_exposure, limit));
        }
        let mut soft = None;
        for (scope, now, limit) in checks {
            let after = now + added;
            if after > limit {
                return Err(scope);
            }
            if soft.is_none() && after.to_f64() > limit.to_f64() * risk.soft_limit {
                soft = Some(scope);
            }
        }
        Ok(soft)
    }

    /// Records every account's equity now, and trips the breakers that
    /// equity crosses.
    fn sample(&mut self, ts_ns: i64) {
        self.sample_ts.push(ts_ns);
        let sample = self.spec.paper.sample_ns.max(1);
        let next = match self.next_sample {
            None => ts_ns.saturating_add(sample),
            Some(at) => {
                let behind = (ts_ns - at) / sample + 1;
                at.saturating_add(behind.saturating_mul(sample))
            }
        };
        self.next_sample = Some(next);
        for account in &mut self.accounts {
            let equity = account.equity();
            account.samples.push(equity);
            account.peak = account.peak.max(equity);
            if let Some(limit) = self.spec.risk.max_strategy_drawdown {
                if account.halted_since.is_none() && drawdown(account.peak, equity) >= limit {
                    account.halted_since = Some(ts_ns);
                }
            }
        }
        let total = self.total_equity();
        self.total_peak = self.total_peak.max(total);
        if let Some(limit) = self.spec.risk.max_total_drawdown {
            if self.total_halted_since.is_none() && drawdown(self.total_peak, total) >= limit {
                self.total_halted_since = Some(ts_ns);
            }
        }
    }

    /// Ends the run: a last sample at the last tick, unless one was taken
    /// there. Resting orders stay unfilled.
    pub fn finish(&mut self) {
        if let Some(ts) = self.last_ts {
            if self.sample_ts.last() != Some(&ts) {
                self.sample_ts.push(ts);
                for account in &mut self.accounts {
                    let equity = account.equity();
                    account.samples.push(equity);
                }
            }
        }
    }

    /// Orders resting, over every market.
    pub fn resting_orders(&self) -> usize {
        self.markets.iter().map(|m| m.orders.len()).sum()
    }
}

/// (peak − equity) / peak; 0 when the peak is not positive.
pub fn drawdown(peak: Money, equity: Money) -> f64 {
    if peak <= Money::ZERO {
        return 0.0;
    }
    ((peak - equity).to_f64() / peak.to_f64()).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{InstrumentCosts, PaperSpec, RiskSpec};
    use quiver_core::{Metadata, Reasoning};

    fn p(text: &str) -> Price {
        Price::parse(text).unwrap()
    }

    fn m(text: &str) -> Money {
        let price = Price::parse(text).unwrap();
        Money::from_units(i128::from(price.units()))
    }

    fn tick(ts_s: i64, instrument: u64, price: &str) -> Tick {
        Tick {
            ts_ns: ts_s * 1_000_000_000,
            instrument,
            price: p(price),
            volume: 1,
            bid: None,
            ask: None,
        }
    }

    quiver_core::fixed_reason!(test_reason, "test");

    fn decision(side: Side, quantity: u64, price: &str, confidence: f64) -> Decision {
        Decision {
            side,
            confidence,
            quantity,
            price: p(price),
            reasoning: Reasoning::fixed(test_reason),
            metadata: Metadata::default(),
        }
    }

    /// Feeds `(tick, signals of account 0 at it)` in order.
    fn run(desk: &mut Desk, steps: &[(Tick, Vec<Decision>)]) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        for (seq, (t, signals)) in steps.iter().enumerate() {
            desk.on_tick(seq as u64, t);
            for d in signals {
                verdicts.push(desk.on_signal(0, seq as u64, t.ts_ns, t.instrument, d));
            }
        }
        desk.finish();
        verdicts
    }

    fn spec() -> DeskSpec {
        DeskSpec::default()
    }

    #[test]
    fn a_round_trip_fills_at_the_next_ticks_and_pays_its_fees_exactly() {
        let mut s = spec();
        s.costs.default = InstrumentCosts {
            taker_fee: Rate::from_bps(10.0).unwrap(),
            ..InstrumentCosts::default()
        };
        let mut desk = Desk::new(s, ["a".to_owned()]);
        let v = run(
            &mut desk,
            &[
                (tick(0, 1, "100"), vec![decision(Side::Buy, 10, "100", 1.0)]),
                (tick(1, 1, "101"), vec![]),
                (
                    tick(2, 1, "103"),
                    vec![decision(Side::Sell, 10, "103", 1.0)],
                ),
                (tick(3, 1, "102"), vec![]),
            ],
        );
        assert_eq!(v, [Verdict::Accepted, Verdict::Accepted]);
        let fills = desk.fills();
        assert_eq!(fills.len(), 2);
        assert_eq!(
            (fills[0].seq, fills[0].signal_seq, fills[0].price),
            (1, 0, p("101"))
        );
        assert_eq!(fills[0].fee, m("1.01"));
        assert_eq!(
            (fills[1].seq, fills[1].price, fills[1].position),
            (3, p("102"), 0)
        );
        assert_eq!(fills[1].realized, m("10"));
        let a = &desk.accounts()[0];
        // 1,000,000 − 1,010 − 1.01 + 1,020 − 1.02
        assert_eq!(a.cash.to_string(), "1000007.97");
        assert_eq!(a.equity().to_string(), "1000007.97");
        assert_eq!((a.wins, a.losses), (1, 0));
        assert_eq!(a.gross_profit, m("7.97"));
        assert_eq!(a.fees, m("2.03"));
        assert_eq!(a.traded, m("2030"));
    }

    #[test]
    fn equity_marks_open_positions_at_each_tick() {
        let mut desk = Desk::new(spec(), ["a".to_owned()]);
        run(
            &mut desk,
            &[
                (tick(0, 1, "50"), vec![decision(Side::Sell, 4, "50", 1.0)]),
                (tick(1, 1, "50"), vec![]),
                (tick(2, 1, "47.5"), vec![]),
            ],
        );
        let a = &desk.accounts()[0];
        // Short 4 from 50, marked at 47.5: +10.
        assert_eq!(a.equity().to_string(), "1000010");
        assert_eq!(a.exposure, m("190"));
        assert_eq!(a.positions().collect::<Vec<_>>(), [(0, -4)]);
    }

    #[test]
    fn a_target_signal_orders_the_difference_to_the_position_it_wants() {
        let mut s = spec();
        s.paper.signals = SignalMode::Target;
        let mut desk = Desk::new(s, ["a".to_owned()]);
        let v = run(
            &mut desk,
            &[
                (tick(0, 1, "10"), vec![decision(Side::Buy, 10, "10", 1.0)]),
                (tick(1, 1, "10"), vec![decision(Side::Buy, 10, "10", 1.0)]),
                (tick(2, 1, "10"), vec![decision(Side::Sell, 5, "10", 1.0)]),
                (tick(3, 1, "10"), vec![]),
            ],
        );
        assert_eq!(v, [Verdict::Accepted, Verdict::NoChange, Verdict::Accepted]);
        let q: Vec<i64> = desk.fills().iter().map(|f| f.quantity).collect();
        assert_eq!(q, [10, -15]);
        assert_eq!(desk.fills()[1].position, -5);
    }

    #[test]
    fn exposure_limits_throttle_above_their_soft_level_and_block_past_them_but_never_an_exit() {
        let mut s = spec();
        s.risk = RiskSpec {
            max_instrument_exposure: Some(Money::from_int(1_000)),
            ..RiskSpec::default()
        };
        let mut desk = Desk::new(s, ["a".to_owned()]);
        let v = run(
            &mut desk,
            &[(
                tick(0, 1, "100"),
                vec![
                    decision(Side::Buy, 5, "100", 1.0),  // 500: 50%
                    decision(Side::Buy, 4, "100", 1.0),  // 900: 90% > 80%, halved to 2
                    decision(Side::Buy, 4, "100", 1.0),  // 1,100 > 1,000
                    decision(Side::Sell, 7, "100", 1.0), // an exit
                ],
            )],
        );
        assert_eq!(
            v,
            [
                Verdict::Accepted,
                Verdict::Throttled(Scope::Instrument),
                Verdict::Blocked(Scope::Instrument),
                Verdict::Accepted
            ]
        );
        assert_eq!(desk.resting_orders(), 3);
    }

    #[test]
    fn tags_limit_the_instruments_they_cover_together() {
        let mut s = spec();
        s.risk.tags.insert("banks".into(), vec![1, 2]);
        s.risk
            .max_tag_exposure
            .insert("banks".into(), Money::from_int(1_000));
        s.risk.soft_limit = 1.0;
        let mut desk = Desk::new(s, ["a".to_owned()]);
        let v = run(
            &mut desk,
            &[
                (tick(0, 1, "100"), vec![decision(Side::Buy, 6, "100", 1.0)]),
                (tick(1, 2, "100"), vec![decision(Side::Buy, 5, "100", 1.0)]),
                (tick(2, 3, "100"), vec![decision(Side::Buy, 50, "100", 1.0)]),
            ],
        );
        assert_eq!(
            v,
            [
                Verdict::Accepted,
                Verdict::Blocked(Scope::Tag),
                Verdict::Accepted
            ]
        );
    }

    #[test]
    fn a_drawdown_halts_entries_until_its_resume_time_but_not_exits() {
        let mut s = spec();
        s.risk.max_strategy_drawdown = Some(0.001);
        s.risk.resume_after_ns = Some(10_000_000_000);
        let mut desk = Desk::new(s, ["a".to_owned()]);
        let v = run(
            &mut desk,
            &[
                (
                    tick(0, 1, "100"),
                    vec![decision(Side::Buy, 100, "100", 1.0)],
                ),
                (tick(1, 1, "100"), vec![]),
                // −2,000 on 1,000,000: 0.2% down.
                (tick(2, 1, "80"), vec![decision(Side::Buy, 1, "80", 1.0)]),
                (tick(5, 1, "80"), vec![decision(Side::Sell, 50, "80", 1.0)]),
                (tick(9, 1, "80"), vec![decision(Side::Buy, 1, "80", 1.0)]),
                (tick(13, 1, "80"), vec![decision(Side::Buy, 1, "80", 1.0)]),
            ],
        );
        assert_eq!(
            v,
            [
                Verdict::Accepted,
                Verdict::Halted(Scope::Strategy),
                Verdict::Accepted,
                Verdict::Halted(Scope::Strategy),
                Verdict::Accepted
            ]
        );
    }

    #[test]
    fn quotes_slippage_and_limit_orders_fill_as_configured() {
        let mut s = spec();
        s.paper.fill = FillModel::NextQuote;
        s.paper.slippage = Rate::from_bps(10.0).unwrap();
        let mut desk = Desk::new(s, ["a".to_owned()]);
        let mut quoted = tick(1, 1, "100");
        quoted.bid = Some(p("99.9"));
        quoted.ask = Some(p("100.1"));
        run(
            &mut desk,
            &[
                (tick(0, 1, "100"), vec![decision(Side::Buy, 1, "100", 1.0)]),
                (quoted, vec![]),
            ],
        );
        // The ask, 10 bp worse.
        assert_eq!(desk.fills()[0].price, p("100.2001"));
        assert_eq!(desk.accounts()[0].spread_slippage, m("0.2001"));

        let mut s = spec();
        s.paper.fill = FillModel::Limit;
        s.paper.limit_ttl_ns = 5_000_000_000;
        s.costs.default.maker_fee = Rate::from_bps(1.0).unwrap();
        let mut desk = Desk::new(s, ["a".to_owned()]);
        run(
            &mut desk,
            &[
                (tick(0, 1, "100"), vec![decision(Side::Buy, 10, "99", 1.0)]),
                (tick(1, 1, "99.5"), vec![]),
                (
                    tick(2, 1, "98.7"),
                    vec![decision(Side::Sell, 10, "105", 1.0)],
                ),
                (tick(3, 1, "101"), vec![]),
                (tick(8, 1, "102"), vec![]),
            ],
        );
        let fills = desk.fills();
        assert_eq!(fills.len(), 1);
        assert_eq!(
            (fills[0].seq, fills[0].price, fills[0].fee),
            (2, p("99"), m("0.099"))
        );
        assert_eq!(desk.accounts()[0].expired, 1);
        assert_eq!(desk.resting_orders(), 0);
    }

    #[test]
    fn entries_whose_edge_does_not_cover_their_costs_are_skipped() {
        let mut s = spec();
        s.costs.default = InstrumentCosts {
            spread: Rate::from_bps(4.0).unwrap(),
            taker_fee: Rate::from_bps(3.0).unwrap(),
            maker_fee: Rate::ZERO,
        };
        s.costs.edge_bps = Some(20.0);
        s.costs.min_edge_bps = Some(5.0);
        let mut desk = Desk::new(s, ["a".to_owned()]);
        // Cost 2 + 3 = 5 bp: confidence 0.5 gives 10 − 5 = 5 (kept), 0.4 gives 3.
        let v = run(
            &mut desk,
            &[(
                tick(0, 1, "100"),
                vec![
                    decision(Side::Buy, 1, "100", 0.4),
                    decision(Side::Buy, 1, "100", 0.5),
                    decision(Side::Sell, 1, "100", 0.1),
                ],
            )],
        );
        assert_eq!(
            v,
            [Verdict::BelowEdge, Verdict::Accepted, Verdict::Accepted]
        );
    }

    #[test]
    fn the_equity_curve_is_sampled_once_per_boundary_crossed_and_at_the_end() {
        let mut s = spec();
        s.paper = PaperSpec {
            sample_ns: 10_000_000_000,
            ..PaperSpec::default()
        };
        let mut desk = Desk::new(s, ["a".to_owned()]);
        run(
            &mut desk,
            &[
                (tick(0, 1, "1"), vec![]),
                (tick(5, 1, "1"), vec![]),
                (tick(10, 1, "1"), vec![]),
                (tick(45, 1, "1"), vec![]),
                (tick(47, 1, "1"), vec![]),
            ],
        );
        let s: Vec<i64> = desk
            .sample_times()
            .iter()
            .map(|t| t / 1_000_000_000)
            .collect();
        assert_eq!(s, [0, 10, 45, 47]);
    }
}
