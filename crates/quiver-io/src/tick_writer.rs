//! Tick CSV output in the canonical layout the reader accepts.
//!
//! Prices are printed with [`Price`](quiver_core::Price)'s exact `Display`,
//! so writing and reading back gives identical ticks, and the same ticks always
//! give the same bytes (generated fixtures can be compared with `cmp`).

use std::io::{self, BufWriter, Write};

use quiver_core::Tick;

const WRITE_BUFFER_BYTES: usize = 1 << 16;

/// Writes `ts_ns,instrument,price,volume` rows; returns how many ticks.
///
/// Quotes (`bid`/`ask`) are dropped: use [`write_ticks_csv_with_quotes`] to
/// keep them. `out` is buffered internally and flushed before returning.
pub fn write_ticks_csv<W: Write>(ticks: impl IntoIterator<Item = Tick>, out: W) -> io::Result<u64> {
    write_csv(ticks, out, false)
}

/// Like [`write_ticks_csv`] with `bid,ask` columns; absent quotes are empty.
pub fn write_ticks_csv_with_quotes<W: Write>(
    ticks: impl IntoIterator<Item = Tick>,
    out: W,
) -> io::Result<u64> {
    write_csv(ticks, out, true)
}

fn write_csv<W: Write>(
    ticks: impl IntoIterator<Item = Tick>,
    out: W,
    quotes: bool,
) -> io::Result<u64> {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, out);
    out.write_all(if quotes {
        b"ts_ns,instrument,price,volume,bid,ask\n"
    } else {
        b"ts_ns,instrument,price,volume\n"
    })?;
    let mut count = 0u64;
    for tick in ticks {
        write!(
            out,
            "{},{},{},{}",
            tick.ts_ns, tick.instrument, tick.price, tick.volume
        )?;
        if quotes {
            out.write_all(b",")?;
            if let Some(bid) = tick.bid {
                write!(out, "{bid}")?;
            }
            out.write_all(b",")?;
            if let Some(ask) = tick.ask {
                write!(out, "{ask}")?;
            }
        }
        out.write_all(b"\n")?;
        count += 1;
    }
    let mut out = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    out.flush()?;
    Ok(count)
}
