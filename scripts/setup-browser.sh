#!/usr/bin/env bash
# Make the browser tests runnable: Debian's chromium and the playwright Python package.
#
# Idempotent: each step checks first. `playwright install` (its own browser download) is never used:
# the tests launch /usr/bin/chromium through Playwright's executable_path.
set -euo pipefail

log() { echo "setup-browser: $*" >&2; }
PYTHON="${PYTHON:-python3}"

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ]; then
    log "installing chromium needs root (apt-get)"; exit 1
  fi
  log "installing chromium from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends chromium fonts-liberation >&2
fi

if ! "$PYTHON" -c "import playwright.sync_api" >/dev/null 2>&1; then
  log "installing the playwright Python package"
  "$PYTHON" -m pip install -q "playwright>=1.45" >&2
fi

/usr/bin/chromium --version >&2
"$PYTHON" -c "import importlib.metadata as m; print('playwright', m.version('playwright'))" >&2
