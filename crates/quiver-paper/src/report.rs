//! The backtest report, rendered to text: `summary.csv`, `summary.json`,
//! `trades.csv`, `equity.csv` and a self-contained `report.html` whose
//! plots are SVG drawn here (no script or style from the network).

use std::fmt::Write as _;

use crate::desk::{Desk, Fill, REASONS};
use crate::money::Money;
use crate::stats::{self, Summary};

/// Everything a report holds, computed once.
pub struct Report {
    pub strategies: Vec<Summary>,
    pub total: Summary,
    /// Tick time of each equity sample.
    pub times: Vec<i64>,
    /// Per strategy, then the total last: equity at each sample.
    pub curves: Vec<Vec<f64>>,
    /// Every account's equity summed, at each sample (exact).
    pub total_curve: Vec<Money>,
    pub total_drawdowns: Vec<f64>,
    pub periods_per_year: f64,
}

impl Report {
    pub fn of(desk: &Desk) -> Report {
        let ppy = desk.spec().paper.periods_per_year();
        let accounts = desk.accounts();
        let total_curve = stats::total_curve(accounts);
        let mut curves: Vec<Vec<f64>> = accounts
            .iter()
            .map(|a| a.samples.iter().map(|m| m.to_f64()).collect())
            .collect();
        curves.push(total_curve.iter().map(|m| m.to_f64()).collect());
        Report {
            strategies: accounts.iter().map(|a| stats::summary(a, ppy)).collect(),
            total: stats::total(accounts, &total_curve, ppy),
            times: desk.sample_times().to_vec(),
            curves,
            total_drawdowns: stats::drawdowns(&total_curve),
            total_curve,
            periods_per_year: ppy,
        }
    }

    fn rows(&self) -> impl Iterator<Item = &Summary> {
        self.strategies.iter().chain(std::iter::once(&self.total))
    }

    /// The summary as a text table, for a terminal.
    pub fn table(&self) -> String {
        let head = [
            "strategy", "pnl", "return", "sharpe", "sortino", "max_dd", "win_rate", "pf",
            "turnover", "trades", "fees", "refused",
        ];
        let rows: Vec<[String; 12]> = self
            .rows()
            .map(|s| {
                let refused: u64 = s.verdicts.iter().skip(2).sum();
                [
                    s.id.clone(),
                    fixed(s.pnl.to_f64()),
                    pct(s.total_return),
                    opt_fixed(s.sharpe),
                    opt_fixed(s.sortino),
                    pct(s.max_drawdown),
                    s.win_rate.map(pct).unwrap_or_default(),
                    opt_fixed(s.profit_factor),
                    fixed(s.turnover),
                    s.trades.to_string(),
                    fixed(s.fees.to_f64()),
                    refused.to_string(),
                ]
            })
            .collect();
        let mut widths = head.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
            for (k, (cell, w)) in cells.zip(widths).enumerate() {
                if k == 0 {
                    let _ = write!(out, "{cell:<w$}");
                } else {
                    let _ = write!(out, "  {cell:>w$}");
                }
            }
            out.push('\n');
        };
        line(&mut out, &mut head.iter().copied());
        let total = rows.len().saturating_sub(1);
        for (k, row) in rows.iter().enumerate() {
            if k == total {
                let width: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
                out.push_str(&"-".repeat(width));
                out.push('\n');
            }
            line(&mut out, &mut row.iter().map(String::as_str));
        }
        out
    }

    pub fn summary_csv(&self) -> String {
        let mut out = String::from(
            "strategy,capital,equity,pnl,realized,unrealized,return,sharpe,sortino,max_drawdown,win_rate,profit_factor,turnover,trades,round_trips,fees,spread_slippage,signals",
        );
        for reason in REASONS {
            let _ = write!(out, ",{reason}");
        }
        out.push('\n');
        for s in self.rows() {
            let _ = write!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                s.id,
                s.capital,
                s.equity,
                s.pnl,
                s.realized,
                s.unrealized,
                num(s.total_return),
                opt(s.sharpe),
                opt(s.sortino),
                num(s.max_drawdown),
                opt(s.win_rate),
                opt(s.profit_factor),
                num(s.turnover),
                s.trades,
                s.round_trips,
                s.fees,
                s.spread_slippage,
                s.signals
            );
            for n in &s.verdicts {
                let _ = write!(out, ",{n}");
            }
            out.push('\n');
        }
        out
    }

    pub fn summary_json(&self) -> String {
        let row = |s: &Summary| {
            let mut verdicts = serde_json::Map::new();
            for (reason, n) in REASONS.iter().zip(&s.verdicts) {
                verdicts.insert((*reason).to_owned(), (*n).into());
            }
            serde_json::json!({
                "strategy": s.id,
                "capital": s.capital.to_string(),
                "equity": s.equity.to_string(),
                "pnl": s.pnl.to_string(),
                "realized": s.realized.to_string(),
                "unrealized": s.unrealized.to_string(),
                "return": finite(s.total_return),
                "sharpe": s.sharpe.and_then(finite),
                "sortino": s.sortino.and_then(finite),
                "max_drawdown": finite(s.max_drawdown),
                "win_rate": s.win_rate.and_then(finite),
                "profit_factor": s.profit_factor.and_then(finite),
                "turnover": finite(s.turnover),
                "trades": s.trades,
                "round_trips": s.round_trips,
                "fees": s.fees.to_string(),
                "spread_slippage": s.spread_slippage.to_string(),
                "signals": s.signals,
                "verdicts": verdicts,
            })
        };
        let doc = serde_json::json!({
            "periods_per_year": self.periods_per_year,
            "samples": self.times.len(),
            "strategies": self.strategies.iter().map(row).collect::<Vec<_>>(),
            "total": row(&self.total),
        });
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The header of `trades.csv`.
    pub const TRADES_HEADER: &'static str =
        "seq,ts_ns,signal_seq,strategy,instrument,side,quantity,price,fee,position,realized\n";

    /// One fill as a line of `trades.csv`.
    pub fn trade_line(out: &mut String, desk: &Desk, f: &Fill) {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{}",
            f.seq,
            f.ts_ns,
            f.signal_seq,
            desk.account_id(f.account),
            f.instrument,
            if f.quantity > 0 { "BUY" } else { "SELL" },
            f.quantity.unsigned_abs(),
            f.price,
            f.fee,
            f.position,
            f.realized
        );
    }

    pub fn equity_csv(&self, desk: &Desk) -> String {
        let mut out = String::from("ts_ns,strategy,equity,drawdown\n");
        let accounts = desk.accounts();
        for account in accounts {
            let dd = stats::drawdowns(&account.samples);
            for (k, e) in account.samples.iter().enumerate() {
                let _ = writeln!(out, "{},{},{},{}", self.times[k], account.id, e, num(dd[k]));
            }
        }
        for (k, e) in self.total_curve.iter().enumerate() {
            let _ = writeln!(
                out,
                "{},TOTAL,{},{}",
                self.times[k],
                e,
                num(self.total_drawdowns[k])
            );
        }
        out
    }

    /// The self-contained HTML page.
    pub fn html(&self, title: &str) -> String {
        let mut out = String::with_capacity(64 << 10);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{STYLE}</style></head>\n<body>\n<h1>{}</h1>\n",
            escape(title),
            escape(title)
        );
        let t = &self.total;
        let _ = writeln!(
            out,
            "<p class=\"headline\">{} strategies · PnL <b>{}</b> ({}) · Sharpe {} · max drawdown {} · {} trades · fees {}</p>",
            self.strategies.len(),
            fixed(t.pnl.to_f64()),
            pct(t.total_return),
            opt_fixed(t.sharpe),
            pct(t.max_drawdown),
            t.trades,
            fixed(t.fees.to_f64())
        );
        let hours: Vec<f64> = self
            .times
            .iter()
            .map(|&ts| (ts - self.times.first().copied().unwrap_or(0)) as f64 / 3.6e12)
            .collect();
        let total = self.curves.last().cloned().unwrap_or_default();
        out.push_str("<section id=\"equity\"><h2>Equity</h2>\n");
        out.push_str(&line_chart(
            "total equity",
            &hours,
            &[("TOTAL", &total)],
            "hours since the first tick",
        ));
        let per: Vec<(&str, &Vec<f64>)> = self
            .strategies
            .iter()
            .zip(&self.curves)
            .map(|(s, c)| (s.id.as_str(), c))
            .collect();
        out.push_str(&line_chart(
            "equity by strategy",
            &hours,
            &per,
            "hours since the first tick",
        ));
        out.push_str("</section>\n<section id=\"drawdown\"><h2>Drawdown</h2>\n");
        let dd: Vec<f64> = self.total_drawdowns.iter().map(|d| -100.0 * d).collect();
        out.push_str(&line_chart(
            "total drawdown, %",
            &hours,
            &[("drawdown", &dd)],
            "hours since the first tick",
        ));
        out.push_str("</section>\n<section id=\"pnl\"><h2>PnL by strategy</h2>\n");
        let pnl: Vec<(&str, f64)> = self
            .strategies
            .iter()
            .map(|s| (s.id.as_str(), s.pnl.to_f64()))
            .collect();
        out.push_str(&bar_chart("PnL", &pnl));
        out.push_str("</section>\n<section id=\"signals\"><h2>Signals by strategy</h2>\n");
        let ordered: Vec<(&str, f64)> = self
            .strategies
            .iter()
            .map(|s| (s.id.as_str(), (s.verdicts[0] + s.verdicts[1]) as f64))
            .collect();
        let refused: Vec<(&str, f64)> = self
            .strategies
            .iter()
            .map(|s| {
                let all: u64 = s.verdicts.iter().sum();
                (s.id.as_str(), (all - s.verdicts[0] - s.verdicts[1]) as f64)
            })
            .collect();
        out.push_str(&bar_chart("signals ordered", &ordered));
        out.push_str(&bar_chart(
            "signals refused (risk, costs, no change)",
            &refused,
        ));
        out.push_str("</section>\n<section id=\"summary\"><h2>Summary</h2>\n<table>\n<thead><tr>");
        for h in [
            "strategy",
            "PnL",
            "return",
            "Sharpe",
            "Sortino",
            "max DD",
            "win rate",
            "profit factor",
            "turnover",
            "trades",
            "fees",
            "spread+slippage",
            "signals",
        ] {
            let _ = write!(out, "<th>{h}</th>");
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for s in self.rows() {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&s.id),
                if s.pnl.is_negative() { "neg" } else { "pos" },
                fixed(s.pnl.to_f64()),
                pct(s.total_return),
                opt_fixed(s.sharpe),
                opt_fixed(s.sortino),
                pct(s.max_drawdown),
                s.win_rate.map(pct).unwrap_or_default(),
                opt_fixed(s.profit_factor),
                fixed(s.turnover),
                s.trades,
                fixed(s.fees.to_f64()),
                fixed(s.spread_slippage.to_f64()),
                s.signals
            );
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
        out.push_str(
            "<script>\n// Marks the page as drawn once every chart has its shapes.\n(function () {\n  var charts = document.querySelectorAll('svg.chart');\n  var drawn = Array.prototype.every.call(charts, function (c) { return c.querySelectorAll('path,rect').length > 0; });\n  document.body.setAttribute('data-rendered', drawn ? 'charts:' + charts.length : 'incomplete');\n})();\n</script>\n</body></html>\n",
        );
        out
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}\
table{border-collapse:collapse;font-size:.85em}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:right}\
td:first-child,th:first-child{text-align:left}.neg{color:#b00}.pos{color:#070}svg.chart{display:block;margin:.5em 0}\
.headline{font-size:1.05em}";

const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 280.0;
const MARGIN: f64 = 60.0;
/// Points per line at most: a longer curve is thinned evenly.
const MAX_POINTS: usize = 1_500;

/// An SVG chart of `series` (name, y per x) over `xs`.
fn line_chart(title: &str, xs: &[f64], series: &[(&str, &Vec<f64>)], x_label: &str) -> String {
    let mut out = String::new();
    let ys = series.iter().flat_map(|(_, ys)| ys.iter().copied());
    let (lo, hi) = bounds(ys);
    let (x0, x1) = bounds(xs.iter().copied());
    let sx = |x: f64| MARGIN + (x - x0) / (x1 - x0).max(1e-12) * (WIDTH - 2.0 * MARGIN);
    let sy =
        |y: f64| HEIGHT - MARGIN / 2.0 - (y - lo) / (hi - lo).max(1e-12) * (HEIGHT - 1.2 * MARGIN);
    svg_head(&mut out, title);
    axes(&mut out, lo, hi, x0, x1, x_label);
    for (n, (name, ys)) in series.iter().enumerate() {
        let step = (ys.len() / MAX_POINTS).max(1);
        let mut d = String::new();
        for (k, (&x, &y)) in xs.iter().zip(ys.iter()).enumerate() {
            if k % step != 0 && k + 1 != ys.len() {
                continue;
            }
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if d.is_empty() { "M" } else { " L" },
                sx(x),
                sy(y)
            );
        }
        if d.is_empty() {
            continue;
        }
        let color = PALETTE[n % PALETTE.len()];
        let _ = writeln!(
            out,
            "<path d=\"{d}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.3\"><title>{}</title></path>",
            escape(name)
        );
        // A legend while it fits; past that, each line names itself on hover.
        if series.len() > 1 && n < 12 {
            let y = 30.0 + 12.0 * n as f64;
            let _ = writeln!(
                out,
                "<text x=\"{:.0}\" y=\"{y:.0}\" font-size=\"10\" fill=\"{color}\">{}</text>",
                WIDTH - MARGIN + 4.0,
                escape(name)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

/// An SVG bar chart, one bar per (label, value), zero line included.
fn bar_chart(title: &str, bars: &[(&str, f64)]) -> String {
    let mut out = String::new();
    let (lo, hi) = bounds(bars.iter().map(|b| b.1).chain([0.0]));
    let n = bars.len().max(1) as f64;
    let band = (WIDTH - 2.0 * MARGIN) / n;
    let sy = |y: f64| HEIGHT - MARGIN - (y - lo) / (hi - lo).max(1e-12) * (HEIGHT - 1.5 * MARGIN);
    svg_head(&mut out, title);
    axes(&mut out, lo, hi, 0.0, 0.0, "");
    let zero = sy(0.0);
    for (k, (label, v)) in bars.iter().enumerate() {
        let x = MARGIN + k as f64 * band + band * 0.1;
        let (top, bottom) = if *v >= 0.0 {
            (sy(*v), zero)
        } else {
            (zero, sy(*v))
        };
        let _ = writeln!(
            out,
            "<rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
            (band * 0.8).max(0.5),
            (bottom - top).max(0.5),
            if *v < 0.0 { "#d62728" } else { "#2ca02c" },
            escape(label),
            fixed(*v)
        );
        if bars.len() <= 40 {
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"end\" transform=\"rotate(-45 {:.1} {:.1})\">{}</text>",
                x + band * 0.4,
                HEIGHT - MARGIN + 12.0,
                x + band * 0.4,
                HEIGHT - MARGIN + 12.0,
                escape(label)
            );
        }
    }
    let _ = writeln!(
        out,
        "<line x1=\"{MARGIN}\" x2=\"{}\" y1=\"{zero:.1}\" y2=\"{zero:.1}\" stroke=\"#444\"/>",
        WIDTH - MARGIN
    );
    out.push_str("</svg>\n");
    out
}

fn svg_head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{0}\">\n<title>{0}</title>\n<text x=\"{1}\" y=\"14\" font-size=\"12\" font-weight=\"bold\" text-anchor=\"middle\">{0}</text>\n",
        escape(title),
        WIDTH / 2.0
    );
}

fn axes(out: &mut String, lo: f64, hi: f64, x0: f64, x1: f64, x_label: &str) {
    let _ = writeln!(
        out,
        "<text x=\"4\" y=\"26\" font-size=\"11\">{}</text><text x=\"4\" y=\"{:.0}\" font-size=\"11\">{}</text>",
        fixed(hi),
        HEIGHT - MARGIN / 2.0,
        fixed(lo)
    );
    if !x_label.is_empty() {
        let _ = writeln!(
            out,
            "<text x=\"{MARGIN}\" y=\"{:.0}\" font-size=\"11\">{}</text><text x=\"{:.0}\" y=\"{:.0}\" font-size=\"11\" text-anchor=\"end\">{} ({})</text>",
            HEIGHT - 4.0,
            fixed(x0),
            WIDTH - MARGIN,
            HEIGHT - 4.0,
            fixed(x1),
            escape(x_label)
        );
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    if lo == hi {
        return (lo - 1.0, hi + 1.0);
    }
    (lo, hi)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// A float as CSV writes it: the shortest round-trip text.
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(num).unwrap_or_default()
}

fn fixed(v: f64) -> String {
    format!("{v:.2}")
}

fn opt_fixed(v: Option<f64>) -> String {
    v.map(fixed).unwrap_or_default()
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}
