#!/usr/bin/env sh
# Makes sure Debian's Chromium is installed (package `chromium`, /usr/bin/chromium): the dashboard's
# browser test drives it headless through playwright-core, which downloads no browser of its own.
# Installing needs root; the package lists are refreshed once first, as a fresh machine has none.
set -eu
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "omniscrape: Debian's chromium is missing; install it as root: apt-get install chromium" >&2
  exit 1
fi
echo "omniscrape: installing Debian's chromium (one time)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update >/dev/null
apt-get install -y --no-install-recommends chromium >/dev/null
