//! Every feature against a naive full-window recomputation, on random walks.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use proptest::prelude::*;
use quiver_core::{HistoryRing, Price};
use quiver_features::{exact, FeatureSpec, InstrumentFeatures};

/// The definition of each feature, recomputed from scratch at tick `t`
/// (`prices[..=t]`), `None` while warming up.
fn naive(spec: FeatureSpec, prices: &[f64], volumes: &[f64], t: usize) -> Option<f64> {
    let n = spec.window() as usize;
    let seen = &prices[..=t];
    let window = |k: usize| (seen.len() >= k).then(|| &seen[seen.len() - k..]);
    let returns = |w: &[f64]| -> Vec<f64> { w.windows(2).map(|p| (p[1] - p[0]) / p[0]).collect() };
    let mean = |w: &[f64]| w.iter().sum::<f64>() / w.len() as f64;
    Some(match spec {
        FeatureSpec::Sma(_) => mean(window(n)?),
        FeatureSpec::Ema(_) => {
            if seen.len() < n {
                return None;
            }
            let alpha = 2.0 / (n as f64 + 1.0);
            let mut ema = seen[..n].iter().sum::<f64>() / n as f64;
            for p in &seen[n..] {
                ema += (p - ema) * alpha;
            }
            ema
        }
        FeatureSpec::Rsi(_) => {
            if seen.len() < n + 1 {
                return None;
            }
            let changes: Vec<f64> = seen.windows(2).map(|p| p[1] - p[0]).collect();
            let (mut gain, mut loss) = (0.0, 0.0);
            for c in &changes[..n] {
                if *c < 0.0 {
                    loss -= c
                } else {
                    gain += c
                }
            }
            gain /= n as f64;
            loss /= n as f64;
            for c in &changes[n..] {
                let (g, l) = if *c < 0.0 { (0.0, -c) } else { (*c, 0.0) };
                gain = (gain * (n as f64 - 1.0) + g) / n as f64;
                loss = (loss * (n as f64 - 1.0) + l) / n as f64;
            }
            if (gain + loss).abs() < 1e-8 {
                0.0
            } else {
                100.0 * gain / (gain + loss)
            }
        }
        FeatureSpec::RsiSimple(_) => {
            let w = window(n + 1)?;
            let (mut gain, mut loss) = (0.0, 0.0);
            for p in w.windows(2) {
                let c = p[1] - p[0];
                if c < 0.0 {
                    loss -= c
                } else {
                    gain += c
                }
            }
            if loss == 0.0 {
                if gain > 0.0 {
                    100.0
                } else {
                    50.0
                }
            } else {
                100.0 - 100.0 / (1.0 + gain / loss)
            }
        }
        FeatureSpec::Returns(_) => {
            let w = window(n + 1)?;
            (w[n] - w[0]) / w[0]
        }
        FeatureSpec::LogReturn(_) => {
            let w = window(n + 1)?;
            (w[n] / w[0]).ln()
        }
        FeatureSpec::Volatility(_) => {
            let r = returns(window(n + 1)?);
            let m = mean(&r);
            (r.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64).sqrt()
        }
        FeatureSpec::ZScore(_) => {
            let w = window(n)?;
            let sigma = match exact::pstdev(w) {
                0.0 => 1e-9,
                s => s,
            };
            (w[n - 1] - exact::mean(w)) / sigma
        }
        FeatureSpec::Skew(_) => {
            let w = window(n)?;
            let m = mean(w);
            let m2 = w.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64;
            let m3 = w.iter().map(|x| (x - m).powi(3)).sum::<f64>() / n as f64;
            if m2 < 1e-18 {
                0.0
            } else {
                m3 / m2.powf(1.5)
            }
        }
        FeatureSpec::Min(_) => window(n)?.iter().copied().fold(f64::INFINITY, f64::min),
        FeatureSpec::Max(_) => window(n)?.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        FeatureSpec::Vwap(_) => {
            let w = window(n)?;
            let v = &volumes[t + 1 - n..=t];
            let total: f64 = v.iter().sum();
            if total == 0.0 {
                return None;
            }
            w.iter().zip(v).map(|(p, v)| p * v).sum::<f64>() / total
        }
    })
}

fn all_specs(n: u32) -> Vec<FeatureSpec> {
    FeatureSpec::NAMES
        .iter()
        .map(|name| format!("{name}({n})").parse().unwrap())
        .collect()
}

/// Relative error with an absolute floor for values near zero.
fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * b.abs().max(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_feature_matches_its_definition(
        start in 2_000i64..200_000,
        steps in proptest::collection::vec((-6i64..=6, 0u64..500), 10..300),
        n in 2u32..30,
    ) {
        let specs = all_specs(n);
        let mut features = InstrumentFeatures::new(specs.iter().copied());
        let mut ring = HistoryRing::new(features.ring_needed());
        let (mut prices, mut volumes) = (Vec::new(), Vec::new());
        let mut grid = start;
        for (t, (step, volume)) in steps.iter().enumerate() {
            grid = (grid + step).max(1);
            let price = Price::from_units(grid * 5_000_000);
            prices.push(price.to_f64());
            volumes.push(*volume as f64);
            ring.push(price, *volume);
            features.update(ring.view());
            for (slot, spec) in specs.iter().enumerate() {
                let got = features.value(slot);
                let want = naive(*spec, &prices, &volumes, t);
                match (got, want) {
                    (None, None) => {}
                    (Some(g), Some(w)) => prop_assert!(
                        close(g, w, 1e-9),
                        "{spec} at tick {t}: store {g}, definition {w}"
                    ),
                    _ => prop_assert!(false, "{spec} at tick {t}: store {got:?}, definition {want:?}"),
                }
            }
        }
    }
}

#[test]
fn a_feature_reads_absent_while_warming_up_not_zero() {
    let mut features = InstrumentFeatures::new([FeatureSpec::Sma(3), FeatureSpec::Returns(2)]);
    let mut ring = HistoryRing::new(features.ring_needed());
    let mut seen = Vec::new();
    for p in [10, 11, 12, 13] {
        ring.push(Price::from_int(p), 1);
        features.update(ring.view());
        seen.push(features.values().to_vec());
    }
    assert_eq!(seen[0], [None, None]);
    assert_eq!(seen[1], [None, None]);
    assert_eq!(seen[2], [Some(11.0), Some(0.2)]);
    assert_eq!(seen[3], [Some(12.0), Some((13.0 - 11.0) / 11.0)]);
    let slots = [1, 0];
    let view = features.view(&slots);
    assert_eq!(view.get(0), Some((13.0 - 11.0) / 11.0));
    assert_eq!(view.get(1), Some(12.0));
    assert_eq!(view.previous(1), Some(11.0));
    assert_eq!(view.get(2), None);
    assert_eq!(view.sub(1, 1).get(0), Some(12.0));
}

#[test]
fn one_state_per_distinct_spec() {
    let features = InstrumentFeatures::new([
        FeatureSpec::ZScore(20),
        FeatureSpec::Sma(5),
        FeatureSpec::ZScore(20),
    ]);
    assert_eq!(
        features.specs(),
        &[FeatureSpec::ZScore(20), FeatureSpec::Sma(5)]
    );
    assert_eq!(features.ring_needed(), 21);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The rolling z-score is bit-identical to the window formula rounded as
    /// Python's `statistics` does, across binade crossings and rebuilds.
    #[test]
    fn rolling_zscore_is_bit_exact(
        start in 1i64..40_000,
        steps in proptest::collection::vec(-40i64..=40, 10..400),
        n in 2u32..40,
    ) {
        let spec = FeatureSpec::ZScore(n);
        let mut features = InstrumentFeatures::new([spec]);
        let mut ring = HistoryRing::new(features.ring_needed());
        let mut prices = Vec::new();
        let mut grid = start;
        for (t, step) in steps.iter().enumerate() {
            grid = (grid + step).max(1);
            let price = Price::from_units(grid * 1_000_000);
            prices.push(price.to_f64());
            ring.push(price, 1);
            features.update(ring.view());
            let want = naive(spec, &prices, &[], t);
            prop_assert_eq!(features.value(0).map(f64::to_bits), want.map(f64::to_bits), "tick {}", t);
        }
    }
}

#[test]
fn vwap_never_wraps_at_the_edges_of_price_and_volume() {
    let mut features = InstrumentFeatures::new([FeatureSpec::Vwap(3)]);
    let mut ring = HistoryRing::new(features.ring_needed());
    let largest = Price::from_units(i64::MAX);
    let normal = Price::from_int(10);
    let mut seen = Vec::new();
    for (price, volume) in [
        (largest, 1u64 << 63),
        (largest, 1u64 << 63),
        (largest, 1u64 << 63),
        (normal, 1),
        (normal, 1),
        (normal, 1),
    ] {
        ring.push(price, volume);
        features.update(ring.view());
        seen.push(features.values()[0]);
    }
    // Three terms of ~2^126 do not fit an i128: absent, not a wrapped value.
    assert_eq!(seen[2], None);
    // Once the extreme ticks left the window, the exact sum is back.
    assert_eq!(seen[5], Some(10.0));
}
