#!/usr/bin/env bash
# Make Podman's Docker-compatible API usable on this machine, beside Docker (which is left as it is), for
# the e2e tests that run the main loop on Podman (tests/test_podman_e2e.py).
#
# Idempotent: every step checks first and does nothing when its result is already there.
#  1. install podman from Debian's packages (Debian 12: podman 4.3, netavark, rootful, no systemd)
#  2. default_ulimits in Podman's own /etc/containers/containers.conf: rootful Podman asks for
#     nofile=1048576 and nproc=4194304, which a root that cannot raise its limits (containers, CI machines)
#     refuses, and every container start then fails with "error setting rlimit type 7". The limits written
#     are the host's own hard limits (at most those Podman asks for). Only Podman reads this file.
#  3. start ONE API service (`podman system service --time=0`) on the rootful socket, unless one answers
#  4. copy the stand-in images from Docker (`docker save | podman load`; no registry is reachable):
#     Podman names them localhost/NAME
# Prints the environment to use, e.g.  eval "$(scripts/setup-podman.sh --print-env)"
set -euo pipefail

SOCK="${SCALEOUT_PODMAN_SOCK:-/run/podman/podman.sock}"
CONF="${SCALEOUT_PODMAN_CONF:-/etc/containers/containers.conf}"
SERVICE_LOG="${SCALEOUT_PODMAN_LOG:-/var/log/scaleout-podman-service.log}"
IMAGES="${SCALEOUT_PODMAN_IMAGES:-scaleout-local/bookworm:1}"  # what tests/test_podman_e2e.py runs
PRINT_ENV=0
[ "${1:-}" = "--print-env" ] && PRINT_ENV=1

log() { echo "setup-podman: $*" >&2; }
[ "$(id -u)" = 0 ] || { log "needs root (apt-get, containers.conf, the rootful API socket)"; exit 1; }

# 1. podman, with netavark and aardvark-dns (without them Podman 4.3 falls back to CNI networks whose
# containers cannot resolve each other's names, and the balancer never finds a replica)
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
[ -x /usr/lib/podman/netavark ] || command -v netavark >/dev/null 2>&1 || missing+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || command -v aardvark-dns >/dev/null 2>&1 || missing+=(aardvark-dns)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
log "$(podman --version)"

# 2. default_ulimits within this host's hard limits and the service's own: Podman's defaults are
# nofile=1048576 and nproc=4194304, and the rootful service runs with at most 32768 processes itself
limit() {  # $1: hard limit from ulimit, $2: the most to ask for -> the smaller one
  if [ "$1" = unlimited ] || [ "$1" -ge "$2" ]; then echo "$2"; else echo "$1"; fi
}
nofile=$(limit "$(ulimit -Hn)" 1048576)
nproc=$(limit "$(ulimit -Hu)" 32768)
MARK="# written by scaleout's scripts/setup-podman.sh"
conf_changed=0
# set_key SECTION KEY VALUE: KEY = VALUE in [SECTION] of $CONF, unless the file sets KEY itself
set_key() {
  local section=$1 key=$2 line="$2 = $3  $MARK" tmp
  if [ -f "$CONF" ] && grep -qxF "$line" "$CONF"; then
    log "$CONF already sets $key = $3"
    return 0
  fi
  if [ -f "$CONF" ] && grep -v -F "$MARK" "$CONF" | grep -q "^[[:space:]]*$key[[:space:]]*="; then
    log "$CONF sets $key of its own (kept): $(grep "^[[:space:]]*$key" "$CONF" | head -1)"
    return 0
  fi
  mkdir -p "$(dirname "$CONF")"
  touch "$CONF"
  tmp=$(mktemp "$CONF.XXXXXX")
  # drop this script's own earlier line for KEY (other values may have been computed then)
  awk -v k="$key = " -v m="$MARK" '!(index($0, k) == 1 && index($0, m))' "$CONF" >"$tmp"
  if grep -q "^\[$section\]" "$tmp"; then
    awk -v l="$line" -v s="[$section]" '{print} $0==s{print l}' "$tmp" >"$tmp.2" && mv "$tmp.2" "$tmp"
  else
    printf '[%s]\n%s\n' "$section" "$line" >>"$tmp"
  fi
  chmod 644 "$tmp" && mv "$tmp" "$CONF"
  conf_changed=1
  log "wrote $key = $3 to [$section] of $CONF"
}
set_key containers default_ulimits "[\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"
set_key network network_backend '"netavark"'

# 3. the API service
answers() { curl -sf --max-time 5 --unix-socket "$SOCK" http://podman/_ping >/dev/null 2>&1; }
if answers; then
  log "the Podman API already answers on $SOCK"
  if [ "$conf_changed" = 1 ]; then
    log "note: that service started before $CONF changed: restart it for the new default_ulimits"
  fi
else
  mkdir -p "$(dirname "$SOCK")"
  rm -f "$SOCK"  # a socket file left by a service that is gone
  log "starting podman system service on unix://$SOCK (log: $SERVICE_LOG)"
  nohup podman system service --time=0 "unix://$SOCK" >"$SERVICE_LOG" 2>&1 &
  for _ in $(seq 1 100); do
    answers && break
    sleep 0.2
  done
  answers || { log "the Podman API did not answer within 20 s; see $SERVICE_LOG"; tail -20 "$SERVICE_LOG" >&2 || true; exit 1; }
fi
log "API: $(curl -s --unix-socket "$SOCK" http://podman/version | python3 -c \
  'import json,sys; v=json.load(sys.stdin); print(v.get("Version"), "(API", v.get("ApiVersion"), ")")' 2>/dev/null || echo '?')"

# 4. images, from Docker's storage (Podman keeps its own)
for image in $IMAGES; do
  if podman image exists "$image" 2>/dev/null || podman image exists "localhost/$image" 2>/dev/null; then
    log "image $image already in Podman's storage"
  elif docker image inspect "$image" >/dev/null 2>&1; then
    log "copying $image from Docker to Podman"
    docker save "$image" | podman load -q >&2
  else
    log "image $image is not in Docker's storage either (scripts/setup-docker.sh builds it); skipped"
  fi
done

if [ "$PRINT_ENV" = 1 ]; then
  echo "export SCALEOUT_PODMAN_HOST=unix://$SOCK"
fi
exit 0
