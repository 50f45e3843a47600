//! What a replay's engines counted and hold, added up over its shards for
//! the summary.

use quiver_engine::{Engine, EngineStats};

/// The counters and holdings of a replay's engines, summed over shards.
pub struct Totals {
    pub stats: EngineStats,
    pub features_maintained: usize,
    pub instruments: usize,
    /// History ring fill: mean and smallest, over every instrument.
    pub ring_fill: (f64, f64),
    /// Per strategy in config order: signals, and the states its copies
    /// are in (one unless shards disagree).
    pub strategies: Vec<StrategyTotals>,
}

pub struct StrategyTotals {
    pub id: String,
    pub name: String,
    pub signals: u64,
    pub states: Vec<&'static str>,
}

impl Totals {
    pub(super) fn of(catalog: &Engine, engines: &[&Engine]) -> Totals {
        let mut stats = EngineStats::default();
        let (mut features, mut instruments, mut fill_sum, mut fill_min) = (0, 0, 0.0, 1.0f64);
        for engine in engines {
            stats.absorb(&engine.stats());
            features += engine.features_maintained();
            let n = engine.instrument_tokens().len();
            let (mean, min) = engine.ring_utilization();
            if n > 0 {
                fill_sum += mean * n as f64;
                fill_min = fill_min.min(min);
            }
            instruments += n;
        }
        let strategies = catalog
            .strategies()
            .map(|s| {
                let mut states: Vec<&'static str> = Vec::new();
                let mut signals = 0;
                for engine in engines {
                    signals += engine.strategy_stats(s).signals;
                    // A copy with nothing to follow on its shard never runs.
                    if engines.len() > 1 && engine.instruments(s).is_empty() {
                        continue;
                    }
                    let state = engine.strategy_state(s).as_str();
                    if !states.contains(&state) {
                        states.push(state);
                    }
                }
                if states.is_empty() {
                    states.push(catalog.strategy_state(s).as_str());
                }
                StrategyTotals {
                    id: catalog.strategy_id(s).to_owned(),
                    name: catalog.strategy_name(s).to_owned(),
                    signals,
                    states,
                }
            })
            .collect();
        Totals {
            stats,
            features_maintained: features,
            instruments,
            ring_fill: if instruments == 0 {
                (0.0, 0.0)
            } else {
                (fill_sum / instruments as f64, fill_min)
            },
            strategies,
        }
    }
}
