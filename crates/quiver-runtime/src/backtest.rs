//! `quiver backtest`: a replay whose signals go to the paper desk
//! ([`quiver_paper::Desk`]) instead of a file, and the report of what the
//! desk made of them.
//!
//! The desk sees every tick and, right after it, the signals that tick
//! caused, in output order, whatever the batch sizes: the driver finishes
//! batches in order and their signals are sorted by tick. So a backtest is
//! as deterministic as the replay it is built on.

use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hdrhistogram::Histogram;
use quiver_driver::Consumer;
use quiver_engine::{Engine, EngineSignal, Output};
use quiver_paper::{Desk, DeskSpec, Report};

use crate::replay::{latency_histogram, LineWriter, OneTick};

/// A desk with its accounts mapped to the engine's strategies, streaming
/// its fills as `trades.csv` lines to `trades`: what a backtest and the
/// live service's paper broker both drive, a tick then its signals.
pub(crate) struct PaperBook<T: Write> {
    desk: Desk,
    /// Engine strategy index → desk account.
    accounts: Vec<u32>,
    trades: T,
    /// Fills taken from the desk and their lines, reused.
    fills: Vec<quiver_paper::Fill>,
    text: String,
}

impl<T: Write> PaperBook<T> {
    /// A desk of `spec` with one account per strategy of `engine`, in
    /// engine order.
    pub(crate) fn new(spec: DeskSpec, engine: &Engine, trades: T) -> PaperBook<T> {
        let mut desk = Desk::new(spec, std::iter::empty());
        let accounts = accounts_of(&mut desk, engine);
        PaperBook {
            desk,
            accounts,
            trades,
            fills: Vec::new(),
            text: String::from(Report::TRADES_HEADER),
        }
    }

    /// The engine was rebuilt: strategy indices name the new set (a
    /// strategy new to the desk opens its account).
    pub(crate) fn reconfigured(&mut self, engine: &Engine) {
        self.accounts = accounts_of(&mut self.desk, engine);
    }

    pub(crate) fn tick(&mut self, seq: u64, tick: &quiver_core::Tick) {
        self.desk.on_tick(seq, tick);
    }

    /// The signal mode of `signal`'s strategy.
    pub(crate) fn mode(&self, signal: &EngineSignal) -> quiver_paper::SignalMode {
        self.desk.accounts()[self.accounts[signal.strategy.index()] as usize].mode
    }

    /// The order the latest signal became (see [`quiver_paper::Desk::last_order`]).
    pub(crate) fn last_order(&self) -> (i64, i64) {
        self.desk.last_order()
    }

    pub(crate) fn signal(&mut self, signal: &EngineSignal) -> quiver_paper::Verdict {
        let account = self.accounts[signal.strategy.index()];
        self.desk.on_signal(
            account,
            signal.seq,
            signal.ts_ns,
            signal.instrument,
            &signal.decision,
        )
    }

    /// Writes the fills since the last call.
    pub(crate) fn stream_fills(&mut self) -> io::Result<()> {
        self.desk.take_fills(&mut self.fills);
        for fill in &self.fills {
            Report::trade_line(&mut self.text, &self.desk, fill);
        }
        self.fills.clear();
        self.trades.write_all(self.text.as_bytes())?;
        self.text.clear();
        Ok(())
    }

    /// The desk after the last tick, every fill written and flushed.
    pub(crate) fn finish(mut self) -> io::Result<Desk> {
        self.desk.finish();
        self.stream_fills()?;
        self.trades.flush()?;
        Ok(self.desk)
    }
}

/// Hands each finished tick, then its signals, to the desk (and writes the
/// signals, when asked to).
pub(crate) struct DeskFeeder<'w, W: Write> {
    book: PaperBook<&'w mut dyn Write>,
    latency: Histogram<u64>,
    lines: Option<LineWriter<'w, W>>,
    failed: Option<io::Error>,
}

impl<'w, W: Write> DeskFeeder<'w, W> {
    pub(crate) fn new(
        spec: DeskSpec,
        engine: &Engine,
        lines: Option<LineWriter<'w, W>>,
        trades: &'w mut dyn Write,
    ) -> DeskFeeder<'w, W> {
        DeskFeeder {
            book: PaperBook::new(spec, engine, trades),
            latency: latency_histogram(),
            lines,
            failed: None,
        }
    }

    /// The desk after its last tick, the per-tick latency and the signal
    /// lines written.
    pub(crate) fn finish(mut self) -> io::Result<(Desk, Histogram<u64>, u64)> {
        if let Some(err) = self.failed.take() {
            return Err(err);
        }
        let desk = self.book.finish()?;
        let lines = match self.lines {
            Some(lines) => lines.end()?,
            None => 0,
        };
        Ok((desk, self.latency, lines))
    }
}

fn accounts_of(desk: &mut Desk, engine: &Engine) -> Vec<u32> {
    engine
        .strategies()
        .map(|s| desk.account_of(engine.strategy_id(s)))
        .collect()
}

impl<W: Write> Consumer<OneTick> for DeskFeeder<'_, W> {
    fn complete(
        &mut self,
        engine: &Engine,
        batches: std::vec::Drain<'_, OneTick>,
        out: &mut Output,
    ) -> ControlFlow<()> {
        let now = Instant::now();
        crate::publish::log_events(engine, out);
        if let Some(lines) = &mut self.lines {
            lines.write(engine, out)?;
        }
        let mut signals = out.signals.iter().peekable();
        for batch in batches {
            self.latency
                .saturating_record(now.duration_since(batch.dispatched()).as_nanos() as u64);
            let (seq, tick) = batch.tick();
            self.book.tick(seq, tick);
            while let Some(signal) = signals.next_if(|s| s.seq == seq) {
                self.book.signal(signal);
            }
        }
        debug_assert!(signals.next().is_none(), "a signal of a tick not finished");
        if let Err(err) = self.book.stream_fills() {
            self.failed = Some(err);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn reconfigured(&mut self, engine: &Engine) {
        self.book.reconfigured(engine);
    }
}

/// The files of a report, in its directory: `trades.csv` is written while
/// the backtest runs ([`trades_file`]), the others by [`write_report`].
pub const REPORT_FILES: [&str; 5] = [
    "summary.csv",
    "summary.json",
    "trades.csv",
    "equity.csv",
    "report.html",
];

/// Creates `dir` when missing and opens its `trades.csv` for the fills.
pub fn trades_file(dir: &Path) -> io::Result<io::BufWriter<std::fs::File>> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("trades.csv");
    let file = std::fs::File::create(&path)
        .map_err(|err| io::Error::new(err.kind(), format!("creating {}: {err}", path.display())))?;
    Ok(io::BufWriter::with_capacity(1 << 16, file))
}

/// Writes the report of `desk` into `dir` (beside its `trades.csv`);
/// returns the report and the path of `report.html`.
pub fn write_report(desk: &Desk, dir: &Path, title: &str) -> io::Result<(Report, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let report = Report::of(desk);
    let files = [
        ("summary.csv", report.summary_csv()),
        ("summary.json", report.summary_json()),
        ("equity.csv", report.equity_csv(desk)),
        ("report.html", report.html(title)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|err| {
            io::Error::new(err.kind(), format!("writing {}: {err}", path.display()))
        })?;
    }
    Ok((report, dir.join("report.html")))
}
