#!/usr/bin/env sh
# Makes sure Debian's PgBouncer (package `pgbouncer`, /usr/sbin/pgbouncer) is installed: the
# PgBouncer tests start their own in transaction mode in front of the test Postgres. Debian then
# starts a system pgbouncer on port 6432, which nothing here uses, so it is stopped and disabled.
set -eu
[ -x /usr/sbin/pgbouncer ] && exit 0
sh "$(dirname "$0")/debian-package.sh" pgbouncer /usr/sbin/pgbouncer
(systemctl disable --now pgbouncer || service pgbouncer stop || true) >/dev/null 2>&1
(update-rc.d pgbouncer disable || true) >/dev/null 2>&1
