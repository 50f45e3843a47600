//! Reading tick files: formats, exact prices, and every kind of bad row.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use std::io::{self, Cursor, Read};

use quiver_core::{Price, Tick};
use quiver_io::{open_ticks, OpenError, RowErrorKind, SkipReport, TickFormat, TickReader};

fn price(text: &str) -> Price {
    Price::parse(text).unwrap()
}

fn reader(name: &str, format: TickFormat, text: &str) -> TickReader {
    TickReader::from_reader(name, format, Cursor::new(text.as_bytes().to_vec())).unwrap()
}

/// Every item of a stream, errors as their messages.
fn items(name: &str, format: TickFormat, text: &str) -> Vec<Result<Tick, String>> {
    reader(name, format, text)
        .map(|item| item.map_err(|e| e.to_string()))
        .collect()
}

fn csv(text: &str) -> Vec<Result<Tick, String>> {
    items("ticks.csv", TickFormat::Csv, text)
}

fn jsonl(text: &str) -> Vec<Result<Tick, String>> {
    items("ticks.jsonl", TickFormat::Jsonl, text)
}

/// The only error of a stream whose other rows are good.
fn only_error(items: Vec<Result<Tick, String>>) -> String {
    let errors: Vec<String> = items.into_iter().filter_map(Result::err).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.into_iter().next().unwrap()
}

fn open_error(name: &str, text: &str) -> String {
    TickReader::from_reader(name, TickFormat::Csv, Cursor::new(text.as_bytes().to_vec()))
        .unwrap_err()
        .to_string()
}

const HEADER: &str = "ts_ns,instrument,price,volume\n";

// --- CSV ------------------------------------------------------------------

#[test]
fn csv_columns_in_any_order_with_optional_quotes() {
    let got = csv("price,ask,ts_ns,volume,instrument,bid\n\
         101.05,101.10,1000,5,256265,101.00\n\
         99.5,,2000,7,12,\n");
    assert_eq!(
        got,
        vec![
            Ok(Tick {
                bid: Some(price("101")),
                ask: Some(price("101.1")),
                ..Tick::trade(1000, 256265, price("101.05"), 5)
            }),
            Ok(Tick::trade(2000, 12, price("99.5"), 7)),
        ]
    );
}

#[test]
fn csv_accepts_crlf_and_a_final_row_without_newline() {
    let got = csv("ts_ns,instrument,price,volume\r\n1,2,3.25,4\r\n5,2,3.5,6");
    assert_eq!(
        got,
        vec![
            Ok(Tick::trade(1, 2, price("3.25"), 4)),
            Ok(Tick::trade(5, 2, price("3.5"), 6)),
        ]
    );
}

#[test]
fn csv_line_numbers_are_physical_lines() {
    let cases = [
        (
            "LF with blank lines",
            "ts_ns,instrument,price,volume\n\n\n1,7,1,x\n",
            4,
        ),
        (
            "CRLF",
            "ts_ns,instrument,price,volume\r\n1,7,1,1\r\n1,7,1,x\r\n",
            3,
        ),
        (
            "CRLF with blank lines",
            "ts_ns,instrument,price,volume\r\n\r\n1,7,1,x\r\n",
            3,
        ),
        (
            "blank lines first",
            "\n\nts_ns,instrument,price,volume\n1,7,1,x\n",
            4,
        ),
        (
            "quoted line break before",
            "ts_ns,instrument,price,volume\n1,7,\"1\n\",1\n1,7,1,x\n",
            4,
        ),
    ];
    for (case, text, line) in cases {
        let errors: Vec<String> = csv(text).into_iter().filter_map(Result::err).collect();
        let last = errors.last().unwrap_or_else(|| panic!("{case}: no error"));
        assert_eq!(
            last,
            &format!(r#"ticks.csv:{line}: volume: "x" is not an unsigned integer"#),
            "{case}"
        );
    }
    assert_eq!(
        open_error("ticks.csv", "\r\n\nts_ns,foo\n"),
        r#"ticks.csv:3: unknown column "foo" (expected ts_ns, instrument, price, volume, bid, ask)"#
    );
    // Rows far beyond the first read buffer still get the right line.
    let mut text = HEADER.to_owned();
    for ts in 0..20_000 {
        text.push_str(&format!("{ts},7,1,1\r\n"));
    }
    text.push_str("\r\n20000,7,1,1,1\r\n");
    assert_eq!(
        only_error(csv(&text)),
        "ticks.csv:20003: expected 4 fields, found 5"
    );
}

#[test]
fn csv_header_missing_column() {
    assert_eq!(
        open_error("ticks.csv", "ts_ns,instrument,price\n1,2,3\n"),
        r#"ticks.csv:1: missing column "volume""#
    );
}

#[test]
fn csv_header_unknown_column() {
    assert_eq!(
        open_error("ticks.csv", "ts_ns,instrument,price,volume,foo\n"),
        r#"ticks.csv:1: unknown column "foo" (expected ts_ns, instrument, price, volume, bid, ask)"#
    );
}

#[test]
fn csv_header_duplicate_column() {
    assert_eq!(
        open_error("ticks.csv", "ts_ns,price,instrument,price,volume\n"),
        r#"ticks.csv:1: duplicate column "price""#
    );
}

#[test]
fn csv_header_required_in_an_empty_file() {
    assert_eq!(
        open_error("ticks.csv", ""),
        "ticks.csv:1: empty file, expected a header row \
         (ts_ns, instrument, price, volume, bid, ask)"
    );
}

#[test]
fn csv_bad_timestamp() {
    let err = only_error(csv(&format!("{HEADER}12:00,256265,101.05,5\n")));
    assert_eq!(err, r#"ticks.csv:2: ts_ns: "12:00" is not an integer"#);
}

#[test]
fn csv_bad_instrument() {
    let err = only_error(csv(&format!("{HEADER}1,-3,101.05,5\n")));
    assert_eq!(
        err,
        r#"ticks.csv:2: instrument: "-3" is not an unsigned integer"#
    );
}

#[test]
fn csv_bad_price() {
    let err = only_error(csv(&format!("{HEADER}1,256265,abc,5\n")));
    assert_eq!(err, r#"ticks.csv:2: price: "abc" is not a decimal"#);
}

#[test]
fn csv_too_precise_price() {
    let err = only_error(csv(&format!("{HEADER}1,256265,1.000000001,5\n")));
    assert_eq!(
        err,
        r#"ticks.csv:2: price: "1.000000001" has more than 8 decimal places"#
    );
}

#[test]
fn csv_non_positive_price() {
    let text = format!("{HEADER}1,256265,-1.5,5\n2,256265,0,5\n");
    let errors: Vec<String> = csv(&text).into_iter().filter_map(Result::err).collect();
    assert_eq!(
        errors,
        [
            "ticks.csv:2: price: must be > 0, got -1.5",
            "ticks.csv:3: price: must be > 0, got 0",
        ]
    );
}

#[test]
fn csv_bad_and_non_positive_quotes() {
    let text = "ts_ns,instrument,price,volume,bid,ask\n\
                1,7,10,1,0,10.5\n\
                2,7,10,1,9.5,x\n";
    let errors: Vec<String> = csv(text).into_iter().filter_map(Result::err).collect();
    assert_eq!(
        errors,
        [
            "ticks.csv:2: bid: must be > 0, got 0",
            r#"ticks.csv:3: ask: "x" is not a decimal"#,
        ]
    );
}

#[test]
fn csv_bad_volume() {
    let err = only_error(csv(&format!("{HEADER}1,256265,101.05,2.5\n")));
    assert_eq!(
        err,
        r#"ticks.csv:2: volume: "2.5" is not an unsigned integer"#
    );
}

#[test]
fn exact_decimals_never_wrap_in_either_format() {
    // The fraction pushes the integer part past the range: refused, not
    // read as a (positive) wrapped price.
    let row = "-92233720368.99999999";
    let err = only_error(csv(&format!("{HEADER}1,256265,{row},5\n")));
    assert_eq!(
        err,
        format!("ticks.csv:2: price: \"{row}\" is out of range")
    );
    let json = format!("{{\"ts_ns\":1,\"instrument\":7,\"price\":\"{row}\",\"volume\":1}}\n");
    let err = only_error(jsonl(&json));
    assert_eq!(
        err,
        format!("ticks.jsonl:1: price: \"{row}\" is out of range")
    );
}

#[test]
fn volumes_beyond_what_history_keeps_exactly_are_refused() {
    let max = Tick::MAX_VOLUME;
    let text = format!(
        "{HEADER}1,256265,101.05,{max}\n2,256265,101.05,{}\n",
        max + 1
    );
    let items = csv(&text);
    assert_eq!(items[0].as_ref().map(|t| t.volume), Ok(max));
    assert_eq!(
        items[1],
        Err(format!(
            "ticks.csv:3: volume: must be <= {max} (2^53, kept exactly), got {}",
            max + 1
        ))
    );
    let json = format!(
        "{{\"ts_ns\":1,\"instrument\":7,\"price\":1,\"volume\":{}}}\n",
        u64::MAX
    );
    assert!(only_error(jsonl(&json)).contains("volume: must be <= 9007199254740992"));
}

#[test]
fn csv_wrong_field_count() {
    let err = only_error(csv(&format!("{HEADER}1,2,3,4\n1,2,3,4,5\n")));
    assert_eq!(err, "ticks.csv:3: expected 4 fields, found 5");
}

#[test]
fn csv_timestamp_backwards() {
    let err = only_error(csv(&format!("{HEADER}2000,256265,1,1\n1000,256265,1,1\n")));
    assert_eq!(
        err,
        "ticks.csv:3: ts_ns: 1000 is before 2000, the previous timestamp of instrument 256265"
    );
}

// --- JSONL ----------------------------------------------------------------

#[test]
fn jsonl_prices_are_exact_from_numbers_and_strings() {
    let got = jsonl(
        r#"{"ts_ns":1,"instrument":9,"price":"101.05","volume":1}
{"ts_ns":2,"instrument":9,"price":101.05,"volume":1}
{"ts_ns":3,"instrument":9,"price":"0.1","volume":1,"bid":0.1,"ask":"0.30"}
{"volume":1,"price":0.10000000,"instrument":9,"ts_ns":4,"bid":null}
{"ts_ns":5,"instrument":9,"price":"10\u0030.5","volume":1}
"#,
    );
    let ticks: Vec<Tick> = got.into_iter().map(Result::unwrap).collect();
    let shown: Vec<String> = ticks.iter().map(|t| t.price.to_string()).collect();
    assert_eq!(shown, ["101.05", "101.05", "0.1", "0.1", "100.5"]);
    assert_eq!(ticks[0].price, Price::from_units(10_105_000_000));
    assert_eq!(ticks[1].price, ticks[0].price);
    assert_eq!(ticks[2].bid, Some(Price::from_units(10_000_000)));
    assert_eq!(ticks[2].ask.map(|p| p.to_string()).as_deref(), Some("0.3"));
    assert_eq!(
        (ticks[3].ts_ns, ticks[3].bid, ticks[3].ask),
        (4, None, None)
    );
}

#[test]
fn jsonl_skips_blank_lines_and_counts_them_in_line_numbers() {
    let text = "\n{\"ts_ns\":1,\"instrument\":9,\"price\":1,\"volume\":1}\n  \r\n\
                {\"ts_ns\":2,\"instrument\":9,\"price\":\"x\",\"volume\":1}\n";
    let got = jsonl(text);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], Ok(Tick::trade(1, 9, price("1"), 1)));
    assert_eq!(
        got[1].as_ref().unwrap_err(),
        r#"ticks.jsonl:4: price: "x" is not a decimal"#
    );
}

#[test]
fn jsonl_unknown_field() {
    let err = only_error(jsonl(
        r#"{"ts_ns":1,"instrument":9,"price":1,"volume":1,"foo":[1,{"a":2}]}"#,
    ));
    assert_eq!(
        err,
        r#"ticks.jsonl:1: unknown field "foo" (expected ts_ns, instrument, price, volume, bid, ask)"#
    );
}

#[test]
fn jsonl_missing_field() {
    let err = only_error(jsonl(r#"{"ts_ns":1,"instrument":9,"price":1}"#));
    assert_eq!(err, r#"ticks.jsonl:1: missing field "volume""#);
}

#[test]
fn jsonl_duplicate_field() {
    let err = only_error(jsonl(
        r#"{"ts_ns":1,"instrument":9,"price":1,"volume":1,"price":2}"#,
    ));
    assert_eq!(err, r#"ticks.jsonl:1: duplicate field "price""#);
}

#[test]
fn jsonl_bad_json() {
    let text = b"{\"ts_ns\":1,\n[1,2]\n{\"ts_ns\":1}x\n\"\xff\"\n".to_vec();
    let errors: Vec<String> =
        TickReader::from_reader("ticks.jsonl", TickFormat::Jsonl, Cursor::new(text))
            .unwrap()
            .filter_map(|item| item.err().map(|e| e.to_string()))
            .collect();
    assert_eq!(
        errors,
        [
            "ticks.jsonl:1: invalid JSON: EOF while parsing a value (column 11)",
            "ticks.jsonl:2: invalid JSON: invalid type: sequence, expected a tick object",
            "ticks.jsonl:3: invalid JSON: trailing characters (column 12)",
            "ticks.jsonl:4: invalid JSON: line is not valid UTF-8",
        ]
    );
}

#[test]
fn jsonl_integers_must_be_json_integers() {
    let errors: Vec<String> = jsonl(
        r#"{"ts_ns":1.5,"instrument":9,"price":1,"volume":1}
{"ts_ns":1,"instrument":"9","price":1,"volume":1}
{"ts_ns":1,"instrument":9,"price":1,"volume":-1}
{"ts_ns":1,"instrument":9,"price":1e2,"volume":1}
{"ts_ns":1,"instrument":9,"price":-0.5,"volume":1}
"#,
    )
    .into_iter()
    .filter_map(Result::err)
    .collect();
    assert_eq!(
        errors,
        [
            "ticks.jsonl:1: ts_ns: 1.5 is not an integer",
            r#"ticks.jsonl:2: instrument: "9" is not an unsigned integer"#,
            "ticks.jsonl:3: volume: -1 is not an unsigned integer",
            r#"ticks.jsonl:4: price: "1e2" is not a decimal"#,
            "ticks.jsonl:5: price: must be > 0, got -0.5",
        ]
    );
}

#[test]
fn jsonl_timestamp_backwards() {
    let err = only_error(jsonl(
        r#"{"ts_ns":2000,"instrument":256265,"price":1,"volume":1}
{"ts_ns":1000,"instrument":256265,"price":1,"volume":1}"#,
    ));
    assert_eq!(
        err,
        "ticks.jsonl:2: ts_ns: 1000 is before 2000, the previous timestamp of instrument 256265"
    );
}

// --- behaviour shared by both formats ---------------------------------------

#[test]
fn time_order_is_per_instrument() {
    // Instruments interleave out of global order, and equal timestamps repeat.
    let good = csv(&format!(
        "{HEADER}2000,1,1,1\n1000,2,1,1\n2000,1,1,1\n1500,2,1,1\n3000,1,1,1\n"
    ));
    assert!(good.iter().all(Result::is_ok), "{good:?}");

    let bad = csv(&format!("{HEADER}2000,1,1,1\n1000,2,1,1\n1999,1,1,1\n"));
    let errors: Vec<&String> = bad.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(
        errors,
        ["ticks.csv:4: ts_ns: 1999 is before 2000, the previous timestamp of instrument 1"]
    );
}

#[test]
fn bad_rows_do_not_move_the_instrument_clock() {
    // Row 3 is bad (price), so row 4 is compared with row 2, not row 3.
    let got = csv(&format!("{HEADER}1000,1,1,1\n5000,1,0,1\n2000,1,1,1\n"));
    assert_eq!(got[2], Ok(Tick::trade(2000, 1, price("1"), 1)));
    // A row rejected for going backwards does not rewind it either.
    let got = csv(&format!("{HEADER}5000,1,1,1\n1000,1,1,1\n2000,1,1,1\n"));
    assert!(got[1].is_err() && got[2].is_err(), "{got:?}");
}

#[test]
fn reading_continues_after_bad_rows() {
    let text = format!("{HEADER}1,7,1,1\nx,7,1,1\n2,7,1\n3,7,1,1\n");
    let mut skipped = SkipReport::new();
    let mut good = Vec::new();
    for item in reader("ticks.csv", TickFormat::Csv, &text) {
        match item {
            Ok(tick) => good.push(tick.ts_ns),
            Err(err) => skipped.record(&err),
        }
    }
    assert_eq!(good, [1, 3]);
    assert_eq!(skipped.total(), 2);
    assert_eq!(
        skipped.to_string(),
        "skipped 2 bad rows: bad_timestamp 1, wrong_field_count 1"
    );
}

#[test]
fn row_errors_expose_location_field_and_reason() {
    let err = reader(
        "data/t.csv",
        TickFormat::Csv,
        &format!("{HEADER}1,7,1,1\n1,7,1,z\n"),
    )
    .find_map(Result::err)
    .unwrap();
    assert_eq!(err.file(), "data/t.csv");
    assert_eq!(err.line(), 3);
    assert_eq!(err.field(), Some("volume"));
    assert_eq!(err.reason(), "bad_volume");
    assert!(matches!(err.kind(), RowErrorKind::BadVolume { .. }));
}

#[test]
fn skip_report_counts_by_reason_in_stable_order() {
    let text = format!("{HEADER}2,1,x,1\n1,1,1,1\n5,1,1,1\n4,1,1,1\n3,1,y,1\n");
    let mut report = SkipReport::new();
    assert_eq!(report.to_string(), "skipped 0 bad rows");
    for err in reader("t.csv", TickFormat::Csv, &text).filter_map(Result::err) {
        report.record(&err);
    }
    assert_eq!(
        report.to_string(),
        "skipped 3 bad rows: bad_price 2, timestamp_backwards 1"
    );
    assert_eq!(report.by_reason().get("bad_price"), Some(&2));

    let mut single = SkipReport::new();
    single.record(
        &reader("t.csv", TickFormat::Csv, &format!("{HEADER}1,1,1,-1\n"))
            .find_map(Result::err)
            .unwrap(),
    );
    assert_eq!(single.to_string(), "skipped 1 bad row: bad_volume 1");
}

/// Serves `data`, then fails every read.
struct FailsAfter(Cursor<Vec<u8>>);

impl Read for FailsAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(io::Error::other("disk on fire")),
            n => Ok(n),
        }
    }
}

#[test]
fn io_errors_end_the_stream() {
    for (format, text) in [
        (TickFormat::Csv, format!("{HEADER}1,7,1,1\n")),
        (
            TickFormat::Jsonl,
            "{\"ts_ns\":1,\"instrument\":7,\"price\":1,\"volume\":1}\n".to_owned(),
        ),
    ] {
        let source = FailsAfter(Cursor::new(text.into_bytes()));
        let mut ticks = TickReader::from_reader("pipe", format, source).unwrap();
        assert!(ticks.next().unwrap().is_ok());
        let err = ticks.next().unwrap().unwrap_err();
        assert!(err.is_io(), "{err}");
        assert_eq!(err.reason(), "io_error");
        assert!(err.to_string().starts_with("pipe:"), "{err}");
        assert!(
            err.to_string().ends_with(": read error: disk on fire"),
            "{err}"
        );
        assert!(ticks.next().is_none());
    }
}

// --- files ----------------------------------------------------------------

#[test]
fn open_ticks_picks_the_format_from_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("t.CSV");
    std::fs::write(&csv_path, format!("{HEADER}1,7,2.5,3\n")).unwrap();
    let json_path = dir.path().join("t.ndjson");
    std::fs::write(
        &json_path,
        r#"{"ts_ns":1,"instrument":7,"price":"2.5","volume":3}"#,
    )
    .unwrap();
    for path in [&csv_path, &json_path] {
        let ticks: Vec<Tick> = open_ticks(path).unwrap().map(Result::unwrap).collect();
        assert_eq!(
            ticks,
            [Tick::trade(1, 7, price("2.5"), 3)],
            "{}",
            path.display()
        );
    }

    let text = dir.path().join("t.txt");
    std::fs::write(&text, "1,7,2.5,3\n").unwrap();
    let err = open_ticks(&text).unwrap_err();
    assert!(matches!(err, OpenError::UnsupportedFormat { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: unsupported tick file extension (expected .csv, .jsonl, .ndjson, .parquet or a directory of Parquet partitions)",
            text.display()
        )
    );
    // A .parquet path is read as Parquet (when it can be opened).
    let parquet = dir.path().join("t.parquet");
    let err = open_ticks(&parquet).unwrap_err();
    assert!(matches!(err, OpenError::Open { .. }), "{err}");

    let missing = dir.path().join("missing.jsonl");
    let err = open_ticks(&missing).unwrap_err();
    assert!(matches!(err, OpenError::Open { .. }), "{err}");
    assert!(err
        .to_string()
        .starts_with(&format!("{}: cannot open: ", missing.display())));
}

#[test]
fn open_ticks_reports_header_errors_with_the_path_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, "ts_ns,instrument,price,qty\n").unwrap();
    assert_eq!(
        open_ticks(&path).unwrap_err().to_string(),
        format!(
            "{}:1: unknown column \"qty\" (expected ts_ns, instrument, price, volume, bid, ask)",
            path.display()
        )
    );
}

/// Bytes `prefix`, then `filler` repeated for ever; counts what was read.
struct Endless {
    prefix: Cursor<Vec<u8>>,
    filler: &'static [u8],
    read: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = self.prefix.read(buf)?;
        while n < buf.len() {
            let take = self.filler.len().min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&self.filler[..take]);
            n += take;
        }
        self.read.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

fn endless(
    prefix: String,
    filler: &'static [u8],
) -> (Endless, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let read = std::sync::Arc::default();
    let source = Endless {
        prefix: Cursor::new(prefix.into_bytes()),
        filler,
        read: std::sync::Arc::clone(&read),
    };
    (source, read)
}

#[test]
fn an_unclosed_csv_quote_ends_reading_at_the_row_limit_naming_its_line() {
    // A quoted field of endless short lines: without a bound the parser
    // would buffer it (and a line start per line) until memory ran out.
    let (source, read) = endless(format!("{HEADER}1,7,1,1\n2,7,\""), b"a\n");
    let mut ticks = TickReader::from_reader("t.csv", TickFormat::Csv, source).unwrap();
    assert!(ticks.next().unwrap().is_ok());
    let err = ticks.next().unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "t.csv:3: a row longer than {} bytes starts here (an unclosed quote?); \
             the rest of the file cannot be split into rows",
            quiver_io::MAX_ROW_BYTES
        )
    );
    assert!(err.ends_reading() && !err.is_io(), "nothing can follow it");
    assert_eq!(err.reason(), "row_too_long");
    assert!(ticks.next().is_none());
    let read = read.load(std::sync::atomic::Ordering::Relaxed);
    assert!(read < 4 * quiver_io::MAX_ROW_BYTES, "read {read} bytes");
}

#[test]
fn an_overlong_json_line_is_refused_without_being_kept_and_reading_goes_on() {
    let long = format!(
        "{{\"ts_ns\":1,\"instrument\":7,\"price\":1,\"volume\":1,\"x\":\"{}\"}}\n",
        "y".repeat(1 << 20)
    );
    let text = format!("{long}{{\"ts_ns\":2,\"instrument\":7,\"price\":1,\"volume\":1}}\n");
    let items = jsonl(&text);
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(
        items[0].as_ref().unwrap_err(),
        &format!(
            "ticks.jsonl:1: longer than {} bytes, which no tick is",
            quiver_io::MAX_ROW_BYTES
        )
    );
    assert_eq!(items[1].as_ref().unwrap().ts_ns, 2);

    // An endless line ends only with the input; it is never buffered whole.
    let (source, read) = endless(String::new(), b"yyyyyyyy");
    let mut ticks =
        TickReader::from_reader("t.jsonl", TickFormat::Jsonl, source.take(64 << 20)).unwrap();
    let err = ticks.next().unwrap().unwrap_err();
    assert_eq!(err.reason(), "row_too_long");
    assert!(ticks.next().is_none());
    assert!(read.load(std::sync::atomic::Ordering::Relaxed) >= 64 << 20);
}
