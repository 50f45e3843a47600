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
use std::hash::{BuildHasherDefault, Hasher};

use quiver_core::{Decision, InstrumentToken, Price, Side, Tick};

mod risk;

use risk::{entry_cost_bps, ppb, Breaker, Gate, Limit};

use crate::money::{adjust, Money, Rate};
use crate::spec::{DeskSpec, FillModel, InstrumentCosts, SignalMode};
pub use crate::verdict::{Scope, Verdict, REASONS, REFUSALS};

/// Instrument tokens are small integers chosen by an exchange, not by an
/// attacker of the map: one multiply spreads them well enough, at a
/// fraction of SipHash's cost on a per-tick path.
#[derive(Default)]
struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (value ^ (value >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type TokenMap = HashMap<InstrumentToken, u32, BuildHasherDefault<TokenHasher>>;

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
    /// Its place in its market's holder list, while it holds or orders.
    slot: Option<u32>,
}

/// The open lots of a holding, oldest first, and the round trip they are
/// part of: what only a fill reads. The oldest lot is held inline, so the
/// common holding (one lot) costs a fill no allocation and no pointer to
/// chase.
#[derive(Clone, Debug, Default)]
struct Lots {
    /// The oldest open lot: (signed quantity, price); quantity 0 when
    /// there is none (and then `more` is empty too).
    head: (i64, Price),
    /// The younger lots.
    more: VecDeque<(i64, Price)>,
    /// The round trip in progress: realised PnL net of fees so far.
    trip: Money,
}

impl Lots {
    /// Books a fill of `q` at `price` against the open lots (first in,
    /// first out); what it realised.
    fn fill(&mut self, q: i64, price: Price) -> Money {
        let mut remaining = q;
        let mut realized = Money::ZERO;
        while remaining != 0 && self.head.0 != 0 && self.head.0.signum() != remaining.signum() {
            let front = &mut self.head;
            let closing = remaining.abs().min(front.0.abs()) * front.0.signum();
            realized += Money::notional(price, closing) - Money::notional(front.1, closing);
            front.0 -= closing;
            remaining += closing;
            if front.0 == 0 {
                self.head = self.more.pop_front().unwrap_or_default();
            }
        }
        if remaining != 0 {
            if self.head.0 == 0 {
                self.head = (remaining, price);
            } else {
                self.more.push_back((remaining, price));
            }
        }
        realized
    }
}

/// A position or an order on a market, mirrored from its [`Holding`] so a
/// tick's marks move in one pass over contiguous memory; its lots live
/// here, in the memory a tick of the market has just warmed for its fills.
#[derive(Clone, Debug)]
struct Holder {
    account: u32,
    position: i64,
    committed: i64,
    lots: Lots,
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
    breaker: Breaker,
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
            breaker: Breaker::new(spec.paper.capital, spec.risk.max_strategy_drawdown.map(ppb)),
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
    mark: Price,
    costs: InstrumentCosts,
    /// What an entry here costs, in basis points (the edge filter's).
    entry_cost_bps: f64,
    /// Σ over accounts of position (signed): moves every account's marks.
    position: i128,
    /// Σ over accounts of |committed|.
    committed: i128,
    /// Accounts with a position or an order here.
    holders: Vec<Holder>,
    orders: Vec<Order>,
    /// Indices into `Desk::tags`.
    tags: Vec<u32>,
}

struct Tag {
    name: String,
    limit: Option<Limit>,
    exposure: Money,
}

/// The desk of every strategy's paper account.
pub struct Desk {
    spec: DeskSpec,
    accounts: Vec<Account>,
    markets: Vec<Market>,
    by_token: TokenMap,
    /// The token and market of the latest tick.
    last_market: (InstrumentToken, u32),
    tags: Vec<Tag>,
    total_exposure: Money,
    /// Σ over accounts of cash and of position × mark.
    total_cash: Money,
    total_marked: Money,
    /// Orders of a market not filled at its tick, reused between ticks.
    spare: Vec<Order>,
    fills: Vec<Fill>,
    /// Tick time of each sample.
    sample_ts: Vec<i64>,
    next_sample: Option<i64>,
    last_ts: Option<i64>,
    /// The drawdown breaker of every account as one.
    total_breaker: Breaker,
    /// The order the latest signal became: (signed quantity, the position
    /// once it fills).
    last_order: (i64, i64),
    /// The limits and the edge filter, in the form a check compares with.
    gate: Gate,
}

impl Desk {
    /// A desk for strategies `ids` (one account each, in this order).
    pub fn new(spec: DeskSpec, ids: impl IntoIterator<Item = String>) -> Desk {
        let accounts: Vec<Account> = ids.into_iter().map(|id| Account::new(id, &spec)).collect();
        let soft_ppb = ppb(spec.risk.soft_limit);
        let tag_limit = |name: &String| {
            spec.risk
                .max_tag_exposure
                .get(name)
                .map(|&hard| Limit::new(hard, soft_ppb))
        };
        let mut tags: Vec<Tag> = spec
            .risk
            .tags
            .keys()
            .map(|name| Tag {
                name: name.clone(),
                limit: tag_limit(name),
                exposure: Money::ZERO,
            })
            .collect();
        for name in spec.risk.max_tag_exposure.keys() {
            if !tags.iter().any(|t| &t.name == name) {
                tags.push(Tag {
                    name: name.clone(),
                    limit: tag_limit(name),
                    exposure: Money::ZERO,
                });
            }
        }
        let total_peak: Money = accounts.iter().map(|a| a.capital).sum();
        let total_drawdown_ppb = spec.risk.max_total_drawdown.map(ppb);
        let gate = Gate::new(&spec);
        Desk {
            spec,
            accounts,
            markets: Vec::new(),
            by_token: TokenMap::default(),
            last_market: (0, 0),
            tags,
            total_exposure: Money::ZERO,
            total_cash: total_peak,
            total_marked: Money::ZERO,
            spare: Vec::new(),
            fills: Vec::new(),
            sample_ts: Vec::new(),
            next_sample: None,
            last_ts: None,
            total_breaker: Breaker::new(total_peak, total_drawdown_ppb),
            last_order: (0, 0),
            gate,
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
        let peak = self.total_breaker.peak + capital;
        self.total_breaker.set_peak(peak);
        self.total_cash += capital;
        self.accounts.push(account);
        (self.accounts.len() - 1) as u32
    }

    pub fn spec(&self) -> &DeskSpec {
        &self.spec
    }

    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// The fills since the last [`Desk::drain_fills`].
    pub fn fills(&self) -> &[Fill] {
        &self.fills
    }

    /// Swaps the fills so far (oldest first) into `buffer`, which should be
    /// empty, and keeps its capacity: a long run streams fills away instead
    /// of holding every one, without allocating per batch.
    pub fn take_fills(&mut self, buffer: &mut Vec<Fill>) {
        std::mem::swap(&mut self.fills, buffer);
    }

    /// The order the latest signal became, when its verdict ordered:
    /// (signed quantity, the position once it fills).
    pub fn last_order(&self) -> (i64, i64) {
        self.last_order
    }

    /// The id of account `a`.
    pub fn account_id(&self, a: u32) -> &str {
        &self.accounts[a as usize].id
    }

    /// Tick time of each equity sample.
    pub fn sample_times(&self) -> &[i64] {
        &self.sample_ts
    }

    /// Σ over accounts.
    pub fn total_equity(&self) -> Money {
        self.total_cash + self.total_marked
    }

    fn market(&mut self, tick: &Tick) -> usize {
        if let Some(&i) = self.by_token.get(&tick.instrument) {
            self.last_market = (tick.instrument, i);
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
        let costs = self.spec.costs.of(tick.instrument);
        self.markets.push(Market {
            mark: tick.price,
            entry_cost_bps: entry_cost_bps(&costs, &self.spec),
            costs,
            position: 0,
            committed: 0,
            holders: Vec::new(),
            orders: Vec::new(),
            tags,
        });
        self.by_token.insert(tick.instrument, i as u32);
        self.last_market = (tick.instrument, i as u32);
        i
    }

    /// The market of `instrument`: a signal's is almost always the one of
    /// the tick just seen.
    fn market_of(&self, instrument: InstrumentToken) -> Option<usize> {
        if self.last_market.0 == instrument && !self.markets.is_empty() {
            return Some(self.last_market.1 as usize);
        }
        self.by_token.get(&instrument).map(|&i| i as usize)
    }

    /// A tick: marks, fills, samples. Ticks come in seq order, each before
    /// the signals it caused.
    pub fn on_tick(&mut self, seq: u64, tick: &Tick) {
        let i = self.market(tick);
        let market = &mut self.markets[i];
        let delta = i128::from(tick.price.units()) - i128::from(market.mark.units());
        market.mark = tick.price;
        if delta != 0 {
            for h in &market.holders {
                let account = &mut self.accounts[h.account as usize];
                account.marked += Money::from_units(i128::from(h.position) * delta);
                account.exposure += Money::from_units(i128::from(h.committed.abs()) * delta);
            }
            let moved = Money::from_units(market.committed * delta);
            for &t in &market.tags {
                self.tags[t as usize].exposure += moved;
            }
            self.total_exposure += moved;
            self.total_marked += Money::from_units(market.position * delta);
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
        let mut orders = std::mem::take(&mut self.markets[i].orders);
        let mut resting = std::mem::take(&mut self.spare);
        let costs = self.markets[i].costs;
        let slippage = self.spec.paper.slippage;
        for order in orders.drain(..) {
            let buy = order.quantity > 0;
            let quote = if buy { tick.ask } else { tick.bid };
            let (price, fee) = match (self.spec.paper.fill, quote) {
                (FillModel::NextQuote, Some(quote)) => {
                    (adjust(quote, slippage, buy), costs.taker_fee)
                }
                // A tick without the quote pays half the configured spread.
                (FillModel::NextPrice | FillModel::NextQuote, _) => (
                    adjust(tick.price, costs.spread.half() + slippage, buy),
                    costs.taker_fee,
                ),
                (FillModel::Limit, _) => {
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
        self.spare = orders;
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
        self.sync(order.account, i);
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
        self.total_cash -= notional + fee;
        self.total_marked += Money::notional(tick.price, q);
        self.markets[i].position += i128::from(q);
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
        let position = h.position;
        // An order rests only while its holding is listed.
        let Some(k) = h.slot else {
            return;
        };
        let lots = &mut self.markets[i].holders[k as usize].lots;
        let realized = lots.fill(q, price);
        lots.trip += realized - fee;
        let closed = before != 0 && (position == 0 || position.signum() != before.signum());
        let trip = if closed {
            Some(std::mem::take(&mut lots.trip))
        } else {
            None
        };
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
        self.sync(order.account, i);
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

    /// Mirrors account `a`'s holding of market `i` into the market's
    /// holder list: listed while it holds or orders, removed once flat.
    fn sync(&mut self, a: u32, i: usize) {
        let h = &mut self.accounts[a as usize].holdings[i];
        let (position, committed) = (h.position, h.committed);
        let holders = &mut self.markets[i].holders;
        match h.slot {
            Some(k) if position == 0 && committed == 0 => {
                h.slot = None;
                holders.swap_remove(k as usize);
                if let Some(moved) = holders.get(k as usize) {
                    self.accounts[moved.account as usize].holdings[i].slot = Some(k);
                }
            }
            Some(k) => {
                let entry = &mut holders[k as usize];
                entry.position = position;
                entry.committed = committed;
            }
            None if position != 0 || committed != 0 => {
                h.slot = Some(holders.len() as u32);
                holders.push(Holder {
                    account: a,
                    position,
                    committed,
                    lots: Lots::default(),
                });
            }
            None => {}
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
        self.accounts[a as usize].verdicts[verdict.index()] += 1;
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
        let Some(i) = self.market_of(instrument) else {
            // A signal always follows a tick of its instrument.
            return Verdict::NoChange;
        };
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
            if self.below_edge(i, decision) {
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
        self.last_order = (q, old + q);
        let account = &mut self.accounts[a as usize];
        let h = account.holding(i);
        h.committed = old + q;
        let change = h.committed.abs() - old.abs();
        self.sync(a, i);
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
            account.breaker.observe(equity, ts_ns);
        }
        let total = self.total_equity();
        self.total_breaker.observe(total, ts_ns);
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
            // The desk's running total is the sum of its accounts.
            let sum: Money = desk.accounts().iter().map(Account::equity).sum();
            assert_eq!(desk.total_equity(), sum, "after tick {seq}");
        }
        desk.finish();
        verdicts
    }

    fn spec() -> DeskSpec {
        DeskSpec::default()
    }

    #[test]
    fn every_verdict_has_its_reason_and_the_refusals_are_the_no_order_ones() {
        let all = [
            Verdict::Accepted,
            Verdict::Throttled(Scope::Tag),
            Verdict::Blocked(Scope::Instrument),
            Verdict::Blocked(Scope::Strategy),
            Verdict::Blocked(Scope::Tag),
            Verdict::Blocked(Scope::Total),
            Verdict::Halted(Scope::Strategy),
            Verdict::Halted(Scope::Total),
            Verdict::BelowEdge,
            Verdict::NoChange,
        ];
        let reasons: Vec<&str> = all.iter().map(|v| v.reason()).collect();
        assert_eq!(reasons, REASONS);
        assert_eq!(
            REFUSALS,
            [
                "instrument_limit",
                "strategy_limit",
                "tag_limit",
                "total_limit",
                "strategy_drawdown",
                "total_drawdown",
                "below_edge"
            ]
        );
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
