#!/usr/bin/env bash
# Make the Compose v2 plugin (`docker compose`) available beside docker-compose v1, so that the tests
# exercise both CLIs. Most users have v2; Debian 12 packages only v1, so the plugin binary is taken from
# Debian 13's docker-compose package (2.26) and placed in Docker's system plugin folder. The package is
# only unpacked, not installed, so it does not replace Debian 12's docker-compose (v1) package.
# Idempotent: does nothing when `docker compose version` already answers.
set -euo pipefail

log() { echo "setup-compose-v2: $*" >&2; }

if docker compose version >/dev/null 2>&1; then
  log "$(docker compose version)"
  exit 0
fi
[ "$(id -u)" = 0 ] || { log "needs root"; exit 1; }

work=$(mktemp -d /var/tmp/scaleout-compose-v2.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial"
echo "deb http://deb.debian.org/debian trixie main" > "$work/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
          -o "Dir::State::Lists=$work/lists" -o "APT::Get::List-Cleanup=0" -o "Dir::Cache::archives=$work")
log "fetching the docker-compose v2 package from Debian 13"
apt-get "${apt_opts[@]}" update -qq >&2
(cd "$work" && apt-get "${apt_opts[@]}" download docker-compose >&2)
deb=$(ls "$work"/docker-compose_2*.deb)
dpkg-deb -x "$deb" "$work/x"
install -D -m 0755 "$work/x/usr/libexec/docker/cli-plugins/docker-compose" /usr/libexec/docker/cli-plugins/docker-compose
log "$(docker compose version)"
