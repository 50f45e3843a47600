//! Controls applied between two ticks ([`Input::Control`]).

use crate::engine::{check_instruments, drive, shift, Engine, StrategyEntry};
use crate::index::StrategyIdx;
use crate::input::Output;
use crate::lifecycle::{Cause, Control, ControlError, StrategyState, Transition};

#[cfg(doc)]
use crate::Input;

impl Engine {
    pub(crate) fn control(
        &mut self,
        control: Control,
        out: &mut Output,
    ) -> Result<(), ControlError> {
        use StrategyState as S;
        let (target, name) = match control {
            Control::Replace(entries) => return self.replace(entries, out),
            Control::Rebuild { engine, carried } => {
                let report = self.rebuild(*engine, &carried)?;
                out.rebuilds.push(report);
                return Ok(());
            }
            Control::Pause(s) => (s, "pause"),
            Control::Resume(s) => (s, "resume"),
            Control::Stop(s) => (s, "stop"),
            Control::Reset(s) => (s, "reset"),
        };
        let at = self.last_tick;
        let slot = self
            .slots
            .get_mut(target.index())
            .ok_or(ControlError::NoSuchIndex(target.index()))?;
        let ready = if slot.warm { S::Active } else { S::Warmup };
        let (to, cause) = match (name, slot.state) {
            // Already there: nothing to record.
            ("pause", S::Paused) | ("resume", S::Active | S::Warmup) | ("stop", S::Stopped) => {
                return Ok(())
            }
            ("pause", S::Active | S::Warmup) => (S::Paused, Cause::Paused),
            ("resume", S::Paused) => (ready, Cause::Resumed),
            ("stop", _) => (S::Stopped, Cause::Stopped),
            ("reset", S::Paused) => (S::Paused, Cause::Reset),
            ("reset", S::Active | S::Warmup | S::Quarantined) => (ready, Cause::Reset),
            (control, state) => {
                return Err(ControlError::NotAllowed {
                    control,
                    id: slot.id.clone(),
                    state,
                })
            }
        };
        if cause == Cause::Reset {
            slot.failures_in_a_row = 0;
            slot.quarantines_in_a_row = 0;
            slot.retry_at = None;
            if let Some(guards) = slot.guards.as_deref_mut() {
                guards.clear();
            }
            slot.driven_mut().reset();
        }
        shift(slot, target, to, cause, at, out);
        Ok(())
    }

    /// [`Control::Replace`]: every entry checked first, then all swapped.
    fn replace(
        &mut self,
        entries: Vec<StrategyEntry>,
        out: &mut Output,
    ) -> Result<(), ControlError> {
        if self.has_pending() || self.in_flight {
            return Err(ControlError::Busy);
        }
        let mut targets = Vec::with_capacity(entries.len());
        for entry in &entries {
            let s = self
                .strategy_index(&entry.id)
                .ok_or_else(|| ControlError::UnknownId(entry.id.clone()))?;
            if targets.contains(&s) {
                return Err(ControlError::NeedsRebuild {
                    id: entry.id.clone(),
                    why: "listed twice".to_owned(),
                });
            }
            self.check_replacement(s, entry)
                .map_err(|why| ControlError::NeedsRebuild {
                    id: entry.id.clone(),
                    why,
                })?;
            targets.push(s);
        }
        let at = self.last_tick;
        for (entry, s) in entries.into_iter().zip(targets) {
            // The check above found the model already interned, so this
            // interns nothing new.
            let (driven, feature_hash) = drive(entry.logic, &mut self.model_names);
            let slot = &mut self.slots[s.index()];
            slot.required = driven.strategy().required_history().max(1);
            slot.driven = driven;
            slot.feature_hash = feature_hash;
            slot.brokers = entry.brokers;
            slot.validator = entry.validator;
            slot.guards = crate::engine::guards_of(entry.guards);
            slot.failures_in_a_row = 0;
            slot.quarantines_in_a_row = 0;
            slot.retry_at = None;
            slot.warm = false;
            let from = slot.state;
            slot.state = StrategyState::Warmup;
            slot.since = Some(Transition {
                strategy: s,
                from,
                to: StrategyState::Warmup,
                cause: Cause::Replaced,
                seq: at.map(|(seq, _)| seq),
                ts_ns: at.map(|(_, ts)| ts),
            });
            out.transitions.extend(slot.since);
            for route in self.routes.iter_mut().filter(|r| r.strategy == s) {
                route.ready = false;
            }
        }
        Ok(())
    }

    /// Why `entry` cannot take strategy `s`'s place without rebuilding the
    /// routing, if it cannot.
    fn check_replacement(&self, s: StrategyIdx, entry: &StrategyEntry) -> Result<(), String> {
        let slot = &self.slots[s.index()];
        let strategy = entry.logic.strategy();
        check_instruments(entry).map_err(|e| e.to_string())?;
        if entry.instruments != slot.instruments {
            return Err("it follows other instruments".to_owned());
        }
        if strategy.features() != slot.features {
            return Err("it declares other features".to_owned());
        }
        let model = entry
            .logic
            .model()
            .map(|m| (&m.model.name, m.model.n_features));
        let current = slot
            .driven
            .model()
            .map(|(m, width)| (&self.model_names[m.index()], width as usize));
        if model != current {
            return Err("it uses another model".to_owned());
        }
        let required = strategy.required_history().max(1);
        for &token in &entry.instruments {
            if let Some(i) = self.index.get(token) {
                let capacity = self.rings[i.index()].capacity();
                if required > capacity {
                    return Err(format!(
                        "it needs {required} ticks of history and instrument {token} keeps {capacity}"
                    ));
                }
            }
        }
        Ok(())
    }
}
