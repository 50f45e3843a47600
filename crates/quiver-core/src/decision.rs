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

/// Why a strategy decided what it did, rendered lazily.
#[derive(Clone, Copy)]
pub enum Reasoning {
    Text(&'static str),
    Rendered { render: RenderFn, args: [f64; 2] },
}

impl Reasoning {
    pub const fn text(text: &'static str) -> Self {
        Reasoning::Text(text)
    }

    pub const fn rendered(render: RenderFn, args: [f64; 2]) -> Self {
        Reasoning::Rendered { render, args }
    }
}

impl fmt::Display for Reasoning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reasoning::Text(text) => f.write_str(text),
            Reasoning::Rendered { render, args } => render(f, args),
        }
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
    Str(&'static str),
}

/// Maximum number of metadata entries on a decision.
pub const METADATA_CAPACITY: usize = 6;

/// A small fixed-capacity, insertion-ordered key/value list.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metadata {
    entries: [(&'static str, MetaValue); METADATA_CAPACITY],
    len: u8,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            entries: [("", MetaValue::I64(0)); METADATA_CAPACITY],
            len: 0,
        }
    }
}

impl Metadata {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builder form of [`Metadata::insert`].
    pub fn with(mut self, key: &'static str, value: MetaValue) -> Self {
        self.insert(key, value);
        self
    }

    /// Adds or replaces `key`. Returns false (and drops the entry) when full.
    pub fn insert(&mut self, key: &'static str, value: MetaValue) -> bool {
        let len = self.len as usize;
        if let Some(slot) = self.entries[..len].iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
            return true;
        }
        if len == METADATA_CAPACITY {
            return false;
        }
        self.entries[len] = (key, value);
        self.len += 1;
        true
    }

    pub fn get(&self, key: &str) -> Option<MetaValue> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, MetaValue)> + '_ {
        self.entries[..self.len as usize].iter().copied()
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
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
    fn metadata_keeps_order_replaces_and_bounds() {
        let mut meta = Metadata::new().with("a", MetaValue::F64(1.0));
        meta.insert("b", MetaValue::I64(2));
        meta.insert("a", MetaValue::F64(3.0));
        let keys: Vec<_> = meta.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(meta.get("a"), Some(MetaValue::F64(3.0)));
        let keys = ["c", "d", "e", "f"];
        for key in keys {
            assert!(meta.insert(key, MetaValue::Str("x")));
        }
        assert!(!meta.insert("g", MetaValue::Str("x")));
        assert_eq!(meta.len(), METADATA_CAPACITY);
    }

    #[test]
    fn reasoning_renders_lazily() {
        fn up(f: &mut fmt::Formatter<'_>, args: [f64; 2]) -> fmt::Result {
            write!(f, "up {:.1} over {}", args[0], args[1])
        }
        assert_eq!(
            Reasoning::rendered(up, [1.25, 20.0]).to_string(),
            "up 1.2 over 20"
        );
        assert_eq!(Reasoning::text("agree").to_string(), "agree");
    }
}
