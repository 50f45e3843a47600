//! Inference counters: plain atomics, read as snapshots by the telemetry
//! crate. Recording never allocates or locks, so it can sit on the inference
//! path; buckets are fixed, so label sets stay bounded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (inclusive) of the batch-size buckets; one more bucket holds
/// the rest.
pub const BATCH_SIZE_BOUNDS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
/// Upper bounds (inclusive) of the latency buckets, in nanoseconds (1 µs to 1 s).
pub const LATENCY_BOUNDS_NS: [u64; 16] = [
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    1_000_000_000,
];

/// A fixed-bucket histogram of `u64` samples.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// `counts[i]` for samples in `(bounds[i-1], bounds[i]]`; the last entry
    /// for samples above every bound.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [u64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    pub fn record(&self, value: u64) {
        let bucket = self.bounds.partition_point(|b| *b < value);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds.to_vec(),
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

/// A histogram's values at one moment. `counts` has one more entry than
/// `bounds` (the overflow bucket); counts are per bucket, not cumulative.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    pub bounds: Vec<u64>,
    pub counts: Vec<u64>,
    pub sum: u64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Per-model counters. They live in the model's handle, so they survive
/// hot swaps of the model's version.
#[derive(Debug)]
pub struct ModelStats {
    /// Rows inferred.
    inferences: AtomicU64,
    /// Backend calls (one per model per batch).
    batches: AtomicU64,
    /// Calls that returned an error (their rows are not in `inferences`).
    failures: AtomicU64,
    batch_size: Histogram,
    /// Wall time of one backend call.
    latency_ns: Histogram,
    /// Successful loads (first load and every hot swap).
    loads: AtomicU64,
    /// Loads refused (checksum, operator, runtime); the old version stayed.
    load_failures: AtomicU64,
    /// Duration of the last successful load, in nanoseconds.
    last_load_ns: AtomicU64,
    /// Versions taken out of service by a call over their deadline.
    deadline_exceeded: AtomicU64,
}

impl Default for ModelStats {
    fn default() -> Self {
        ModelStats {
            inferences: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            batch_size: Histogram::new(&BATCH_SIZE_BOUNDS),
            latency_ns: Histogram::new(&LATENCY_BOUNDS_NS),
            loads: AtomicU64::new(0),
            load_failures: AtomicU64::new(0),
            last_load_ns: AtomicU64::new(0),
            deadline_exceeded: AtomicU64::new(0),
        }
    }
}

impl ModelStats {
    /// One backend call over `rows` rows that took `elapsed`.
    pub fn record_batch(&self, rows: usize, elapsed: Duration, ok: bool) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        if ok {
            self.inferences.fetch_add(rows as u64, Ordering::Relaxed);
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        self.batch_size.record(rows as u64);
        self.latency_ns.record(saturating_ns(elapsed));
    }

    pub fn record_load(&self, elapsed: Duration) {
        self.loads.fetch_add(1, Ordering::Relaxed);
        self.last_load_ns
            .store(saturating_ns(elapsed), Ordering::Relaxed);
    }

    pub fn record_deadline_exceeded(&self) {
        self.deadline_exceeded.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_load_failure(&self) {
        self.load_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ModelStatsSnapshot {
        ModelStatsSnapshot {
            inferences: self.inferences.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            batch_size: self.batch_size.snapshot(),
            latency_ns: self.latency_ns.snapshot(),
            loads: self.loads.load(Ordering::Relaxed),
            load_failures: self.load_failures.load(Ordering::Relaxed),
            model_load_seconds: self.last_load_ns.load(Ordering::Relaxed) as f64 / 1e9,
            deadline_exceeded: self.deadline_exceeded.load(Ordering::Relaxed),
        }
    }
}

/// [`ModelStats`] at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelStatsSnapshot {
    pub inferences: u64,
    pub batches: u64,
    pub failures: u64,
    pub batch_size: HistogramSnapshot,
    pub latency_ns: HistogramSnapshot,
    pub loads: u64,
    pub load_failures: u64,
    /// Duration of the last successful load (`model_load_seconds`).
    pub model_load_seconds: f64,
    /// Versions taken out of service by a call over their deadline
    /// (`model_deadline_exceeded_total`).
    pub deadline_exceeded: u64,
}

fn saturating_ns(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_inclusive_upper_bounds() {
        let h = Histogram::new(&BATCH_SIZE_BOUNDS);
        for v in [1, 2, 3, 1024, 1025, 0] {
            h.record(v);
        }
        let s = h.snapshot();
        assert_eq!(s.counts.len(), BATCH_SIZE_BOUNDS.len() + 1);
        assert_eq!(s.counts[0], 2, "0 and 1");
        assert_eq!(s.counts[1], 1, "2");
        assert_eq!(s.counts[2], 1, "3 goes to <= 4");
        assert_eq!(s.counts[10], 1, "1024");
        assert_eq!(s.counts[11], 1, "overflow");
        assert_eq!(s.sum, 1 + 2 + 3 + 1024 + 1025);
        assert_eq!(s.count(), 6);
    }

    #[test]
    fn model_stats_count_rows_calls_and_failures() {
        let stats = ModelStats::default();
        stats.record_batch(100, Duration::from_micros(30), true);
        stats.record_batch(1, Duration::from_micros(3), true);
        stats.record_batch(7, Duration::from_micros(3), false);
        stats.record_load(Duration::from_millis(250));
        let s = stats.snapshot();
        assert_eq!((s.inferences, s.batches, s.failures), (101, 3, 1));
        assert_eq!(s.batch_size.count(), 3);
        assert_eq!(s.latency_ns.sum, 36_000);
        assert_eq!(s.loads, 1);
        assert!((s.model_load_seconds - 0.25).abs() < 1e-9);
    }
}
