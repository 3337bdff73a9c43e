#!/usr/bin/env bash
# Entry point of the README's two commands: `npm run demo` and `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
cmd=${1:-}
shift || true
bash scripts/setup.sh
case "$cmd" in
  # `vipc demo`: the CLI built by the set-up (apps/cli), with the arguments given to `npm run demo -- ...`.
  demo) exec node apps/cli/dist/bin.js demo "$@" ;;
  test) exec vitest run "$@" ;;
  *) echo "usage: scripts/run.sh demo|test [args]" >&2; exit 2 ;;
esac
