#!/usr/bin/env bash
# Sets up a vipc checkout: pnpm (pinned), the workspace dependencies from the
# lockfile, the Debian packages the tests drive (DPDK, LXC, busybox), and the
# build, including the native addon (compiled offline against local headers).
# Idempotent: a second run only checks, and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

log() { printf 'setup: %s\n' "$*" >&2; }

# 1. Node
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  log "Node.js 20 or later is required (found: $(node --version 2>/dev/null || echo none))."
  exit 1
fi

# 2. pnpm, the version pinned in package.json, installed through npm into .tools/
want_pnpm=$(node -p 'require("./package.json").packageManager.split("@")[1]')
if [ "$(pnpm --version 2>/dev/null || true)" != "$want_pnpm" ]; then
  log "installing pnpm $want_pnpm into .tools/"
  npm install --silent --no-save --prefix .tools "pnpm@$want_pnpm" >/dev/null
fi

# 3. Debian packages the tests use as real peers
apt_packages=(dpdk-dev lxc busybox-static chromium systemd python3)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${VIPC_SKIP_APT:-}" = 1 ]; then
    log "VIPC_SKIP_APT=1: not installing ${missing[*]}; tests that need them will say so."
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${missing[*]} (about a minute)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "missing Debian packages: ${missing[*]}"
    log "install them as root:  sudo apt-get install -y ${missing[*]}"
    log "(continuing; the DPDK and LXC parts will report what is missing)"
  fi
fi

# 4. Workspace dependencies, exactly as the lockfile says
pnpm install --frozen-lockfile --prefer-offline --reporter=silent

# 5. Build every package (turbo caches: a rebuild with no change takes seconds)
mkdir -p .ci
if ! pnpm -s run build --output-logs=errors-only > .ci/build.log 2>&1; then
  cat .ci/build.log >&2
  log "the build failed (log above, also in .ci/build.log)"
  exit 1
fi
log "ready"
