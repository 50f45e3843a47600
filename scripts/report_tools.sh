#!/usr/bin/env bash
# What the backtest report's tests need beside Quiver: a headless browser to
# render report.html (Debian's chromium) and pandas for the independent
# recomputation of its figures (scripts/check_backtest.py).
#
#   scripts/report_tools.sh install   # apt-get install chromium and python3-pandas if missing
set -euo pipefail

install() {
    local missing=()
    command -v chromium >/dev/null || missing+=(chromium)
    /usr/bin/python3 -c 'import pandas, numpy' 2>/dev/null || missing+=(python3-pandas)
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "report_tools.sh: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    echo "report_tools.sh: installing ${missing[*]}" >&2
    "${sudo[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

case "${1:-}" in
    install) install ;;
    *) echo "usage: $0 install" >&2; exit 2 ;;
esac
