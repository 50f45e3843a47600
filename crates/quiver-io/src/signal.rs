//! Signal output as JSON Lines.
//!
//! The encoding is hand-written rather than derived so that the key order is
//! fixed, prices keep their exact decimal text, and a record is rendered
//! straight into a reused buffer: identical runs give byte-identical files,
//! and writing a signal does not allocate once the buffer has grown.

use std::fmt::{self, Write as _};
use std::io::{self, Write};

use quiver_core::{InstrumentToken, MetaValue, Metadata, Price, Reasoning, Side};

/// One signal as written out: a validated decision bound to a broker.
#[derive(Debug, Clone, Copy)]
pub struct SignalRecord<'a> {
    /// Position in the output stream, for gap detection downstream.
    pub seq: u64,
    pub ts_ns: i64,
    /// See [`signal_id`](crate::signal_id::signal_id).
    pub signal_id: u64,
    pub strategy_id: &'a str,
    pub instrument: InstrumentToken,
    pub broker: &'a str,
    pub side: Side,
    pub confidence: f64,
    pub quantity: u64,
    pub price: Price,
    pub reasoning: &'a Reasoning,
    pub metadata: &'a Metadata,
    /// The model behind an ML or hybrid signal.
    pub model: Option<ModelTag<'a>>,
    pub correlation_id: Option<&'a str>,
}

/// Which model, version and inputs produced a signal (seed 001's
/// determinism record), written into its `metadata` as `model`,
/// `model_version` and `feature_hash` (16 hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelTag<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub feature_hash: u64,
}

/// Writes [`SignalRecord`]s as JSON Lines.
///
/// Each record reaches `out` in one `write_all` of a complete line, so
/// concurrent readers of a pipe never see half a record. `out` is not
/// buffered further: wrap a file in a `BufWriter`.
#[derive(Debug)]
pub struct SignalWriter<W: Write> {
    out: W,
    line: Vec<u8>,
}

impl<W: Write> SignalWriter<W> {
    pub fn new(out: W) -> Self {
        SignalWriter {
            out,
            line: Vec::with_capacity(512),
        }
    }

    /// Writes one record as one line.
    pub fn write(&mut self, record: &SignalRecord<'_>) -> io::Result<()> {
        self.line.clear();
        encode_signal(record, &mut self.line)?;
        self.out.write_all(&self.line)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// The underlying writer, not flushed.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Appends `record` to `line` as one JSON object and a newline.
///
/// Key order: `seq, ts_ns, signal_id, strategy_id, instrument, broker, side,
/// confidence, quantity, price, reasoning, metadata`, then `correlation_id`
/// when present. `signal_id` is 16 lowercase hex digits and `price` a string,
/// because JSON numbers are read as doubles by most consumers and would lose
/// the id's low bits and the price's exact decimal.
pub fn encode_signal(record: &SignalRecord<'_>, line: &mut Vec<u8>) -> io::Result<()> {
    // Numbers are written without `fmt`: a signal is encoded per broker for
    // every signal, on the dispatch thread.
    line.extend_from_slice(b"{\"seq\":");
    push_int(line, record.seq);
    line.extend_from_slice(b",\"ts_ns\":");
    push_int(line, record.ts_ns);
    line.extend_from_slice(b",\"signal_id\":\"");
    push_hex16(line, record.signal_id);
    line.extend_from_slice(b"\",\"strategy_id\":");
    push_json_str(line, record.strategy_id);
    line.extend_from_slice(b",\"instrument\":");
    push_int(line, record.instrument);
    line.extend_from_slice(b",\"broker\":");
    push_json_str(line, record.broker);
    line.extend_from_slice(b",\"side\":\"");
    line.extend_from_slice(record.side.as_str().as_bytes());
    line.extend_from_slice(b"\",\"confidence\":");
    push_json_f64(line, record.confidence)?;
    line.extend_from_slice(b",\"quantity\":");
    push_int(line, record.quantity);
    line.extend_from_slice(b",\"price\":\"");
    push_price(line, record.price);
    line.extend_from_slice(b"\",\"reasoning\":\"");
    write!(JsonStrContents(line), "{}", record.reasoning)
        .map_err(|_| io::Error::other("rendering the signal's reasoning failed"))?;
    line.extend_from_slice(b"\",\"metadata\":{");
    for (i, (key, value)) in record.metadata.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        push_json_str(line, key);
        line.push(b':');
        match value {
            MetaValue::F64(value) => push_json_f64(line, value)?,
            MetaValue::I64(value) => push_int(line, value),
        }
    }
    if let Some(model) = &record.model {
        if !record.metadata.is_empty() {
            line.push(b',');
        }
        line.extend_from_slice(b"\"model\":");
        push_json_str(line, model.name);
        line.extend_from_slice(b",\"model_version\":");
        push_json_str(line, model.version);
        line.extend_from_slice(b",\"feature_hash\":\"");
        push_hex16(line, model.feature_hash);
        line.push(b'"');
    }
    line.push(b'}');
    if let Some(correlation_id) = record.correlation_id {
        line.extend_from_slice(b",\"correlation_id\":");
        push_json_str(line, correlation_id);
    }
    line.extend_from_slice(b"}\n");
    Ok(())
}

fn push_int(line: &mut Vec<u8>, value: impl itoa::Integer) {
    line.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// 16 lowercase hex digits, as `{:016x}` prints them (signal ids, feature
/// hashes).
pub(crate) fn hex16(value: u64) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    for (i, digit) in digits.iter_mut().rev().enumerate() {
        *digit = HEX[((value >> (4 * i)) & 0xf) as usize];
    }
    digits
}

fn push_hex16(line: &mut Vec<u8>, value: u64) {
    line.extend_from_slice(&hex16(value));
}

/// The price's `Display` text (the shortest exact decimal).
fn push_price(line: &mut Vec<u8>, price: Price) {
    const SCALE: u64 = 10u64.pow(quiver_core::price::PRICE_DECIMALS);
    let units = price.units();
    if units < 0 {
        line.push(b'-');
    }
    let abs = units.unsigned_abs();
    push_int(line, abs / SCALE);
    let mut frac = abs % SCALE;
    if frac == 0 {
        return;
    }
    let mut width = quiver_core::price::PRICE_DECIMALS as usize;
    while frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    line.push(b'.');
    let mut digits = [b'0'; quiver_core::price::PRICE_DECIMALS as usize];
    for digit in digits[..width].iter_mut().rev() {
        *digit = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    line.extend_from_slice(&digits[..width]);
}

/// serde_json's float text: shortest round-trip digits, `null` if not finite.
fn push_json_f64(line: &mut Vec<u8>, value: f64) -> io::Result<()> {
    serde_json::to_writer(&mut *line, &value).map_err(io::Error::from)
}

fn push_json_str(line: &mut Vec<u8>, text: &str) {
    line.push(b'"');
    escape_json_into(line, text);
    line.push(b'"');
}

/// Escapes exactly what serde_json escapes (quote, backslash, control
/// characters), so output matches what a serde-based writer would produce.
fn escape_json_into(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Escapes formatted text into a JSON string body, so `Display` output (the
/// reasoning) is encoded without first being collected into a `String`.
struct JsonStrContents<'a>(&'a mut Vec<u8>);

impl fmt::Write for JsonStrContents<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        escape_json_into(self.0, text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn escaped(text: &str) -> String {
        let mut out = Vec::new();
        push_json_str(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_serde_json() {
        assert_eq!(
            escaped("a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}é/"),
            r#""a\"b\\c\n\r\t\b\f\u0001\u001f"#.to_owned() + "\u{7f}é/\""
        );
    }

    proptest! {
        #[test]
        fn escaping_matches_serde_json(text in any::<String>()) {
            prop_assert_eq!(escaped(&text), serde_json::to_string(&text).unwrap());
        }

        #[test]
        fn numbers_print_as_fmt_prints_them(units in any::<i64>(), n in any::<u64>(), i in any::<i64>()) {
            let mut out = Vec::new();
            push_price(&mut out, Price::from_units(units));
            prop_assert_eq!(String::from_utf8(out).unwrap(), Price::from_units(units).to_string());
            let mut out = Vec::new();
            push_hex16(&mut out, n);
            prop_assert_eq!(String::from_utf8(out).unwrap(), format!("{n:016x}"));
            let mut out = Vec::new();
            push_int(&mut out, i);
            prop_assert_eq!(String::from_utf8(out).unwrap(), i.to_string());
        }

        #[test]
        fn floats_print_as_serde_json_prints_them(value in any::<f64>()) {
            let mut out = Vec::new();
            push_json_f64(&mut out, value).unwrap();
            let expected = if value.is_finite() {
                serde_json::to_string(&value).unwrap()
            } else {
                "null".to_owned()
            };
            prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }
}
