#!/usr/bin/env bash
# Make a Docker engine, a Compose CLI and the stand-in images usable on this machine.
#
# Idempotent: every step checks first and does nothing when its result is already there.
#  1. install the engine and Compose from Debian's packages when no daemon answers and none is installed
#  2. start dockerd in the background when none answers (never a second one)
#  3. when no registry is reachable, build one local image (nginx + python3 + node) with debootstrap and
#     use it as both the load balancer and the backend base image
# Prints the environment to use, e.g.  eval "$(scripts/setup-docker.sh --print-env)"
set -euo pipefail

LOCAL_IMAGE="${SCALEOUT_LOCAL_IMAGE:-scaleout-local/bookworm:1}"
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

# 3: images. Use the official images when they can be pulled; otherwise build the local stand-in once.
lb_image="${SCALEOUT_LB_IMAGE:-}"
base_image="${SCALEOUT_BASE_IMAGE:-}"
if [ -z "$lb_image" ] || [ -z "$base_image" ]; then
  if docker image inspect "$LOCAL_IMAGE" >/dev/null 2>&1; then
    log "stand-in image $LOCAL_IMAGE already built"
  elif timeout 60 docker pull -q nginx:1.27 >/dev/null 2>&1 && timeout 120 docker pull -q python:3.12-slim >/dev/null 2>&1; then
    LOCAL_IMAGE=""
    log "registry reachable: using the official images"
  else
    log "no registry reachable: building $LOCAL_IMAGE with debootstrap (about 2 minutes)"
    need_root "debootstrap"
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    rootfs=$(mktemp -d /var/tmp/scaleout-rootfs.XXXXXX)
    trap 'umount "$rootfs/proc" 2>/dev/null || true; rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase --include=nginx-light,python3,curl,ca-certificates \
      bookworm "$rootfs" http://deb.debian.org/debian >&2
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
      -c 'CMD ["/bin/bash"]' - "$LOCAL_IMAGE" >/dev/null
    log "built $LOCAL_IMAGE"
  fi
  if [ -n "$LOCAL_IMAGE" ]; then
    lb_image="${lb_image:-$LOCAL_IMAGE}"
    base_image="${base_image:-$LOCAL_IMAGE}"
  fi
fi

if [ "$PRINT_ENV" = 1 ]; then
  [ -n "$lb_image" ] && echo "export SCALEOUT_LB_IMAGE=$lb_image"
  [ -n "$base_image" ] && echo "export SCALEOUT_BASE_IMAGE=$base_image"
fi
exit 0
