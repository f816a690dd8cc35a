#!/usr/bin/env sh
# Makes sure Debian's packaged Postgres (postgresql-15, built with LLVM JIT, as most teams' and
# managed services' builds are) is installed: npm test's second run (the suite on Postgres 15), the
# JIT and replica tests and the benchmark's stock-Postgres scenario start throw-away clusters of it. Installing needs root; Debian then starts a system
# cluster on port 5432, which nothing here uses, so it is stopped again.
set -eu
if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "omniscrape: Debian's postgresql-15 is missing; install it as root: apt-get install postgresql-15" >&2
  exit 1
fi
echo "omniscrape: installing Debian's postgresql-15 (one time)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y postgresql-15 >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y postgresql-15 >/dev/null)
(pg_ctlcluster 15 main stop || systemctl stop postgresql || service postgresql stop || true) >/dev/null 2>&1
