//! The one tick validator. Every source — CSV files, JSON Lines files and
//! the bus — hands the text of each field here and keeps only its own
//! encoding (CSV cells, JSON values, stream fields), so the same row gets the
//! same verdict, with the same message, wherever it came from.
//!
//! The rules: `ts_ns` an `i64`, `instrument` and `volume` `u64`s, `price`,
//! `bid` and `ask` exact decimals > 0 (an absent or empty quote is no quote),
//! `volume` ≤ [`Tick::MAX_VOLUME`], and per instrument no timestamp before
//! the previous accepted one ([`TimeOrder`]).

use std::borrow::Cow;
use std::collections::hash_map::{Entry, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use quiver_core::{InstrumentToken, Price, PriceError, Tick};

use crate::tick_error::{RowErrorKind, FIELDS};

pub(crate) const TS_NS: usize = 0;
pub(crate) const INSTRUMENT: usize = 1;
pub(crate) const PRICE: usize = 2;
pub(crate) const VOLUME: usize = 3;
pub(crate) const BID: usize = 4;
pub(crate) const ASK: usize = 5;

/// The longest row (line of a file, or stream entry) read: anything longer
/// cannot be a tick, and buffering it would let one row cost unbounded memory.
pub const MAX_ROW_BYTES: usize = 64 << 10;

/// A row's fields as its source decoded them, indexed like [`FIELDS`].
pub(crate) trait RowFields {
    /// The field's text; `None` when the row does not have it. For a quote
    /// (`bid`, `ask`) `None` and empty text both mean "no quote".
    fn text(&self, field: usize) -> Option<Cow<'_, [u8]>>;

    /// The field's value as the source held it, quoted for messages.
    fn shown(&self, field: usize) -> String;
}

/// The tick in `row`, or the first thing wrong with it, fields checked in
/// [`FIELDS`] order.
pub(crate) fn tick_of(row: &impl RowFields) -> Result<Tick, RowErrorKind> {
    let required = |field: usize| {
        row.text(field).ok_or(RowErrorKind::MissingField {
            name: FIELDS[field],
        })
    };
    let ts_ns = parse_i64(&required(TS_NS)?).ok_or_else(|| RowErrorKind::BadTimestamp {
        text: row.shown(TS_NS),
    })?;
    let instrument =
        parse_u64(&required(INSTRUMENT)?).ok_or_else(|| RowErrorKind::BadInstrument {
            text: row.shown(INSTRUMENT),
        })?;
    let price = positive_price(PRICE, parse_price(&required(PRICE)?))?;
    let volume = parse_u64(&required(VOLUME)?).ok_or_else(|| RowErrorKind::BadVolume {
        text: row.shown(VOLUME),
    })?;
    if volume > Tick::MAX_VOLUME {
        return Err(RowErrorKind::VolumeOutOfRange { volume });
    }
    let quote = |field: usize| match row.text(field) {
        None => Ok(None),
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => positive_price(field, parse_price(&text)).map(Some),
    };
    Ok(Tick {
        ts_ns,
        instrument,
        price,
        volume,
        bid: quote(BID)?,
        ask: quote(ASK)?,
    })
}

/// The checks of [`tick_of`] that a typed source (Parquet, whose columns
/// are already integers) still needs: prices and quotes > 0, volume within
/// [`Tick::MAX_VOLUME`].
#[cfg_attr(not(feature = "parquet"), allow(dead_code))]
pub(crate) fn check_typed(tick: Tick) -> Result<Tick, RowErrorKind> {
    for (field, price) in [(PRICE, Some(tick.price)), (BID, tick.bid), (ASK, tick.ask)] {
        if let Some(value) = price {
            if !value.is_positive() {
                return Err(RowErrorKind::NonPositivePrice {
                    field: FIELDS[field],
                    value,
                });
            }
        }
    }
    if tick.volume > Tick::MAX_VOLUME {
        return Err(RowErrorKind::VolumeOutOfRange {
            volume: tick.volume,
        });
    }
    Ok(tick)
}

/// Per instrument, the timestamp of the last accepted tick: a tick older
/// than that is refused. Instruments are independent, so feeds that
/// interleave instruments out of order are fine.
#[derive(Default)]
pub(crate) struct TimeOrder {
    last_ts: HashMap<InstrumentToken, i64, BuildHasherDefault<TokenHasher>>,
}

impl TimeOrder {
    /// Accepts `tick` (remembering its time) or refuses it, remembering nothing.
    pub(crate) fn admit(&mut self, tick: &Tick) -> Result<(), RowErrorKind> {
        match self.last_ts.entry(tick.instrument) {
            Entry::Occupied(mut last) => {
                let previous = *last.get();
                if tick.ts_ns < previous {
                    return Err(RowErrorKind::TimestampBackwards {
                        ts_ns: tick.ts_ns,
                        previous,
                        instrument: tick.instrument,
                    });
                }
                last.insert(tick.ts_ns);
            }
            Entry::Vacant(slot) => {
                slot.insert(tick.ts_ns);
            }
        }
        Ok(())
    }

    /// Remembers `tick`'s time without judging it: history already accepted
    /// by an earlier run.
    pub(crate) fn seed(&mut self, tick: &Tick) {
        let last = self.last_ts.entry(tick.instrument).or_insert(tick.ts_ns);
        *last = (*last).max(tick.ts_ns);
    }

    pub(crate) fn instruments(&self) -> usize {
        self.last_ts.len()
    }
}

/// Hashes instrument tokens with one multiply.
///
/// Tokens are looked up once per row; SipHash's resistance to chosen keys
/// would cost more than the map is worth, and the map is bounded by the
/// number of instruments a feed carries.
#[derive(Default)]
pub(crate) struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing constant; multiplication spreads low bits upward.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

fn positive_price(field: usize, parsed: Result<Price, PriceError>) -> Result<Price, RowErrorKind> {
    let field = FIELDS[field];
    match parsed {
        Ok(price) if price.is_positive() => Ok(price),
        Ok(value) => Err(RowErrorKind::NonPositivePrice { field, value }),
        Err(error) => Err(RowErrorKind::BadPrice { field, error }),
    }
}

/// `[+]digits`, as `str::parse` accepts, read straight from the bytes: digits
/// are ASCII, so validating UTF-8 first would be wasted work on every row.
pub(crate) fn parse_u64(text: &[u8]) -> Option<u64> {
    digits_u64(text.strip_prefix(b"+").unwrap_or(text))
}

/// `[+|-]digits`, as `str::parse` accepts.
pub(crate) fn parse_i64(text: &[u8]) -> Option<i64> {
    match text.split_first() {
        Some((b'-', digits)) => 0i64.checked_sub_unsigned(digits_u64(digits)?),
        Some((b'+', digits)) => i64::try_from(digits_u64(digits)?).ok(),
        _ => i64::try_from(digits_u64(text)?).ok(),
    }
}

fn digits_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

fn parse_price(text: &[u8]) -> Result<Price, PriceError> {
    match std::str::from_utf8(text) {
        Ok(text) => Price::parse(text),
        Err(_) => Err(PriceError::NotDecimal(
            String::from_utf8_lossy(text).into_owned(),
        )),
    }
}

/// `text` as a quoted string, for messages.
pub(crate) fn quoted(text: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn integers_parse_like_str_parse(text in "[-+]?[0-9]{0,21}|[-+0-9a ]{0,4}") {
            prop_assert_eq!(parse_u64(text.as_bytes()), text.parse::<u64>().ok());
            prop_assert_eq!(parse_i64(text.as_bytes()), text.parse::<i64>().ok());
        }
    }

    #[test]
    fn time_order_is_per_instrument_and_remembers_only_accepted_ticks() {
        let tick = |instrument, ts_ns| Tick {
            ts_ns,
            instrument,
            price: Price::from_units(1),
            volume: 0,
            bid: None,
            ask: None,
        };
        let mut order = TimeOrder::default();
        order.admit(&tick(1, 10)).unwrap();
        order.admit(&tick(2, 5)).unwrap();
        order.admit(&tick(1, 10)).unwrap();
        assert!(matches!(
            order.admit(&tick(1, 9)),
            Err(RowErrorKind::TimestampBackwards { previous: 10, .. })
        ));
        order.admit(&tick(1, 10)).unwrap();
        order.seed(&tick(2, 3));
        assert!(order.admit(&tick(2, 4)).is_err());
        assert_eq!(order.instruments(), 2);
    }
}
