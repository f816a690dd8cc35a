#!/usr/bin/env sh
# The benchmark: builds the project and the harness, then runs bench/run.ts (pass --quick for a
# smoke run) after making sure Debian's redis-server is there for the BullMQ baseline; or with
# --profile bench/profile.ts, with --history bench/history-writes.ts, with --waiters
# bench/waiters.ts, with --noisy-neighbour bench/noisy-neighbour.ts, with --batch-validation
# bench/batch-validation.ts, or with --browser bench/browser.ts (none of them needs Redis; --browser
# needs Debian's chromium, scripts/chromium.sh), or with --slow bench/slow-targets.ts (needs
# redis-server, and `ulimit -n` above twice its concurrency).
set -eu
npx tsc -p tsconfig.bench.json
case "${1:-}" in
  --profile) shift; exec node dist/bench/profile.js "$@" ;;
  --history) shift; exec node dist/bench/history-writes.js "$@" ;;
  --waiters) shift; exec node dist/bench/waiters.js "$@" ;;
  --reporting) shift; exec node dist/bench/reporting.js "$@" ;;
  --noisy-neighbour) shift; exec node dist/bench/noisy-neighbour.js "$@" ;;
  --batch-validation) shift; exec node dist/bench/batch-validation.js "$@" ;;
  --browser) shift; exec node dist/bench/browser.js "$@" ;;
  --slow) shift; exec node dist/bench/slow-targets.js "$@" ;;
esac
# The BullMQ baseline runs on Debian's redis-server: installed here when missing (apt-get update first
# on a fresh machine). Debian starts a system instance on install; the benchmark runs its own on a
# free port, so that one is stopped again.
if ! command -v redis-server >/dev/null 2>&1; then
  sh "$(dirname "$0")/debian-package.sh" redis-server /usr/bin/redis-server
  (systemctl stop redis-server || service redis-server stop || true) >/dev/null 2>&1
fi
# The rendering scenario drives Debian's chromium (scripts/chromium.sh installs it when missing).
sh "$(dirname "$0")/chromium.sh"
# The stock-Postgres scenario (e2e_jobs_per_s_debian_pg) runs on Debian's packaged Postgres.
sh "$(dirname "$0")/packaged-postgres.sh"
exec node dist/bench/run.js "$@"
