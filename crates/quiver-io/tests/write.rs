//! Writing ticks and signals: exact text, determinism, round trips.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use std::io::Cursor;

use quiver_core::synthetic::SyntheticSpec;
use quiver_core::{MetaValue, Metadata, Price, Reasoning, Side, Tick};
use quiver_io::{
    signal_id, write_ticks_csv, write_ticks_csv_with_quotes, SignalRecord, SignalWriter,
    TickFormat, TickReader,
};

fn read_back(bytes: Vec<u8>) -> Vec<Tick> {
    TickReader::from_reader("written.csv", TickFormat::Csv, Cursor::new(bytes))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn generated_ticks_round_trip_through_csv() {
    let spec = SyntheticSpec::new(5, 2000, 7);
    let mut bytes = Vec::new();
    let written = write_ticks_csv(spec.iter(), &mut bytes).unwrap();
    assert_eq!(written, 2000);
    assert_eq!(read_back(bytes.clone()), spec.iter().collect::<Vec<_>>());

    // Same ticks, same bytes.
    let mut again = Vec::new();
    write_ticks_csv(spec.iter(), &mut again).unwrap();
    assert_eq!(bytes, again);
}

#[test]
fn csv_text_is_canonical() {
    let ticks = [
        Tick::trade(
            1_767_584_700_000_000_001,
            256265,
            Price::parse("101.050").unwrap(),
            5,
        ),
        Tick {
            bid: Some(Price::parse("0.00000001").unwrap()),
            ..Tick::trade(-3, 0, Price::from_int(7), 0)
        },
    ];
    let mut plain = Vec::new();
    write_ticks_csv(ticks, &mut plain).unwrap();
    assert_eq!(
        String::from_utf8(plain).unwrap(),
        "ts_ns,instrument,price,volume\n\
         1767584700000000001,256265,101.05,5\n\
         -3,0,7,0\n"
    );
    let mut quoted = Vec::new();
    write_ticks_csv_with_quotes(ticks, &mut quoted).unwrap();
    assert_eq!(
        String::from_utf8(quoted.clone()).unwrap(),
        "ts_ns,instrument,price,volume,bid,ask\n\
         1767584700000000001,256265,101.05,5,,\n\
         -3,0,7,0,0.00000001,\n"
    );
    assert_eq!(read_back(quoted), ticks);
}

#[test]
fn no_ticks_is_just_the_header() {
    let mut out = Vec::new();
    assert_eq!(write_ticks_csv([], &mut out).unwrap(), 0);
    assert_eq!(out, b"ts_ns,instrument,price,volume\n");
}

fn rising(f: &mut std::fmt::Formatter<'_>, args: [f64; 2]) -> std::fmt::Result {
    write!(
        f,
        "price up {:.2}% over {} ticks, \"strong\"",
        args[0], args[1]
    )
}

quiver_core::fixed_reason!(back_slash, "back\\slash");
quiver_core::fixed_reason!(empty, "");

#[test]
fn signal_line_is_byte_exact() {
    let reasoning = Reasoning::rendered(rising, [1.256, 20.0]);
    let metadata = Metadata::new(
        &["z_score", "window", "tab\tkey"],
        &[
            MetaValue::F64(2.5),
            MetaValue::I64(-20),
            MetaValue::F64(0.1),
        ],
    );
    let record = SignalRecord {
        seq: 7,
        ts_ns: 1_767_584_700_000_000_000,
        signal_id: 0x00ab_cdef_0123_4567,
        strategy_id: "momentum_1",
        instrument: 256265,
        broker: "zerodha",
        side: Side::Buy,
        confidence: 0.85,
        quantity: 10,
        price: Price::parse("101.050").unwrap(),
        reasoning: &reasoning,
        metadata: &metadata,
        model: None,
        correlation_id: None,
    };
    let mut writer = SignalWriter::new(Vec::new());
    writer.write(&record).unwrap();
    writer
        .write(&SignalRecord {
            seq: 8,
            side: Side::Sell,
            confidence: 1.0,
            metadata: &Metadata::EMPTY,
            reasoning: &Reasoning::fixed(back_slash),
            correlation_id: Some("req-\"9\""),
            ..record
        })
        .unwrap();
    let text = String::from_utf8(writer.into_inner()).unwrap();
    assert_eq!(
        text,
        concat!(
            r#"{"seq":7,"ts_ns":1767584700000000000,"signal_id":"00abcdef01234567","#,
            r#""strategy_id":"momentum_1","instrument":256265,"broker":"zerodha","side":"BUY","#,
            r#""confidence":0.85,"quantity":10,"price":"101.05","#,
            r#""reasoning":"price up 1.26% over 20 ticks, \"strong\"","#,
            r#""metadata":{"z_score":2.5,"window":-20,"tab\tkey":0.1}}"#,
            "\n",
            r#"{"seq":8,"ts_ns":1767584700000000000,"signal_id":"00abcdef01234567","#,
            r#""strategy_id":"momentum_1","instrument":256265,"broker":"zerodha","side":"SELL","#,
            r#""confidence":1.0,"quantity":10,"price":"101.05","reasoning":"back\\slash","#,
            r#""metadata":{},"correlation_id":"req-\"9\""}"#,
            "\n",
        )
    );
    // Every line is valid JSON that keeps the fields' meaning.
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["price"], "101.05");
        assert_eq!(value["signal_id"], "00abcdef01234567");
    }
}

#[test]
fn non_finite_numbers_become_null() {
    let metadata = Metadata::one(&["x"], f64::INFINITY);
    let record = SignalRecord {
        seq: 0,
        ts_ns: 0,
        signal_id: signal_id("s", 1, Side::Buy, "b", 0),
        strategy_id: "s",
        instrument: 1,
        broker: "b",
        side: Side::Buy,
        confidence: f64::NAN,
        quantity: 1,
        price: Price::from_int(1),
        reasoning: &Reasoning::fixed(empty),
        metadata: &metadata,
        model: None,
        correlation_id: None,
    };
    let mut writer = SignalWriter::new(Vec::new());
    writer.write(&record).unwrap();
    let line = String::from_utf8(writer.into_inner()).unwrap();
    assert!(line.contains(r#""confidence":null,"#), "{line}");
    assert!(line.ends_with(",\"metadata\":{\"x\":null}}\n"), "{line}");
}

#[test]
fn model_tag_joins_the_metadata() {
    let metadata = Metadata::one(&["model_confidence"], 0.75);
    let tag = quiver_io::ModelTag {
        name: "ml_momentum_mlp",
        version: "1.0.0",
        feature_hash: 0x0123_4567_89ab_cdef,
    };
    let record = SignalRecord {
        seq: 0,
        ts_ns: 0,
        signal_id: 1,
        strategy_id: "s",
        instrument: 1,
        broker: "b",
        side: Side::Buy,
        confidence: 0.75,
        quantity: 1,
        price: Price::from_int(1),
        reasoning: &Reasoning::fixed(empty),
        metadata: &metadata,
        model: Some(tag),
        correlation_id: None,
    };
    let mut writer = SignalWriter::new(Vec::new());
    writer.write(&record).unwrap();
    writer
        .write(&SignalRecord {
            metadata: &Metadata::EMPTY,
            ..record
        })
        .unwrap();
    let text = String::from_utf8(writer.into_inner()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].ends_with(r#""metadata":{"model_confidence":0.75,"model":"ml_momentum_mlp","model_version":"1.0.0","feature_hash":"0123456789abcdef"}}"#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with(r#""metadata":{"model":"ml_momentum_mlp","model_version":"1.0.0","feature_hash":"0123456789abcdef"}}"#),
        "{}",
        lines[1]
    );
}
