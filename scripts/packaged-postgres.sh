#!/usr/bin/env sh
# Makes sure Debian's packaged Postgres (postgresql-15, built with LLVM JIT, as most teams' and
# managed services' builds are) is installed: npm test's second run (the suite on Postgres 15), the
# JIT and replica tests and the benchmark's stock-Postgres scenario start throw-away clusters of it.
# Debian then starts a system cluster on port 5432, which nothing here uses, so it is stopped again.
set -eu
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && exit 0
sh "$(dirname "$0")/debian-package.sh" postgresql-15 '/usr/lib/postgresql/*/bin/postgres'
(pg_ctlcluster 15 main stop || systemctl stop postgresql || service postgresql stop || true) >/dev/null 2>&1
