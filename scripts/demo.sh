#!/usr/bin/env bash
# The main job on a fresh machine: install scaleout, make Docker usable (engine, Compose, images),
# then `scaleout init demo`, `scaleout up --replicas 3`, `scaleout probe` and `scaleout replay requests.http`.
# Usage: scripts/demo.sh [DIR]   (default: ./demo; an existing project there is reused)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir="${1:-$root/demo}"

eval "$(bash scripts/setup-docker.sh --print-env)"
export SCALEOUT_LB_IMAGE SCALEOUT_BASE_IMAGE

venv="${SCALEOUT_VENV:-$root/.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q "$root" >&2
scaleout="$venv/bin/scaleout"

if [ ! -f "$dir/scaleout.yaml" ]; then
  "$scaleout" init "$dir"
fi
cd "$dir"
"$scaleout" up --replicas 3
"$scaleout" probe
if [ -f requests.http ]; then  # the scaffold's demo flow, its steps pinned to different replicas
  "$scaleout" replay requests.http
fi
echo
echo "demo is running at $("$scaleout" status --json | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["url"])')/"
echo "stop it with: cd $dir && $scaleout down"
