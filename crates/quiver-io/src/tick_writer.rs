//! Tick CSV output in the canonical layout the reader accepts.
//!
//! Prices are printed with [`Price`](quiver_core::Price)'s exact `Display`,
//! so writing and reading back gives identical ticks, and the same ticks always
//! give the same bytes (generated fixtures can be compared with `cmp`).

use std::io::{self, BufWriter, Write};

use quiver_core::Tick;

const WRITE_BUFFER_BYTES: usize = 1 << 16;

/// Writes `ts_ns,instrument,price,volume` rows; returns how many ticks.
///
/// Quotes (`bid`/`ask`) are dropped: use [`write_ticks_csv_with_quotes`] to
/// keep them. `out` is buffered internally and flushed before returning.
pub fn write_ticks_csv<W: Write>(ticks: impl IntoIterator<Item = Tick>, out: W) -> io::Result<u64> {
    write_csv(ticks, out, false)
}

/// Like [`write_ticks_csv`] with `bid,ask` columns; absent quotes are empty.
pub fn write_ticks_csv_with_quotes<W: Write>(
    ticks: impl IntoIterator<Item = Tick>,
    out: W,
) -> io::Result<u64> {
    write_csv(ticks, out, true)
}

fn write_csv<W: Write>(
    ticks: impl IntoIterator<Item = Tick>,
    out: W,
    quotes: bool,
) -> io::Result<u64> {
    let format = if quotes {
        TextFormat::CsvWithQuotes
    } else {
        TextFormat::Csv
    };
    let mut writer = TextTickWriter::new(out, format)?;
    for tick in ticks {
        writer.push(&tick)?;
    }
    writer.finish().map(|(_, count)| count)
}

/// A text layout of ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextFormat {
    /// `ts_ns,instrument,price,volume`.
    Csv,
    /// `ts_ns,instrument,price,volume,bid,ask`, absent quotes empty.
    CsvWithQuotes,
    /// One JSON object per line; absent quotes left out.
    Jsonl,
}

/// Streams ticks as CSV or JSON Lines rows.
pub struct TextTickWriter<W: Write> {
    out: BufWriter<W>,
    format: TextFormat,
    line: Vec<u8>,
    count: u64,
}

impl<W: Write> TextTickWriter<W> {
    /// Writes the header (CSV) at once.
    pub fn new(out: W, format: TextFormat) -> io::Result<Self> {
        let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, out);
        match format {
            TextFormat::Csv => out.write_all(b"ts_ns,instrument,price,volume\n")?,
            TextFormat::CsvWithQuotes => {
                out.write_all(b"ts_ns,instrument,price,volume,bid,ask\n")?
            }
            TextFormat::Jsonl => {}
        }
        Ok(TextTickWriter {
            out,
            format,
            line: Vec::with_capacity(128),
            count: 0,
        })
    }

    pub fn push(&mut self, tick: &Tick) -> io::Result<()> {
        let line = &mut self.line;
        line.clear();
        match self.format {
            TextFormat::Csv | TextFormat::CsvWithQuotes => {
                push_i64(line, tick.ts_ns);
                line.push(b',');
                push_u64(line, tick.instrument);
                write!(line, ",{},", tick.price)?;
                push_u64(line, tick.volume);
                if self.format == TextFormat::CsvWithQuotes {
                    line.push(b',');
                    if let Some(bid) = tick.bid {
                        write!(line, "{bid}")?;
                    }
                    line.push(b',');
                    if let Some(ask) = tick.ask {
                        write!(line, "{ask}")?;
                    }
                }
            }
            TextFormat::Jsonl => {
                // Prices as strings: JSON numbers would pass through f64 in
                // most readers, and these are exact decimals.
                line.extend_from_slice(b"{\"ts_ns\":");
                push_i64(line, tick.ts_ns);
                line.extend_from_slice(b",\"instrument\":");
                push_u64(line, tick.instrument);
                write!(line, ",\"price\":\"{}\",\"volume\":", tick.price)?;
                push_u64(line, tick.volume);
                if let Some(bid) = tick.bid {
                    write!(line, ",\"bid\":\"{bid}\"")?;
                }
                if let Some(ask) = tick.ask {
                    write!(line, ",\"ask\":\"{ask}\"")?;
                }
                line.push(b'}');
            }
        }
        line.push(b'\n');
        self.out.write_all(line)?;
        self.count += 1;
        Ok(())
    }

    /// Flushes; (files written, ticks written).
    pub fn finish(self) -> io::Result<(u64, u64)> {
        let mut out = self
            .out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        out.flush()?;
        Ok((1, self.count))
    }
}

/// Integers are most of every row; formatting them by hand skips the
/// `fmt` machinery, which dominates the cost of `write!` for small values.
fn push_u64(line: &mut Vec<u8>, mut value: u64) {
    // Two digits per division, as itoa does: timestamps have 19 digits.
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while value >= 100 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if value >= 10 {
        let pair = value as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + value as u8;
    }
    line.extend_from_slice(&digits[at..]);
}

fn push_i64(line: &mut Vec<u8>, value: i64) {
    if value < 0 {
        line.push(b'-');
    }
    push_u64(line, value.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn integers_print_like_display(value in any::<i64>(), unsigned in any::<u64>()) {
            let mut line = Vec::new();
            push_i64(&mut line, value);
            line.push(b' ');
            push_u64(&mut line, unsigned);
            prop_assert_eq!(String::from_utf8(line).unwrap(), format!("{value} {unsigned}"));
        }
    }

    #[test]
    fn integer_extremes_print_like_display() {
        for value in [0, -1, 9, 10, 99, 100, 101, i64::MIN, i64::MAX] {
            let mut line = Vec::new();
            push_i64(&mut line, value);
            assert_eq!(String::from_utf8(line).unwrap(), value.to_string());
        }
        let mut line = Vec::new();
        push_u64(&mut line, u64::MAX);
        assert_eq!(line, u64::MAX.to_string().as_bytes());
    }
}
