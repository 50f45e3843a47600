//! The `paper:`, `risk:` and `costs:` sections: the paper broker, the risk
//! controller and the cost model a backtest (and a live paper broker)
//! applies.
//!
//! ```yaml
//! paper:
//!   capital: 1000000            # each strategy's starting cash
//!   fill: next_price            # next_price | next_quote | limit
//!   slippage_bps: 1
//!   limit_ttl_ms: 60000         # how long a limit order rests (fill: limit)
//!   signals: order              # order (BUY q buys q) | target (BUY q: be long q)
//!   strategies: {momentum-fast: {signals: target}}
//!   sample_ms: 60000            # the equity curve's sampling, tick time
//!   periods_per_year: 94500     # default: 252 sessions of 22,500 s
//! risk:
//!   max_instrument_exposure: 2000000
//!   max_strategy_exposure: 5000000
//!   max_total_exposure: 50000000
//!   tags: {NSE: [1001, 1002], banks: [1001]}
//!   max_tag_exposure: {banks: 1000000}
//!   soft_limit: 0.8             # throttle entries above this fraction of a limit
//!   throttle_factor: 0.5        # a throttled entry keeps this fraction
//!   max_strategy_drawdown: 0.1  # halt a strategy's entries 10% below its peak
//!   max_total_drawdown: 0.05
//!   resume_after_ms: 3600000    # default: halted for the rest of the run
//! costs:
//!   spread_bps: 2               # when a tick has no bid/ask
//!   taker_fee_bps: 3
//!   maker_fee_bps: 1
//!   edge_bps: 20                # a confidence-1 signal's expected edge
//!   min_edge_bps: 5             # skip entries whose edge after cost is below
//!   instruments: {1001: {spread_bps: 4, taker_fee_bps: 5}}
//! ```

use quiver_core::{InstrumentToken, Price};
use quiver_paper::{
    CostSpec, FillModel, InstrumentCosts, Money, PaperSpec, Rate, RiskSpec, SignalMode,
};

use crate::yaml::{child, describe, item, pos, value, Node, Pos, Reader, Value};

const DAY_MS: i64 = 86_400_000;
/// The largest amount a limit or a capital may be: what a [`Price`] holds.
const MAX_AMOUNT: f64 = 90_000_000_000.0;

/// An amount of money: a positive number with at most 8 decimals.
fn amount(yaml: &mut Reader, node: &Node<'_>, path: &str) -> Option<Money> {
    let v = yaml.float(node, path)?;
    if !(v > 0.0 && v <= MAX_AMOUNT) {
        yaml.issue(
            pos(node),
            path,
            format!(
                "expected an amount above 0 and at most 9e10, got {}",
                describe(node)
            ),
        );
        return None;
    }
    match Price::parse(&format!("{v}")) {
        Ok(price) => Some(Money::from_units(i128::from(price.units()))),
        Err(err) => {
            yaml.issue(pos(node), path, err.to_string());
            None
        }
    }
}

/// Basis points: 0 to 10,000, in steps of 0.0001.
fn bps(yaml: &mut Reader, node: &Node<'_>, path: &str) -> Option<Rate> {
    let v = yaml.float(node, path)?;
    let rate = Rate::from_bps(v);
    if rate.is_none() {
        yaml.issue(
            pos(node),
            path,
            format!(
                "expected basis points from 0 to 10000 in steps of 0.0001, got {}",
                describe(node)
            ),
        );
    }
    rate
}

/// A fraction above 0, at most 1 (below 1 when `open_hi`).
fn fraction(yaml: &mut Reader, node: &Node<'_>, path: &str, open_hi: bool) -> Option<f64> {
    let v = yaml.float(node, path)?;
    let ok = v > 0.0 && if open_hi { v < 1.0 } else { v <= 1.0 };
    if !ok {
        let range = if open_hi {
            "above 0 and below 1"
        } else {
            "above 0 and at most 1"
        };
        yaml.issue(
            pos(node),
            path,
            format!("expected a fraction {range}, got {}", describe(node)),
        );
        return None;
    }
    Some(v)
}

fn ms_ns(yaml: &mut Reader, node: &Node<'_>, path: &str, max_ms: i64) -> Option<i64> {
    yaml.int_in(node, path, 1, max_ms).map(|ms| ms * 1_000_000)
}

/// Reads `node` with `read`, clearing `ok` when it fails.
fn set<T>(ok: &mut bool, slot: &mut T, read: Option<T>) {
    match read {
        Some(v) => *slot = v,
        None => *ok = false,
    }
}

/// `paper:`; `ids` are the strategies of the file, with the line each is
/// named at, for `strategies:`.
pub(crate) fn paper(
    yaml: &mut Reader,
    node: &Node<'_>,
    path: &str,
    ids: &[String],
) -> Option<PaperSpec> {
    const FIELDS: [&str; 8] = [
        "capital",
        "fill",
        "slippage_bps",
        "limit_ttl_ms",
        "signals",
        "strategies",
        "sample_ms",
        "periods_per_year",
    ];
    let map = yaml.mapping(node, path)?;
    let [capital, fill, slippage, ttl, signals, strategies, sample, ppy] =
        yaml.fields(map, path, &FIELDS);
    let mut spec = PaperSpec::default();
    let mut ok = true;
    let at = |f: &str| child(path, f);
    if let Some(n) = capital {
        set(&mut ok, &mut spec.capital, amount(yaml, n, &at(FIELDS[0])));
    }
    if let Some(n) = fill {
        let read = yaml
            .one_of(n, &at(FIELDS[1]), "fill model", &FillModel::NAMES)
            .and_then(FillModel::parse);
        set(&mut ok, &mut spec.fill, read);
    }
    if let Some(n) = slippage {
        set(&mut ok, &mut spec.slippage, bps(yaml, n, &at(FIELDS[2])));
    }
    if let Some(n) = ttl {
        set(
            &mut ok,
            &mut spec.limit_ttl_ns,
            ms_ns(yaml, n, &at(FIELDS[3]), 7 * DAY_MS),
        );
    }
    if let Some(n) = signals {
        set(
            &mut ok,
            &mut spec.signals,
            signal_mode(yaml, n, &at(FIELDS[4])),
        );
    }
    if let Some(n) = strategies {
        let path = at(FIELDS[5]);
        match yaml.mapping(n, &path) {
            Some(map) => {
                for entry in yaml.entries(map, &path) {
                    let here = child(&path, entry.name);
                    if !ids.iter().any(|id| id == entry.name) {
                        yaml.issue(
                            pos(entry.key),
                            &here,
                            format!("no strategy has id {:?}", entry.name),
                        );
                        ok = false;
                        continue;
                    }
                    let Some(row) = yaml.mapping(entry.value, &here) else {
                        ok = false;
                        continue;
                    };
                    let [mode] = yaml.fields(row, &here, &["signals"]);
                    let Some(mode) = yaml.required(mode, "signals", &here, pos(entry.value)) else {
                        ok = false;
                        continue;
                    };
                    match signal_mode(yaml, mode, &child(&here, "signals")) {
                        Some(mode) => {
                            spec.signal_modes.insert(entry.name.to_owned(), mode);
                        }
                        None => ok = false,
                    }
                }
            }
            None => ok = false,
        }
    }
    if let Some(n) = sample {
        set(
            &mut ok,
            &mut spec.sample_ns,
            ms_ns(yaml, n, &at(FIELDS[6]), DAY_MS),
        );
    }
    if let Some(n) = ppy {
        let path = at(FIELDS[7]);
        match yaml.float(n, &path) {
            Some(v) if v > 0.0 && v <= 1e9 => spec.periods_per_year = Some(v),
            Some(_) => {
                yaml.issue(
                    pos(n),
                    &path,
                    format!(
                        "expected a number above 0 and at most 1e9, got {}",
                        describe(n)
                    ),
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(spec)
}

fn signal_mode(yaml: &mut Reader, node: &Node<'_>, path: &str) -> Option<SignalMode> {
    yaml.one_of(node, path, "signal mode", &SignalMode::NAMES)
        .and_then(SignalMode::parse)
}

/// `risk:`.
pub(crate) fn risk(yaml: &mut Reader, node: &Node<'_>, path: &str) -> Option<RiskSpec> {
    const FIELDS: [&str; 10] = [
        "max_instrument_exposure",
        "max_strategy_exposure",
        "max_total_exposure",
        "tags",
        "max_tag_exposure",
        "soft_limit",
        "throttle_factor",
        "max_strategy_drawdown",
        "max_total_drawdown",
        "resume_after_ms",
    ];
    let map = yaml.mapping(node, path)?;
    let [instrument, strategy, total, tags, tag_limits, soft, factor, dd, total_dd, resume] =
        yaml.fields(map, path, &FIELDS);
    let mut spec = RiskSpec::default();
    let mut ok = true;
    let at = |f: &str| child(path, f);
    for (n, slot, f) in [
        (instrument, &mut spec.max_instrument_exposure, FIELDS[0]),
        (strategy, &mut spec.max_strategy_exposure, FIELDS[1]),
        (total, &mut spec.max_total_exposure, FIELDS[2]),
    ] {
        if let Some(n) = n {
            match amount(yaml, n, &at(f)) {
                Some(v) => *slot = Some(v),
                None => ok = false,
            }
        }
    }
    if let Some(n) = tags {
        let path = at(FIELDS[3]);
        match yaml.mapping(n, &path) {
            Some(map) => {
                for entry in yaml.entries(map, &path) {
                    let here = child(&path, entry.name);
                    match tokens(yaml, entry.value, &here) {
                        Some(list) => {
                            spec.tags.insert(entry.name.to_owned(), list);
                        }
                        None => ok = false,
                    }
                }
            }
            None => ok = false,
        }
    }
    if let Some(n) = tag_limits {
        let path = at(FIELDS[4]);
        match yaml.mapping(n, &path) {
            Some(map) => {
                for entry in yaml.entries(map, &path) {
                    let here = child(&path, entry.name);
                    if !spec.tags.contains_key(entry.name) {
                        yaml.issue(
                            pos(entry.key),
                            &here,
                            format!("tag {:?} is not one of risk.tags", entry.name),
                        );
                        ok = false;
                        continue;
                    }
                    match amount(yaml, entry.value, &here) {
                        Some(v) => {
                            spec.max_tag_exposure.insert(entry.name.to_owned(), v);
                        }
                        None => ok = false,
                    }
                }
            }
            None => ok = false,
        }
    }
    if let Some(n) = soft {
        set(
            &mut ok,
            &mut spec.soft_limit,
            fraction(yaml, n, &at(FIELDS[5]), false),
        );
    }
    if let Some(n) = factor {
        set(
            &mut ok,
            &mut spec.throttle_factor,
            fraction(yaml, n, &at(FIELDS[6]), false),
        );
    }
    if let Some(n) = dd {
        match fraction(yaml, n, &at(FIELDS[7]), true) {
            Some(v) => spec.max_strategy_drawdown = Some(v),
            None => ok = false,
        }
    }
    if let Some(n) = total_dd {
        match fraction(yaml, n, &at(FIELDS[8]), true) {
            Some(v) => spec.max_total_drawdown = Some(v),
            None => ok = false,
        }
    }
    if let Some(n) = resume {
        match ms_ns(yaml, n, &at(FIELDS[9]), 7 * DAY_MS) {
            Some(v) => spec.resume_after_ns = Some(v),
            None => ok = false,
        }
    }
    ok.then_some(spec)
}

/// A non-empty list of instrument tokens.
fn tokens(yaml: &mut Reader, node: &Node<'_>, path: &str) -> Option<Vec<InstrumentToken>> {
    let items = yaml.non_empty_sequence(node, path)?;
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (k, n) in items.iter().enumerate() {
        match yaml.int_in(n, &item(path, k), 0, i64::MAX) {
            Some(t) => out.push(t.unsigned_abs()),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// `costs:`.
pub(crate) fn costs(yaml: &mut Reader, node: &Node<'_>, path: &str) -> Option<CostSpec> {
    const FIELDS: [&str; 6] = [
        "spread_bps",
        "taker_fee_bps",
        "maker_fee_bps",
        "edge_bps",
        "min_edge_bps",
        "instruments",
    ];
    let map = yaml.mapping(node, path)?;
    let [spread, taker, maker, edge, min_edge, instruments] = yaml.fields(map, path, &FIELDS);
    let mut spec = CostSpec::default();
    let mut ok = true;
    let at = |f: &str| child(path, f);
    ok &= instrument_costs(
        yaml,
        &mut spec.default,
        [spread, taker, maker],
        path,
        &FIELDS,
    );
    let mut edge_at: Option<Pos> = None;
    for (n, slot, f) in [
        (edge, &mut spec.edge_bps, FIELDS[3]),
        (min_edge, &mut spec.min_edge_bps, FIELDS[4]),
    ] {
        if let Some(n) = n {
            edge_at = Some(pos(n));
            match yaml.float(n, &at(f)) {
                Some(v) if v.abs() <= 10_000.0 => *slot = Some(v),
                Some(_) => {
                    yaml.issue(
                        pos(n),
                        &at(f),
                        format!(
                            "expected basis points from -10000 to 10000, got {}",
                            describe(n)
                        ),
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }
    }
    if ok && spec.edge_bps.is_some() != spec.min_edge_bps.is_some() {
        let (given, missing) = if spec.edge_bps.is_some() {
            (FIELDS[3], FIELDS[4])
        } else {
            (FIELDS[4], FIELDS[3])
        };
        yaml.issue(
            edge_at.unwrap_or(Pos::START),
            &at(given),
            format!("{given} needs {missing}: the edge filter compares the two"),
        );
        ok = false;
    }
    if let Some(n) = instruments {
        let path = at(FIELDS[5]);
        match value(n) {
            Value::Map(map) => {
                for (key, val) in map {
                    // A string key of digits too: the store keeps the
                    // section as JSON, whose keys are strings.
                    let token = match value(key) {
                        Value::Int(t) if t >= 0 => t.unsigned_abs(),
                        Value::Str(text) if text.parse::<u64>().is_ok() => {
                            text.parse::<u64>().unwrap_or_default()
                        }
                        _ => {
                            yaml.expected(key, &path, "an instrument token");
                            ok = false;
                            continue;
                        }
                    };
                    let here = child(&path, &token.to_string());
                    if spec.instruments.contains_key(&token) {
                        yaml.issue(
                            pos(key),
                            &here,
                            format!("instrument {token} is already given"),
                        );
                        ok = false;
                        continue;
                    }
                    let Some(row) = yaml.mapping(val, &here) else {
                        ok = false;
                        continue;
                    };
                    let [s, t, m] = yaml.fields(row, &here, &[FIELDS[0], FIELDS[1], FIELDS[2]]);
                    let mut costs = spec.default;
                    if instrument_costs(yaml, &mut costs, [s, t, m], &here, &FIELDS) {
                        spec.instruments.insert(token, costs);
                    } else {
                        ok = false;
                    }
                }
            }
            _ => {
                yaml.expected(n, &path, "a mapping");
                ok = false;
            }
        }
    }
    ok.then_some(spec)
}

fn instrument_costs(
    yaml: &mut Reader,
    costs: &mut InstrumentCosts,
    nodes: [Option<&Node<'_>>; 3],
    path: &str,
    fields: &[&str],
) -> bool {
    let mut ok = true;
    let [spread, taker, maker] = nodes;
    for (n, slot, f) in [
        (spread, &mut costs.spread, fields[0]),
        (taker, &mut costs.taker_fee, fields[1]),
        (maker, &mut costs.maker_fee, fields[2]),
    ] {
        if let Some(n) = n {
            set(&mut ok, slot, bps(yaml, n, &child(path, f)));
        }
    }
    ok
}
