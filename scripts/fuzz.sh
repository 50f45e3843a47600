#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of outside input (see crates/quiver-fuzz):
#
#   scripts/fuzz.sh SECONDS [TARGET...]
#
# runs each target (default: all of fuzz/fuzz_targets/) for SECONDS, one after
# the other, prints the executions per target and fails if any target found a
# crash or a timeout (an input taking over 10 s). libFuzzer keeps what it
# learns in fuzz/work/<target>/ (not committed), starting from the committed
# corpus fuzz/corpus/<target>/; a failing input is saved in
# fuzz/artifacts/<target>/, and `cargo test -p quiver-fuzz` replays both
# committed directories. Needs the nightly toolchain; installs cargo-fuzz when
# missing. FUZZ_TARGET_DIR overrides the build directory (default fuzz/target).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}"
shift
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for source in fuzz/fuzz_targets/*.rs; do
        targets+=("$(basename "$source" .rs)")
    done
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# No sanitizer: the code is safe Rust (unsafe_code is forbidden), so ASan
# would only slow every execution; debug assertions and overflow checks stay
# on (cargo-fuzz's default), so an overflow is a crash.
fuzz=(cargo +nightly fuzz)
build=(--sanitizer none --target-dir "${FUZZ_TARGET_DIR:-fuzz/target}")
"${fuzz[@]}" build "${build[@]}"

mkdir -p fuzz/work
failed=()
total=0
printf '%-16s %12s %10s %8s  %s\n' target executions exec/s corpus result
for target in "${targets[@]}"; do
    mkdir -p "fuzz/work/$target"
    log="fuzz/work/$target.log"
    result=ok
    # Inputs are capped at 4 KiB so executions stay fast; the committed
    # corpus's larger reproducers are replayed whole by the tests.
    if ! "${fuzz[@]}" run "${build[@]}" "$target" "fuzz/work/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 >"$log" 2>&1; then
        result="FAILED (see $log and fuzz/artifacts/$target/)"
        failed+=("$target")
    fi
    executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    corpus="$(find "fuzz/work/$target" -type f | wc -l)"
    total=$((total + ${executions:-0}))
    printf '%-16s %12s %10s %8s  %s\n' "$target" "${executions:-?}" "${rate:-?}" "$corpus" "$result"
done
echo "total executions: $total"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz.sh: ${failed[*]} found a crash or a timeout" >&2
    exit 1
fi
