#!/usr/bin/env sh
# The whole suite: formatting (Prettier) and lint (ESLint), type-check everything, build the CLI
# (tests run it as a child process), then Jest twice: on the embedded Postgres 18 and on Debian's
# packaged Postgres 15, the oldest version CI runs (OMNISCRAPE_TEST_POSTGRES, test/helpers/postgres-server.ts).
# With TEST_DATABASE_URL set, Jest runs once, on that server. Arguments go to both Jest runs.
# pg-boss and embedded-postgres are ESM-only; Jest loads them only with VM modules enabled.
set -eu
# The second run, the JIT test and the replica test run on Debian's packaged Postgres: installed here when missing.
sh "$(dirname "$0")/packaged-postgres.sh" || echo "omniscrape: without Debian's packaged Postgres the Postgres 15 run fails" >&2
# The PgBouncer tests start Debian's pgbouncer in front of the test Postgres: installed here when missing.
sh "$(dirname "$0")/pgbouncer.sh" || echo "omniscrape: without Debian's pgbouncer the PgBouncer tests fail" >&2
# The dashboard's browser test drives Debian's Chromium headless: installed here when missing.
sh "$(dirname "$0")/chromium.sh" || echo "omniscrape: without Debian's chromium the dashboard browser test fails" >&2
npx prettier --check --log-level warn . || { echo "omniscrape: files above are not formatted: run npm run format" >&2; exit 1; }
npx eslint --max-warnings 0 .
npx tsc -p . --noEmit
npx tsc -p tsconfig.build.json

export NODE_OPTIONS="${NODE_OPTIONS:-} --experimental-vm-modules --no-warnings=ExperimentalWarning"
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  exec npx jest "$@"
fi

# Left out of the Postgres 15 run: files whose outcome does not depend on the server's version,
# each run on 18 already. The embedded runner's own tests (its build is 18 by design); the JIT and
# replica tests (they start Debian's 15 themselves); the dashboard's and /docs's browser rendering (their data
# path is dashboard.test.ts); the worker's memory bounds, the start-up messages, the scraper against
# hostile targets, and the unit tests without Postgres; the crash tests, whose subject is Postgres's
# own crash recovery (postgres-outage.test.ts keeps the reconnect on both); the CLI's terminal output
# (the API calls under it are client.test.ts's, run on both); the browser engine's tests (Chromium's
# behaviour is the subject; the engine column they read is reporting-views.test.ts's on both); Redocly's
# lint and a generated client of /openapi.json (the document is the same on both).
SAME_ON_EVERY_VERSION='/test/(embedded-postgres|stock-postgres-jit|reporting-replica|dashboard-browser|docs-browser|worker-memory|startup-failures|hostile-input|misbehaving-targets|target-guard|memory-budget|config|docs|claim-loop|group-commit|migration-rules|fault-flow|postgres-crash|worker-crash|cli-api|room-boundaries|browser-rendering|browser-target-guard|browser-proxy|browser-lifecycle|fair-slots|script-built|openapi-tools)\.test\.ts$'

# Each run's counts, added up on the last line (test/summary-reporter.js).
OMNISCRAPE_TEST_SUMMARY_FILE=$(mktemp)
export OMNISCRAPE_TEST_SUMMARY_FILE
trap 'rm -f "$OMNISCRAPE_TEST_SUMMARY_FILE"' EXIT
status=0
echo "omniscrape: Jest on the embedded Postgres 18" >&2
OMNISCRAPE_TEST_POSTGRES=embedded npx jest "$@" || status=$?
echo "omniscrape: Jest on Debian's packaged Postgres 15" >&2
OMNISCRAPE_TEST_POSTGRES=packaged npx jest "$@" --passWithNoTests --testPathIgnorePatterns "$SAME_ON_EVERY_VERSION" || status=$?
awk '{ p += $1; f += $2; s += $3; b += $4 }
     END { printf "\ntests: %d passed, %d failed, %d skipped%s\n", p, f, s, b ? ", " b " test files failed to run" : "" }' \
  "$OMNISCRAPE_TEST_SUMMARY_FILE"
exit "$status"
