//! [`Control::Rebuild`]: becoming an engine built for a new strategy set,
//! between two ticks, without losing what the old one knew.
//!
//! The new engine is built off the hot path (routing, feature slots, rings
//! sized for the new set) and handed to the engine thread, which swaps it in
//! here: every instrument the two share keeps its history (copied into the
//! new ring, which grows when a new strategy needs more and keeps the last
//! `capacity` ticks when it needs less) and every feature the two maintain
//! (its state moved); a feature only the new set uses catches up on the
//! history kept. Strategies carried over (same id, same config) are moved
//! whole: their instance, lifecycle, guards and counters, so their signals
//! are those of a run without the rebuild. The others start in Warmup and
//! become Active at their next tick when the shared history already covers
//! them. Models keep their indices: the new set may use only models the old
//! one loads, since the inference runner is keyed by them.
//!
//! [`Control::Rebuild`]: crate::Control::Rebuild

use quiver_core::History;

use crate::engine::{Driven, Engine};
use crate::index::ModelIdx;
use crate::input::RebuildReport;
use crate::lifecycle::ControlError;

impl Engine {
    pub(crate) fn rebuild(
        &mut self,
        mut next: Engine,
        carried: &[String],
    ) -> Result<RebuildReport, ControlError> {
        if self.has_pending() || self.in_flight {
            return Err(ControlError::Busy);
        }
        // Everything is checked before anything moves: a refusal leaves
        // both engines as they were.
        let mut remap = Vec::with_capacity(next.model_names.len());
        for name in &next.model_names {
            match self.model_names.iter().position(|n| n == name) {
                Some(i) => remap.push(ModelIdx::new(i as u32)),
                None => return Err(ControlError::NewModel(name.clone())),
            }
        }
        let mut pairs = Vec::with_capacity(carried.len());
        for id in carried {
            match (self.strategy_index(id), next.strategy_index(id)) {
                (Some(old), Some(new)) => pairs.push((old.index(), new.index())),
                _ => return Err(ControlError::NotCarried(id.clone())),
            }
        }

        for slot in &mut next.slots {
            if let Driven::Model { model, .. } = &mut slot.driven {
                *model = remap[model.index()];
            }
        }
        next.model_names = std::mem::take(&mut self.model_names);
        next.model_versions = std::mem::take(&mut self.model_versions);
        next.serving = std::mem::take(&mut self.serving);

        let mut report = RebuildReport {
            carried: pairs.len(),
            fresh: next.slots.len() - pairs.len(),
            ..RebuildReport::default()
        };
        for (i_new, token) in next.index.tokens().iter().enumerate() {
            report.deepest_ring = report.deepest_ring.max(next.rings[i_new].capacity());
            let Some(i_old) = self.index.get(*token) else {
                continue;
            };
            if next.rings[i_new].capacity() > self.rings[i_old.index()].capacity() {
                report.rings_grown += 1;
            }
            let ring = &mut next.rings[i_new];
            ring.extend_from(&self.rings[i_old.index()]);
            let fresh = next.features[i_new].carry_from(&mut self.features[i_old.index()]);
            if fresh.is_empty() {
                continue;
            }
            report.features_replayed += fresh.len();
            // The new features see the kept history tick by tick, as they
            // would have had they been there.
            let held = ring.view();
            let (prices, units, volumes) = (held.prices(), held.units(), held.volumes());
            for end in 1..=held.len() {
                let upto = History::from_slices(&prices[..end], &units[..end], &volumes[..end]);
                next.features[i_new].update_slots(upto, &fresh);
            }
        }

        for (old, new) in pairs {
            std::mem::swap(&mut next.slots[new], &mut self.slots[old]);
        }
        next.stats = std::mem::take(&mut self.stats);
        next.last_tick = self.last_tick;
        // The lifecycle policy is the new set's (its config's); shedding
        // and the clock are the runtime's, which keeps them.
        next.shed = self.shed;
        next.clock = self.clock;
        *self = next;
        Ok(report)
    }
}
