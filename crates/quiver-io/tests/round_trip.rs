//! Property tests: whatever valid ticks go in come back out unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use std::io::Cursor;

use proptest::prelude::*;
use quiver_core::{Price, Tick};
use quiver_io::{write_ticks_csv_with_quotes, TickFormat, TickReader};

/// Positive prices from 10⁻⁸ up to about 10¹⁰.
fn price() -> impl Strategy<Value = Price> {
    (1i64..1_000_000_000_000_000_000).prop_map(Price::from_units)
}

/// Ticks whose timestamps never go backwards within an instrument.
fn ticks() -> impl Strategy<Value = Vec<Tick>> {
    let row = (
        0i64..1_000_000,
        0u64..4,
        price(),
        0..=Tick::MAX_VOLUME,
        proptest::option::of(price()),
        proptest::option::of(price()),
    );
    proptest::collection::vec(row, 0..200).prop_map(|rows| {
        let mut ts_ns = -1_000_000_000;
        rows.into_iter()
            .map(|(gap, instrument, price, volume, bid, ask)| {
                ts_ns += gap;
                Tick {
                    ts_ns,
                    instrument: instrument * 1_000_003,
                    price,
                    volume,
                    bid,
                    ask,
                }
            })
            .collect()
    })
}

fn read(format: TickFormat, bytes: Vec<u8>) -> Vec<Tick> {
    TickReader::from_reader("prop", format, Cursor::new(bytes))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

proptest! {
    #[test]
    fn csv_round_trips(ticks in ticks()) {
        let mut bytes = Vec::new();
        write_ticks_csv_with_quotes(ticks.iter().copied(), &mut bytes).unwrap();
        prop_assert_eq!(read(TickFormat::Csv, bytes), ticks);
    }

    #[test]
    fn jsonl_prices_are_exact_as_numbers_and_as_strings(ticks in ticks()) {
        let mut text = String::new();
        for (i, t) in ticks.iter().enumerate() {
            // Alternate number and string encodings of the same decimal.
            let quote = if i % 2 == 0 { "\"" } else { "" };
            let optional = |name: &str, value: Option<Price>| match value {
                Some(p) => format!(",\"{name}\":{quote}{p}{quote}"),
                None => String::new(),
            };
            text.push_str(&format!(
                "{{\"ts_ns\":{},\"instrument\":{},\"price\":{quote}{}{quote},\"volume\":{}{}{}}}\n",
                t.ts_ns, t.instrument, t.price, t.volume, optional("bid", t.bid), optional("ask", t.ask)
            ));
        }
        prop_assert_eq!(read(TickFormat::Jsonl, text.into_bytes()), ticks);
    }
}
