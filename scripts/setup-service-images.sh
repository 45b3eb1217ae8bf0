#!/usr/bin/env bash
# Stand-ins for the official images of the services apps depend on (redis, postgres), built from Debian's
# packages on top of the local stand-in base image, because no image registry is reachable here.
# Idempotent: an image that exists is not rebuilt. Needs the engine and scaleout-local/bookworm:1
# (scripts/setup-docker.sh). Prints nothing on stdout.
set -euo pipefail
cd "$(dirname "$0")/images"
base="${SCALEOUT_LOCAL_IMAGE:-scaleout-local/bookworm:1}"
log() { echo "setup-service-images: $*" >&2; }
for name in redis postgres; do
  image="scaleout-local/$name:1"
  if docker image inspect "$image" >/dev/null 2>&1; then
    log "$image already built"
    continue
  fi
  log "building $image from Debian's packages"
  docker build -q --build-arg "BASE_IMAGE=$base" -t "$image" "$name" >/dev/null
  log "built $image"
done
