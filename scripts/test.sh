#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of every crate.
# The live-service tests need a real redis-server and promtool, the config-store
# tests a real PostgreSQL, the backtest report's tests chromium and pandas:
# this installs them with apt-get when missing (CI runs
# as root on a clean Debian machine), starts throwaway servers on 127.0.0.1, and
# requires those tests to run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/redis.sh install
scripts/postgres.sh install
scripts/report_tools.sh install
eval "$(scripts/redis.sh start)"
trap 'scripts/redis.sh stop "$QUIVER_TEST_REDIS_DIR"' EXIT
eval "$(scripts/postgres.sh start)"
trap 'scripts/redis.sh stop "$QUIVER_TEST_REDIS_DIR"; scripts/postgres.sh stop "$QUIVER_TEST_POSTGRES_DIR"' EXIT
export QUIVER_REQUIRE_REDIS=1
export QUIVER_REQUIRE_POSTGRES=1
# The backtest report: rendered in chromium, its figures recomputed by pandas.
export QUIVER_REQUIRE_BROWSER=1
export QUIVER_REQUIRE_PANDAS=1
# ONNX Runtime's library (from the pinned PyPI wheel, cached in .cache/) for
# quiver-infer's ONNX Runtime tests, which must then run, not skip.
ORT_DYLIB_PATH="$(scripts/fetch_onnxruntime.sh)"
export ORT_DYLIB_PATH
export QUIVER_REQUIRE_ORT=1
cargo test --workspace --locked
