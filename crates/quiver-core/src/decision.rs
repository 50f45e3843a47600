//! What a strategy decides on a tick.
//!
//! A [`Decision`] is `Copy` and fixed-size: producing one allocates nothing, so
//! the dispatch loop stays allocation-free even when strategies fire often. Its
//! human-readable reasoning is rendered only when a signal is written out.

use std::fmt;

use crate::price::Price;

/// Direction of a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }

    pub const fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Renders a reasoning line from up to two numbers.
pub type RenderFn = fn(&mut fmt::Formatter<'_>, [f64; 2]) -> fmt::Result;

/// Why a strategy decided what it did, rendered lazily: a function and the two
/// numbers it formats. Rendering happens only when a signal is written out.
#[derive(Clone, Copy)]
pub struct Reasoning {
    render: RenderFn,
    args: [f64; 2],
}

impl Reasoning {
    pub const fn rendered(render: RenderFn, args: [f64; 2]) -> Self {
        Reasoning { render, args }
    }

    /// A fixed text; the function writes it (so reasoning stays one shape).
    pub const fn fixed(render: fn(&mut fmt::Formatter<'_>, [f64; 2]) -> fmt::Result) -> Self {
        Reasoning {
            render,
            args: [0.0; 2],
        }
    }
}

/// Declares `fn $name` writing `$text`, for [`Reasoning::fixed`].
#[macro_export]
macro_rules! fixed_reason {
    ($name:ident, $text:expr) => {
        fn $name(f: &mut ::std::fmt::Formatter<'_>, _: [f64; 2]) -> ::std::fmt::Result {
            f.write_str($text)
        }
    };
}

impl fmt::Display for Reasoning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.render)(f, self.args)
    }
}

impl fmt::Debug for Reasoning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reasoning({self})")
    }
}

impl PartialEq for Reasoning {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

/// One metadata value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MetaValue {
    F64(f64),
    I64(i64),
}

/// Maximum number of metadata entries on a decision.
pub const METADATA_CAPACITY: usize = 3;

/// A decision's metadata: a static list of keys and their values.
///
/// Keys are a `&'static` slice chosen by the strategy, so the whole list is 64
/// bytes and a `Decision` stays small enough to move without a `memcpy` call —
/// it is moved several times per signal on the hot path.
#[derive(Clone, Copy, Debug)]
pub struct Metadata {
    keys: &'static [&'static str],
    values: [MetaValue; METADATA_CAPACITY],
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata::EMPTY
    }
}

impl PartialEq for Metadata {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Metadata {
    pub const EMPTY: Metadata = Metadata {
        keys: &[],
        values: [MetaValue::I64(0); METADATA_CAPACITY],
    };

    /// `keys[i]` ↦ `values[i]`; keys beyond [`METADATA_CAPACITY`] or without a
    /// value are ignored.
    pub fn new(keys: &'static [&'static str], values: &[MetaValue]) -> Self {
        let len = keys.len().min(values.len()).min(METADATA_CAPACITY);
        let mut stored = [MetaValue::I64(0); METADATA_CAPACITY];
        stored[..len].copy_from_slice(&values[..len]);
        Metadata {
            keys: &keys[..len],
            values: stored,
        }
    }

    /// The common case: one float.
    pub const fn one(key: &'static [&'static str; 1], value: f64) -> Self {
        Metadata {
            keys: key,
            values: [MetaValue::F64(value), MetaValue::I64(0), MetaValue::I64(0)],
        }
    }

    /// Two floats.
    pub const fn two(keys: &'static [&'static str; 2], a: f64, b: f64) -> Self {
        Metadata {
            keys,
            values: [MetaValue::F64(a), MetaValue::F64(b), MetaValue::I64(0)],
        }
    }

    pub fn get(&self, key: &str) -> Option<MetaValue> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, MetaValue)> + '_ {
        self.keys.iter().copied().zip(self.values.iter().copied())
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A strategy's decision to trade, before validation and broker fan-out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    pub side: Side,
    /// Conviction in `[0, 1]` (checked by the validator, not trusted).
    pub confidence: f64,
    pub quantity: u64,
    pub price: Price,
    pub reasoning: Reasoning,
    pub metadata: Metadata,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs_keys_with_values_and_bounds() {
        let meta = Metadata::new(&["a", "b"], &[MetaValue::F64(1.0), MetaValue::I64(2)]);
        let pairs: Vec<_> = meta.iter().collect();
        assert_eq!(
            pairs,
            [("a", MetaValue::F64(1.0)), ("b", MetaValue::I64(2))]
        );
        assert_eq!(meta.get("b"), Some(MetaValue::I64(2)));
        assert_eq!(
            meta,
            Metadata::new(&["a", "b"], &[MetaValue::F64(1.0), MetaValue::I64(2)])
        );
        let too_many = Metadata::new(&["a", "b", "c", "d"], &[MetaValue::I64(1); 4]);
        assert_eq!(too_many.len(), METADATA_CAPACITY);
        let unpaired = Metadata::new(&["a", "b"], &[MetaValue::I64(1)]);
        assert_eq!(unpaired.len(), 1);
        assert_eq!(
            Metadata::one(&["z"], 2.5).get("z"),
            Some(MetaValue::F64(2.5))
        );
        assert!(Metadata::EMPTY.is_empty());
    }

    #[test]
    fn reasoning_renders_lazily() {
        fn up(f: &mut fmt::Formatter<'_>, args: [f64; 2]) -> fmt::Result {
            write!(f, "up {:.1} over {}", args[0], args[1])
        }
        fixed_reason!(agree, "agree");
        assert_eq!(
            Reasoning::rendered(up, [1.25, 20.0]).to_string(),
            "up 1.2 over 20"
        );
        assert_eq!(Reasoning::fixed(agree).to_string(), "agree");
    }

    #[test]
    fn a_decision_moves_in_registers_not_memcpy() {
        assert!(std::mem::size_of::<Decision>() <= 128);
        assert_eq!(
            std::mem::size_of::<Option<Decision>>(),
            std::mem::size_of::<Decision>()
        );
    }
}
