//! A small metric registry with Prometheus text exposition (format 0.0.4).
//!
//! Every series is created once, at start-up, and handed out as a handle
//! (an `Arc` of atomics): the hot path only adds to atomics and never formats
//! a label or looks a name up. The registry is written by hand rather than
//! taken from a client library because the exposition has to be the classic
//! Prometheus text format, byte for byte what `promtool check metrics`
//! expects, with counters named `*_total` in their `# TYPE` line (OpenMetrics
//! encoders name the family without the suffix).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A monotonically increasing count.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub fn inc_by(&self, n: u64) {
        if n > 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (stored as `f64` bits).
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    #[inline]
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Bucket upper bounds, in nanoseconds, for tick latencies (50 µs .. 10 s).
pub const LATENCY_BOUNDS_NS: &[u64] = &[
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];

/// Bucket upper bounds, in nanoseconds, for one strategy evaluation
/// (100 ns .. 25 ms): strategies are expected to take microseconds.
pub const EVALUATION_BOUNDS_NS: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
    5_000_000, 25_000_000,
];

#[derive(Debug)]
struct HistogramCore {
    /// Upper bounds in recorded units (nanoseconds for durations).
    bounds: &'static [u64],
    /// Recorded units per exposed unit: 1e6 for durations (ns → ms), 1 for
    /// plain counts.
    scale: f64,
    /// One per bound, plus the +Inf bucket; not cumulative.
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_ns: AtomicU64,
}

/// A histogram of durations, exposed in milliseconds (or of plain counts,
/// exposed as they are: [`Histogram::of_counts`]).
#[derive(Clone, Debug)]
pub struct Histogram(Arc<HistogramCore>);

impl Histogram {
    /// A histogram outside any registry (e.g. one per strategy for `/strategies`).
    pub fn new(bounds_ns: &'static [u64]) -> Self {
        Histogram::scaled(bounds_ns, 1e6)
    }

    /// A histogram of unitless values (batch sizes).
    pub fn of_counts(bounds: &'static [u64]) -> Self {
        Histogram::scaled(bounds, 1.0)
    }

    fn scaled(bounds: &'static [u64], scale: f64) -> Self {
        Histogram(Arc::new(HistogramCore {
            bounds,
            scale,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }))
    }

    /// Adds per-bucket counts recorded elsewhere with the same bounds (one
    /// more entry than the bounds: the overflow bucket) and their sum: how a
    /// histogram kept by another crate reaches the exposition. Counts of the
    /// wrong length are ignored.
    pub fn add_counts(&self, buckets: &[u64], sum: u64) {
        let core = &*self.0;
        if buckets.len() != core.buckets.len() {
            return;
        }
        for (bucket, n) in core.buckets.iter().zip(buckets) {
            bucket.fetch_add(*n, Ordering::Relaxed);
        }
        core.count
            .fetch_add(buckets.iter().sum(), Ordering::Relaxed);
        core.sum_ns.fetch_add(sum, Ordering::Relaxed);
    }

    #[inline]
    pub fn observe_ns(&self, ns: u64) {
        self.observe_ns_n(ns, 1);
    }

    /// Records `n` observations of `ns` at once (every tick of a batch shares
    /// its arrival and publication times).
    #[inline]
    pub fn observe_ns_n(&self, ns: u64, n: u64) {
        if n == 0 {
            return;
        }
        let core = &*self.0;
        let slot = core.bounds.partition_point(|&b| b < ns);
        core.buckets[slot].fetch_add(n, Ordering::Relaxed);
        core.count.fetch_add(n, Ordering::Relaxed);
        core.sum_ns
            .fetch_add(ns.saturating_mul(n), Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }

    /// The upper bound (ms) of the bucket holding quantile `q`: what
    /// Prometheus' `histogram_quantile` would bound it by. `None` with no
    /// observations; `+Inf` when it lies beyond the last bound.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let (buckets, count, _) = self.snapshot();
        if count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(match self.0.bounds.get(i) {
                    Some(&b) => b as f64 / self.0.scale,
                    None => f64::INFINITY,
                });
            }
        }
        Some(f64::INFINITY)
    }

    /// (per-bucket counts, count, sum in ns). Bucket counts are read before
    /// the total, so the exposition never shows buckets above the count.
    fn snapshot(&self) -> (Vec<u64>, u64, u64) {
        let core = &*self.0;
        let buckets: Vec<u64> = core
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let sum_ns = core.sum_ns.load(Ordering::Relaxed);
        let count = buckets.iter().sum();
        (buckets, count, sum_ns)
    }
}

/// A family's type, as its `# TYPE` line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

#[derive(Debug)]
enum Handle {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

#[derive(Debug)]
struct Series {
    /// Rendered once at registration: `a="x",b="y"` (empty without labels).
    labels: String,
    handle: Handle,
}

#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    series: Vec<Series>,
}

/// Why a series could not be registered. These are programming errors
/// (names are constants), reported instead of panicking.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("metric {name} registered as a {existing}, now as a {requested}")]
    KindMismatch {
        name: &'static str,
        existing: &'static str,
        requested: &'static str,
    },
    #[error("metric {name} already has a series with labels {{{labels}}}")]
    Duplicate { name: &'static str, labels: String },
    #[error("{0:?} is not a valid metric or label name")]
    BadName(String),
}

/// The set of families, in registration order (which is exposition order).
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<Vec<Family>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    /// Places a family in the exposition order before any of its series
    /// exist, so the order can come from a table rather than from the order
    /// series happen to be created in. A family that never gets a series is
    /// not exposed.
    pub fn declare(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
    ) -> Result<(), RegistryError> {
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        family(&mut families, name, help, kind).map(drop)
    }

    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Result<Counter, RegistryError> {
        let counter = Counter::default();
        self.add(
            name,
            help,
            Kind::Counter,
            labels,
            Handle::Counter(counter.clone()),
        )?;
        Ok(counter)
    }

    pub fn gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Result<Gauge, RegistryError> {
        let gauge = Gauge::default();
        self.add(
            name,
            help,
            Kind::Gauge,
            labels,
            Handle::Gauge(gauge.clone()),
        )?;
        Ok(gauge)
    }

    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        bounds_ns: &'static [u64],
    ) -> Result<Histogram, RegistryError> {
        self.add_histogram(name, help, labels, Histogram::new(bounds_ns))
    }

    /// A histogram of unitless values ([`Histogram::of_counts`]).
    pub fn histogram_of_counts(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        bounds: &'static [u64],
    ) -> Result<Histogram, RegistryError> {
        self.add_histogram(name, help, labels, Histogram::of_counts(bounds))
    }

    fn add_histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        histogram: Histogram,
    ) -> Result<Histogram, RegistryError> {
        self.add(
            name,
            help,
            Kind::Histogram,
            labels,
            Handle::Histogram(histogram.clone()),
        )?;
        Ok(histogram)
    }

    fn add(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &[(&'static str, &str)],
        handle: Handle,
    ) -> Result<(), RegistryError> {
        let mut rendered = String::new();
        for (i, (key, value)) in labels.iter().enumerate() {
            if !valid_name(key) || key.starts_with("__") || *key == "le" {
                return Err(RegistryError::BadName((*key).to_owned()));
            }
            if i > 0 {
                rendered.push(',');
            }
            let _ = write!(rendered, "{key}=\"");
            escape_label(&mut rendered, value);
            rendered.push('"');
        }
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = family(&mut families, name, help, kind)?;
        if family.series.iter().any(|s| s.labels == rendered) {
            return Err(RegistryError::Duplicate {
                name,
                labels: rendered,
            });
        }
        family.series.push(Series {
            labels: rendered,
            handle,
        });
        Ok(())
    }

    /// The Prometheus text exposition (format 0.0.4) of every family.
    pub fn encode(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::with_capacity(16 * 1024);
        for family in families.iter().filter(|f| !f.series.is_empty()) {
            let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(family.help));
            let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
            for series in &family.series {
                match &series.handle {
                    Handle::Counter(c) => sample(
                        &mut out,
                        family.name,
                        "",
                        &series.labels,
                        None,
                        c.get() as f64,
                    ),
                    Handle::Gauge(g) => {
                        sample(&mut out, family.name, "", &series.labels, None, g.get())
                    }
                    Handle::Histogram(h) => {
                        let (buckets, count, sum_ns) = h.snapshot();
                        let mut cumulative = 0;
                        for (i, n) in buckets.iter().enumerate() {
                            cumulative += n;
                            let le = match h.0.bounds.get(i) {
                                Some(&b) => format_float(b as f64 / h.0.scale),
                                None => "+Inf".to_owned(),
                            };
                            sample(
                                &mut out,
                                family.name,
                                "_bucket",
                                &series.labels,
                                Some(&le),
                                cumulative as f64,
                            );
                        }
                        sample(
                            &mut out,
                            family.name,
                            "_sum",
                            &series.labels,
                            None,
                            sum_ns as f64 / h.0.scale,
                        );
                        sample(
                            &mut out,
                            family.name,
                            "_count",
                            &series.labels,
                            None,
                            count as f64,
                        );
                    }
                }
            }
        }
        out
    }
}

/// The family `name`, created (last in the exposition) if it does not exist.
fn family<'a>(
    families: &'a mut Vec<Family>,
    name: &'static str,
    help: &'static str,
    kind: Kind,
) -> Result<&'a mut Family, RegistryError> {
    let i = match families.iter().position(|f| f.name == name) {
        Some(i) => i,
        None => {
            if !valid_name(name) {
                return Err(RegistryError::BadName(name.to_owned()));
            }
            families.push(Family {
                name,
                help,
                kind,
                series: Vec::new(),
            });
            families.len() - 1
        }
    };
    let family = &mut families[i];
    if family.kind != kind {
        return Err(RegistryError::KindMismatch {
            name,
            existing: family.kind.as_str(),
            requested: kind.as_str(),
        });
    }
    Ok(family)
}

fn sample(out: &mut String, name: &str, suffix: &str, labels: &str, le: Option<&str>, value: f64) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some(le) = le {
            if !labels.is_empty() {
                out.push(',');
            }
            let _ = write!(out, "le=\"{le}\"");
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&format_float(value));
    out.push('\n');
}

/// Go-compatible float text: `+Inf`, `-Inf`, `NaN`, else the shortest
/// round-trip decimal.
fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{value}")
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters_gauges_and_histograms_in_text_format() {
        let registry = Registry::new();
        let a = registry
            .counter(
                "signals_total",
                "Signals.",
                &[("strategy", "mom \"1\"\\x\n")],
            )
            .unwrap();
        let b = registry
            .counter("signals_total", "Signals.", &[("strategy", "b")])
            .unwrap();
        let g = registry.gauge("ratio", "A ratio.", &[]).unwrap();
        let h = registry
            .histogram(
                "latency_ms",
                "Latency.",
                &[("stage", "x")],
                &[1_000_000, 5_000_000],
            )
            .unwrap();
        a.inc();
        b.inc_by(3);
        g.set(0.25);
        h.observe_ns(500_000);
        h.observe_ns_n(2_000_000, 2);
        h.observe_ns(9_000_000);
        let text = registry.encode();
        assert_eq!(
            text,
            "# HELP signals_total Signals.\n\
             # TYPE signals_total counter\n\
             signals_total{strategy=\"mom \\\"1\\\"\\\\x\\n\"} 1\n\
             signals_total{strategy=\"b\"} 3\n\
             # HELP ratio A ratio.\n\
             # TYPE ratio gauge\n\
             ratio 0.25\n\
             # HELP latency_ms Latency.\n\
             # TYPE latency_ms histogram\n\
             latency_ms_bucket{stage=\"x\",le=\"1\"} 1\n\
             latency_ms_bucket{stage=\"x\",le=\"5\"} 3\n\
             latency_ms_bucket{stage=\"x\",le=\"+Inf\"} 4\n\
             latency_ms_sum{stage=\"x\"} 13.5\n\
             latency_ms_count{stage=\"x\"} 4\n"
        );
    }

    #[test]
    fn refuses_duplicates_kind_changes_and_bad_names() {
        let registry = Registry::new();
        registry.counter("x_total", "X.", &[("a", "1")]).unwrap();
        assert!(matches!(
            registry.counter("x_total", "X.", &[("a", "1")]),
            Err(RegistryError::Duplicate { .. })
        ));
        assert!(matches!(
            registry.gauge("x_total", "X.", &[]),
            Err(RegistryError::KindMismatch { .. })
        ));
        assert!(registry.gauge("1bad", "X.", &[]).is_err());
        assert!(registry.gauge("ok", "X.", &[("le", "1")]).is_err());
        assert!(registry.gauge("ok2", "X.", &[("bad-label", "1")]).is_err());
    }

    #[test]
    fn declared_families_keep_their_place_and_stay_hidden_without_series() {
        let registry = Registry::new();
        registry.declare("first", "First.", Kind::Gauge).unwrap();
        registry.declare("unused", "Unused.", Kind::Gauge).unwrap();
        registry.gauge("second", "Second.", &[]).unwrap();
        registry.gauge("first", "First.", &[]).unwrap();
        assert_eq!(
            registry.encode(),
            "# HELP first First.\n\
             # TYPE first gauge\n\
             first 0\n\
             # HELP second Second.\n\
             # TYPE second gauge\n\
             second 0\n"
        );
        assert!(matches!(
            registry.declare("first", "First.", Kind::Counter),
            Err(RegistryError::KindMismatch { .. })
        ));
        assert!(registry.declare("bad-name", "X.", Kind::Gauge).is_err());
    }

    #[test]
    fn quantiles_are_bucket_upper_bounds() {
        let h = Histogram::new(&[1_000, 10_000, 100_000]);
        assert_eq!(h.quantile_ms(0.99), None);
        for _ in 0..98 {
            h.observe_ns(500);
        }
        h.observe_ns(5_000);
        h.observe_ns(50_000);
        assert_eq!(h.quantile_ms(0.5), Some(0.001));
        assert_eq!(h.quantile_ms(0.99), Some(0.01));
        assert_eq!(h.quantile_ms(1.0), Some(0.1));
        h.observe_ns(1_000_000_000);
        assert_eq!(h.quantile_ms(1.0), Some(f64::INFINITY));
    }
}
