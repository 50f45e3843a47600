"""Writes crates/quiver-features/tests/fixtures/python_stats.txt.

Each line: comma-separated window of prices, then `|mean|pstdev` as printed by
CPython's statistics module (exact rational arithmetic, rounded once). The Rust
tests compare quiver_strategy::exact against it; they need no Python.
"""
import random
import statistics
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "crates/quiver-features/tests/fixtures/python_stats.txt"

def main() -> None:
    rng = random.Random(20261122)
    lines = []
    for i in range(3000):
        n = rng.randint(2, 64)
        base = rng.choice([5, 50, 100, 1000, 25000])
        grid = rng.choice([0.05, 0.01, 0.25, 1.0])
        steps = int(base / grid)
        prices = []
        for _ in range(n):
            steps = max(1, steps + rng.randint(-3, 3))
            prices.append(round(steps * grid, 2))
        if i % 10 == 0:  # ties and degenerate windows
            prices = [prices[0]] * (n - 1) + [prices[-1]]
        xs = [float(p) for p in prices]
        lines.append(",".join(repr(x) for x in xs) + f"|{statistics.mean(xs)!r}|{statistics.pstdev(xs)!r}")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} windows to {OUT} with Python {sys.version.split()[0]}")

if __name__ == "__main__":
    main()
