//! The features of one instrument, and the read-only view strategies get.

use quiver_core::History;

use crate::spec::FeatureSpec;
use crate::state::FeatureState;

/// Every distinct feature followed on one instrument, updated once per tick.
#[derive(Debug, Clone, Default)]
pub struct InstrumentFeatures {
    specs: Vec<FeatureSpec>,
    states: Vec<FeatureState>,
    /// Current and previous values by slot; NaN means absent (warming up).
    /// Plain floats halve the memory of `Option<f64>` on every instrument.
    values: Vec<f64>,
    previous: Vec<f64>,
}

/// The stored form of "no value yet".
const ABSENT: f64 = f64::NAN;

#[inline]
fn present(value: f64) -> Option<f64> {
    (!value.is_nan()).then_some(value)
}

impl InstrumentFeatures {
    /// One state per distinct spec, in first-seen order.
    pub fn new(specs: impl IntoIterator<Item = FeatureSpec>) -> Self {
        let mut features = InstrumentFeatures::default();
        for spec in specs {
            features.slot_or_insert(spec);
        }
        features
    }

    /// The slot of `spec`, adding it if new.
    pub fn slot_or_insert(&mut self, spec: FeatureSpec) -> usize {
        if let Some(slot) = self.slot(spec) {
            return slot;
        }
        self.specs.push(spec);
        self.states.push(FeatureState::new(spec));
        self.values.push(ABSENT);
        self.previous.push(ABSENT);
        self.specs.len() - 1
    }

    /// Releases spare capacity once every spec is known.
    pub fn shrink_to_fit(&mut self) {
        self.specs.shrink_to_fit();
        self.states.shrink_to_fit();
        self.values.shrink_to_fit();
        self.previous.shrink_to_fit();
    }

    pub fn slot(&self, spec: FeatureSpec) -> Option<usize> {
        self.specs.iter().position(|s| *s == spec)
    }

    /// Updates every feature with the tick `history` now ends with.
    #[inline]
    pub fn update(&mut self, history: History<'_>) {
        for ((state, value), previous) in self
            .states
            .iter_mut()
            .zip(&mut self.values)
            .zip(&mut self.previous)
        {
            *previous = *value;
            *value = state.update(history).unwrap_or(ABSENT);
        }
    }

    /// Takes over from `old` the state and values of every feature both
    /// maintain (a rebuild for a new configuration), leaving `old`'s fresh;
    /// returns the slots `old` did not have, which still start from nothing.
    pub fn carry_from(&mut self, old: &mut InstrumentFeatures) -> Vec<usize> {
        let mut fresh = Vec::new();
        for (slot, spec) in self.specs.iter().enumerate() {
            match old.slot(*spec) {
                Some(from) => {
                    std::mem::swap(&mut self.states[slot], &mut old.states[from]);
                    self.values[slot] = old.values[from];
                    self.previous[slot] = old.previous[from];
                }
                None => fresh.push(slot),
            }
        }
        fresh
    }

    /// Updates only the features in `slots` with the tick `history` ends
    /// with: a feature added by a rebuild catches up on the history kept.
    pub fn update_slots(&mut self, history: History<'_>, slots: &[usize]) {
        for &slot in slots {
            if let (Some(state), Some(value), Some(previous)) = (
                self.states.get_mut(slot),
                self.values.get_mut(slot),
                self.previous.get_mut(slot),
            ) {
                *previous = *value;
                *value = state.update(history).unwrap_or(ABSENT);
            }
        }
    }

    pub fn specs(&self) -> &[FeatureSpec] {
        &self.specs
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// The current value of a slot (`None` while warming up).
    #[inline]
    pub fn value(&self, slot: usize) -> Option<f64> {
        self.values.get(slot).copied().and_then(present)
    }

    /// Current values, by slot (`None` while warming up).
    pub fn values(&self) -> Vec<Option<f64>> {
        self.values.iter().copied().map(present).collect()
    }

    /// Whether every feature depends only on a window of recent ticks (see
    /// [`FeatureSpec::has_finite_memory`]).
    pub fn has_finite_memory(&self) -> bool {
        self.specs.iter().all(|s| s.has_finite_memory())
    }

    /// The ring capacity these features need.
    pub fn ring_needed(&self) -> usize {
        self.specs
            .iter()
            .map(|s| s.ring_needed())
            .max()
            .unwrap_or(0)
    }

    /// A view reading `slots` (a strategy's declared features, in its order).
    #[inline]
    pub fn view<'a>(&'a self, slots: &'a [u32]) -> FeatureView<'a> {
        FeatureView {
            values: &self.values,
            previous: &self.previous,
            slots,
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.specs.capacity() * std::mem::size_of::<FeatureSpec>()
            + self.states.capacity() * std::mem::size_of::<FeatureState>()
            + (self.values.capacity() + self.previous.capacity()) * std::mem::size_of::<f64>()
            + self
                .states
                .iter()
                .map(FeatureState::heap_bytes)
                .sum::<usize>()
    }
}

impl FeatureSpec {
    /// Heap bytes this feature takes on one instrument, as
    /// [`InstrumentFeatures::heap_bytes`] counts it: for sizing a
    /// configuration before anything is built.
    pub fn state_bytes(self) -> usize {
        std::mem::size_of::<FeatureSpec>()
            + std::mem::size_of::<FeatureState>()
            + 2 * std::mem::size_of::<f64>()
            + FeatureState::heap_bytes_of(self)
    }
}

/// A strategy's read-only window onto the shared features of one instrument.
///
/// Index `i` is the `i`-th feature the strategy declared. Values are this
/// tick's; `previous` gives the value before this tick's update.
#[derive(Debug, Clone, Copy, Default)]
pub struct FeatureView<'a> {
    values: &'a [f64],
    previous: &'a [f64],
    slots: &'a [u32],
}

impl<'a> FeatureView<'a> {
    /// The `i`-th declared feature now; `None` while warming up (never 0).
    #[inline]
    pub fn get(&self, i: usize) -> Option<f64> {
        present(self.values[*self.slots.get(i)? as usize])
    }

    /// The `i`-th declared feature as of the previous tick.
    #[inline]
    pub fn previous(&self, i: usize) -> Option<f64> {
        present(self.previous[*self.slots.get(i)? as usize])
    }

    /// Number of declared features visible.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The declared features `start..start + len` as their own view (a
    /// hybrid hands each part its own features this way).
    #[inline]
    pub fn sub(&self, start: usize, len: usize) -> FeatureView<'a> {
        let end = (start + len).min(self.slots.len());
        FeatureView {
            slots: &self.slots[start.min(end)..end],
            ..*self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_bytes_predict_what_the_features_take() {
        let specs: Vec<FeatureSpec> = ["sma(20)", "max(1000)", "min(3)", "ema(5)", "skew(100000)"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let mut features = InstrumentFeatures::new(specs.iter().copied());
        features.shrink_to_fit();
        let predicted: usize = specs.iter().map(|s| s.state_bytes()).sum();
        assert_eq!(features.heap_bytes(), predicted);
    }
}
