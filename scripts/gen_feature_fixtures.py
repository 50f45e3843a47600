"""Writes crates/quiver-features/tests/fixtures/talib.csv: TA-Lib's SMA, EMA,
RSI and STDDEV on a committed random-walk price series.

The Rust tests read only the committed fixture; this script regenerates it. It
installs its pinned dependencies into a private virtualenv, so it needs only
python3 with venv and network access to PyPI:

    python3 scripts/gen_feature_fixtures.py

STDDEV is applied to the one-tick simple returns, which is the definition of
Quiver's volatility(n).
"""
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/quiver-features/tests/fixtures/talib.csv"
PINNED = ["TA-Lib==0.6.7", "numpy==2.3.5"]
TICKS = 1500
SEED = 20261122


def in_venv() -> None:
    """Re-runs this script inside a virtualenv that has TA-Lib."""
    venv = Path(tempfile.gettempdir()) / "quiver-talib-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PINNED], check=True)
    env = dict(os.environ, QUIVER_FIXTURE_VENV="1")
    raise SystemExit(subprocess.run([str(python), __file__], env=env).returncode)


def main() -> None:
    import numpy as np
    import talib

    rng = random.Random(SEED)
    steps = 2000  # price in 0.05 steps: 100.00
    prices = []
    for _ in range(TICKS):
        steps = max(1, steps + rng.choice([-3, -2, -1, -1, 0, 0, 1, 1, 2, 3]))
        prices.append(f"{steps * 5 // 100}.{steps * 5 % 100:02d}")
    x = np.array([float(p) for p in prices])
    returns = np.concatenate([[np.nan], (x[1:] - x[:-1]) / x[:-1]])
    columns = {
        "sma(10)": talib.SMA(x, 10),
        "ema(10)": talib.EMA(x, 10),
        "rsi(14)": talib.RSI(x, 14),
        "volatility(20)": np.concatenate([[np.nan], talib.STDDEV(returns[1:], 20, 1.0)]),
    }
    lines = ["price," + ",".join(columns)]
    for i, price in enumerate(prices):
        cells = ["" if np.isnan(col[i]) else repr(float(col[i])) for col in columns.values()]
        lines.append(price + "," + ",".join(cells))
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT} with TA-Lib {talib.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    if os.environ.get("QUIVER_FIXTURE_VENV") != "1":
        in_venv()
    main()
