#!/usr/bin/env bash
# Fetches ONNX Runtime's shared library (libonnxruntime.so) from the pinned
# `onnxruntime` PyPI wheel into .cache/onnxruntime/<version>/ and prints its path.
#
#   export ORT_DYLIB_PATH="$(scripts/fetch_onnxruntime.sh)"
#
# quiver-infer loads the library at run time from ORT_DYLIB_PATH (the `ort`
# crate is built with `load-dynamic`, so nothing is downloaded at build time);
# without it, ML models run on the pure-Rust tract backend, which refuses tree
# ensembles. The version must be at least the ONNX Runtime API version the
# pinned `ort` crate was built for (1.31 for ort 2.0.0-rc.15).
#
# Idempotent: a library already in the cache is printed without network access.
# Bounded: pip gets QUIVER_FETCH_TIMEOUT seconds (default 300). Needs python3
# with pip and unzip or python3's zipfile. Everything but the path goes to stderr.
set -euo pipefail

ORT_VERSION="${QUIVER_ORT_VERSION:-1.31.1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${QUIVER_ORT_CACHE:-$ROOT/.cache/onnxruntime}/$ORT_VERSION"
LIB="$CACHE/libonnxruntime.so"

if [[ -f "$LIB" ]]; then
    echo "$LIB"
    exit 0
fi

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64 | Linux-aarch64) ;;
    *)
        echo "fetch_onnxruntime: only Linux x86_64/aarch64 wheels are handled here" >&2
        exit 1
        ;;
esac

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "fetch_onnxruntime: downloading onnxruntime==$ORT_VERSION wheel" >&2
timeout "${QUIVER_FETCH_TIMEOUT:-300}" python3 -m pip download \
    --disable-pip-version-check --quiet --no-deps --only-binary=:all: \
    --dest "$TMP" "onnxruntime==$ORT_VERSION" >&2

WHEEL="$(ls "$TMP"/onnxruntime-*.whl 2>/dev/null | head -n 1)"
if [[ -z "$WHEEL" ]]; then
    echo "fetch_onnxruntime: pip produced no onnxruntime wheel" >&2
    exit 1
fi

# Extract only the shared library (and its versioned names) from the wheel.
mkdir -p "$CACHE"
python3 - "$WHEEL" "$TMP/lib" >&2 <<'PY'
import sys, zipfile, pathlib, shutil
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
found = []
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = name.rsplit("/", 1)[-1]
        if base.startswith("libonnxruntime.so"):
            with z.open(name) as src, open(out / base, "wb") as dst:
                shutil.copyfileobj(src, dst)
            found.append(base)
if not found:
    sys.exit("fetch_onnxruntime: no libonnxruntime.so* in " + wheel)
print("fetch_onnxruntime: extracted " + ", ".join(sorted(found)))
PY

# The wheel ships the library under its versioned name; give it the plain name
# too. Moving into place last keeps a concurrent or interrupted run from
# leaving a half-written library behind.
for file in "$TMP"/lib/libonnxruntime.so*; do
    mv -f "$file" "$CACHE/$(basename "$file")"
done
if [[ ! -f "$LIB" ]]; then
    versioned="$(ls "$CACHE"/libonnxruntime.so.* | head -n 1)"
    ln -sfn "$(basename "$versioned")" "$LIB"
fi
echo "$LIB"
