#!/usr/bin/env sh
# debian-package.sh PACKAGE FILE: installs Debian's PACKAGE unless FILE (a path it brings, or a
# glob) is already there. The tests and the benchmark call it for what they start themselves
# (Chromium, PgBouncer, a packaged Postgres). Installing needs root; the package lists are
# refreshed when the install fails without them, as on a fresh machine.
set -eu
package=$1
file=$2
# shellcheck disable=SC2086 # FILE may be a glob
if ls $file >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "omniscrape: Debian's $package is missing; install it as root: apt-get install $package" >&2
  exit 1
fi
echo "omniscrape: installing Debian's $package (one time)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "$package" >/dev/null 2>&1 ||
  (apt-get update >/dev/null && apt-get install -y --no-install-recommends "$package" >/dev/null)
