#!/usr/bin/env bash
# The project's full test command: installs what the tests need on a fresh Debian machine (Python
# test dependencies in .venv, Docker engine + Compose + stand-in images, Chromium, load tools),
# then runs every test: unit, golden, e2e on the real engine, browser. Extra args go to pytest.
# A missing engine or browser fails the e2e and browser tests. `--fast` (first argument) is the quick
# local run: no engine, images or browser are set up, and those tests are left out (pytest says how many).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { echo "test.sh: $*" >&2; }

fast=0
if [ "${1:-}" = "--fast" ]; then
  fast=1
  shift
  export SCALEOUT_TESTS=fast
  log "--fast: no Docker engine or browser; the e2e and browser tests are left out"
fi

# 1. system packages the tests use (Debian)
need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v hey >/dev/null 2>&1 || need+=(hey)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v certutil >/dev/null 2>&1 || need+=(libnss3-tools)  # `scaleout trust` into browser databases
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# 2. Docker engine, Compose, stand-in images (idempotent)
if [ "$fast" = 0 ]; then
  eval "$(bash scripts/setup-docker.sh --print-env)"
  export SCALEOUT_LB_IMAGE SCALEOUT_BASE_IMAGE
  # both Compose CLIs: v2 (what most users have) and v1 (Debian 12's); the e2e tests run both
  bash scripts/setup-compose-v2.sh
  # stand-ins for the images of the services apps depend on (redis, postgres), from Debian's packages
  bash scripts/setup-service-images.sh
  # Podman's Docker-compatible API beside Docker (Docker is left as it is), for tests/e2e/test_podman.py:
  # the daily loop once more on Podman with both Compose CLIs, a focused subset of a few minutes, not the
  # whole suite twice. Without a working Podman those tests fail (never skip); under CI=true so does this
  # script. SCALEOUT_NO_PODMAN=1 leaves the setup to the tests' own fixture (which runs this same script).
  podman_setup_failed=0
  if [ -z "${SCALEOUT_NO_PODMAN:-}" ]; then
    if podman_env=$(bash scripts/setup-podman.sh --print-env); then
      eval "$podman_env"
      export SCALEOUT_PODMAN_HOST
    else
      podman_setup_failed=1
      log "setup-podman.sh failed: the Podman e2e tests will fail"
    fi
  fi
fi

# 3. Python: the package and its test extra in a virtualenv
venv="${SCALEOUT_VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip >&2 || true
log "installing scaleout[test]"
"$venv/bin/python" -m pip install -q -e ".[test]" >&2

# 4. the browser: Debian's chromium, driven by the playwright package (never `playwright install`)
if [ "$fast" = 0 ]; then
  PYTHON="$venv/bin/python" bash scripts/setup-browser.sh
fi

# 5. the linter (configuration in pyproject.toml), then every test; pytest's exit 5 (no test collected)
# is a failure here
log "ruff check"
"$venv/bin/python" -m ruff check --quiet . || { log "ruff found problems (above)"; exit 1; }
# The tests run in two parts: most of them on SCALEOUT_TEST_WORKERS processes (pytest-xdist, whole files
# per process, so a module's shared stack is made once), as the e2e tests mostly wait on the engine; then
# the ones marked `serial` alone, since they judge spread, latency or a time window that other tests'
# load on a 2-core machine would skew. SCALEOUT_TEST_WORKERS=1 (or a -m of your own) runs one pytest.
workers="${SCALEOUT_TEST_WORKERS:-3}"
own_marker=0
for arg in "$@"; do
  case "$arg" in -m|-m*) own_marker=1 ;; esac
done
set +e
if [ "$workers" -gt 1 ] && [ "$own_marker" = 0 ]; then
  log "pytest on $workers processes, then the serial tests alone"
  "$venv/bin/python" -m pytest -p no:cacheprovider -n "$workers" --dist loadfile --durations=25 -m "not serial" "$@"
  rc=$?
  "$venv/bin/python" -m pytest -p no:cacheprovider --durations=10 -m serial "$@"
  src=$?
  # exit 5 of one part alone: the arguments selected none of its tests (the other part ran)
  if [ "$rc" = 5 ] && [ "$src" != 5 ]; then rc=$src
  elif [ "$src" != 0 ] && [ "$src" != 5 ] && [ "$rc" = 0 ]; then rc=$src
  fi
else
  "$venv/bin/python" -m pytest -p no:cacheprovider --durations=25 "$@"
  rc=$?
fi
set -e
if [ "$rc" = 5 ]; then
  log "pytest collected no test"; exit 1
fi
if [ "$fast" = 0 ] && [ "${podman_setup_failed:-0}" = 1 ] && [ "${CI:-}" = true ]; then
  log "CI: Podman could not be set up (above)"
  [ "$rc" = 0 ] && rc=1
fi

# 6. the nginx matrix: the tests marked nginx_matrix (foundation, cache headers, strategies, TLS and
# HTTP/2) again on the second image, another nginx (Debian 13: 1.26, past the 1.25.1 syntax change).
# Only for a whole-suite run (no test paths given); SCALEOUT_NO_MATRIX=1 skips it.
paths=0
for arg in "$@"; do
  case "$arg" in tests*|*.py|*::*) paths=1 ;; esac
done
# mutation testing of the verdict rules (about 25 s): a rule no test checks fails the run
if [ "$paths" = 0 ] && [ "$fast" = 0 ]; then
  log "mutation testing: scaleout.probe.verdict"
  if ! PYTHON="$venv/bin/python" bash scripts/mutation.sh --ci; then
    log "mutation testing found verdict rules no test checks"
    [ "$rc" = 0 ] && rc=1
  fi
fi
if [ "$paths" = 0 ] && [ -z "${SCALEOUT_NO_MATRIX:-}" ] && [ -n "${SCALEOUT_MATRIX_LB_IMAGE:-}" ]; then
  log "nginx matrix: the nginx_matrix tests on $SCALEOUT_MATRIX_LB_IMAGE"
  set +e
  matrix_base="${SCALEOUT_MATRIX_BASE_IMAGE:-${SCALEOUT_BASE_IMAGE:-}}"
  SCALEOUT_LB_IMAGE="$SCALEOUT_MATRIX_LB_IMAGE" SCALEOUT_BASE_IMAGE="$matrix_base" \
    "$venv/bin/python" -m pytest -p no:cacheprovider "$@" -m nginx_matrix
  mrc=$?
  set -e
  # exit 5: the arguments (say -k) selected no matrix test, which is no failure of the matrix
  if [ "$mrc" != 0 ] && [ "$mrc" != 5 ]; then
    log "nginx matrix on $SCALEOUT_MATRIX_LB_IMAGE failed (exit $mrc)"
    [ "$rc" = 0 ] && rc=1
  fi
fi
exit "$rc"
