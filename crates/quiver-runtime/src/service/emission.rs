//! Pausing a strategy's emission to a broker that keeps refusing its signals.
//!
//! A bus that cannot be reached at all is retried by the sink stage with
//! back-off and nothing is acknowledged meanwhile, so nothing is lost. A
//! broker that answers but refuses a signal (its stream cannot take it) is a
//! different failure: the signal goes to the dead-letter stream with the
//! reason, and after [`EmissionPolicy::pause_after`] refusals in a row for
//! one (strategy, broker) the pair is paused. While paused, that strategy's
//! signals to that broker are not tried: they go to the dead-letter stream as
//! `emission_paused` (kept for an operator, never dropped). Once the back-off
//! has passed the next batch's signals are tried again; one accepted resumes
//! the pair, another refusal pauses it again for twice as long (up to the
//! cap). The other brokers of the strategy, and the other strategies, are
//! not affected.
//!
//! Live only, on the wall clock: which signals reach a broker is then a
//! matter of the broker, not of the ticks, and a replay never publishes.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quiver_io::live::{OutSignal, Outcome, PublishReport};
use quiver_telemetry::PausedBroker;

use crate::settings::PublishSettings;

/// When to pause and how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmissionPolicy {
    /// Refusals in a row that pause a (strategy, broker) pair.
    pub pause_after: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

impl Default for EmissionPolicy {
    fn default() -> Self {
        EmissionPolicy::from_settings(&PublishSettings::default())
    }
}

impl EmissionPolicy {
    pub fn from_settings(settings: &PublishSettings) -> Self {
        EmissionPolicy {
            pause_after: settings.pause_after.max(1),
            backoff_base: Duration::from_millis(settings.backoff_base_ms.max(1)),
            backoff_cap: Duration::from_millis(
                settings.backoff_cap_ms.max(settings.backoff_base_ms),
            ),
        }
    }
}

/// One (strategy, broker) pair.
#[derive(Clone, Debug, Default)]
struct Pair {
    /// Refusals in a row.
    refusals: u32,
    reason: String,
    paused: Option<Pause>,
}

#[derive(Clone, Debug)]
struct Pause {
    until: Instant,
    length: Duration,
    since: SystemTime,
    /// What withheld signals carry to the dead-letter stream.
    withheld: Arc<str>,
}

/// A change of a pair, for logs, metrics and `/strategies`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmissionChange {
    Paused {
        strategy: u32,
        broker: u32,
        length: Duration,
    },
    Resumed {
        strategy: u32,
        broker: u32,
    },
}

impl EmissionChange {
    pub fn strategy(&self) -> u32 {
        match *self {
            EmissionChange::Paused { strategy, .. } | EmissionChange::Resumed { strategy, .. } => {
                strategy
            }
        }
    }
}

/// Every pair's state; owned by the sink stage.
#[derive(Debug)]
pub struct EmissionGate {
    policy: EmissionPolicy,
    brokers: usize,
    /// `strategy * brokers + broker`.
    pairs: Vec<Pair>,
}

impl EmissionGate {
    pub fn new(policy: EmissionPolicy, strategies: usize, brokers: usize) -> Self {
        EmissionGate {
            policy,
            brokers,
            pairs: vec![Pair::default(); strategies * brokers],
        }
    }

    fn pair(&mut self, strategy: u32, broker: u32) -> Option<&mut Pair> {
        let broker = broker as usize;
        if broker >= self.brokers {
            return None;
        }
        self.pairs
            .get_mut(strategy as usize * self.brokers + broker)
    }

    /// Marks the signals of paused pairs as withheld; the signals of a pair
    /// whose pause has passed are tried (all of them, this batch).
    pub fn admit(&mut self, signals: &mut [OutSignal], now: Instant) {
        for signal in signals {
            // Held back already (the paper desk refused it): it stays so.
            if signal.withheld.is_some() {
                continue;
            }
            signal.withheld = self
                .pair(signal.strategy_idx, signal.broker_idx)
                .and_then(|pair| pair.paused.as_ref())
                .filter(|pause| now < pause.until)
                .map(|pause| Arc::clone(&pause.withheld));
        }
    }

    /// Counts what the sink did with `signals` (as admitted), pausing pairs
    /// that refused too often and resuming those that were accepted again.
    pub fn record(
        &mut self,
        signals: &[OutSignal],
        report: &PublishReport,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<EmissionChange> {
        let policy = self.policy;
        let mut changes = Vec::new();
        for (signal, outcome) in signals.iter().zip(&report.outcomes) {
            let (strategy, broker) = (signal.strategy_idx, signal.broker_idx);
            let Some(pair) = self.pair(strategy, broker) else {
                continue;
            };
            match outcome {
                Outcome::Withheld => {}
                Outcome::Published | Outcome::Duplicate => {
                    pair.refusals = 0;
                    if pair.paused.take().is_some() {
                        changes.push(EmissionChange::Resumed { strategy, broker });
                    }
                }
                Outcome::DeadLettered => {
                    pair.refusals = pair.refusals.saturating_add(1);
                    if let Some((_, reason)) = report.refusals.iter().find(|(b, _)| *b == broker) {
                        pair.reason.clone_from(reason);
                    }
                    let retried = pair.paused.as_ref().filter(|p| now >= p.until);
                    let length = match (retried, &pair.paused) {
                        // The retry after a pause failed: pause again, longer.
                        (Some(pause), _) => (pause.length * 2).min(policy.backoff_cap),
                        (None, Some(_)) => continue,
                        (None, None) if pair.refusals >= policy.pause_after => policy.backoff_base,
                        (None, None) => continue,
                    };
                    let since = pair.paused.as_ref().map_or(wall, |p| p.since);
                    pair.paused = Some(Pause {
                        until: now + length,
                        length,
                        since,
                        withheld: Arc::from(format!(
                            "{} refused {} signals in a row (latest: {}); retried at the end of a {} ms pause",
                            signal.broker,
                            pair.refusals,
                            pair.reason,
                            length.as_millis()
                        )),
                    });
                    changes.push(EmissionChange::Paused {
                        strategy,
                        broker,
                        length,
                    });
                }
            }
        }
        changes
    }

    /// The brokers `strategy` is paused to, for `/strategies`.
    pub fn paused_brokers(
        &self,
        strategy: u32,
        names: &[Arc<str>],
        now: Instant,
        wall: SystemTime,
    ) -> Vec<PausedBroker> {
        let start = strategy as usize * self.brokers;
        let Some(pairs) = self.pairs.get(start..start + self.brokers) else {
            return Vec::new();
        };
        let unix_ms = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        };
        pairs
            .iter()
            .enumerate()
            .filter_map(|(b, pair)| {
                let pause = pair.paused.as_ref()?;
                let left = pause.until.saturating_duration_since(now);
                Some(PausedBroker {
                    broker: names.get(b).map_or_else(String::new, |n| n.to_string()),
                    reason: pair.reason.clone(),
                    refusals: pair.refusals,
                    since_unix_ms: unix_ms(pause.since),
                    retry_at_unix_ms: unix_ms(wall + left),
                })
            })
            .collect()
    }

    /// Whether strategy `strategy` is paused to broker `broker`.
    pub fn is_paused(&self, strategy: u32, broker: u32) -> bool {
        (broker as usize) < self.brokers
            && self
                .pairs
                .get(strategy as usize * self.brokers + broker as usize)
                .is_some_and(|pair| pair.paused.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(strategy: u32, broker: u32) -> OutSignal {
        OutSignal {
            broker: Arc::from(["paper", "zerodha"][broker as usize]),
            broker_idx: broker,
            strategy_idx: strategy,
            withheld: None,
            signal_id: 0,
            seq: 0,
            origin: None,
            payload: 0..0,
        }
    }

    fn policy() -> EmissionPolicy {
        EmissionPolicy {
            pause_after: 3,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(3),
        }
    }

    /// Admits `signals` at `now`, then has the sink refuse every signal to
    /// zerodha (broker 1) and accept the rest when `refusing`.
    fn publish(
        gate: &mut EmissionGate,
        signals: &mut [OutSignal],
        now: Instant,
        refusing: bool,
    ) -> (Vec<Outcome>, Vec<EmissionChange>) {
        gate.admit(signals, now);
        let outcomes: Vec<Outcome> = signals
            .iter()
            .map(|s| match (&s.withheld, s.broker_idx, refusing) {
                (Some(_), _, _) => Outcome::Withheld,
                (None, 1, true) => Outcome::DeadLettered,
                _ => Outcome::Published,
            })
            .collect();
        let report = PublishReport {
            outcomes: outcomes.clone(),
            dead_letters_written: 0,
            refusals: vec![(1, "WRONGTYPE".to_owned())],
        };
        let changes = gate.record(signals, &report, now, SystemTime::UNIX_EPOCH);
        (outcomes, changes)
    }

    #[test]
    fn a_pair_pauses_after_refusals_in_a_row_and_is_retried_with_doubling_pauses() {
        let mut gate = EmissionGate::new(policy(), 2, 2);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        // Two refusals, then an acceptance: the count starts again.
        for at in [0, 1] {
            let (_, changes) = publish(&mut gate, &mut [signal(0, 1)], ms(at), true);
            assert!(changes.is_empty());
        }
        publish(&mut gate, &mut [signal(0, 1)], ms(2), false);
        for at in [3, 4] {
            publish(&mut gate, &mut [signal(0, 1)], ms(at), true);
        }
        let (_, changes) = publish(&mut gate, &mut [signal(0, 1)], ms(5), true);
        assert_eq!(
            changes,
            [EmissionChange::Paused {
                strategy: 0,
                broker: 1,
                length: Duration::from_secs(1)
            }]
        );
        // Paused: strategy 0's signals to zerodha are withheld, its signals
        // to paper and strategy 1's to zerodha are tried.
        let mut batch = [signal(0, 1), signal(0, 0), signal(1, 1)];
        let (outcomes, _) = publish(&mut gate, &mut batch, ms(500), true);
        assert_eq!(
            outcomes,
            [Outcome::Withheld, Outcome::Published, Outcome::DeadLettered]
        );
        assert!(batch[0]
            .withheld
            .as_deref()
            .is_some_and(|r| r.contains("zerodha refused 3 signals in a row (latest: WRONGTYPE)")));
        let paused = gate.paused_brokers(
            0,
            &[Arc::from("paper"), Arc::from("zerodha")],
            ms(500),
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(paused.len(), 1);
        assert_eq!(paused[0].broker, "zerodha");
        assert_eq!(paused[0].retry_at_unix_ms, 505);
        // After the pause a refusal pauses again for twice as long, then
        // for the cap.
        let (outcomes, changes) = publish(&mut gate, &mut [signal(0, 1)], ms(1_005), true);
        assert_eq!(outcomes, [Outcome::DeadLettered]);
        assert_eq!(
            changes,
            [EmissionChange::Paused {
                strategy: 0,
                broker: 1,
                length: Duration::from_secs(2)
            }]
        );
        let (outcomes, _) = publish(&mut gate, &mut [signal(0, 1)], ms(3_004), true);
        assert_eq!(outcomes, [Outcome::Withheld]);
        let (_, changes) = publish(&mut gate, &mut [signal(0, 1)], ms(3_005), true);
        assert_eq!(
            changes,
            [EmissionChange::Paused {
                strategy: 0,
                broker: 1,
                length: Duration::from_secs(3)
            }]
        );
        // Accepted at the next retry: resumed, and the count starts again.
        let (outcomes, changes) = publish(&mut gate, &mut [signal(0, 1)], ms(6_005), false);
        assert_eq!(outcomes, [Outcome::Published]);
        assert_eq!(
            changes,
            [EmissionChange::Resumed {
                strategy: 0,
                broker: 1
            }]
        );
        assert!(!gate.is_paused(0, 1));
        let (_, changes) = publish(
            &mut gate,
            &mut [signal(0, 1), signal(0, 1)],
            ms(6_006),
            true,
        );
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn every_signal_of_a_retried_batch_is_tried() {
        let mut gate = EmissionGate::new(policy(), 1, 2);
        let t0 = Instant::now();
        publish(
            &mut gate,
            &mut [signal(0, 1), signal(0, 1), signal(0, 1)],
            t0,
            true,
        );
        assert!(gate.is_paused(0, 1));
        let later = t0 + Duration::from_secs(1);
        let (outcomes, changes) =
            publish(&mut gate, &mut [signal(0, 1), signal(0, 1)], later, false);
        assert_eq!(outcomes, [Outcome::Published, Outcome::Published]);
        assert_eq!(changes.len(), 1);
    }

    #[test]
    fn the_policy_follows_the_settings() {
        let policy = EmissionPolicy::from_settings(&PublishSettings {
            pause_after: 5,
            backoff_base_ms: 200,
            backoff_cap_ms: 800,
        });
        assert_eq!(policy.pause_after, 5);
        assert_eq!(policy.backoff_base, Duration::from_millis(200));
        assert_eq!(policy.backoff_cap, Duration::from_millis(800));
    }
}
