//! Tick stream entries ↔ ticks.
//!
//! An entry's tick fields go through the same validator as a row of a tick
//! file (`tick_check`), so the bus accepts exactly what replay accepts. An
//! entry is bounded before any of it is decoded: [`MAX_ENTRY_BYTES`] in
//! all, [`MAX_CORRELATION_ID_BYTES`] for the id copied onto every signal.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use redis::Value;

use crate::live::{DeadLetter, LiveTick};
use crate::tick_check::{self, quoted, RowFields};
use crate::tick_error::{RowErrorKind, FIELDS};

/// The fields of one stream entry, as the server sent them.
pub type TickFields = [Value];

/// The most bytes of field names and values one entry may hold. A tick
/// takes about 100; anything near this is junk, refused before it is read.
pub const MAX_ENTRY_BYTES: usize = 4 << 10;

/// The longest `correlation_id`: it is copied onto every signal the tick
/// causes.
pub const MAX_CORRELATION_ID_BYTES: usize = 128;

/// How much of a refused entry its dead letter carries.
const DEAD_LETTER_PAYLOAD_BYTES: usize = 1 << 10;

/// Why an entry is not a tick.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// A tick field is wrong: the same verdict a tick file gets.
    #[error("{0}")]
    Field(RowErrorKind),
    #[error("odd number of field names and values")]
    OddFields,
    #[error("a field name or value is not a string")]
    NotText,
    #[error("seq: {text} is not an unsigned integer")]
    BadSeq { text: String },
    #[error("{bytes} bytes of fields, over the {MAX_ENTRY_BYTES}-byte limit of an entry")]
    Oversized { bytes: usize },
    #[error("correlation_id: {bytes} bytes, over the {MAX_CORRELATION_ID_BYTES}-byte limit")]
    LongCorrelationId { bytes: usize },
}

impl EntryError {
    /// The dead-letter category (a metric label).
    pub fn category(&self) -> &'static str {
        match self {
            EntryError::Oversized { .. } | EntryError::LongCorrelationId { .. } => {
                "oversized_entry"
            }
            EntryError::Field(RowErrorKind::TimestampBackwards { .. }) => "out_of_order_tick",
            _ => "malformed_tick",
        }
    }
}

/// Reads the fields of a tick entry (`ts_ns`, `instrument`, `price`,
/// `volume`, optional `bid`, `ask`, `seq`, `correlation_id`; unknown fields
/// are ignored so producers can add their own, but count towards the size
/// limit). A field given twice is refused, as in a tick file.
///
/// Without `seq` the tick's sequence number is derived from its entry id
/// (`ms << 20 | sequence`), which is stable across redeliveries.
pub fn parse_tick_fields(
    entry_id: &str,
    fields: &TickFields,
    origin: &Arc<str>,
) -> Result<LiveTick, EntryError> {
    if !fields.len().is_multiple_of(2) {
        return Err(EntryError::OddFields);
    }
    parse_tick_pairs(
        entry_id,
        fields.chunks_exact(2).map(|pair| (&pair[0], &pair[1])),
        origin,
    )
}

/// [`parse_tick_fields`] over `(name, value)` pairs (a RESP3 map).
pub fn parse_tick_pairs<'a>(
    entry_id: &str,
    pairs: impl Iterator<Item = (&'a Value, &'a Value)> + Clone,
    origin: &Arc<str>,
) -> Result<LiveTick, EntryError> {
    let bytes: usize = pairs
        .clone()
        .map(|(name, value)| byte_len(name).saturating_add(byte_len(value)))
        .fold(0usize, usize::saturating_add);
    if bytes > MAX_ENTRY_BYTES {
        return Err(EntryError::Oversized { bytes });
    }
    let mut row = BusRow::default();
    let mut seq = None;
    let mut correlation_id = None;
    for (name, value) in pairs {
        let (Some(name), Some(value)) = (text(name), text(value)) else {
            return Err(EntryError::NotText);
        };
        let (name, slot) = match name {
            "seq" => ("seq", &mut seq),
            "correlation_id" => ("correlation_id", &mut correlation_id),
            _ => match FIELDS.iter().position(|&f| f == name) {
                Some(field) => (FIELDS[field], &mut row.values[field]),
                None => continue,
            },
        };
        if slot.replace(value).is_some() {
            return Err(EntryError::Field(RowErrorKind::DuplicateField { name }));
        }
    }
    let tick = tick_check::tick_of(&row).map_err(EntryError::Field)?;
    let correlation_id = match correlation_id {
        Some(id) if id.len() > MAX_CORRELATION_ID_BYTES => {
            return Err(EntryError::LongCorrelationId { bytes: id.len() })
        }
        Some("") | None => None,
        Some(id) => Some(Arc::from(id)),
    };
    let seq = match seq {
        Some(text) => tick_check::parse_u64(text.as_bytes()).ok_or_else(|| EntryError::BadSeq {
            text: quoted(text.as_bytes()),
        })?,
        None => {
            seq_from_entry_id(entry_id).ok_or(EntryError::Field(RowErrorKind::MissingField {
                name: "seq",
            }))?
        }
    };
    Ok(LiveTick {
        tick,
        seq,
        correlation_id,
        origin: Some(Arc::clone(origin)),
    })
}

#[derive(Default)]
struct BusRow<'a> {
    values: [Option<&'a str>; 6],
}

impl RowFields for BusRow<'_> {
    fn text(&self, field: usize) -> Option<Cow<'_, [u8]>> {
        self.values[field].map(|v| Cow::Borrowed(v.as_bytes()))
    }

    fn shown(&self, field: usize) -> String {
        quoted(self.values[field].unwrap_or_default().as_bytes())
    }
}

/// A dead letter for an entry that is not a tick.
pub(crate) fn rejected<'a>(
    origin: &Arc<str>,
    pairs: impl Iterator<Item = (&'a Value, &'a Value)>,
    error: &EntryError,
) -> DeadLetter {
    DeadLetter {
        category: error.category(),
        reason: error.to_string(),
        origin: origin.to_string(),
        payload: render_pairs(pairs),
    }
}

/// `(name, value)` pairs of a flat field list; an odd last name gets an
/// empty value.
pub(crate) fn pairs_of(fields: &TickFields) -> impl Iterator<Item = (&Value, &Value)> {
    const NIL: &Value = &Value::Nil;
    fields
        .chunks(2)
        .map(|pair| (&pair[0], pair.get(1).unwrap_or(NIL)))
}

/// `name=value name=value`, for dead letters and logs, cut after about
/// [`DEAD_LETTER_PAYLOAD_BYTES`] so junk is not copied whole.
pub(crate) fn render_pairs<'a>(pairs: impl Iterator<Item = (&'a Value, &'a Value)>) -> String {
    let mut out = String::new();
    let mut whole = 0usize;
    let mut cut = false;
    for (i, (name, value)) in pairs.enumerate() {
        whole = whole
            .saturating_add(usize::from(i > 0) + 1)
            .saturating_add(byte_len(name))
            .saturating_add(byte_len(value));
        if out.len() >= DEAD_LETTER_PAYLOAD_BYTES {
            cut = true;
            continue;
        }
        if i > 0 {
            out.push(' ');
        }
        cut |= shown_value(&mut out, name);
        out.push('=');
        cut |= shown_value(&mut out, value);
    }
    if cut {
        let _ = write!(out, "… ({whole} bytes in all)");
    }
    out
}

/// Appends `value` as text, cut to the room left; true if it was cut.
fn shown_value(out: &mut String, value: &Value) -> bool {
    let room = DEAD_LETTER_PAYLOAD_BYTES.saturating_sub(out.len());
    match text(value) {
        Some(t) => {
            let mut end = t.len().min(room);
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            out.push_str(&t[..end]);
            end < t.len()
        }
        None => {
            let _ = match value {
                Value::BulkString(bytes) => write!(out, "<{} bytes, not UTF-8>", bytes.len()),
                Value::Int(n) => write!(out, "{n}"),
                Value::Nil => Ok(()),
                Value::Array(items) => write!(out, "<array of {}>", items.len()),
                _ => write!(out, "<not a string>"),
            };
            false
        }
    }
}

/// The bytes a field name or value takes (0 for what is not a string).
pub(crate) fn byte_len(value: &Value) -> usize {
    match value {
        Value::BulkString(bytes) => bytes.len(),
        Value::SimpleString(s) => s.len(),
        Value::VerbatimString { text, .. } => text.len(),
        _ => 0,
    }
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

    fn refusal(pairs: &[(&str, &str)]) -> (String, &'static str) {
        let origin: Arc<str> = Arc::from("s/1-0");
        let error = parse_tick_fields("1-0", &fields(pairs), &origin).unwrap_err();
        (error.to_string(), error.category())
    }

    const TICK: [(&str, &str); 4] = [
        ("ts_ns", "1"),
        ("instrument", "2"),
        ("price", "1"),
        ("volume", "3"),
    ];

    fn tick_with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut pairs: Vec<_> = TICK
            .iter()
            .filter(|(name, _)| extra.iter().all(|(n, _)| n != name))
            .copied()
            .collect();
        pairs.extend_from_slice(extra);
        pairs
    }

    #[test]
    fn names_the_field_at_fault_as_the_file_reader_does() {
        let cases: [(Vec<(&str, &str)>, &str); 10] = [
            (
                TICK[..2].iter().chain(&TICK[3..]).copied().collect(),
                "missing field \"price\"",
            ),
            (
                tick_with(&[("price", "abc")]),
                "price: \"abc\" is not a decimal",
            ),
            (
                tick_with(&[("ts_ns", "x")]),
                "ts_ns: \"x\" is not an integer",
            ),
            (tick_with(&[("price", "-1")]), "price: must be > 0, got -1"),
            (
                // The fraction would wrap this to a positive price.
                tick_with(&[("price", "-92233720368.99999999")]),
                "price: \"-92233720368.99999999\" is out of range",
            ),
            (
                tick_with(&[("volume", "9007199254740993")]),
                "volume: must be <= 9007199254740992 (2^53, kept exactly), got 9007199254740993",
            ),
            (tick_with(&[("bid", "-5")]), "bid: must be > 0, got -5"),
            (tick_with(&[("ask", "0")]), "ask: must be > 0, got 0"),
            (
                tick_with(&[("price", "1"), ("price", "2")]),
                "duplicate field \"price\"",
            ),
            (
                tick_with(&[("seq", "1"), ("seq", "1")]),
                "duplicate field \"seq\"",
            ),
        ];
        for (pairs, message) in cases {
            assert_eq!(refusal(&pairs), (message.to_owned(), "malformed_tick"));
        }
    }

    #[test]
    fn oversized_entries_are_refused_before_they_are_read_and_cut_in_dead_letters() {
        let junk = "x".repeat(1 << 20);
        let (message, category) = refusal(&tick_with(&[("junk", &junk)]));
        assert_eq!(category, "oversized_entry");
        assert!(message.contains("over the 4096-byte limit"), "{message}");
        let id = "c".repeat(MAX_CORRELATION_ID_BYTES + 1);
        let (message, category) = refusal(&tick_with(&[("correlation_id", &id)]));
        assert_eq!(category, "oversized_entry");
        assert_eq!(
            message,
            "correlation_id: 129 bytes, over the 128-byte limit"
        );
        let id = "c".repeat(MAX_CORRELATION_ID_BYTES);
        let origin: Arc<str> = Arc::from("s/1-0");
        let live = parse_tick_fields(
            "1-0",
            &fields(&tick_with(&[("correlation_id", &id)])),
            &origin,
        )
        .unwrap();
        assert_eq!(live.correlation_id.as_deref(), Some(id.as_str()));

        let entry = fields(&tick_with(&[("junk", &junk)]));
        let payload = render_pairs(pairs_of(&entry));
        assert!(
            payload.len() < DEAD_LETTER_PAYLOAD_BYTES + 64,
            "{}",
            payload.len()
        );
        assert!(payload.starts_with("ts_ns=1 instrument=2 price=1 volume=3 junk=xxx"));
        assert!(
            payload.ends_with(&format!(
                "… ({} bytes in all)",
                37 + " junk=".len() + (1 << 20)
            )),
            "{payload}"
        );
        assert_eq!(
            render_pairs(pairs_of(&fields(&TICK))),
            "ts_ns=1 instrument=2 price=1 volume=3"
        );
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
