#!/usr/bin/env bash
# Batched inference against one row per call: 100 `ml_momentum` strategies
# sharing the MLP over 400 instruments (configs/bench_ml.yaml, 10 followers per
# instrument) on generated ticks, replayed on ONNX Runtime with one request per
# model call, then batched, then on tract. Prints each run's summary lines and
# checks that the batched signals equal the unbatched ones.
#
#   scripts/bench_ml.sh [TICKS]        # default 200000 ticks (2,000,000 inferences)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TICKS="${1:-200000}"
cd "$ROOT"
cargo build --release --locked --quiet
QUIVER="$ROOT/target/release/quiver"
ORT_DYLIB_PATH="$(scripts/fetch_onnxruntime.sh)"
export ORT_DYLIB_PATH
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

"$QUIVER" gen --instruments 400 --ticks "$TICKS" --seed 1 --out "$WORK/ticks.csv" >&2
run() {
    local name="$1"
    shift
    echo "== $name: $*"
    "$QUIVER" replay --config configs/bench_ml.yaml --ticks "$WORK/ticks.csv" \
        --out "$WORK/$name.jsonl" "$@" 2>&1 |
        grep -E 'ticks in|ticks/s|evaluations/s|latency|ML inference'
}
run ort-batch-1 --backend onnxruntime --batch-size 1 --call-rows 1
run ort-batched --backend onnxruntime --batch-size 256 --call-rows 64
run tract --backend tract --batch-size 256
if cmp -s "$WORK/ort-batch-1.jsonl" "$WORK/ort-batched.jsonl"; then
    echo "batched and unbatched signals: identical"
else
    echo "batched and unbatched signals differ (call sizes round differently)"
fi
