//! The row fields that say how a strategy is scheduled and what its signals
//! must pass besides the standard validator: `priority`,
//! `budget_us_per_tick` and `validators`.
//!
//! ```yaml
//!     priority: background            # critical | normal (default) | background
//!     budget_us_per_tick: 500         # live only; an evaluation over it is a failure
//!     validators:
//!       - rate_limit: {max_signals_per_minute: 6, min_signal_interval_ms: 500}
//!       - duplicate_window: {seconds: 3}
//!       - cooldown: {seconds: 60}
//!       - position_guard
//!       - price_band: {max_deviation_bps: 50}
//!       - exposure_cap: {max_exposure: 100000}
//! ```
//!
//! Each validator is named at most once; every parameter is required and
//! checked against its range, with the line of the offending value.

use quiver_core::Price;
use quiver_strategy::hygiene::ms_to_ns;
use quiver_strategy::{GuardSpec, Priority};

use crate::yaml::{child, item, pos, value, Node, Reader, Value};

/// The validators a `validators:` list may name.
pub(crate) const VALIDATOR_NAMES: [&str; 6] = [
    "rate_limit",
    "duplicate_window",
    "cooldown",
    "position_guard",
    "price_band",
    "exposure_cap",
];

/// The longest window any of them takes: a day.
const MAX_SECONDS: f64 = 86_400.0;

pub(crate) fn priority(yaml: &mut Reader, node: &Node<'_>, path: &str) -> Option<Priority> {
    let names = Priority::ALL.map(Priority::as_str);
    let name = yaml.one_of(node, path, "priority", &names)?;
    Priority::parse(name)
}

/// `budget_us_per_tick`: 1 µs to 10 s, as nanoseconds.
pub(crate) fn budget_ns(yaml: &mut Reader, node: &Node<'_>, path: &str) -> Option<u64> {
    let us = yaml.int_in(node, path, 1, 10_000_000)?;
    u64::try_from(us).ok().map(|us| us * 1_000)
}

/// A `validators:` list.
pub(crate) fn validators(yaml: &mut Reader, node: &Node<'_>, path: &str) -> Option<GuardSpec> {
    let items = yaml.sequence(node, path)?;
    let mut spec = GuardSpec::default();
    let mut seen: Vec<(&str, usize)> = Vec::new();
    let mut ok = true;
    for (index, entry) in items.iter().enumerate() {
        let at = item(path, index);
        let (name_node, params) = match value(entry) {
            Value::Str(_) => (entry, None),
            Value::Map(_) => {
                let Some(map) = yaml.mapping(entry, &at) else {
                    ok = false;
                    continue;
                };
                let entries = yaml.entries(map, &at);
                match entries.as_slice() {
                    [one] => (one.key, Some(one.value)),
                    _ => {
                        yaml.issue(
                            pos(entry),
                            &at,
                            "a validator is a name, or a mapping of one name to its parameters",
                        );
                        ok = false;
                        continue;
                    }
                }
            }
            _ => {
                yaml.expected(
                    entry,
                    &at,
                    "a validator name or a mapping of one name to its parameters",
                );
                ok = false;
                continue;
            }
        };
        let Some(name) = yaml.one_of(name_node, &at, "validator", &VALIDATOR_NAMES) else {
            ok = false;
            continue;
        };
        if let Some(&(_, first)) = seen.iter().find(|(n, _)| *n == name) {
            yaml.issue(
                pos(entry),
                &at,
                format!("validator {name:?} is already named at {path}[{first}]"),
            );
            ok = false;
            continue;
        }
        seen.push((name, index));
        let at = child(&at, name);
        ok &= one(yaml, &mut spec, name, params, entry, &at).is_some();
    }
    ok.then_some(spec)
}

/// Reads validator `name`'s parameters into `spec`.
fn one(
    yaml: &mut Reader,
    spec: &mut GuardSpec,
    name: &str,
    params: Option<&Node<'_>>,
    at_node: &Node<'_>,
    path: &str,
) -> Option<()> {
    let fields: &[&str] = match name {
        "rate_limit" => &["max_signals_per_minute", "min_signal_interval_ms"],
        "duplicate_window" | "cooldown" => &["seconds"],
        "price_band" => &["max_deviation_bps"],
        "exposure_cap" => &["max_exposure"],
        _ => &[],
    };
    let given = match params {
        None if fields.is_empty() => Vec::new(),
        None => {
            yaml.issue(
                pos(at_node),
                path,
                format!("needs its parameters: {}", fields.join(", ")),
            );
            return None;
        }
        Some(node) if fields.is_empty() => {
            yaml.issue(pos(node), path, format!("{name} takes no parameters"));
            return None;
        }
        Some(node) => {
            let map = yaml.mapping(node, path)?;
            let entries = yaml.entries(map, path);
            let mut given = Vec::new();
            let mut ok = true;
            for entry in entries {
                if fields.contains(&entry.name) {
                    given.push((entry.name, entry.value));
                } else {
                    yaml.unknown(&entry, path, "parameter", fields);
                    ok = false;
                }
            }
            if !ok {
                return None;
            }
            given
        }
    };
    let get = |field: &str| given.iter().find(|(n, _)| *n == field).map(|(_, v)| *v);
    match name {
        "rate_limit" => {
            let (per_minute, interval) = (get(fields[0]), get(fields[1]));
            if per_minute.is_none() && interval.is_none() {
                yaml.issue(
                    pos(at_node),
                    path,
                    "needs max_signals_per_minute, min_signal_interval_ms or both",
                );
                return None;
            }
            if let Some(node) = per_minute {
                let n = yaml.int_in(node, &child(path, fields[0]), 1, 1_000_000)?;
                spec.rates.max_per_minute = u32::try_from(n).ok();
            }
            if let Some(node) = interval {
                let ms = yaml.int_in(node, &child(path, fields[1]), 1, 86_400_000)?;
                spec.rates.min_interval_ns = Some(ms_to_ns(ms.unsigned_abs()));
            }
        }
        "duplicate_window" | "cooldown" => {
            let node = required(yaml, get("seconds"), at_node, path, "seconds")?;
            let seconds = seconds(yaml, node, &child(path, "seconds"))?;
            let ns = Some((seconds * 1e9).round() as i64);
            if name == "cooldown" {
                spec.cooldown_ns = ns;
            } else {
                spec.duplicate_window_ns = ns;
            }
        }
        "position_guard" => spec.position_guard = true,
        "price_band" => {
            let node = required(yaml, get(fields[0]), at_node, path, fields[0])?;
            let bps = yaml.int_in(node, &child(path, fields[0]), 1, 10_000)?;
            spec.price_band_bps = u32::try_from(bps).ok();
        }
        "exposure_cap" => {
            let node = required(yaml, get(fields[0]), at_node, path, fields[0])?;
            spec.max_exposure = Some(money(yaml, node, &child(path, fields[0]))?);
        }
        _ => return None,
    }
    Some(())
}

fn required<'n, 'y>(
    yaml: &mut Reader,
    node: Option<&'n Node<'y>>,
    owner: &Node<'_>,
    path: &str,
    field: &str,
) -> Option<&'n Node<'y>> {
    if node.is_none() {
        yaml.issue(pos(owner), path, format!("missing {field:?}"));
    }
    node
}

/// Seconds in (0, a day].
fn seconds(yaml: &mut Reader, node: &Node<'_>, path: &str) -> Option<f64> {
    let seconds = yaml.float(node, path)?;
    if seconds > 0.0 && seconds <= MAX_SECONDS {
        Some(seconds)
    } else {
        yaml.issue(
            pos(node),
            path,
            format!("must be > 0 and <= {MAX_SECONDS} (a day), got {seconds}"),
        );
        None
    }
}

/// An amount of money > 0, kept exact: an integer, or a decimal written as
/// a string or a number.
fn money(yaml: &mut Reader, node: &Node<'_>, path: &str) -> Option<Price> {
    let text = match value(node) {
        Value::Int(v) => v.to_string(),
        Value::Float(v) if v.is_finite() => v.to_string(),
        Value::Str(s) => s.to_owned(),
        _ => {
            yaml.expected(node, path, "an amount");
            return None;
        }
    };
    match Price::parse(&text) {
        Ok(amount) if amount.is_positive() => Some(amount),
        Ok(amount) => {
            yaml.issue(pos(node), path, format!("must be > 0, got {amount}"));
            None
        }
        Err(err) => {
            yaml.issue(pos(node), path, err.to_string());
            None
        }
    }
}

/// The top-level `lifecycle:` section.
pub(crate) fn lifecycle(
    yaml: &mut Reader,
    node: &Node<'_>,
    path: &str,
) -> Option<crate::Lifecycle> {
    const FIELDS: [&str; 3] = ["quarantine_after", "backoff_base_ms", "backoff_cap_ms"];
    const DAY_MS: i64 = 86_400_000;
    let map = yaml.mapping(node, path)?;
    let [after, base, cap] = yaml.fields(map, path, &FIELDS);
    let mut read = crate::Lifecycle::default();
    let mut ok = true;
    if let Some(node) = after {
        match yaml.int_in(node, &child(path, FIELDS[0]), 1, 1_000) {
            Some(n) => read.quarantine_after = n as u32,
            None => ok = false,
        }
    }
    if let Some(node) = base {
        match yaml.int_in(node, &child(path, FIELDS[1]), 1, DAY_MS) {
            Some(ms) => read.backoff_base_ms = ms.unsigned_abs(),
            None => ok = false,
        }
    }
    if let Some(node) = cap {
        let floor = i64::try_from(read.backoff_base_ms).unwrap_or(1);
        match yaml.int_in(node, &child(path, FIELDS[2]), floor, 7 * DAY_MS) {
            Some(ms) => read.backoff_cap_ms = ms.unsigned_abs(),
            None => ok = false,
        }
    } else if read.backoff_cap_ms < read.backoff_base_ms {
        read.backoff_cap_ms = read.backoff_base_ms;
    }
    ok.then_some(read)
}
