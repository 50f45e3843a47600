//! Performance statistics of an equity curve and an account's trades.
//!
//! Definitions (the report and `scripts/check_backtest.py` use the same):
//! - sample returns `r_k = e_k / e_{k-1} − 1` over the equity samples;
//! - Sharpe = mean(r) / std(r) × √(periods per year), `std` with n − 1;
//! - Sortino = mean(r) / √(mean(min(r, 0)²)) × √(periods per year);
//! - max drawdown = max over samples of (running peak − e_k) / running peak;
//! - win rate = winning / closed round trips (a round trip runs from a flat
//!   position back to flat, or to the other side; its PnL is net of fees);
//! - profit factor = Σ winning trips / |Σ losing trips|;
//! - turnover = Σ |fill notional| / capital.
//!
//! A statistic that cannot be computed (fewer than two returns, no losing
//! trip, a zero deviation) is `None`, shown as empty.

use crate::desk::{drawdown, Account};
use crate::money::Money;

/// The summary row of one account (or of all of them).
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub id: String,
    pub capital: Money,
    pub equity: Money,
    pub pnl: Money,
    pub realized: Money,
    pub unrealized: Money,
    pub total_return: f64,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub max_drawdown: f64,
    pub win_rate: Option<f64>,
    pub profit_factor: Option<f64>,
    pub turnover: f64,
    pub trades: u64,
    pub round_trips: u64,
    pub fees: Money,
    pub spread_slippage: Money,
    /// Signals received.
    pub signals: u64,
    /// Signals by [`crate::desk::REASONS`].
    pub verdicts: Vec<u64>,
}

/// The statistics of an equity curve.
pub struct Curve {
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub max_drawdown: f64,
}

pub fn curve(samples: &[Money], periods_per_year: f64) -> Curve {
    let returns: Vec<f64> = samples
        .windows(2)
        .filter(|w| w[0] > Money::ZERO)
        .map(|w| w[1].to_f64() / w[0].to_f64() - 1.0)
        .collect();
    let n = returns.len() as f64;
    let annual = periods_per_year.sqrt();
    let (sharpe, sortino) = if returns.len() >= 2 {
        let mean = returns.iter().sum::<f64>() / n;
        let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let down = (returns.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / n).sqrt();
        let sd = var.sqrt();
        (
            (sd > 0.0).then(|| mean / sd * annual),
            (down > 0.0).then(|| mean / down * annual),
        )
    } else {
        (None, None)
    };
    let mut peak = Money::ZERO;
    let mut max_drawdown = 0.0f64;
    for &e in samples {
        peak = peak.max(e);
        max_drawdown = max_drawdown.max(drawdown(peak, e));
    }
    Curve {
        sharpe,
        sortino,
        max_drawdown,
    }
}

pub fn summary(account: &Account, periods_per_year: f64) -> Summary {
    let c = curve(&account.samples, periods_per_year);
    let trips = account.wins + account.losses;
    let equity = account.equity();
    let pnl = equity - account.capital;
    Summary {
        id: account.id.clone(),
        capital: account.capital,
        equity,
        pnl,
        realized: account.realized,
        unrealized: pnl - account.realized + account.fees,
        total_return: ratio(pnl, account.capital).unwrap_or(0.0),
        sharpe: c.sharpe,
        sortino: c.sortino,
        max_drawdown: c.max_drawdown,
        win_rate: (trips > 0).then(|| account.wins as f64 / trips as f64),
        profit_factor: ratio(account.gross_profit, account.gross_loss),
        turnover: ratio(account.traded, account.capital).unwrap_or(0.0),
        trades: account.fills,
        round_trips: trips,
        fees: account.fees,
        spread_slippage: account.spread_slippage,
        signals: account.verdicts.iter().sum(),
        verdicts: account.verdicts.to_vec(),
    }
}

/// Every account as one; `samples` is their [`total_curve`].
pub fn total(accounts: &[Account], samples: &[Money], periods_per_year: f64) -> Summary {
    let mut all = Summary {
        id: "TOTAL".to_owned(),
        capital: Money::ZERO,
        equity: Money::ZERO,
        pnl: Money::ZERO,
        realized: Money::ZERO,
        unrealized: Money::ZERO,
        total_return: 0.0,
        sharpe: None,
        sortino: None,
        max_drawdown: 0.0,
        win_rate: None,
        profit_factor: None,
        turnover: 0.0,
        trades: 0,
        round_trips: 0,
        fees: Money::ZERO,
        spread_slippage: Money::ZERO,
        signals: 0,
        verdicts: vec![0; crate::desk::REASONS.len()],
    };
    let (mut wins, mut profit, mut loss, mut traded) =
        (0u64, Money::ZERO, Money::ZERO, Money::ZERO);
    for a in accounts {
        all.capital += a.capital;
        all.equity += a.equity();
        all.realized += a.realized;
        all.fees += a.fees;
        all.spread_slippage += a.spread_slippage;
        all.trades += a.fills;
        all.round_trips += a.wins + a.losses;
        wins += a.wins;
        profit += a.gross_profit;
        loss += a.gross_loss;
        traded += a.traded;
        for (sum, n) in all.verdicts.iter_mut().zip(a.verdicts) {
            *sum += n;
        }
    }
    all.signals = all.verdicts.iter().sum();
    all.pnl = all.equity - all.capital;
    all.unrealized = all.pnl - all.realized + all.fees;
    all.total_return = ratio(all.pnl, all.capital).unwrap_or(0.0);
    let c = curve(samples, periods_per_year);
    all.sharpe = c.sharpe;
    all.sortino = c.sortino;
    all.max_drawdown = c.max_drawdown;
    all.win_rate = (all.round_trips > 0).then(|| wins as f64 / all.round_trips as f64);
    all.profit_factor = ratio(profit, loss);
    all.turnover = ratio(traded, all.capital).unwrap_or(0.0);
    all
}

/// Σ over accounts of equity, per sample.
pub fn total_curve(accounts: &[Account]) -> Vec<Money> {
    let n = accounts.first().map_or(0, |a| a.samples.len());
    (0..n)
        .map(|k| accounts.iter().map(|a| a.samples[k]).sum())
        .collect()
}

fn ratio(a: Money, b: Money) -> Option<f64> {
    (b != Money::ZERO).then(|| a.to_f64() / b.to_f64())
}

/// Running drawdown of each sample.
pub fn drawdowns(samples: &[Money]) -> Vec<f64> {
    let mut peak = Money::ZERO;
    samples
        .iter()
        .map(|&e| {
            peak = peak.max(e);
            drawdown(peak, e)
        })
        .collect()
}
