//! `quiver features`: one instrument's indicator values, tick by tick, as CSV.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use quiver_core::{HistoryRing, InstrumentToken};
use quiver_features::{FeatureSpec, InstrumentFeatures};

use crate::edge::{invalid, Outcome};

/// Prints `seq,ts_ns,price,<spec>...` for every tick of `instrument` (empty
/// cells while a feature warms up). `seq` is the tick's index in the file.
pub fn run(
    ticks_path: &Path,
    select: &crate::tick_files::SelectArgs,
    instrument: InstrumentToken,
    specs: &[String],
) -> Outcome {
    let mut parsed = Vec::with_capacity(specs.len());
    for text in specs {
        let spec = text
            .parse::<FeatureSpec>()
            .map_err(|err| invalid(format!("error: --spec {err}")))?;
        parsed.push(spec);
    }
    let reader = crate::tick_files::open(ticks_path, select)?;
    let mut features = InstrumentFeatures::new(parsed.iter().copied());
    let slots: Vec<usize> = parsed
        .iter()
        .filter_map(|spec| features.slot(*spec))
        .collect();
    let mut ring = HistoryRing::new(features.ring_needed());
    let mut out = BufWriter::new(io::stdout().lock());
    write!(out, "seq,ts_ns,price")?;
    for spec in &parsed {
        write!(out, ",{spec}")?;
    }
    writeln!(out)?;
    let mut rows = 0u64;
    for (seq, item) in reader.enumerate() {
        let tick = match item {
            Ok(tick) => tick,
            Err(err) => {
                out.flush()?;
                return Err(invalid(format!("error: {err}")));
            }
        };
        if tick.instrument != instrument {
            continue;
        }
        ring.push(tick.price, tick.volume);
        features.update(ring.view());
        write!(out, "{seq},{},{}", tick.ts_ns, tick.price)?;
        for &slot in &slots {
            match features.value(slot) {
                Some(value) => write!(out, ",{value}")?,
                None => write!(out, ",")?,
            }
        }
        writeln!(out)?;
        rows += 1;
    }
    out.flush().context("writing feature rows")?;
    if rows == 0 {
        eprintln!(
            "note: no ticks of instrument {instrument} in {}",
            ticks_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
