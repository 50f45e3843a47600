//! Tick stream entries ↔ ticks.

use std::sync::Arc;

use quiver_core::{Price, Tick};
use redis::Value;

use crate::live::{DeadLetter, LiveTick};

/// The fields of one stream entry, as the server sent them.
pub type TickFields = [Value];

/// Reads the fields of a tick entry (`ts_ns`, `instrument`, `price`,
/// `volume`, optional `bid`, `ask`, `seq`, `correlation_id`; unknown fields
/// are ignored so producers can add their own).
///
/// Without `seq` the tick's sequence number is derived from its entry id
/// (`ms << 20 | sequence`), which is stable across redeliveries.
pub fn parse_tick_fields(
    entry_id: &str,
    fields: &TickFields,
    origin: &Arc<str>,
) -> Result<LiveTick, String> {
    let mut ts_ns = None;
    let mut instrument = None;
    let mut price = None;
    let mut volume = None;
    let mut bid = None;
    let mut ask = None;
    let mut seq = None;
    let mut correlation_id = None;
    if !fields.len().is_multiple_of(2) {
        return Err("odd number of field names and values".to_owned());
    }
    for pair in fields.chunks_exact(2) {
        let (Some(name), Some(value)) = (text(&pair[0]), text(&pair[1])) else {
            return Err("a field name or value is not a string".to_owned());
        };
        match name {
            "ts_ns" => ts_ns = Some(number::<i64>(name, value)?),
            "instrument" => instrument = Some(number::<u64>(name, value)?),
            "price" => price = Some(decimal(name, value)?),
            "volume" => volume = Some(number::<u64>(name, value)?),
            "bid" if !value.is_empty() => bid = Some(decimal(name, value)?),
            "ask" if !value.is_empty() => ask = Some(decimal(name, value)?),
            "seq" => seq = Some(number::<u64>(name, value)?),
            "correlation_id" if !value.is_empty() => correlation_id = Some(Arc::from(value)),
            _ => {}
        }
    }
    let missing = |field: &str| format!("{field}: missing");
    let price = price.ok_or_else(|| missing("price"))?;
    if !price.is_positive() {
        return Err(format!("price: must be > 0, got {price}"));
    }
    let volume = volume.ok_or_else(|| missing("volume"))?;
    if volume > Tick::MAX_VOLUME {
        return Err(format!(
            "volume: must be <= {} (2^53, kept exactly), got {volume}",
            Tick::MAX_VOLUME
        ));
    }
    let tick = Tick {
        ts_ns: ts_ns.ok_or_else(|| missing("ts_ns"))?,
        instrument: instrument.ok_or_else(|| missing("instrument"))?,
        price,
        volume,
        bid,
        ask,
    };
    let seq = match seq {
        Some(seq) => seq,
        None => seq_from_entry_id(entry_id).ok_or_else(|| missing("seq"))?,
    };
    Ok(LiveTick {
        tick,
        seq,
        correlation_id,
        origin: Some(Arc::clone(origin)),
    })
}

/// A dead letter for an entry that is not a tick.
pub(crate) fn rejected(origin: &Arc<str>, fields: &TickFields, reason: String) -> DeadLetter {
    DeadLetter {
        category: "malformed_tick",
        reason,
        origin: origin.to_string(),
        payload: render_fields(fields),
    }
}

/// `name=value name=value`, for dead letters and logs.
pub(crate) fn render_fields(fields: &TickFields) -> String {
    let mut out = String::new();
    for pair in fields.chunks(2) {
        if !out.is_empty() {
            out.push(' ');
        }
        for (i, value) in pair.iter().enumerate() {
            if i == 1 {
                out.push('=');
            }
            match text(value) {
                Some(t) => out.push_str(t),
                None => out.push_str(&format!("{value:?}")),
            }
        }
    }
    out
}

fn seq_from_entry_id(id: &str) -> Option<u64> {
    let (ms, n) = id.split_once('-')?;
    let (ms, n): (u64, u64) = (ms.parse().ok()?, n.parse().ok()?);
    Some((ms << 20) | n.min((1 << 20) - 1))
}

pub(crate) fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s),
        Value::VerbatimString { text, .. } => Some(text),
        _ => None,
    }
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name}: {value:?} is not an integer in range"))
}

fn decimal(name: &str, value: &str) -> Result<Price, String> {
    Price::parse(value).map_err(|e| format!("{name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<Value> {
        pairs
            .iter()
            .flat_map(|(k, v)| {
                [
                    Value::BulkString(k.as_bytes().to_vec()),
                    Value::BulkString(v.as_bytes().to_vec()),
                ]
            })
            .collect()
    }

    #[test]
    fn reads_canonical_fields_exactly() {
        let origin: Arc<str> = Arc::from("market.ticks/5-0");
        let live = parse_tick_fields(
            "5-0",
            &fields(&[
                ("ts_ns", "1767584700000000000"),
                ("instrument", "256265"),
                ("price", "101.05"),
                ("volume", "7"),
                ("ask", "101.1"),
                ("seq", "41"),
                ("correlation_id", "req-9"),
                ("producer", "ignored"),
            ]),
            &origin,
        )
        .unwrap();
        assert_eq!(live.tick.price.to_string(), "101.05");
        assert_eq!(live.tick.instrument, 256265);
        assert_eq!(
            live.tick.ask.map(|p| p.to_string()).as_deref(),
            Some("101.1")
        );
        assert_eq!(live.tick.bid, None);
        assert_eq!(live.seq, 41);
        assert_eq!(live.correlation_id.as_deref(), Some("req-9"));
        assert_eq!(live.origin.as_deref(), Some("market.ticks/5-0"));
    }

    #[test]
    fn names_the_field_at_fault() {
        let origin: Arc<str> = Arc::from("s/1-0");
        let cases: [(&[(&str, &str)], &str); 6] = [
            (
                &[("ts_ns", "1"), ("instrument", "2"), ("volume", "3")],
                "price: missing",
            ),
            (
                &[
                    ("ts_ns", "1"),
                    ("instrument", "2"),
                    ("price", "abc"),
                    ("volume", "3"),
                ],
                "price: \"abc\" is not a decimal",
            ),
            (
                &[
                    ("ts_ns", "x"),
                    ("instrument", "2"),
                    ("price", "1"),
                    ("volume", "3"),
                ],
                "ts_ns: \"x\" is not an integer in range",
            ),
            (
                &[
                    ("ts_ns", "1"),
                    ("instrument", "2"),
                    ("price", "-1"),
                    ("volume", "3"),
                ],
                "price: must be > 0, got -1",
            ),
            (
                // The fraction would wrap this to a positive price.
                &[
                    ("ts_ns", "1"),
                    ("instrument", "2"),
                    ("price", "-92233720368.99999999"),
                    ("volume", "3"),
                ],
                "price: \"-92233720368.99999999\" is out of range",
            ),
            (
                &[
                    ("ts_ns", "1"),
                    ("instrument", "2"),
                    ("price", "1"),
                    ("volume", "9007199254740993"),
                ],
                "volume: must be <= 9007199254740992 (2^53, kept exactly), got 9007199254740993",
            ),
        ];
        for (pairs, message) in cases {
            assert_eq!(
                parse_tick_fields("1-0", &fields(pairs), &origin).unwrap_err(),
                message
            );
        }
    }

    #[test]
    fn derives_a_stable_seq_from_the_entry_id() {
        let origin: Arc<str> = Arc::from("s/1700000000000-3");
        let live = parse_tick_fields(
            "1700000000000-3",
            &fields(&[
                ("ts_ns", "1"),
                ("instrument", "2"),
                ("price", "1"),
                ("volume", "3"),
            ]),
            &origin,
        )
        .unwrap();
        assert_eq!(live.seq, (1_700_000_000_000u64 << 20) | 3);
    }
}
