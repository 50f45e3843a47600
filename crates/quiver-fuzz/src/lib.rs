//! Fuzz harness for Quiver's hostile-input parsers.
//!
//! One function per parser that takes input from outside: tick CSV and JSON
//! Lines files, the bus (Redis stream) tick codec, the strategies file, the
//! model registry and the settings file (TOML and YAML). Each runs the real
//! parser, through its public entry point, on arbitrary bytes and panics when
//! one of the parser's documented invariants is broken:
//!
//! * it never panics itself (any panic fails the fuzz target);
//! * what it accepts is within its documented bounds: prices exact and > 0,
//!   volumes <= [`Tick::MAX_VOLUME`], ticks in time order per instrument,
//!   strategy ids and broker names valid names, model entries complete and
//!   in range, settings that pass their own validation;
//! * what it refuses names where: `file:line: ...` with a line inside the
//!   input for files, the field at fault (or a documented whole-entry reason)
//!   for the bus.
//!
//! Accepted ticks are also written back and read again by both file readers
//! and the bus codec, which must give the same ticks.
//!
//! The cargo-fuzz targets in `fuzz/` call these functions; this crate's tests
//! replay the committed corpus (`fuzz/corpus/<target>/`) through them, so an
//! input that once broke a parser keeps being checked by `cargo test`. Time is
//! guarded by the fuzzer's `-timeout` and by the corpus test's per-file limit.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use quiver_config::{Config, ConfigError, ModelsSource};
use quiver_core::{Price, Tick};
use quiver_infer::{OutputSpec, Registry, RegistryError};
use quiver_io::redis::{parse_tick_fields, EntryError};
use quiver_io::{TickFormat, TickReader};
use quiver_runtime::settings::{Origin, Settings, SettingsError};
use redis::Value;

/// A harness function: runs one parser on one input, panicking when an
/// invariant is broken.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs` and
/// `fuzz/corpus/<name>/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("tick_csv", tick_csv),
    ("tick_jsonl", tick_jsonl),
    ("bus_entry", bus_entry),
    ("strategies_yaml", strategies_yaml),
    ("registry_yaml", registry_yaml),
    ("settings_toml", settings_toml),
    ("settings_yaml", settings_yaml),
];

/// Whether the bus codec is held to the file readers' rule that a `bid` or
/// `ask`, when present, is > 0 (it is: one validator serves both).
pub const BUS_REFUSES_BAD_QUOTES: bool = true;

/// How tick files are named in messages.
pub const CSV_NAME: &str = "fuzz.csv";
pub const JSONL_NAME: &str = "fuzz.jsonl";
pub const STRATEGIES_NAME: &str = "fuzz-strategies.yaml";
pub const REGISTRY_NAME: &str = "fuzz-registry.yaml";

/// Field names of a bus entry, which start the codec's messages about them.
pub const BUS_FIELDS: &[&str] = &[
    "ts_ns",
    "instrument",
    "price",
    "volume",
    "bid",
    "ask",
    "seq",
    "correlation_id",
];

/// The codec's messages about an entry as a whole.
pub const BUS_ENTRY_REASONS: &[&str] = &[
    "odd number of field names and values",
    "a field name or value is not a string",
];

/// The dead-letter categories a refused entry may have.
pub const BUS_CATEGORIES: &[&str] = &["malformed_tick", "oversized_entry", "out_of_order_tick"];

// ---------------------------------------------------------------------------
// Tick files

/// A CSV tick file (header row, then rows), read by [`TickReader`].
pub fn tick_csv(data: &[u8]) {
    tick_file(data, TickFormat::Csv, CSV_NAME);
}

/// A JSON Lines tick file, read by [`TickReader`].
pub fn tick_jsonl(data: &[u8]) {
    tick_file(data, TickFormat::Jsonl, JSONL_NAME);
}

fn tick_file(data: &[u8], format: TickFormat, name: &str) {
    let lines = physical_lines(data);
    let reader = match TickReader::from_reader(name, format, Cursor::new(data.to_vec())) {
        Ok(reader) => reader,
        Err(error) => {
            located(&error.to_string(), name, lines);
            return;
        }
    };
    let mut accepted = Vec::new();
    let mut last_ts: HashMap<u64, i64> = HashMap::new();
    let mut last_line = 0;
    for row in reader {
        match row {
            Ok(tick) => {
                check_tick(&tick, true);
                let previous = last_ts.insert(tick.instrument, tick.ts_ns);
                assert!(
                    previous.is_none_or(|p| p <= tick.ts_ns),
                    "accepted a tick of instrument {} at {} after one at {previous:?}",
                    tick.instrument,
                    tick.ts_ns
                );
                accepted.push(tick);
            }
            Err(error) => {
                let message = error.to_string();
                let line = located(&message, name, lines);
                assert_eq!(line, error.line(), "{message}");
                assert!(
                    line >= last_line,
                    "line {line} after {last_line}: {message}"
                );
                last_line = line;
                if let Some(field) = error.field() {
                    let rest = &message[format!("{name}:{line}: ").len()..];
                    assert!(
                        rest.starts_with(&format!("{field}: "))
                            || rest.contains(&format!("{field:?}")),
                        "the message does not name field {field:?}: {message}"
                    );
                }
            }
        }
    }
    if !accepted.is_empty() {
        ticks_agree(&accepted);
    }
}

/// The bounds every accepted tick is within. `quotes`: whether bid and ask
/// are held to them too.
fn check_tick(tick: &Tick, quotes: bool) {
    assert!(
        tick.price.is_positive(),
        "accepted price {} <= 0",
        tick.price
    );
    assert!(
        tick.volume <= Tick::MAX_VOLUME,
        "accepted volume {} > 2^53",
        tick.volume
    );
    if quotes {
        for (field, quote) in [("bid", tick.bid), ("ask", tick.ask)] {
            if let Some(quote) = quote {
                assert!(quote.is_positive(), "accepted {field} {quote} <= 0");
            }
        }
    }
    for price in [Some(tick.price), tick.bid, tick.ask].into_iter().flatten() {
        assert_eq!(
            Price::parse(&price.to_string()),
            Ok(price),
            "a price does not print back to itself"
        );
    }
}

/// Accepted ticks, written as CSV, as JSON Lines and as bus entries, read back
/// as the same ticks by every reader.
fn ticks_agree(ticks: &[Tick]) {
    let mut csv = Vec::new();
    let written = quiver_io::write_ticks_csv_with_quotes(ticks.iter().copied(), &mut csv);
    assert!(
        written.is_ok(),
        "writing accepted ticks failed: {written:?}"
    );
    let mut jsonl = String::new();
    for tick in ticks {
        let _ = write!(
            jsonl,
            r#"{{"ts_ns":{},"instrument":{},"price":"{}","volume":{}"#,
            tick.ts_ns, tick.instrument, tick.price, tick.volume
        );
        for (field, quote) in [("bid", tick.bid), ("ask", tick.ask)] {
            if let Some(quote) = quote {
                let _ = write!(jsonl, r#","{field}":"{quote}""#);
            }
        }
        jsonl.push_str("}\n");
    }
    for (format, bytes) in [
        (TickFormat::Csv, csv),
        (TickFormat::Jsonl, jsonl.into_bytes()),
    ] {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        match TickReader::from_reader("again", format, Cursor::new(bytes)) {
            Ok(reader) => {
                let again: Vec<_> = reader.map(|row| row.map_err(|e| e.to_string())).collect();
                let expected: Vec<_> = ticks.iter().map(|t| Ok(*t)).collect();
                assert_eq!(again, expected, "{format:?} written back as\n{text}");
            }
            Err(error) => panic!("{format:?} written back is refused: {error}\n{text}"),
        }
    }
    let origin: Arc<str> = Arc::from("fuzz/1-0");
    for tick in ticks {
        let fields = bus_fields(tick);
        match parse_tick_fields("1-0", &fields, &origin) {
            Ok(live) => assert_eq!(live.tick, *tick, "the bus codec reads another tick"),
            Err(reason) => panic!("the bus codec refuses an accepted tick {tick:?}: {reason}"),
        }
    }
}

/// A tick as the fields of a bus entry, as `quiver publish` writes them.
pub fn bus_fields(tick: &Tick) -> Vec<Value> {
    let mut pairs = vec![
        ("ts_ns", tick.ts_ns.to_string()),
        ("instrument", tick.instrument.to_string()),
        ("price", tick.price.to_string()),
        ("volume", tick.volume.to_string()),
    ];
    if let Some(bid) = tick.bid {
        pairs.push(("bid", bid.to_string()));
    }
    if let Some(ask) = tick.ask {
        pairs.push(("ask", ask.to_string()));
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

// ---------------------------------------------------------------------------
// The bus codec

/// One bus entry: `entry_id \0 name \0 value \0 name \0 value ...`, so the
/// fuzzer can build any field list (odd ones, repeated names, non-UTF-8).
pub fn bus_entry(data: &[u8]) {
    let mut parts = data.split(|&b| b == 0);
    let entry_id = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let fields: Vec<Value> = parts.map(|p| Value::BulkString(p.to_vec())).collect();
    let origin: Arc<str> = Arc::from("fuzz/entry");
    match parse_tick_fields(&entry_id, &fields, &origin) {
        Ok(live) => {
            let tick = live.tick;
            check_tick(&tick, BUS_REFUSES_BAD_QUOTES);
            assert_eq!(live.origin.as_deref(), Some("fuzz/entry"));
            if let Some(id) = &live.correlation_id {
                assert!(!id.is_empty(), "an empty correlation_id is kept");
            }
            let quotes_ok = [tick.bid, tick.ask]
                .iter()
                .flatten()
                .all(|q| q.is_positive());
            if quotes_ok {
                ticks_agree(&[tick]);
            }
        }
        Err(error) => {
            let reason = error.to_string();
            let category = error.category();
            assert!(
                BUS_CATEGORIES.contains(&category),
                "unknown dead-letter category {category:?} for {reason:?}"
            );
            let by_field = BUS_FIELDS
                .iter()
                .any(|field| reason.starts_with(&format!("{field}: ")));
            let named = match &error {
                // A field's verdict names the field, as a file row's does.
                EntryError::Field(kind) => {
                    kind.field().is_some() && (by_field || reason.contains("field \""))
                }
                EntryError::OddFields | EntryError::NotText => {
                    BUS_ENTRY_REASONS.contains(&reason.as_str())
                }
                EntryError::BadSeq { .. } | EntryError::LongCorrelationId { .. } => by_field,
                EntryError::Oversized { .. } => reason.contains("-byte limit of an entry"),
                _ => false,
            };
            assert!(named, "the reason names no field: {reason:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// YAML and TOML files

/// A strategies file, checked as `quiver validate` checks it.
pub fn strategies_yaml(data: &[u8]) {
    let lines = text_lines(data);
    match std::str::from_utf8(data) {
        Ok(text) => check_config(
            quiver_config::parse_config(text, STRATEGIES_NAME),
            STRATEGIES_NAME,
            lines,
        ),
        // Text that is not UTF-8 can only come from a file.
        Err(_) => {
            with_file(STRATEGIES_NAME, data, |path| {
                let shown = path.display().to_string();
                check_config(quiver_config::load_config(path), &shown, lines);
            });
        }
    }
}

fn check_config(result: Result<Config, ConfigError>, name: &str, lines: u64) {
    match result {
        Ok(config) => {
            let mut ids = HashSet::new();
            for row in &config.strategies {
                assert!(valid_name(&row.id), "accepted id {:?}", row.id);
                assert!(ids.insert(&row.id), "accepted duplicate id {:?}", row.id);
                assert!(
                    !row.brokers.is_empty(),
                    "accepted row {:?} with no brokers",
                    row.id
                );
                let mut brokers = HashSet::new();
                for broker in &row.brokers {
                    assert!(
                        valid_name(broker) && broker != "dlq",
                        "accepted broker {broker:?}"
                    );
                    assert!(
                        brokers.insert(broker),
                        "accepted duplicate broker {broker:?}"
                    );
                }
                assert!(
                    !row.instruments.is_empty(),
                    "accepted row {:?} with no instruments",
                    row.id
                );
                let mut instruments = HashSet::new();
                for &instrument in &row.instruments {
                    assert!(instrument > 0, "accepted instrument {instrument}");
                    assert!(
                        instruments.insert(instrument),
                        "accepted duplicate instrument {instrument}"
                    );
                }
                in_file(row.line as u64, lines, "row");
                for model in &row.models {
                    assert!(!model.name.is_empty(), "accepted an empty model name");
                    in_file(model.line as u64, lines, "model");
                }
            }
            match &config.models {
                Some(ModelsSource::File { line, .. }) | Some(ModelsSource::Inline { line }) => {
                    in_file(*line as u64, lines, "models")
                }
                None => {}
            }
        }
        Err(ConfigError::Io { path, .. }) => assert_eq!(path, name),
        Err(ConfigError::Syntax(error)) => syntax(&error, name, lines),
        Err(ConfigError::Invalid { file, issues }) => {
            assert_eq!(file, name);
            yaml_issues(&issues, name, lines);
        }
    }
}

/// A model registry file.
pub fn registry_yaml(data: &[u8]) {
    let lines = text_lines(data);
    match std::str::from_utf8(data) {
        Ok(text) => check_registry(
            Registry::parse(text, Path::new(REGISTRY_NAME)),
            REGISTRY_NAME,
            lines,
        ),
        Err(_) => {
            with_file(REGISTRY_NAME, data, |path| {
                let shown = path.display().to_string();
                check_registry(Registry::load(path), &shown, lines);
            });
        }
    }
}

fn check_registry(result: Result<Registry, RegistryError>, name: &str, lines: u64) {
    match result {
        Ok(registry) => {
            let mut names = HashSet::new();
            for model in &registry.models {
                assert!(!model.name.trim().is_empty(), "accepted a blank model name");
                assert!(
                    names.insert(&model.name),
                    "accepted duplicate model {:?}",
                    model.name
                );
                assert!(!model.path_text.trim().is_empty(), "accepted a blank path");
                assert!(
                    model.sha256.len() == 64
                        && model
                            .sha256
                            .bytes()
                            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                    "accepted sha256 {:?}",
                    model.sha256
                );
                assert!(
                    (1..=quiver_infer::registry::MAX_FEATURES).contains(&model.n_features),
                    "accepted {} features",
                    model.n_features
                );
                if let Some(features) = &model.feature_names {
                    assert_eq!(features.len(), model.n_features, "feature names");
                }
                match &model.output {
                    OutputSpec::Classifier { classes, .. } => {
                        assert!(
                            (2..=quiver_infer::registry::MAX_CLASSES).contains(&classes.len()),
                            "accepted {} classes",
                            classes.len()
                        );
                        let unique: HashSet<_> = classes.iter().collect();
                        assert_eq!(unique.len(), classes.len(), "accepted duplicate classes");
                    }
                    OutputSpec::Regressor { threshold, .. } => {
                        assert!(
                            threshold.is_finite() && *threshold > 0.0,
                            "accepted threshold {threshold}"
                        );
                    }
                }
                in_file(model.line as u64, lines, "model");
            }
        }
        Err(RegistryError::Io { path, .. }) => assert_eq!(path.display().to_string(), name),
        Err(RegistryError::Syntax(error)) => syntax(&error, name, lines),
        Err(RegistryError::Invalid { path, issues }) => {
            assert_eq!(path.display().to_string(), name);
            yaml_issues(&issues, name, lines);
        }
    }
}

/// A TOML settings file, loaded as the service loads it (no environment).
pub fn settings_toml(data: &[u8]) {
    settings(data, "fuzz-settings.toml");
}

/// A YAML settings file.
pub fn settings_yaml(data: &[u8]) {
    settings(data, "fuzz-settings.yaml");
}

fn settings(data: &[u8], name: &str) {
    let lines = text_lines(data);
    with_file(name, data, |path| {
        let shown = path.display().to_string();
        let no_env = std::iter::empty::<(String, String)>();
        match Settings::load(Some(path), no_env) {
            Ok(settings) => {
                let validated = settings.validate();
                assert!(
                    validated.is_ok(),
                    "accepted settings fail validation: {validated:?}"
                );
                let q = &settings.quiver;
                assert!(q.batch_size >= 1 && q.queue_capacity >= 1 && q.redis.partitions >= 1);
                assert!(q.redis.response_timeout_ms > q.redis.block_ms);
            }
            Err(SettingsError::Io { path, .. }) => assert_eq!(path, shown),
            Err(SettingsError::Format { path }) => panic!("{path}: refused its own extension"),
            Err(SettingsError::Syntax(error)) => syntax(&error, &shown, lines),
            Err(SettingsError::TomlSyntax {
                file, line, col, ..
            }) => {
                assert_eq!(file, shown);
                in_file(line as u64, lines, "TOML syntax error");
                assert!(col >= 1, "column {col}");
            }
            Err(SettingsError::Invalid { issues }) => {
                assert!(!issues.is_empty(), "refused with no issue");
                for issue in &issues {
                    match &issue.origin {
                        Origin::File { file, line } => {
                            assert_eq!(file, &shown);
                            in_file(*line as u64, lines, &issue.to_string());
                        }
                        other => panic!("an issue located at {other} by a file alone: {issue}"),
                    }
                    assert!(
                        !issue.key.is_empty() && !issue.message.is_empty(),
                        "{issue}"
                    );
                }
            }
        }
    });
}

fn syntax(error: &quiver_config::yaml::SyntaxError, name: &str, lines: u64) {
    assert_eq!(error.file, name);
    in_file(error.line as u64, lines, &error.to_string());
    assert!(error.col >= 1, "{error}");
    assert!(
        error.to_string().starts_with(&format!(
            "{name}:{}:{}: YAML syntax error: ",
            error.line, error.col
        )),
        "{error}"
    );
}

fn yaml_issues(issues: &[quiver_config::yaml::Issue], name: &str, lines: u64) {
    assert!(!issues.is_empty(), "refused with no issue");
    for issue in issues {
        let shown = issue.to_string();
        assert_eq!(issue.file, name, "{shown}");
        in_file(issue.line as u64, lines, &shown);
        assert!(
            !issue.path.is_empty() && !issue.message.is_empty(),
            "{shown}"
        );
        assert!(
            shown.starts_with(&format!("{name}:{}: ", issue.line)),
            "{shown}"
        );
    }
}

// ---------------------------------------------------------------------------
// Helpers

/// Whether `name` is a valid strategy id or broker name: 1–64 ASCII letters,
/// digits, `-`, `_` or `.`, starting with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Lines of a tick file as its readers count them: `\n` ends a line, and a
/// final line break starts no further line.
fn physical_lines(data: &[u8]) -> u64 {
    let breaks = data.iter().filter(|&&b| b == b'\n').count() as u64;
    let tail = data.last().is_some_and(|&b| b != b'\n');
    (breaks + u64::from(tail)).max(1)
}

/// Lines of YAML or TOML text: `\n`, `\r\n` and `\r` end a line (for TOML,
/// where `\r` alone is invalid, an upper bound).
fn text_lines(data: &[u8]) -> u64 {
    let mut breaks = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' || (b == b'\r' && data.get(i + 1) != Some(&b'\n')) {
            breaks += 1;
        }
    }
    let tail = data.last().is_some_and(|&b| b != b'\n' && b != b'\r');
    (breaks + u64::from(tail)).max(1)
}

fn in_file(line: u64, lines: u64, what: &str) {
    assert!(
        (1..=lines).contains(&line),
        "line {line} is outside the input's 1..={lines}: {what}"
    );
}

/// Checks that `message` starts with `name:LINE: ` for a line in the input,
/// and returns the line.
fn located(message: &str, name: &str, lines: u64) -> u64 {
    let rest = message.strip_prefix(name).and_then(|r| r.strip_prefix(':'));
    let line = rest.and_then(|rest| {
        let (digits, after) = rest.split_once(':')?;
        after.starts_with(' ').then_some(())?;
        digits.parse::<u64>().ok()
    });
    match line {
        Some(line) => {
            in_file(line, lines, message);
            line
        }
        None => panic!("the message does not start with {name}:LINE: {message:?}"),
    }
}

/// Runs `f` on a file holding `data`, named `…{name}`, for parsers that only
/// read files. The file is removed afterwards; when it cannot be written the
/// input is skipped.
fn with_file(name: &str, data: &[u8], f: impl FnOnce(&Path)) {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("quiver-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok().map(|()| dir)
    });
    let Some(dir) = dir else {
        return;
    };
    let path = dir.join(format!("{}.{name}", NEXT.fetch_add(1, Ordering::Relaxed)));
    if std::fs::write(&path, data).is_ok() {
        f(&path);
    }
    let _ = std::fs::remove_file(&path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_must_name_a_line_inside_the_input() {
        assert_eq!(located("fuzz.csv:3: price: bad", "fuzz.csv", 3), 3);
        for message in [
            "fuzz.csv: read error: x",
            "fuzz.csv:4: price: bad",
            "fuzz.csv:0: price: bad",
            "other.csv:1: price: bad",
            "fuzz.csv:1:price",
        ] {
            let caught = std::panic::catch_unwind(|| located(message, "fuzz.csv", 3));
            assert!(caught.is_err(), "{message} passed");
        }
    }

    #[test]
    fn an_accepted_tick_out_of_bounds_is_caught() {
        let tick = Tick {
            ts_ns: 1,
            instrument: 1,
            price: Price::from_int(1),
            volume: Tick::MAX_VOLUME,
            bid: None,
            ask: Some(Price::ZERO),
        };
        check_tick(&tick, false);
        assert!(std::panic::catch_unwind(|| check_tick(&tick, true)).is_err());
        let volume = Tick {
            volume: Tick::MAX_VOLUME + 1,
            ask: None,
            ..tick
        };
        assert!(std::panic::catch_unwind(|| check_tick(&volume, true)).is_err());
        let price = Tick {
            price: Price::from_units(-1),
            ask: None,
            ..tick
        };
        assert!(std::panic::catch_unwind(|| check_tick(&price, true)).is_err());
    }

    #[test]
    fn line_counts() {
        for (data, csv, text) in [
            (&b""[..], 1, 1),
            (b"a", 1, 1),
            (b"a\n", 1, 1),
            (b"a\nb", 2, 2),
            (b"a\r\nb\r\n", 2, 2),
            (b"a\rb", 1, 2),
            (b"\n\n", 2, 2),
        ] {
            assert_eq!(physical_lines(data), csv, "{data:?}");
            assert_eq!(text_lines(data), text, "{data:?}");
        }
    }

    #[test]
    fn names() {
        for good in ["a", "mom-1", "A.b_c-9", &"x".repeat(64)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "-a", ".a", "_a", "a b", "é", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
