//! SMA, EMA, RSI and STDDEV against TA-Lib 0.6.7 on a committed series
//! (scripts/gen_feature_fixtures.py writes the fixture; no Python needed here).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use quiver_core::{HistoryRing, Price};
use quiver_features::{FeatureSpec, InstrumentFeatures};

#[test]
fn features_equal_talib_on_the_committed_series() {
    let text = include_str!("fixtures/talib.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let specs: Vec<FeatureSpec> = header[1..].iter().map(|s| s.parse().unwrap()).collect();
    let mut features = InstrumentFeatures::new(specs.iter().copied());
    let mut ring = HistoryRing::new(features.ring_needed());
    let mut compared = vec![0usize; specs.len()];
    for (row, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        ring.push(Price::parse(cells[0]).unwrap(), 1);
        features.update(ring.view());
        for (i, spec) in specs.iter().enumerate() {
            let ours = features.value(features.slot(*spec).unwrap());
            let theirs: Option<f64> =
                (!cells[i + 1].is_empty()).then(|| cells[i + 1].parse().unwrap());
            match (ours, theirs) {
                (None, None) => {}
                (Some(a), Some(b)) => {
                    assert!(
                        (a - b).abs() <= 1e-9 * b.abs().max(1e-12),
                        "row {row} {spec}: ours {a}, TA-Lib {b}"
                    );
                    compared[i] += 1;
                }
                _ => panic!("row {row} {spec}: ours {ours:?}, TA-Lib {theirs:?}"),
            }
        }
    }
    // Every column was compared on (almost) the whole series.
    assert!(compared.iter().all(|&n| n > 1_400), "{compared:?}");
}
