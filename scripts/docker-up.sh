#!/bin/sh
# For a machine WITHOUT a running Docker engine (CI, fresh VMs like this one); skip it where
# Docker already runs. Installs, from Debian packages, whatever is missing of:
#   docker.io       the engine (dockerd) and the docker CLI
#   docker-compose  Compose v1 (`docker-compose`), for the README's compose commands
#   busybox-static  used by scripts/docker-base-image.sh for the stand-in base image
# then starts dockerd with the settings these VMs need (vfs storage, no iptables). Safe to
# run twice: packages are only installed when missing and dockerd is only started when the
# engine does not answer. Needs root. Exits non-zero with a message when the engine still
# does not answer. It builds no image: scripts/docker-build-images.sh does that.
set -eu

log() { echo "docker-up: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  if docker info >/dev/null 2>&1; then log "engine already answering"; exit 0; fi
  log "must run as root to install and start dockerd (or start Docker yourself)"; exit 1
fi

missing=""
command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
# busybox-static is used by scripts/docker-base-image.sh for the stand-in base image.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' \
  || missing="$missing busybox-static"
if [ -n "$missing" ]; then
  log "installing:$missing"
  apt-get update -q
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

if docker info >/dev/null 2>&1; then
  log "engine already answering"
  exit 0
fi

# A pid file left by an engine that is gone (the machine was stopped under it) makes dockerd
# refuse to start; remove it only when no process has that pid.
for f in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
  if [ -f "$f" ] && ! kill -0 "$(cat "$f" 2>/dev/null)" 2>/dev/null; then
    log "removing stale $f"
    rm -f "$f"
  fi
done

log "starting dockerd (vfs storage, --iptables=false), log in /var/log/dockerd.log"
# setsid: the engine must outlive the shell (and process group) that started it.
setsid nohup dockerd --iptables=false --storage-driver=vfs >/var/log/dockerd.log 2>&1 &
i=0
while [ $i -lt 60 ]; do
  if docker info >/dev/null 2>&1; then
    log "engine answering: $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')"
    exit 0
  fi
  i=$((i + 1))
  sleep 1
done
log "ERROR: the Docker engine did not answer within 60 s; see /var/log/dockerd.log:"
tail -n 20 /var/log/dockerd.log >&2 || true
exit 1
