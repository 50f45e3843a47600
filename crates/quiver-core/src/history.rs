//! One history ring per instrument, shared by every strategy that follows it.
//!
//! The ring stores each value twice (at `i` and `i + capacity`), so the most
//! recent `n` values are always one contiguous slice: strategies read history
//! as a zero-copy `&[f64]`, oldest first, with no wrap-around arithmetic.
//!
//! Prices are kept both as the nearest `f64` (what float formulas such as the
//! seed's use) and as exact 10⁻⁸ units (for indicators defined on exact sums).

use crate::price::Price;

/// Fixed-capacity price/volume history of one instrument.
#[derive(Debug, Clone)]
pub struct HistoryRing {
    capacity: usize,
    len: usize,
    /// Slot of the most recent value, in `0..capacity`.
    head: usize,
    prices: Box<[f64]>,
    units: Box<[i64]>,
    volumes: Box<[f64]>,
}

/// The deepest ring there is: no lookback a config may declare comes near it,
/// and refusing anything deeper keeps index arithmetic (`2 × capacity`) and
/// allocation sizes far from overflow.
pub const MAX_CAPACITY: usize = 1_000_000;

/// Heap bytes one tick of capacity takes: price, units and volume, each held
/// twice.
pub const BYTES_PER_TICK: usize = 2 * (2 * std::mem::size_of::<f64>() + std::mem::size_of::<i64>());

/// Why a ring was not built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    #[error("a history of {0} ticks is deeper than the {MAX_CAPACITY}-tick limit")]
    TooDeep(usize),
    #[error("cannot allocate {0} bytes of history")]
    OutOfMemory(usize),
}

impl HistoryRing {
    /// A ring holding the last `capacity` ticks (at least one). For sizes
    /// that come from input, [`HistoryRing::try_new`].
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        HistoryRing {
            capacity,
            len: 0,
            head: capacity - 1,
            prices: vec![0.0; 2 * capacity].into_boxed_slice(),
            units: vec![0; 2 * capacity].into_boxed_slice(),
            volumes: vec![0.0; 2 * capacity].into_boxed_slice(),
        }
    }

    /// [`HistoryRing::new`], refusing a capacity beyond [`MAX_CAPACITY`] and
    /// reporting an allocation the system refuses instead of aborting.
    pub fn try_new(capacity: usize) -> Result<Self, RingError> {
        let capacity = capacity.max(1);
        if capacity > MAX_CAPACITY {
            return Err(RingError::TooDeep(capacity));
        }
        let out_of_memory = |_| RingError::OutOfMemory(HistoryRing::bytes_for(capacity));
        Ok(HistoryRing {
            capacity,
            len: 0,
            head: capacity - 1,
            prices: zeroed(2 * capacity).map_err(out_of_memory)?,
            units: zeroed(2 * capacity).map_err(out_of_memory)?,
            volumes: zeroed(2 * capacity).map_err(out_of_memory)?,
        })
    }

    /// Heap bytes a ring of `capacity` ticks takes (at least one tick, as
    /// built), for sizing a configuration before anything is allocated.
    pub const fn bytes_for(capacity: usize) -> usize {
        let capacity = if capacity == 0 { 1 } else { capacity };
        capacity.saturating_mul(BYTES_PER_TICK)
    }

    #[inline]
    pub fn push(&mut self, price: Price, volume: u64) {
        self.push_stored(price.to_f64(), price.units(), volume as f64);
    }

    /// Appends what `other` holds, oldest first, exactly as stored: a ring
    /// rebuilt for a new configuration keeps its instrument's history (the
    /// last `capacity` ticks of it).
    pub fn extend_from(&mut self, other: &HistoryRing) {
        let held = other.view();
        let skip = held.len().saturating_sub(self.capacity);
        for i in skip..held.len() {
            self.push_stored(held.prices[i], held.units[i], held.volumes[i]);
        }
    }

    #[inline]
    fn push_stored(&mut self, price: f64, units: i64, volume: f64) {
        let head = if self.head + 1 == self.capacity {
            0
        } else {
            self.head + 1
        };
        self.head = head;
        self.prices[head] = price;
        self.prices[head + self.capacity] = price;
        self.units[head] = units;
        self.units[head + self.capacity] = units;
        self.volumes[head] = volume;
        self.volumes[head + self.capacity] = volume;
        if self.len < self.capacity {
            self.len += 1;
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Read-only view of everything held, oldest first.
    #[inline]
    pub fn view(&self) -> History<'_> {
        let end = self.head + self.capacity + 1;
        let start = end - self.len;
        History {
            prices: &self.prices[start..end],
            units: &self.units[start..end],
            volumes: &self.volumes[start..end],
        }
    }

    /// Heap bytes held by this ring.
    pub fn heap_bytes(&self) -> usize {
        (self.prices.len() + self.volumes.len()) * std::mem::size_of::<f64>()
            + self.units.len() * std::mem::size_of::<i64>()
    }
}

/// `len` default values, or the allocator's refusal.
fn zeroed<T: Copy + Default>(len: usize) -> Result<Box<[T]>, std::collections::TryReserveError> {
    let mut values = Vec::new();
    values.try_reserve_exact(len)?;
    values.resize(len, T::default());
    Ok(values.into_boxed_slice())
}

/// A strategy's read-only window onto an instrument's history, oldest first.
/// The last element is the current tick.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    prices: &'a [f64],
    units: &'a [i64],
    volumes: &'a [f64],
}

impl<'a> History<'a> {
    /// A view over caller-owned slices (tests, offline tools). The slices are
    /// cut to the shortest, keeping their most recent values.
    pub fn from_slices(prices: &'a [f64], units: &'a [i64], volumes: &'a [f64]) -> Self {
        let len = prices.len().min(units.len()).min(volumes.len());
        History {
            prices: &prices[prices.len() - len..],
            units: &units[units.len() - len..],
            volumes: &volumes[volumes.len() - len..],
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.prices.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }

    /// All prices held, oldest first.
    #[inline]
    pub fn prices(&self) -> &'a [f64] {
        self.prices
    }

    /// All prices held as exact 10⁻⁸ units, oldest first.
    #[inline]
    pub fn units(&self) -> &'a [i64] {
        self.units
    }

    /// The last `n` prices as exact units (fewer if not held), oldest first.
    #[inline]
    pub fn last_units(&self, n: usize) -> &'a [i64] {
        &self.units[self.units.len().saturating_sub(n)..]
    }

    /// All volumes held, oldest first.
    #[inline]
    pub fn volumes(&self) -> &'a [f64] {
        self.volumes
    }

    /// The last `n` prices (fewer if not held), oldest first.
    #[inline]
    pub fn last_prices(&self, n: usize) -> &'a [f64] {
        &self.prices[self.prices.len().saturating_sub(n)..]
    }

    /// Python's `history[-n]`: the price `n - 1` ticks before the current one.
    #[inline]
    pub fn back(&self, n: usize) -> Option<f64> {
        self.prices.len().checked_sub(n).map(|i| self.prices[i])
    }

    /// The current (most recent) price.
    #[inline]
    pub fn current(&self) -> Option<f64> {
        self.prices.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_is_the_last_values_in_order_across_wraps() {
        let mut ring = HistoryRing::new(4);
        assert!(ring.view().is_empty());
        for i in 1..=11 {
            ring.push(Price::from_int(i64::from(i)), u64::from(i as u32) * 10);
            let expect: Vec<f64> = ((i - 3).max(1)..=i).map(f64::from).collect();
            assert_eq!(ring.view().prices(), expect.as_slice(), "after {i}");
            let volumes: Vec<f64> = expect.iter().map(|p| p * 10.0).collect();
            assert_eq!(ring.view().volumes(), volumes.as_slice());
        }
        let view = ring.view();
        assert_eq!(view.back(1), Some(11.0));
        assert_eq!(view.back(4), Some(8.0));
        assert_eq!(view.back(5), None);
        assert_eq!(view.last_prices(2), &[10.0, 11.0]);
        assert_eq!(view.current(), Some(11.0));
        assert_eq!(view.last_units(2), &[1_000_000_000, 1_100_000_000]);
    }

    #[test]
    fn fallible_rings_are_bounded_and_sized_as_declared() {
        let ring = HistoryRing::try_new(1_000).unwrap();
        assert_eq!(ring.heap_bytes(), HistoryRing::bytes_for(1_000));
        assert_eq!(HistoryRing::bytes_for(0), BYTES_PER_TICK);
        assert_eq!(
            HistoryRing::try_new(MAX_CAPACITY + 1).unwrap_err(),
            RingError::TooDeep(MAX_CAPACITY + 1)
        );
        assert_eq!(
            HistoryRing::try_new(usize::MAX).unwrap_err(),
            RingError::TooDeep(usize::MAX)
        );
        assert_eq!(HistoryRing::bytes_for(usize::MAX), usize::MAX);
        let mut deepest = HistoryRing::try_new(MAX_CAPACITY).unwrap();
        deepest.push(Price::from_int(5), 1);
        assert_eq!(deepest.view().current(), Some(5.0));
    }
}
