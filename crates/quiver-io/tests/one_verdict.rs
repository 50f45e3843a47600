//! Every source gets the same verdict on the same row: a tick file (CSV or
//! JSON Lines) and a stream entry holding the same field texts are accepted
//! as the same tick, or refused for the same field.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use proptest::prelude::*;
use quiver_core::Tick;
use quiver_io::redis::{parse_tick_fields, EntryError};
use quiver_io::{TickFormat, TickReader};
use redis::Value;

/// A row's fields as text, in canonical order; `None` leaves a quote out.
#[derive(Clone, Debug)]
struct Row {
    ts_ns: String,
    instrument: String,
    price: String,
    volume: String,
    bid: Option<String>,
    ask: Option<String>,
}

/// Accepted as this tick, or refused naming this field.
type Verdict = Result<Tick, Option<String>>;

fn integer() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,6}",
        "-[1-9][0-9]{0,3}",
        Just("9223372036854775807".to_owned()),
        Just("9223372036854775808".to_owned()),
        Just("-9223372036854775808".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("9007199254740992".to_owned()),
        Just("9007199254740993".to_owned()),
        Just("+7".to_owned()),
        Just("007".to_owned()),
        Just("abc".to_owned()),
        Just(String::new()),
        Just("1.5".to_owned()),
        Just("1e3".to_owned()),
    ]
}

fn decimal() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,5}(\\.[0-9]{1,9})?",
        "-[0-9]{1,3}(\\.[0-9]{1,3})?",
        Just("0".to_owned()),
        Just("0.00000000".to_owned()),
        Just("-92233720368.99999999".to_owned()),
        Just("92233720368.54775807".to_owned()),
        Just("92233720368.54775808".to_owned()),
        Just("1e3".to_owned()),
        Just("abc".to_owned()),
        Just(String::new()),
        Just(".5".to_owned()),
        Just("5.".to_owned()),
    ]
}

fn row() -> impl Strategy<Value = Row> {
    (
        integer(),
        integer(),
        decimal(),
        integer(),
        proptest::option::of(decimal()),
        proptest::option::of(decimal()),
    )
        .prop_map(|(ts_ns, instrument, price, volume, bid, ask)| Row {
            ts_ns,
            instrument,
            price,
            volume,
            bid,
            ask,
        })
}

impl Row {
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut pairs = vec![
            ("ts_ns", self.ts_ns.as_str()),
            ("instrument", self.instrument.as_str()),
            ("price", self.price.as_str()),
            ("volume", self.volume.as_str()),
        ];
        if let Some(bid) = &self.bid {
            pairs.push(("bid", bid));
        }
        if let Some(ask) = &self.ask {
            pairs.push(("ask", ask));
        }
        pairs
    }

    fn csv(&self) -> String {
        let pairs = self.pairs();
        let names: Vec<_> = pairs.iter().map(|(n, _)| *n).collect();
        let values: Vec<_> = pairs.iter().map(|(_, v)| *v).collect();
        format!("{}\n{}\n", names.join(","), values.join(","))
    }

    /// Integers as JSON numbers when they are written as JSON writes
    /// numbers, else as strings (which a tick file refuses as integers, as
    /// CSV and the bus refuse them); prices always as strings.
    fn jsonl(&self) -> String {
        let fields: Vec<String> = self
            .pairs()
            .iter()
            .map(|(name, value)| {
                let number =
                    matches!(*name, "ts_ns" | "instrument" | "volume") && json_number(value);
                if number {
                    format!("\"{name}\":{value}")
                } else {
                    format!("\"{name}\":{}", serde_json::to_string(value).unwrap())
                }
            })
            .collect();
        format!("{{{}}}\n", fields.join(","))
    }

    /// Whether the JSON rendering holds the same texts as the other two
    /// (JSON has no `+7` or `007` numbers, and a quoted integer is refused).
    fn json_agrees(&self) -> bool {
        [&self.ts_ns, &self.instrument, &self.volume]
            .iter()
            .all(|v| json_number(v))
    }
}

fn json_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

fn file_verdict(format: TickFormat, text: String) -> Verdict {
    let mut reader = TickReader::from_reader("t", format, std::io::Cursor::new(text)).unwrap();
    let verdict = match reader.next().expect("one row") {
        Ok(tick) => Ok(tick),
        Err(err) => {
            let line = if format == TickFormat::Csv { 2 } else { 1 };
            assert!(err.to_string().starts_with(&format!("t:{line}: ")), "{err}");
            Err(err.field().map(str::to_owned))
        }
    };
    assert!(reader.next().is_none());
    verdict
}

fn bus_verdict(row: &Row) -> Verdict {
    let fields: Vec<Value> = row
        .pairs()
        .iter()
        .flat_map(|(k, v)| {
            [
                Value::BulkString(k.as_bytes().to_vec()),
                Value::BulkString(v.as_bytes().to_vec()),
            ]
        })
        .collect();
    let origin: Arc<str> = Arc::from("s/1-0");
    match parse_tick_fields("1-0", &fields, &origin) {
        Ok(live) => Ok(live.tick),
        Err(EntryError::Field(kind)) => Err(kind.field().map(str::to_owned)),
        Err(other) => panic!("not a field verdict: {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn files_and_the_bus_give_the_same_verdict(row in row()) {
        let bus = bus_verdict(&row);
        prop_assert_eq!(&file_verdict(TickFormat::Csv, row.csv()), &bus, "csv {:?}", row.csv());
        if row.json_agrees() {
            prop_assert_eq!(&file_verdict(TickFormat::Jsonl, row.jsonl()), &bus, "jsonl {:?}", row.jsonl());
        }
        if let Ok(tick) = &bus {
            prop_assert!(tick.price.is_positive());
            prop_assert!(tick.volume <= Tick::MAX_VOLUME);
            prop_assert!(tick.bid.is_none_or(|p| p.is_positive()));
            prop_assert!(tick.ask.is_none_or(|p| p.is_positive()));
        }
    }
}
