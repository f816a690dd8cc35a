#!/usr/bin/env sh
# The whole suite: formatting (Prettier) and lint (ESLint), type-check everything, build the CLI
# (tests run it as a child process), then Jest.
# pg-boss and embedded-postgres are ESM-only; Jest loads them only with VM modules enabled.
set -eu
# The stock-Postgres tests (JIT) run on Debian's packaged Postgres: installed here when missing.
sh "$(dirname "$0")/packaged-postgres.sh" || echo "omniscrape: without Debian's packaged Postgres the stock-Postgres tests fail" >&2
# The PgBouncer tests start Debian's pgbouncer in front of the test Postgres: installed here when missing.
sh "$(dirname "$0")/pgbouncer.sh" || echo "omniscrape: without Debian's pgbouncer the PgBouncer tests fail" >&2
# The dashboard's browser test drives Debian's Chromium headless: installed here when missing.
sh "$(dirname "$0")/chromium.sh" || echo "omniscrape: without Debian's chromium the dashboard browser test fails" >&2
npx prettier --check --log-level warn . || { echo "omniscrape: files above are not formatted: run npm run format" >&2; exit 1; }
npx eslint --max-warnings 0 .
npx tsc -p . --noEmit
npx tsc -p tsconfig.build.json
NODE_OPTIONS="${NODE_OPTIONS:-} --experimental-vm-modules --no-warnings=ExperimentalWarning" exec npx jest "$@"
