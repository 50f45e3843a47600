"""Runs the design documents' reference strategies on the golden ticks.

The classes below are seed 002's `RulesMomentumProcessor`,
`RulesMeanReversionProcessor`, `StandardValidator` and `StrategyExecutor`
("STRATEGY MODULES REDESIGN"), copied with only the imports trimmed. The output,
crates/quiver-cli/tests/golden/seed_reference.jsonl, is what Quiver's momentum
and mean_reversion rows of the golden config must reproduce; the Rust test reads
only that committed file, so the normal test run needs no Python.

Usage: python3 scripts/seed_reference.py
"""
from __future__ import annotations

import csv
import json
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from statistics import mean, pstdev
from typing import Any, Dict, List, Optional

GOLDEN = Path(__file__).resolve().parent.parent / "crates/quiver-cli/tests/golden"


@dataclass(frozen=True, slots=True)
class MarketTick:
    instrument_token: int
    last_price: Decimal
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class SignalResult:
    signal_type: str
    confidence: float
    quantity: int
    price: Decimal
    reasoning: str
    metadata: Dict[str, Any] | None = None


class RulesMomentumProcessor:
    def __init__(self, lookback_periods: int = 20, threshold: float = 0.01, position_size: int = 100):
        self.lookback = int(lookback_periods)
        self.threshold = float(threshold)
        self.qty = int(position_size)

    def get_required_history_length(self) -> int:
        return self.lookback

    def process_tick(self, tick: MarketTick, history: List[MarketTick]) -> Optional[SignalResult]:
        if len(history) < self.lookback:
            return None
        start = float(history[-self.lookback].last_price)
        now = float(tick.last_price)
        if start <= 0.0:
            return None
        change = (now - start) / start
        if change > self.threshold:
            return SignalResult(signal_type="BUY", confidence=min(1.0, abs(change) * 5.0), quantity=self.qty,
                                price=Decimal(str(now)), reasoning=f"Momentum: +{change:.2%} over {self.lookback}",
                                metadata={"change": change})
        if change < -self.threshold:
            return SignalResult(signal_type="SELL", confidence=min(1.0, abs(change) * 5.0), quantity=self.qty,
                                price=Decimal(str(now)), reasoning=f"Momentum: {change:.2%} over {self.lookback}",
                                metadata={"change": change})
        return None


class RulesMeanReversionProcessor:
    def __init__(self, lookback_periods: int = 20, z_entry: float = 1.0, position_size: int = 100):
        self.lookback = int(lookback_periods)
        self.z_entry = float(z_entry)
        self.qty = int(position_size)

    def get_required_history_length(self) -> int:
        return self.lookback

    def process_tick(self, tick: MarketTick, history: List[MarketTick]) -> Optional[SignalResult]:
        if len(history) < self.lookback:
            return None
        prices = [float(h.last_price) for h in history[-self.lookback:]]
        mu = mean(prices)
        sigma = pstdev(prices) or 1e-9
        z = (float(tick.last_price) - mu) / sigma
        if z <= -self.z_entry:
            return SignalResult("BUY", confidence=min(1.0, abs(z) / 3), quantity=self.qty,
                                price=Decimal(str(tick.last_price)),
                                reasoning=f"Mean reversion: z={z:.2f} below band", metadata={"z": z})
        if z >= self.z_entry:
            return SignalResult("SELL", confidence=min(1.0, abs(z) / 3), quantity=self.qty,
                                price=Decimal(str(tick.last_price)),
                                reasoning=f"Mean reversion: z={z:.2f} above band", metadata={"z": z})
        return None


class StandardValidator:
    def __init__(self, params: Dict[str, Any]):
        self.min_conf = float(params.get("min_confidence", 0.0))
        self.max_qty = int(params.get("max_quantity", 10**9))

    def validate(self, signal, tick, history):
        if signal is None:
            return None
        if not (0.0 <= signal.confidence <= 1.0):
            return None
        if signal.quantity <= 0 or signal.quantity > self.max_qty:
            return None
        if signal.price <= Decimal("0"):
            return None
        if signal.confidence < self.min_conf:
            return None
        return signal


class StrategyExecutor:
    def __init__(self, processor, validator):
        self.processor = processor
        self.validator = validator
        self._history = defaultdict(lambda: deque(maxlen=max(1, self.processor.get_required_history_length())))

    def on_tick(self, tick: MarketTick) -> Optional[SignalResult]:
        hist = self._history[tick.instrument_token]
        hist.append(tick)
        if len(hist) < self.processor.get_required_history_length():
            return None
        raw = self.processor.process_tick(tick, list(hist))
        return self.validator.validate(raw, tick, list(hist))


# The momentum and mean_reversion rows of golden/strategies.yaml, in file order.
ROWS = [
    ("mom-10", RulesMomentumProcessor, {"lookback_periods": 10, "threshold": 0.005, "position_size": 50}, [1001, 1002, 1003, 1004]),
    ("mom-default", RulesMomentumProcessor, {}, [1001, 1003]),
    ("mr-5", RulesMeanReversionProcessor, {"lookback_periods": 5, "z_entry": 1.2, "position_size": 30, "min_confidence": 0.45}, [1002, 1004]),
    ("mr-ties", RulesMeanReversionProcessor, {"lookback_periods": 2, "z_entry": 1.0}, [1001]),
]


def main() -> None:
    executors = []
    for sid, cls, params, instruments in ROWS:
        proc_params = {k: v for k, v in params.items() if k not in ("min_confidence", "max_quantity")}
        executors.append((sid, StrategyExecutor(cls(**proc_params), StandardValidator(params)), set(instruments)))
    out = []
    with open(GOLDEN / "ticks.csv", newline="") as f:
        for seq, row in enumerate(csv.DictReader(f)):
            ts = int(row["ts_ns"])
            tick = MarketTick(int(row["instrument"]), Decimal(row["price"]),
                              datetime.fromtimestamp(ts / 1e9, tz=timezone.utc))
            for sid, executor, instruments in executors:
                if tick.instrument_token not in instruments:
                    continue
                signal = executor.on_tick(tick)
                if signal is None:
                    continue
                out.append(json.dumps({
                    "seq": seq, "strategy_id": sid, "instrument": tick.instrument_token,
                    "side": signal.signal_type, "confidence": signal.confidence,
                    "quantity": signal.quantity, "price": str(signal.price),
                    "reasoning": signal.reasoning, "metadata": signal.metadata,
                }))
    (GOLDEN / "seed_reference.jsonl").write_text("\n".join(out) + "\n")
    print(f"wrote {len(out)} reference signals")


if __name__ == "__main__":
    main()
