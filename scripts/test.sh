#!/usr/bin/env sh
# The whole suite: type-check everything, build the CLI (tests run it as a child process), then Jest.
# pg-boss and embedded-postgres are ESM-only; Jest loads them only with VM modules enabled.
set -eu
npx tsc -p . --noEmit
npx tsc -p tsconfig.build.json
NODE_OPTIONS="${NODE_OPTIONS:-} --experimental-vm-modules --no-warnings=ExperimentalWarning" exec npx jest "$@"
