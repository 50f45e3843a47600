#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite (the strategy config store).
#
#   scripts/postgres.sh install         # apt-get install postgresql if initdb is missing
#   eval "$(scripts/postgres.sh start)" # start one on 127.0.0.1, a free port, a temp dir; exports
#                                       # QUIVER_TEST_POSTGRES_URL and QUIVER_TEST_POSTGRES_DIR
#   scripts/postgres.sh stop [DIR]      # stop it (DIR defaults to $QUIVER_TEST_POSTGRES_DIR)
#
# The cluster lives in a temp dir, listens on loopback only (no Unix socket
# outside that dir), trusts local connections (it holds nothing but test
# data), and shuts itself down after QUIVER_TEST_POSTGRES_LIFETIME seconds
# (default 3600) even if nobody stops it. PostgreSQL refuses to run as root,
# so as root the server runs as the `postgres` user the package creates.
set -euo pipefail

# Debian keeps the server binaries off PATH.
bin_dir() {
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v initdb)"
        return 0
    fi
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    return 1
}

install() {
    bin_dir >/dev/null && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "postgres.sh: need root (or sudo) to apt-get install postgresql" >&2; exit 1; }
        sudo=(sudo)
    fi
    echo "postgres.sh: installing postgresql" >&2
    "${sudo[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends postgresql >&2
    # The package's own cluster is not wanted: tests start their own server.
    if command -v systemctl >/dev/null; then "${sudo[@]}" systemctl disable --now postgresql >/dev/null 2>&1 || true; fi
}

# Runs a server binary as a user PostgreSQL accepts.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local bin dir port lifetime="${QUIVER_TEST_POSTGRES_LIFETIME:-3600}"
    bin="$(bin_dir)" || { echo "postgres.sh: initdb not found; run scripts/postgres.sh install" >&2; exit 1; }
    dir="$(mktemp -d "${TMPDIR:-/tmp}/quiver-postgres.XXXXXX")"
    chmod 755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U quiver --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
        echo "postgres.sh: initdb failed:" >&2; cat "$dir/initdb.log" >&2; exit 1; }
    for _ in $(seq 1 20); do
        port=$(( 20000 + RANDOM % 40000 ))
        if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null 2>&1; then
            # Bounded lifetime: shut down on our own if never stopped.
            ( sleep "$lifetime"; as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 ) \
                >/dev/null 2>&1 </dev/null &
            echo "$!" > "$dir/watchdog.pid"
            echo "$bin" > "$dir/bin"
            echo "export QUIVER_TEST_POSTGRES_URL=postgres://quiver@127.0.0.1:$port/postgres"
            echo "export QUIVER_TEST_POSTGRES_DIR=$dir"
            echo "postgres.sh: postgres on 127.0.0.1:$port (dir $dir)" >&2
            return 0
        fi
    done
    echo "postgres.sh: could not start postgres; log:" >&2
    cat "$dir/server.log" >&2 2>/dev/null || true
    exit 1
}

stop() {
    local dir="${1:-${QUIVER_TEST_POSTGRES_DIR:-}}"
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    if [ -f "$dir/bin" ] && [ -d "$dir/data" ]; then
        as_owner "$(cat "$dir/bin")/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [ -f "$dir/watchdog.pid" ]; then kill "$(cat "$dir/watchdog.pid")" 2>/dev/null || true; fi
    rm -rf "$dir"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 install | start | stop [DIR]" >&2; exit 2 ;;
esac
