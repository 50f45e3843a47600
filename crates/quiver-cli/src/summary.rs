//! The human-readable run summary printed after a replay or demo.

use std::fmt;

use hdrhistogram::Histogram;
use quiver_engine::Engine;
use quiver_strategy::DropReason;

use quiver_runtime::replay::{Replay, ReplayRun, Totals};

pub struct Summary<'a> {
    title: &'a str,
    engine: &'a Engine,
    totals: Totals,
    shards: usize,
    backend: Option<quiver_infer::Backend>,
    out_of_service: Vec<(String, quiver_infer::InferError)>,
    run: &'a ReplayRun,
}

impl<'a> Summary<'a> {
    pub fn new(title: &'a str, replay: &'a Replay, run: &'a ReplayRun) -> Self {
        Summary {
            title,
            engine: replay.engine(),
            totals: replay.totals(),
            shards: replay.shards(),
            backend: replay.backend(),
            out_of_service: replay.out_of_service(),
            run,
        }
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Nanoseconds as a short human duration.
pub fn nanos(ns: u64) -> String {
    match ns {
        0..=9_999 => format!("{:.2} µs", ns as f64 / 1e3),
        10_000..=9_999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        _ => format!("{:.1} ms", ns as f64 / 1e6),
    }
}

pub fn latency_line(h: &Histogram<u64>) -> String {
    format!(
        "p50 {}  p99 {}  p99.9 {}  max {}",
        nanos(h.value_at_quantile(0.50)),
        nanos(h.value_at_quantile(0.99)),
        nanos(h.value_at_quantile(0.999)),
        nanos(h.max())
    )
}

pub fn per_second(count: u64, seconds: f64) -> u64 {
    if seconds > 0.0 {
        (count as f64 / seconds) as u64
    } else {
        0
    }
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let run = self.run;
        let totals = &self.totals;
        let stats = &totals.stats;
        let secs = run.wall.as_secs_f64();
        writeln!(
            f,
            "{}: {} ticks in {:.3} s{}",
            self.title,
            thousands(run.ticks),
            secs,
            if self.shards > 1 {
                format!(" on {} shards", self.shards)
            } else {
                String::new()
            }
        )?;
        writeln!(
            f,
            "  ticks/s                {}",
            thousands(per_second(run.ticks, secs))
        )?;
        writeln!(
            f,
            "  evaluations/s          {}  ({} strategy evaluations)",
            thousands(per_second(stats.evaluations, secs)),
            thousands(stats.evaluations)
        )?;
        writeln!(
            f,
            "  tick→signal latency    {}{}",
            latency_line(&run.latency),
            if self.shards > 1 {
                format!(
                    " (each tick waits for its round of {} ticks; --shards 1 times ticks one by one)",
                    thousands(quiver_runtime::replay::ROUND_TICKS as u64)
                )
            } else {
                String::new()
            }
        )?;
        writeln!(
            f,
            "  signals                {} lines ({} signals × brokers)",
            thousands(run.lines),
            thousands(stats.signals)
        )?;
        writeln!(f, "  rejected rows          {}", run.skipped)?;
        if stats.unrouted_ticks > 0 {
            writeln!(
                f,
                "  unfollowed ticks       {} (instrument followed by no strategy)",
                thousands(stats.unrouted_ticks)
            )?;
        }
        let dropped: Vec<String> = DropReason::ALL
            .iter()
            .zip(stats.dropped)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{} {}", r.as_str(), thousands(n)))
            .collect();
        if !dropped.is_empty() {
            writeln!(f, "  dropped by validator   {}", dropped.join(", "))?;
        }
        if stats.panics > 0 {
            writeln!(f, "  strategy panics        {}", thousands(stats.panics))?;
        }
        for reload in &run.reloads {
            match &reload.result {
                Ok((diff, version)) => writeln!(
                    f,
                    "  reload at tick {}     {}: {diff}; version {version} serving",
                    thousands(reload.seq),
                    reload.path.display()
                )?,
                Err(why) => writeln!(
                    f,
                    "  reload at tick {}     {}: refused, the set before it kept serving: {why}",
                    thousands(reload.seq),
                    reload.path.display()
                )?,
            }
        }
        if stats.shed > 0 {
            writeln!(
                f,
                "  evaluations shed       {} (simulated load shedding, --shed-at)",
                thousands(stats.shed)
            )?;
        }
        writeln!(
            f,
            "  shared features        {} maintained, {:.1} updates/tick, {} reads, hit ratio {:.3}",
            thousands(totals.features_maintained as u64),
            stats.feature_updates_per_tick(),
            thousands(stats.feature_reads),
            stats.feature_hit_ratio()
        )?;
        if let Some(backend) = self.backend {
            let unavailable: Vec<String> = quiver_engine::Unavailable::ALL
                .iter()
                .zip(stats.unavailable)
                .filter(|(_, n)| *n > 0)
                .map(|(r, n)| format!("{} {}", r.as_str(), thousands(n)))
                .collect();
            writeln!(
                f,
                "  ML inference           {} rows on {} ({}), {} skipped (features not finite), {} outputs rejected{}",
                thousands(stats.inferences),
                backend,
                self.engine.models().join(", "),
                thousands(stats.skipped_features),
                thousands(stats.rejected_outputs),
                if unavailable.is_empty() {
                    String::new()
                } else {
                    format!(", no result: {}", unavailable.join(", "))
                }
            )?;
        }
        for (_, fault) in &self.out_of_service {
            writeln!(f, "  model out of service   {fault}")?;
        }
        let (mean_fill, min_fill) = totals.ring_fill;
        writeln!(
            f,
            "  history rings          {} instruments, utilisation mean {:.0}%, min {:.0}%",
            totals.instruments,
            mean_fill * 100.0,
            min_fill * 100.0
        )?;
        writeln!(f, "  signals per strategy")?;
        for st in &totals.strategies {
            writeln!(
                f,
                "    {:<24} {:>10}  ({}, {})",
                st.id,
                thousands(st.signals),
                st.name,
                st.states.join("/")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(nanos(640), "0.64 µs");
        assert_eq!(nanos(25_300), "25.3 µs");
        assert_eq!(nanos(12_000_000), "12.0 ms");
    }
}
