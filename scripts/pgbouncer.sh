#!/usr/bin/env sh
# Makes sure Debian's PgBouncer (package `pgbouncer`, /usr/sbin/pgbouncer) is installed: the
# PgBouncer tests start their own in transaction mode in front of the test Postgres. Installing
# needs root; the package lists are refreshed once first, as a fresh machine has none. Debian then
# starts a system pgbouncer on port 6432, which nothing here uses, so it is stopped and disabled.
set -eu
if [ -x /usr/sbin/pgbouncer ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "omniscrape: Debian's pgbouncer is missing; install it as root: apt-get install pgbouncer" >&2
  exit 1
fi
echo "omniscrape: installing Debian's pgbouncer (one time)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update >/dev/null
apt-get install -y --no-install-recommends pgbouncer >/dev/null
(systemctl disable --now pgbouncer || service pgbouncer stop || true) >/dev/null 2>&1
(update-rc.d pgbouncer disable || true) >/dev/null 2>&1
