#!/usr/bin/env sh
# Makes sure Debian's Chromium is installed (package `chromium`, /usr/bin/chromium): the browser
# tests drive it headless through playwright-core, which downloads no browser of its own.
set -eu
exec sh "$(dirname "$0")/debian-package.sh" chromium /usr/bin/chromium
