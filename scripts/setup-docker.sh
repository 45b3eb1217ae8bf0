#!/usr/bin/env bash
# Make a Docker engine, a Compose CLI and the stand-in images usable on this machine.
#
# Idempotent: every step checks first and does nothing when its result is already there.
#  1. install the engine and Compose from Debian's packages when no daemon answers and none is installed
#  2. start dockerd in the background when none answers (never a second one)
#  3. when no registry is reachable, build one local image (nginx + python3 + node) with debootstrap and
#     use it as both the load balancer and the backend base image
#  4. the same from Debian 13 (a newer nginx, Python and Node): the second image of the test matrix, so
#     that version-dependent nginx syntax (HTTP/2) is exercised on both sides of nginx 1.25.1
# Prints the environment to use, e.g.  eval "$(scripts/setup-docker.sh --print-env)"
set -euo pipefail

LOCAL_IMAGE="${SCALEOUT_LOCAL_IMAGE:-scaleout-local/bookworm:1}"
# Debian 13: nginx 1.26, Python 3.13, Node 20 (trixie has no nginx-light any more: plain `nginx`)
MATRIX_IMAGE="${SCALEOUT_MATRIX_IMAGE:-scaleout-local/trixie:1}"
DOCKERD_LOG="${SCALEOUT_DOCKERD_LOG:-/var/log/scaleout-dockerd.log}"
PRINT_ENV=0
[ "${1:-}" = "--print-env" ] && PRINT_ENV=1

log() { echo "setup-docker: $*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "this step needs root (apt-get / dockerd): $1"; exit 1
  fi
}

apt_updated=0
apt_install() {
  need_root "apt-get install $*"
  if [ "$apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2; apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

# 1 + 2: engine
if ! engine_answers; then
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io from Debian's packages"
    apt_install docker.io
  fi
  if ! engine_answers; then
    if pgrep -x dockerd >/dev/null 2>&1; then
      log "dockerd is running but does not answer yet; waiting"
    else
      need_root "start dockerd"
      log "starting dockerd (log: $DOCKERD_LOG)"
      nohup dockerd >"$DOCKERD_LOG" 2>&1 &
    fi
    for _ in $(seq 1 60); do
      engine_answers && break
      sleep 1
    done
    engine_answers || { log "dockerd did not answer within 60 s; see $DOCKERD_LOG"; tail -20 "$DOCKERD_LOG" >&2 || true; exit 1; }
  fi
fi
log "engine: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null)"

# Compose: prefer the v2 plugin, fall back to v1; install v1 from Debian when neither exists
if docker compose version >/dev/null 2>&1; then
  log "compose: $(docker compose version --short 2>/dev/null)"
elif command -v docker-compose >/dev/null 2>&1; then
  log "compose: docker-compose $(docker-compose version --short 2>/dev/null)"
else
  log "installing docker-compose from Debian's packages"
  apt_install docker-compose
fi

# build_standin IMAGE SUITE NGINX_PACKAGE: a Debian SUITE root filesystem with nginx, python3, curl and
# node + express, imported as IMAGE. Skipped when IMAGE exists (about 2 minutes otherwise).
build_standin() {
  local image=$1 suite=$2 nginx_pkg=$3 rootfs
  if docker image inspect "$image" >/dev/null 2>&1; then
    log "stand-in image $image already built"
    return 0
  fi
  log "no registry reachable: building $image from Debian $suite with debootstrap (about 2 minutes)"
  need_root "debootstrap"
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  rootfs=$(mktemp -d /var/tmp/scaleout-rootfs.XXXXXX)
  trap 'umount "'"$rootfs"'/proc" 2>/dev/null || true; rm -rf "'"$rootfs"'"' EXIT
  debootstrap --variant=minbase --include="$nginx_pkg",python3,curl,ca-certificates \
    "$suite" "$rootfs" http://deb.debian.org/debian >&2
  # nodejs/node-express fail to configure inside debootstrap's --include; install them in a second step
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  mount -t proc proc "$rootfs/proc"
  chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs node-express >&2
  chroot "$rootfs" apt-get clean
  umount "$rootfs/proc"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs/etc/resolv.conf"
  : > "$rootfs/etc/resolv.conf"
  # NODE_PATH lets `require('express')` find Debian's node-express
  tar -C "$rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV NODE_PATH=/usr/share/nodejs:/usr/lib/nodejs' \
    -c 'CMD ["/bin/bash"]' - "$image" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  log "built $image ($(docker run --rm --entrypoint nginx "$image" -v 2>&1))"
}

# 3 + 4: images. Use the official images when they can be pulled; otherwise build the local stand-ins once.
lb_image="${SCALEOUT_LB_IMAGE:-}"
base_image="${SCALEOUT_BASE_IMAGE:-}"
matrix_lb="${SCALEOUT_MATRIX_LB_IMAGE:-}"
matrix_base="${SCALEOUT_MATRIX_BASE_IMAGE:-}"
if [ -z "$lb_image" ] || [ -z "$base_image" ] || [ -z "$matrix_lb" ] || [ -z "$matrix_base" ]; then
  if docker image inspect "$LOCAL_IMAGE" >/dev/null 2>&1 || ! { timeout 60 docker pull -q nginx:1.27 >/dev/null 2>&1 \
       && timeout 120 docker pull -q python:3.12-slim >/dev/null 2>&1; }; then
    build_standin "$LOCAL_IMAGE" bookworm nginx-light
    build_standin "$MATRIX_IMAGE" trixie nginx
    lb_image="${lb_image:-$LOCAL_IMAGE}"
    base_image="${base_image:-$LOCAL_IMAGE}"
    matrix_lb="${matrix_lb:-$MATRIX_IMAGE}"
    matrix_base="${matrix_base:-$MATRIX_IMAGE}"
  else
    # official images: nginx:1.27 is the default balancer; the matrix adds one from before nginx 1.25.1
    log "registry reachable: using the official images"
    if [ -z "$matrix_lb" ] && timeout 60 docker pull -q nginx:1.24 >/dev/null 2>&1; then
      matrix_lb=nginx:1.24
      matrix_base="${matrix_base:-python:3.12-slim}"
    fi
  fi
fi

if [ "$PRINT_ENV" = 1 ]; then
  [ -n "$lb_image" ] && echo "export SCALEOUT_LB_IMAGE=$lb_image"
  [ -n "$base_image" ] && echo "export SCALEOUT_BASE_IMAGE=$base_image"
  [ -n "$matrix_lb" ] && echo "export SCALEOUT_MATRIX_LB_IMAGE=$matrix_lb"
  [ -n "$matrix_base" ] && echo "export SCALEOUT_MATRIX_BASE_IMAGE=$matrix_base"
fi
exit 0
