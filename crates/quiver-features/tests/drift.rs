//! Rolling sums must not drift: over a long random walk at realistic price
//! levels, every windowed feature stays within 1e-9 (relative) of its value
//! recomputed from the window. Length: QUIVER_DRIFT_TICKS (default 300,000;
//! run 10,000,000 with `--release` to reproduce the documented figure).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use quiver_core::synthetic::SyntheticSpec;
use quiver_core::HistoryRing;
use quiver_features::{exact, FeatureSpec, InstrumentFeatures};

/// Recomputes `spec` from the window ending at the newest tick.
fn from_window(spec: FeatureSpec, prices: &[f64], volumes: &[f64]) -> f64 {
    let n = spec.window() as usize;
    let w = &prices[prices.len() - n..];
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    match spec {
        FeatureSpec::Sma(_) => mean(w),
        FeatureSpec::Volatility(_) => {
            let w = &prices[prices.len() - n - 1..];
            let r: Vec<f64> = w.windows(2).map(|p| (p[1] - p[0]) / p[0]).collect();
            let m = mean(&r);
            (r.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64).sqrt()
        }
        FeatureSpec::ZScore(_) => {
            let sigma = match exact::pstdev(w) {
                0.0 => 1e-9,
                s => s,
            };
            (w[n - 1] - exact::mean(w)) / sigma
        }
        FeatureSpec::Skew(_) => {
            let m = mean(w);
            let m2 = w.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64;
            let m3 = w.iter().map(|x| (x - m).powi(3)).sum::<f64>() / n as f64;
            if m2 < 1e-18 {
                0.0
            } else {
                m3 / m2.powf(1.5)
            }
        }
        FeatureSpec::Vwap(_) => {
            let v = &volumes[volumes.len() - n..];
            w.iter().zip(v).map(|(p, v)| p * v).sum::<f64>() / v.iter().sum::<f64>()
        }
        _ => unreachable!("not checked here"),
    }
}

#[test]
fn rolling_features_do_not_drift() {
    let ticks: u64 = std::env::var("QUIVER_DRIFT_TICKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let specs = [
        FeatureSpec::Sma(50),
        FeatureSpec::Volatility(50),
        FeatureSpec::ZScore(50),
        FeatureSpec::Skew(50),
        FeatureSpec::Vwap(50),
    ];
    let mut features = InstrumentFeatures::new(specs);
    let mut ring = HistoryRing::new(features.ring_needed().max(64));
    // One instrument's walk; prices 50..1050 on a 0.05 grid.
    let spec = SyntheticSpec::new(1, ticks, 99);
    let mut worst = [0.0f64; 5];
    for (t, tick) in spec.iter().enumerate() {
        ring.push(tick.price, tick.volume);
        features.update(ring.view());
        // Checking is O(n); sample it, denser near the end where drift would show.
        if t < 60 || (t % 997 != 0 && t as u64 + 1_000 < ticks) {
            continue;
        }
        let view = ring.view();
        for (i, spec) in specs.iter().enumerate() {
            let got = features.value(i).unwrap();
            let want = from_window(*spec, view.prices(), view.volumes());
            // Relative for volatility (values ~1e-3); absolute below 1 for
            // features that cross zero (z-score, skew).
            let floor = if matches!(spec, FeatureSpec::Volatility(_)) {
                1e-12
            } else {
                1.0
            };
            let err = (got - want).abs() / want.abs().max(floor);
            worst[i] = worst[i].max(err);
        }
    }
    for (spec, err) in specs.iter().zip(worst) {
        println!("{spec}: worst relative error {err:.3e} over {ticks} ticks");
        assert!(err <= 1e-9, "{spec} drifted: {err:e}");
    }
}
