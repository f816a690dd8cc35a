#!/usr/bin/env sh
# The benchmark: builds the project and the harness, makes sure Debian's redis-server is there
# for the BullMQ baseline, then runs bench/run.ts (pass --quick for a smoke run), or with --profile bench/profile.ts.
set -eu
if ! command -v redis-server >/dev/null 2>&1; then
  echo "[bench] installing Debian's redis-server for the BullMQ baseline" >&2
  if [ "$(id -u)" = "0" ]; then
    (apt-get install -y redis-server >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y redis-server >/dev/null))
    # Debian starts a system instance on install; the benchmark runs its own on a free port.
    (systemctl stop redis-server || service redis-server stop || true) >/dev/null 2>&1
  else
    echo "[bench] redis-server is missing: apt-get install redis-server" >&2
    exit 1
  fi
fi
npx tsc -p tsconfig.bench.json
if [ "${1:-}" = "--profile" ]; then
  shift
  exec node dist/bench/profile.js "$@"
fi
exec node dist/bench/run.js "$@"
