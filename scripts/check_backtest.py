#!/usr/bin/env python3
"""Recomputes a `quiver backtest` report from its trades, its equity curve
and the tick file, independently of Quiver, and compares every figure of
summary.json with it.

    scripts/check_backtest.py REPORT_DIR TICKS.csv

Money is checked exactly (Decimal), ratios to 1e-9 relative. Exit 0 when
everything matches, 1 with the differences listed otherwise. Needs pandas.
"""

import json
import math
import sys
from collections import defaultdict, deque
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd


def close(a, b, rel=1e-9):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def curve_stats(equity, periods_per_year):
    e = pd.Series(equity, dtype="float64")
    prev = e.shift(1)
    r = (e / prev - 1.0)[prev > 0].dropna()
    sharpe = sortino = None
    if len(r) >= 2:
        sd = r.std(ddof=1)
        down = math.sqrt((np.minimum(r, 0.0) ** 2).mean())
        scale = math.sqrt(periods_per_year)
        sharpe = r.mean() / sd * scale if sd > 0 else None
        sortino = r.mean() / down * scale if down > 0 else None
    peak = e.cummax()
    dd = ((peak - e) / peak).where(peak > 0, 0.0).clip(lower=0.0)
    return sharpe, sortino, float(dd.max()) if len(dd) else 0.0


def replay_trades(trades, capital):
    """Cash, positions, FIFO realised PnL and round trips per strategy."""
    books = defaultdict(lambda: {
        "cash": capital, "fees": Decimal(0), "realized": Decimal(0), "traded": Decimal(0),
        "fills": 0, "pos": defaultdict(int), "lots": defaultdict(deque), "trip": defaultdict(Decimal),
        "wins": 0, "losses": 0, "profit": Decimal(0), "loss": Decimal(0),
    })
    for row in trades.itertuples(index=False):
        b = books[row.strategy]
        q = int(row.quantity) * (1 if row.side == "BUY" else -1)
        price, fee, inst = Decimal(row.price), Decimal(row.fee), int(row.instrument)
        b["cash"] -= price * q + fee
        b["fees"] += fee
        b["traded"] += abs(price * q)
        b["fills"] += 1
        before = b["pos"][inst]
        lots, remaining, realized = b["lots"][inst], q, Decimal(0)
        while remaining and lots and (lots[0][0] > 0) != (remaining > 0):
            lot_q, lot_p = lots[0]
            closing = min(abs(remaining), abs(lot_q)) * (1 if lot_q > 0 else -1)
            realized += (price - lot_p) * closing
            lot_q -= closing
            remaining += closing
            if lot_q == 0:
                lots.popleft()
            else:
                lots[0] = (lot_q, lot_p)
        if remaining:
            lots.append((remaining, price))
        after = before + q
        b["pos"][inst] = after
        b["realized"] += realized
        b["trip"][inst] += realized - fee
        assert after == int(row.position), f"position after fill {row}"
        assert realized == Decimal(row.realized), f"realised PnL of fill {row}"
        if before != 0 and (after == 0 or (after > 0) != (before > 0)):
            trip = b["trip"].pop(inst)
            if trip > 0:
                b["wins"] += 1
                b["profit"] += trip
            else:
                b["losses"] += 1
                b["loss"] -= trip
    return books


def main():
    report, ticks_path = Path(sys.argv[1]), Path(sys.argv[2])
    summary = json.loads((report / "summary.json").read_text())
    ppy = summary["periods_per_year"]
    trades = pd.read_csv(report / "trades.csv", dtype=str)
    equity = pd.read_csv(report / "equity.csv", dtype={"equity": str})
    ticks = pd.read_csv(ticks_path, dtype=str)
    last = {int(k): Decimal(v) for k, v in ticks.groupby("instrument")["price"].last().items()}
    rows = summary["strategies"]
    capital = Decimal(rows[0]["capital"]) if rows else Decimal(0)
    books = replay_trades(trades, capital)
    problems = []

    def check(what, got, want, exact=False):
        ok = (got == want) if exact else close(got, want)
        if not ok:
            problems.append(f"{what}: report {got!r}, recomputed {want!r}")

    totals = defaultdict(Decimal)
    wins = losses = 0
    for row in rows:
        sid = row["strategy"]
        b = books[sid] if sid in books else books.default_factory()
        marked = sum((Decimal(p) * last[i] for i, p in b["pos"].items()), Decimal(0))
        eq = b["cash"] + marked
        check(f"{sid} equity", Decimal(row["equity"]), eq, exact=True)
        check(f"{sid} pnl", Decimal(row["pnl"]), eq - capital, exact=True)
        check(f"{sid} realized", Decimal(row["realized"]), b["realized"], exact=True)
        check(f"{sid} fees", Decimal(row["fees"]), b["fees"], exact=True)
        check(f"{sid} trades", row["trades"], b["fills"], exact=True)
        check(f"{sid} round trips", row["round_trips"], b["wins"] + b["losses"], exact=True)
        trips = b["wins"] + b["losses"]
        check(f"{sid} win rate", row["win_rate"], b["wins"] / trips if trips else None)
        pf = float(b["profit"] / b["loss"]) if b["loss"] else None
        check(f"{sid} profit factor", row["profit_factor"], pf)
        check(f"{sid} turnover", row["turnover"], float(b["traded"] / capital))
        check(f"{sid} return", row["return"], float((eq - capital) / capital))
        series = equity[equity.strategy == sid]["equity"]
        check(f"{sid} last equity sample", Decimal(series.iloc[-1]), eq, exact=True)
        sharpe, sortino, mdd = curve_stats([float(Decimal(x)) for x in series], ppy)
        check(f"{sid} sharpe", row["sharpe"], sharpe)
        check(f"{sid} sortino", row["sortino"], sortino)
        check(f"{sid} max drawdown", row["max_drawdown"], mdd)
        for key, value in (("equity", eq), ("fees", b["fees"]), ("traded", b["traded"]), ("capital", capital)):
            totals[key] += value
        wins += b["wins"]
        losses += b["losses"]
    total = summary["total"]
    check("TOTAL equity", Decimal(total["equity"]), totals["equity"], exact=True)
    check("TOTAL fees", Decimal(total["fees"]), totals["fees"], exact=True)
    check("TOTAL trades", total["trades"], len(trades), exact=True)
    check("TOTAL win rate", total["win_rate"], wins / (wins + losses) if wins + losses else None)
    check("TOTAL turnover", total["turnover"], float(totals["traded"] / totals["capital"]) if totals["capital"] else 0.0)
    series = equity[equity.strategy == "TOTAL"]["equity"]
    sharpe, sortino, mdd = curve_stats([float(Decimal(x)) for x in series], ppy)
    check("TOTAL sharpe", total["sharpe"], sharpe)
    check("TOTAL sortino", total["sortino"], sortino)
    check("TOTAL max drawdown", total["max_drawdown"], mdd)
    if problems:
        print("\n".join(problems))
        return 1
    print(f"check_backtest: {len(rows)} strategies, {len(trades)} fills, {len(series)} samples: every figure matches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
