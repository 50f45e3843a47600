#!/usr/bin/env bash
# A throwaway redis-server for the test suite (and promtool for the metrics test).
#
#   scripts/redis.sh install        # apt-get install redis-server and prometheus (promtool) if missing
#   eval "$(scripts/redis.sh start)" # start one on 127.0.0.1, a free port, a temp dir; exports
#                                    # QUIVER_TEST_REDIS_URL and QUIVER_TEST_REDIS_DIR
#   scripts/redis.sh stop [DIR]      # stop it (DIR defaults to $QUIVER_TEST_REDIS_DIR)
#
# The server keeps nothing on disk, listens on loopback only, and shuts itself
# down after QUIVER_TEST_REDIS_LIFETIME seconds (default 3600) even if nobody
# stops it.
set -euo pipefail

install() {
    local missing=()
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null || missing+=(redis-server)
    command -v promtool >/dev/null || missing+=(prometheus)
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "redis.sh: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    echo "redis.sh: installing ${missing[*]}" >&2
    "${sudo[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    # The package's own service is not wanted: tests start their own server.
    if command -v systemctl >/dev/null; then "${sudo[@]}" systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
}

start() {
    local dir port pid lifetime="${QUIVER_TEST_REDIS_LIFETIME:-3600}"
    dir="$(mktemp -d "${TMPDIR:-/tmp}/quiver-redis.XXXXXX")"
    for _ in $(seq 1 20); do
        port=$(( 20000 + RANDOM % 40000 ))
        if redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save "" --appendonly no \
            --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null 2>&1; then
            for _ in $(seq 1 100); do
                if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ]; then
                    pid="$(cat "$dir/redis.pid")"
                    # Bounded lifetime: shut down on our own if never stopped.
                    ( sleep "$lifetime"; redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null ) \
                        >/dev/null 2>&1 </dev/null &
                    echo "$!" > "$dir/watchdog.pid"
                    echo "$port" > "$dir/port"
                    echo "export QUIVER_TEST_REDIS_URL=redis://127.0.0.1:$port/"
                    echo "export QUIVER_TEST_REDIS_DIR=$dir"
                    echo "redis.sh: redis-server $pid on 127.0.0.1:$port (dir $dir)" >&2
                    return 0
                fi
                sleep 0.1
            done
            [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
        fi
    done
    echo "redis.sh: could not start redis-server; log:" >&2
    cat "$dir/redis.log" >&2 2>/dev/null || true
    exit 1
}

stop() {
    local dir="${1:-${QUIVER_TEST_REDIS_DIR:-}}"
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    if [ -f "$dir/port" ]; then
        redis-cli -h 127.0.0.1 -p "$(cat "$dir/port")" shutdown nosave >/dev/null 2>&1 || true
    fi
    if [ -f "$dir/redis.pid" ]; then kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; fi
    if [ -f "$dir/watchdog.pid" ]; then kill "$(cat "$dir/watchdog.pid")" 2>/dev/null || true; fi
    rm -rf "$dir"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 install | start | stop [DIR]" >&2; exit 2 ;;
esac
