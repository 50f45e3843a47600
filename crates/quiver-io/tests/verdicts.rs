//! Property: one row of values, written as a CSV row, as a JSON Lines object
//! and as the fields of a bus entry, gets the same verdict from the CSV
//! reader, the JSONL reader and the bus codec, and when it is accepted, the
//! same tick. Values range over the edges (i64/u64 limits, 2^53, the price
//! range, too many decimals, signs, zero, junk), so a bound checked by one
//! reader and not another shows up as a disagreement.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use std::io::Cursor;
use std::sync::Arc;

use proptest::prelude::*;
use quiver_core::{Price, Tick};
use quiver_io::redis::parse_tick_fields;
use quiver_io::{TickFormat, TickReader};
use redis::Value;

/// Whether the bus codec refuses a `bid` or `ask` <= 0 as the file readers
/// do. It does not yet (that fix is under way separately), so until then
/// rows with such a quote are compared between the two file readers only.
/// Set to `true` once it does.
const BUS_REFUSES_BAD_QUOTES: bool = true;

/// Integer text, canonical (valid in a CSV cell, as a JSON number and in a
/// bus field), around every bound a reader checks.
fn integer() -> impl Strategy<Value = String> {
    let near = |edge: i128| (-3i128..=3).prop_map(move |d| (edge + d).to_string());
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        near(0),
        near(i128::from(i64::MIN)),
        near(i128::from(i64::MAX)),
        near(i128::from(u64::MAX)),
        near(1 << 53),
    ]
}

/// Decimal text: plausible prices, the edges of the price range, too many
/// decimals, signs, and junk. Never a comma, quote or line break, so it is
/// one CSV cell and one JSON string as it stands.
fn decimal() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ("[-+]?", "[0-9]{0,12}", proptest::option::of("[0-9]{0,10}")).prop_map(
            |(sign, int, frac)| match frac {
                Some(frac) => format!("{sign}{int}.{frac}"),
                None => format!("{sign}{int}"),
            }
        ),
        2 => prop::sample::select(vec![
            "-92233720368.99999999",
            "-92233720368.54775808",
            "92233720368.54775807",
            "92233720368.54775808",
            "0",
            "0.00000001",
            "-0.00000001",
            "0.000000001",
            "1.000000000000",
            "101.05",
        ])
        .prop_map(str::to_owned),
        1 => "[ a-z0-9.e+-]{0,6}",
    ]
}

#[derive(Clone, Debug)]
struct Row {
    ts_ns: String,
    instrument: String,
    price: String,
    volume: String,
    bid: Option<String>,
    ask: Option<String>,
    /// How absent quotes and prices are spelled: 0, 1 or 2 picks among each
    /// format's equivalent spellings.
    style: u8,
}

fn row() -> impl Strategy<Value = Row> {
    (
        integer(),
        integer(),
        decimal(),
        integer(),
        proptest::option::of(decimal()),
        proptest::option::of(decimal()),
        0u8..3,
    )
        .prop_map(|(ts_ns, instrument, price, volume, bid, ask, style)| Row {
            ts_ns,
            instrument,
            price,
            volume,
            bid,
            ask,
            style,
        })
}

fn is_json_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    let int_ok = int == "0"
        || (!int.is_empty() && !int.starts_with('0') && int.bytes().all(|b| b.is_ascii_digit()));
    int_ok && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

fn render_csv(row: &Row) -> String {
    let quotes = row.bid.is_some() || row.ask.is_some() || row.style != 0;
    let mut out = format!(
        "ts_ns,instrument,price,volume{}\n{},{},{},{}",
        if quotes { ",bid,ask" } else { "" },
        row.ts_ns,
        row.instrument,
        row.price,
        row.volume
    );
    if quotes {
        let cell = |q: &Option<String>| q.clone().unwrap_or_default();
        out.push_str(&format!(",{},{}", cell(&row.bid), cell(&row.ask)));
    }
    out.push('\n');
    out
}

fn render_jsonl(row: &Row) -> String {
    // A price as a JSON number when it is one, on alternate styles.
    let decimal = |text: &str| {
        if row.style == 1 && is_json_number(text) {
            text.to_owned()
        } else {
            format!("\"{text}\"")
        }
    };
    let mut out = format!(
        r#"{{"ts_ns":{},"instrument":{},"price":{},"volume":{}"#,
        row.ts_ns,
        row.instrument,
        decimal(&row.price),
        row.volume
    );
    for (name, quote) in [("bid", &row.bid), ("ask", &row.ask)] {
        match (quote, row.style) {
            (Some(q), _) => out.push_str(&format!(r#","{name}":{}"#, decimal(q))),
            (None, 0) => {}
            (None, 1) => out.push_str(&format!(r#","{name}":null"#)),
            (None, _) => out.push_str(&format!(r#","{name}":"""#)),
        }
    }
    out.push_str("}\n");
    out
}

fn render_bus(row: &Row) -> Vec<Value> {
    let mut pairs = vec![
        ("ts_ns", row.ts_ns.clone()),
        ("instrument", row.instrument.clone()),
        ("price", row.price.clone()),
        ("volume", row.volume.clone()),
    ];
    for (name, quote) in [("bid", &row.bid), ("ask", &row.ask)] {
        match (quote, row.style) {
            (Some(q), _) => pairs.push((name, q.clone())),
            (None, 0) => {}
            (None, _) => pairs.push((name, String::new())),
        }
    }
    pairs
        .into_iter()
        .flat_map(|(name, value)| {
            [
                Value::BulkString(name.as_bytes().to_vec()),
                Value::BulkString(value.into_bytes()),
            ]
        })
        .collect()
}

/// The verdict of a file reader on a file of one row.
fn file_verdict(format: TickFormat, text: String) -> Result<Tick, String> {
    let reader = TickReader::from_reader("row", format, Cursor::new(text.into_bytes()))
        .map_err(|e| format!("refused at open: {e}"))?;
    let rows: Vec<Result<Tick, String>> = reader.map(|r| r.map_err(|e| e.to_string())).collect();
    assert_eq!(rows.len(), 1, "one row expected, got {rows:?}");
    rows.into_iter().next().unwrap()
}

fn bus_verdict(row: &Row) -> Result<Tick, String> {
    let origin: Arc<str> = Arc::from("prop/1-0");
    parse_tick_fields("1-0", &render_bus(row), &origin)
        .map(|live| live.tick)
        .map_err(|e| e.to_string())
}

/// Both accepted the same tick, or both refused.
fn same(a: &Result<Tick, String>, b: &Result<Tick, String>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a == b,
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn file_readers_and_bus_codec_agree(row in row()) {
        let csv_text = render_csv(&row);
        let jsonl_text = render_jsonl(&row);
        let csv = file_verdict(TickFormat::Csv, csv_text.clone());
        let jsonl = file_verdict(TickFormat::Jsonl, jsonl_text.clone());
        prop_assert!(same(&csv, &jsonl), "CSV {:?}\n{}JSONL {:?}\n{}", csv, csv_text, jsonl, jsonl_text);
        let bad_quote = [&row.bid, &row.ask]
            .into_iter()
            .flatten()
            .any(|q| Price::parse(q).is_ok_and(|p| !p.is_positive()));
        if BUS_REFUSES_BAD_QUOTES || !bad_quote {
            let bus = bus_verdict(&row);
            prop_assert!(same(&csv, &bus), "CSV {:?}\n{}bus {:?}", csv, csv_text, bus);
        }
    }
}

#[test]
fn the_renderings_mean_what_they_say() {
    let row = Row {
        ts_ns: "1".into(),
        instrument: "1001".into(),
        price: "101.05".into(),
        volume: "7".into(),
        bid: None,
        ask: Some("101.1".into()),
        style: 1,
    };
    let expected = Tick {
        ts_ns: 1,
        instrument: 1001,
        price: Price::parse("101.05").unwrap(),
        volume: 7,
        bid: None,
        ask: Some(Price::parse("101.1").unwrap()),
    };
    assert_eq!(
        file_verdict(TickFormat::Csv, render_csv(&row)),
        Ok(expected)
    );
    assert_eq!(
        file_verdict(TickFormat::Jsonl, render_jsonl(&row)),
        Ok(expected)
    );
    assert_eq!(bus_verdict(&row), Ok(expected));
    let volume = Row {
        volume: "9007199254740993".into(),
        ..row
    };
    assert!(file_verdict(TickFormat::Csv, render_csv(&volume)).is_err());
    assert!(file_verdict(TickFormat::Jsonl, render_jsonl(&volume)).is_err());
    assert!(bus_verdict(&volume).is_err());
}
